"""The result of a run (:class:`RunResult`) and how shard outputs are merged into it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from actors.journey_book import journey_frame
from actors.log_frames import decisions_frame, events_frame
from actors.logs import RunLogs
from actors.messages import ShardResult
from actors.metrics import MetricsLayout, sum_arrays
from policies.triggers import Rule

__all__ = ["RunResult", "merge_results"]


@dataclass
class RunResult:
    """Tables of a run (CONTRACT-RUNTIME.md); picklable.

    Attributes
    ----------
    metrics : DataFrame
        Tidy: day, source, arm, group, metric, value.
    truth : DataFrame
        One row per (source, arm, group): sends, expected_* sums, expected_regret,
        best_arm, on the basis the ``metrics`` count (``sends``: emails to subscribers
        still subscribed at delivery; the others are in neither sends nor truth; every
        value from the state at delivery). ``expected_opens`` / ``expected_clicks`` /
        ``expected_orders`` / ``expected_revenue`` sum, over the delivered emails, the
        probability (revenue: expectation) of a response landing within
        ``reward_window_seconds`` of delivery and no later than the run's end -- the
        responses the observed opens, clicks, orders and revenue count
        (:func:`sim.delays.within_window`: the response model's probabilities times the
        delay model's P(delay <= window)). ``expected_incremental_orders`` sums the
        email-caused orders landing before the run's end (site-wide orders are counted
        until then, whatever the window). The expected reward per arm and the regret
        are on the reward window's basis too (the learner's reward counts a response
        within it). Responses that land after the subscriber unsubscribed are counted;
        a cart reminder's purchase that would land after the cart came back on its own
        is not (the organic purchase buys the cart first), and neither is one dropped
        because a later session bought, replaced or cleared the cart first
        (:func:`sim.state.valid_mask`), which the truth, fixed at delivery, still
        includes. Observed / expected per email metric is 1 within sampling error
        (``tests/actors/test_truth_basis.py``); before the truth was put on this basis it
        counted responses at any time and was 0.23 (orders) to 0.71 (opens) with a 2 h
        window, 0.975 (clicks) in 3-day runs with the default 3-day window (docs/domain.md,
        "Ground truth").
    decisions : DataFrame or None
        Per-email log (``record_decisions``).
    events : DataFrame or None
        Every world event (``record_events``).
    subscribers : DataFrame or None
        Per-subscriber counts and truth (``record_subscribers``): ``subscriber, group,
        source`` and the columns of :data:`actors.subscriber_books.SUBSCRIBER_EMAIL_COLUMNS`
        and :data:`~actors.subscriber_books.SUBSCRIBER_SITE_COLUMNS` (one ``site`` row per
        subscriber, one row per subscriber and email source that got an email), on the
        basis of ``metrics`` and ``truth``: summed over subscribers they give the same
        totals.
    subscriber_table : DataFrame or None
        The subscriber table (docs/domain.md) at the start of the run, before any email,
        indexed by ``subscriber`` (``record_subscribers``).
    policy_state : dict or None
        The policy's ``state_dict()`` at the end.
    journeys : DataFrame or None
        With journeys in the rules: what they did, per rule, node, decision kind, path
        and group, after each rule's entries (:func:`actors.journey_book.journey_frame`).
    info : dict
        wall_s, ticks, events, emails, shards, executor, seed, recoveries.
    logs : RunLogs or None
        With ``log_uri``: the streamed event and decision logs (``decisions`` and
        ``events`` are then None; ``logs.decisions()`` and ``logs.events()`` give the same
        frames, ``logs.batches(...)`` reads them in bounded memory).
    """

    metrics: pd.DataFrame
    truth: pd.DataFrame
    decisions: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    subscribers: pd.DataFrame | None = None
    subscriber_table: pd.DataFrame | None = None
    policy_state: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    journeys: pd.DataFrame | None = None
    logs: RunLogs | None = None

    def totals(self) -> pd.DataFrame:
        """Metric totals over days: index (source, arm, group), one column per metric."""
        return self.metrics.pivot_table(index=["source", "arm", "group"], columns="metric",
                                        values="value", aggfunc="sum", fill_value=0.0)


def merge_results(layout: MetricsLayout, parts: Sequence[ShardResult],
                  policy_state: dict[str, Any] | None, info: dict[str, Any],
                  record_decisions: bool, record_events: bool,
                  rules: Sequence[Rule] = (), logs: RunLogs | None = None) -> RunResult:
    """Add the shards' counters (exact) and concatenate their logs in canonical order;
    ``rules`` (the run's) name the journeys' counts; ``logs``: the logs were streamed
    (the result's ``decisions`` and ``events`` are None, ``logs`` reads them)."""
    if logs is not None:
        record_decisions = record_events = False
    counts = sum_arrays([p.counts for p in parts])
    truth = sum_arrays([p.truth for p in parts])
    decisions = (decisions_frame(layout, [p.decisions for p in parts])
                 if record_decisions else None)
    events = (events_frame([p.events for p in parts if p.events is not None])
              if record_events else None)
    info = {**info, "events": int(sum(p.n_events for p in parts)),
            "emails": int(sum(p.n_emails for p in parts)),
            "peak_rss_bytes": [int(p.peak_rss) for p in parts],
            "cpu_s": [float(p.cpu_s) for p in parts]}
    books = [p.subscriber_books for p in parts if p.subscriber_books is not None]
    tables = [p.subscriber_table for p in parts if p.subscriber_table is not None]
    journeys = None
    if parts and parts[0].journeys is not None:
        entered = sum_arrays([p.engine_stats["entered"].to_numpy(np.int64) for p in parts])
        journeys = journey_frame(rules, sum_arrays([p.journeys for p in parts]), entered)
    return RunResult(metrics=layout.metrics_frame(counts), truth=layout.truth_frame(truth),
                     journeys=journeys,
                     decisions=decisions, events=events,
                     subscribers=(pd.concat(books, ignore_index=True)
                                  .sort_values(["subscriber", "source"], kind="stable")
                                  .reset_index(drop=True) if books else None),
                     subscriber_table=pd.concat(tables) if tables else None,
                     policy_state=policy_state, info=info, logs=logs)
