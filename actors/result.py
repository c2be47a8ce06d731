"""The result of a run (:class:`RunResult`) and how shard outputs are merged into it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from actors.messages import ShardResult
from actors.metrics import MetricsLayout, sum_arrays
from policies.events import EventBatch
from policies.features import FEATURE_NAMES

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
        best_arm. ``expected_opens`` / ``expected_clicks`` / ``expected_orders`` /
        ``expected_revenue`` sum the true probabilities (``p_open``, ``p_click``,
        ``p_purchase``, ``expected_revenue`` of :func:`sim.response.probabilities`) of
        every delivered email (``sends``: emails to subscribers still subscribed at
        delivery; the others are in neither sends nor truth), from the state at delivery,
        with no time limit: they count a response whenever it would land. The
        observed ``metrics`` (opens, clicks, orders, revenue, unsubscribes) count only
        response events attributed to their email that land within
        ``reward_window_seconds`` of delivery and before the run ends. So observed /
        expected is below 1 by definition, not by a sampling bias: responses later
        than the window (default retail preset: about 0.9 % of clicks and 0.4 % of opens
        land more than 1 day after delivery, mostly when the send hour is far from the
        subscriber's preferred hour; < 0.1 % after 2 days) and responses of emails
        delivered in the run's last window that would land after its end. For a daily
        campaign, 14 days, 1-day window (20 seeds x 20k subscribers, 5.5 M emails)
        observed / expected clicks was 0.983 = 1 - 0.0095 (after the window) - 0.0084
        (after the end) + 0.0007 (noise), opens 0.991; counting every response of the
        emails whose window closed before the end gave 1.0008 (clicks, z = +0.3) and
        0.9994 (opens). Responses that land after the subscriber unsubscribed are kept
        and counted; a cart reminder's purchase is dropped by
        :func:`sim.state.valid_mask` (and never counted) when the cart was bought,
        cleared or replaced before it lands, while ``expected_orders`` still includes
        it. Compare observed with truth only over emails whose window closed before
        the end, with a window long enough for the metric.
    decisions : DataFrame or None
        Per-email log (``record_decisions``).
    events : DataFrame or None
        Every world event (``record_events``).
    policy_state : dict or None
        The policy's ``state_dict()`` at the end.
    info : dict
        wall_s, ticks, events, emails, shards, executor, seed, recoveries.
    """

    metrics: pd.DataFrame
    truth: pd.DataFrame
    decisions: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    policy_state: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> pd.DataFrame:
        """Metric totals over days: index (source, arm, group), one column per metric."""
        return self.metrics.pivot_table(index=["source", "arm", "group"], columns="metric",
                                        values="value", aggfunc="sum", fill_value=0.0)


def _decisions_frame(layout: MetricsLayout, parts: Sequence[dict[str, np.ndarray] | None]
                     ) -> pd.DataFrame:
    cols = [p for p in parts if p is not None]
    arms = layout.arm_names
    base = ["email_id", "subscriber", "time", "source", "arm", "arm_index", "propensity",
            "reward", "expected_reward", *[f"expected_reward__{a}" for a in arms],
            *[f"x_{n}" for n in FEATURE_NAMES]]
    if not cols:
        return pd.DataFrame({c: [] for c in base})
    d = {k: np.concatenate([p[k] for p in cols]) for k in cols[0]}
    order = np.lexsort((d["email_id"], d["source"], d["subscriber"], d["time"]))
    d = {k: v[order] for k, v in d.items()}
    arm_labels = np.array(layout.arms, dtype=object)
    out: dict[str, Any] = {
        "email_id": d["email_id"], "subscriber": d["subscriber"], "time": d["time"],
        "source": np.array(layout.sources, dtype=object)[d["source"]],
        "arm": arm_labels[d["arm"] + 1], "arm_index": d["arm"],
        "propensity": d["propensity"], "reward": d["reward"],
        "expected_reward": d["expected"],
    }
    for j, a in enumerate(arms):
        out[f"expected_reward__{a}"] = d["expected_arms"][:, j]
    for j, n in enumerate(FEATURE_NAMES):
        out[f"x_{n}"] = d["context"][:, j]
    return pd.DataFrame(out)


def merge_results(layout: MetricsLayout, parts: Sequence[ShardResult],
                  policy_state: dict[str, Any] | None, info: dict[str, Any],
                  record_decisions: bool, record_events: bool) -> RunResult:
    """Add the shards' counters (exact) and concatenate their logs in canonical order."""
    counts = sum_arrays([p.counts for p in parts])
    truth = sum_arrays([p.truth for p in parts])
    decisions = (_decisions_frame(layout, [p.decisions for p in parts])
                 if record_decisions else None)
    events = None
    if record_events:
        batch = EventBatch.concat([p.events for p in parts])
        df = batch.to_pandas()
        events = df.iloc[np.lexsort((df["subscriber"].to_numpy(), df["time"].to_numpy()))]
        events = events.reset_index(drop=True)
    info = {**info, "events": int(sum(p.n_events for p in parts)),
            "emails": int(sum(p.n_emails for p in parts)),
            "peak_rss_bytes": [int(p.peak_rss) for p in parts],
            "cpu_s": [float(p.cpu_s) for p in parts]}
    return RunResult(metrics=layout.metrics_frame(counts), truth=layout.truth_frame(truth),
                     decisions=decisions, events=events, policy_state=policy_state, info=info)
