"""A shard's books: counters, ground truth, attribution and rewards of delivered emails.

:class:`Ledger` holds

* ``counts``: the metric counters, int64 of shape ``layout.counts_shape`` (day, source,
  arm slot, group, metric; money in cents), see :mod:`actors.metrics`;
* ``truth``: the ground-truth sums, int64 of shape ``layout.truth_shape`` (source, arm
  slot, group, column; probabilities in fixed point, :func:`actors.metrics.to_fixed`);
* ``sent``: the delivered emails whose reward window is open (an
  :class:`~actors.emails.EmailStore`), which response events are attributed to;
* ``decision_log``: finalized emails with their reward (when decisions are recorded);
* ``books``: the same counts and truth per subscriber (a
  :class:`~actors.subscriber_books.SubscriberBooks`, when subscribers are recorded).

Everything a shard counts lives here, so a checkpoint of the shard holds it and a replay
after a recovery cannot count anything twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from actors.config import SimulationConfig
from actors.emails import EmailStore, email_id_of, source_of
from actors.logs import LogSink
from actors.messages import Rewards
from actors.metrics import METRICS, TRUTH_COLUMNS, to_fixed
from actors.plan import REWARD_PROBABILITY, RunPlan
from actors.subscriber_books import SubscriberBooks
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from policies.triggers import KINDS
from sim.catalog import Catalog
from sim.clock import DAY
from sim.delays import within_window
from sim.population import Population
from sim.response import EmailBatch, probabilities

__all__ = ["EVENT_CODES", "TRUTH_CHUNK", "Ledger", "true_probabilities", "truth_windows"]

_M = {m: i for i, m in enumerate(METRICS)}
_FIRE, _CANCEL, _EXPIRE, _SUPPRESS = (KINDS.index(k) for k in
                                      ("fire", "cancel", "expire", "suppress"))
_KIND_METRIC = {_FIRE: _M["fires"], _CANCEL: _M["cancels"], _EXPIRE: _M["expires"],
                _SUPPRESS: _M["suppressions"]}
#: Response metrics the per-subscriber books keep.
_BOOK_METRICS = frozenset({"opens", "clicks", "orders", "revenue", "unsubscribes"})
#: The open emails' integer columns kept narrower than int64 (a 10 M subscriber shard
#: holds about 10 M emails in their reward windows after a campaign): source (< 256,
#: :func:`actors.emails.campaign_code`), arm, group, counts and journey indexes.
_STORE_NARROW = {"source": np.int16, "arm": np.int16, "group": np.int8, "clicks": np.int32,
                 "orders": np.int32, "email": np.int32, "series": np.int32}
#: Event type codes the ledger attributes.
EVENT_CODES = {name: EVENT_TYPES.code(name) for name in (
    "purchase_completed", "email_open", "email_click", "unsubscribe")}


#: Emails whose truth :func:`true_probabilities` computes at once (a campaign tick of a
#: large shard is split: its temporaries are about 2.7 kB per email with a 3-arm policy).
TRUTH_CHUNK = 1 << 16


def truth_windows(config: SimulationConfig, now: int) -> tuple[int, int, tuple[int, ...]]:
    """How long after a delivery at ``now`` (a tick boundary) its responses are counted.

    Returns
    -------
    window : int
        ``min(reward_window_seconds, end - now)``, s: the per-email metrics and the
        learner's reward count responses within it (:meth:`Ledger.attribute`).
    to_end : int
        ``end - now``, s: site-wide orders count until the run's end.
    support : tuple of int
        Every window a delivery of the run can have (the multiples of the tick up to the
        run's length, and the reward window): :func:`sim.delays.delay_cdfs` computes
        them together.
    """
    rw = config.reward_window_seconds
    to_end = config.end - int(now)
    return min(rw, to_end), to_end, _support(config.tick_seconds, config.n_ticks, rw)


@functools.lru_cache(maxsize=16)
def _support(tick: int, n_ticks: int, reward_window: int) -> tuple[int, ...]:
    extra = [reward_window] if reward_window < n_ticks * tick else []
    return tuple(sorted({*range(tick, n_ticks * tick + 1, tick), *extra}))


def true_probabilities(population: Population, plan: RunPlan, config: SimulationConfig,
                       now: int, go: dict[str, np.ndarray], row: np.ndarray,
                       batch: EmailBatch,
                       as_arms: Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray],
                                         EmailBatch],
                       catalog: Catalog | None = None,
                       ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """True response probabilities of emails delivered at ``now``, for the chosen variant
    and for every arm (one response-model call on the stacked batch), on the basis the
    run observes them (:func:`truth_windows`).

    Parameters
    ----------
    population : Population
        The shard's subscribers.
    plan : RunPlan
    config : SimulationConfig
        Gives the reward (``"click"``, ``"order"`` or ``"revenue"``), its window and the
        run's end.
    now : int
        Delivery time, s (a tick boundary).
    go : dict of str -> ndarray, shape (m,)
        The delivered emails (``arm`` -1: not decided by the policy).
    row : ndarray of int64, shape (m,)
        Shard-local row of each recipient.
    batch : EmailBatch
        The emails as delivered.
    as_arms : callable
        ``as_arms(go_rows, rows, arms)``: the same emails with arms ``arms``; ``batch``'s
        rows of the decided emails must be ``as_arms`` with their chosen arm (they are
        not computed twice).
    catalog : Catalog, optional
        The world's catalog: category margin rates and the stock a purchase needs
        (:func:`sim.response.probabilities`).

    Returns
    -------
    probabilities : dict of str -> ndarray of float64, shape (m,)
        ``p_open``, ``p_click``, ``p_purchase``, ``expected_revenue``,
        ``expected_margin`` and ``p_unsubscribe`` of responses within the reward window
        and the run (:func:`sim.delays.within_window`), ``p_incremental_purchase``:
        email-caused orders landing before the run's end, and ``margin_ratio``: an
        order's margin per unit of its revenue (the ledger turns observed revenue into
        margin with it).
    chosen : ndarray of float64, shape (m,)
        Expected reward of the chosen variant within the reward window and the run.
    per_arm : ndarray of float64, shape (m, k)
        The same for every arm (zeros for emails not decided by the policy).
    """
    m = len(row)
    if m > TRUTH_CHUNK:   # bounded memory: the emails are independent, chunks give the same
        chunks = [true_probabilities(population, plan, config, now,
                                     {name: v[a:a + TRUTH_CHUNK] for name, v in go.items()},
                                     row[a:a + TRUTH_CHUNK],
                                     batch.take(slice(a, a + TRUTH_CHUNK)), as_arms, catalog)
                  for a in range(0, m, TRUTH_CHUNK)]
        return ({name: np.concatenate([c[0][name] for c in chunks]) for name in chunks[0][0]},
                np.concatenate([c[1] for c in chunks]), np.concatenate([c[2] for c in chunks]))
    key = REWARD_PROBABILITY[config.reward]
    k = len(plan.arm_names)
    decided = go["arm"] >= 0
    idx = np.flatnonzero(decided) if k else np.zeros(0, np.int64)
    stacked, src = batch, np.arange(m)   # src: each email's own row in ``stacked``
    if len(idx):   # a decided email's own row is its chosen arm's: computed once
        rest = np.flatnonzero(~decided)
        sub = {name: v[idx] for name, v in go.items()}
        rows_k = np.tile(row[idx], k)
        sub_k = {name: np.tile(v, k) if v.ndim == 1 else np.tile(v, (k, 1))
                 for name, v in sub.items()}
        arms_k = np.repeat(np.arange(k, dtype=np.int64), len(idx))
        stacked = EmailBatch.concat([batch.take(rest), as_arms(sub_k, rows_k, arms_k)])
        src = np.empty(m, np.int64)
        src[rest] = np.arange(len(rest))
        src[idx] = len(rest) + go["arm"][idx] * len(idx) + np.arange(len(idx))
    window, to_end, support = truth_windows(config, now)
    full = probabilities(population, stacked, catalog)
    pr = within_window(population, stacked, full, window, support)
    own = {n: v[src] for n, v in full.items()}
    caused = within_window(population, batch, own, to_end, support)
    chosen = pr[key][src]
    per_arm = np.zeros((m, k))
    if len(idx):
        per_arm[idx] = pr[key][m - len(idx):].reshape(k, len(idx)).T
    out = {name: v[src] for name, v in pr.items()}
    out["p_incremental_purchase"] = caused["p_incremental_purchase"]
    out["margin_ratio"] = own["order_margin"] / own["order_value"]
    return out, chosen, per_arm


class Ledger:
    """Counters, truth and open reward windows of subscribers ``[start, stop)``.

    Parameters
    ----------
    config : SimulationConfig
    plan : RunPlan
    start : int
        First subscriber id of the shard.
    group : ndarray of int64, shape (stop - start,)
        Group code of each subscriber (0 treatment, 1 holdout).
    context_dim : int or None
        Length of the stored contexts (None: not stored).
    """

    def __init__(self, config: SimulationConfig, plan: RunPlan, start: int,
                 group: np.ndarray, context_dim: int | None) -> None:
        self.config = config
        self.start = int(start)
        self.group = group
        self.layout = plan.layout
        self.n_arms = len(plan.arm_names)
        self.counts = self.layout.new_counts()
        self.truth = self.layout.new_truth()
        for g in (0, 1):
            self.counts[:, self.layout.site, 0, g, _M["subscribers"]] = int(np.sum(group == g))
        store_cols: dict[str, tuple[Any, tuple[int, ...]]] = {
            "email_id": (np.int64, ()), "subscriber": (np.int64, ()), "time": (np.int64, ()),
            "source": (np.int64, ()), "arm": (np.int64, ()), "group": (np.int64, ()),
            "propensity": (np.float64, ()), "clicks": (np.int64, ()),
            "orders": (np.int64, ()), "revenue": (np.int64, ()),
            "expected": (np.float64, ()), "margin_ratio": (np.float64, ()),
        }
        if config.record_decisions and self.n_arms:
            store_cols["expected_arms"] = (np.float64, (self.n_arms,))
        if self.layout.has_journeys:
            store_cols["email"] = (np.int64, ())
            store_cols["series"] = (np.int64, ())
        if context_dim is not None:
            store_cols["context"] = (np.float64, (context_dim,))
        if (config.record_decisions and config.policy is not None
                and config.policy.draws == "keyed"):     # the log's trigger ids
            store_cols["entered_at"] = (np.int64, ())
            store_cols["step"] = (np.int64, ())
        storage = {k: dt for k, dt in _STORE_NARROW.items() if k in store_cols}
        self.sent = EmailStore(store_cols, self.start, self.start + len(group), storage)
        self.decision_log: list[dict[str, np.ndarray]] = []
        # streamed instead (config.log_uri): bounded memory
        self.decision_sink = (LogSink(config.log_uri, "decisions", self.start)
                              if config.log_uri is not None and config.record_decisions
                              else None)
        self.books = (SubscriberBooks(len(group), self.layout.site)
                      if config.record_subscribers else None)

    def deliver(self, go: dict[str, np.ndarray], row: np.ndarray,
                pr: dict[str, np.ndarray], chosen: np.ndarray, per_arm: np.ndarray,
                now: int) -> None:
        """Book delivered emails: their sends, their ground truth, and their reward window.

        Parameters
        ----------
        go : dict of str -> ndarray, shape (m,)
            The delivered emails (outbox columns).
        row : ndarray of int64, shape (m,)
            Shard-local row of each recipient.
        pr, chosen, per_arm
            :func:`true_probabilities` of the emails.
        now : int
            Delivery time, seconds since the epoch.
        """
        m, k = len(row), self.n_arms
        group = self.group[row]
        regret = np.where(go["arm"] >= 0, per_arm.max(axis=1) - chosen if k else 0.0, 0.0)
        cols = np.column_stack([
            np.ones(m, np.int64), to_fixed(pr["p_open"]), to_fixed(pr["p_click"]),
            to_fixed(pr["p_purchase"]), to_fixed(pr["expected_revenue"]),
            to_fixed(pr["p_incremental_purchase"]), to_fixed(regret),
            to_fixed(pr["expected_margin"]), to_fixed(pr["p_unsubscribe"]),
            *[to_fixed(per_arm[:, a]) for a in range(k)],
        ]).astype(np.int64)
        assert cols.shape[1] == len(TRUTH_COLUMNS) + k
        self.layout.add_truth(self.truth, go["source"], go["arm"] + 1, group, cols)
        if self.books is not None:
            self.books.deliver(row, go["source"], pr)
        rows: dict[str, np.ndarray] = {
            "email_id": go["email_id"], "subscriber": go["subscriber"],
            "time": np.full(m, now, np.int64), "source": go["source"], "arm": go["arm"],
            "group": group, "propensity": go["propensity"],
            "clicks": np.zeros(m, np.int64), "orders": np.zeros(m, np.int64),
            "revenue": np.zeros(m, np.int64), "expected": chosen,
            "margin_ratio": pr["margin_ratio"],
        }
        if "expected_arms" in self.sent.cols:
            rows["expected_arms"] = per_arm
        if "email" in self.sent.cols:
            rows["email"], rows["series"] = go["email"], go["series"]
        if "context" in self.sent.cols:
            rows["context"] = go["context"]
        if "entered_at" in self.sent.cols:
            rows["entered_at"], rows["step"] = go["entered_at"], go["step"]
        self.sent.append(rows)

    def count_sends(self, go: dict[str, np.ndarray], row: np.ndarray, now: int) -> None:
        """Count the ``sends`` metric of delivered emails (``now``: delivery time, s)."""
        day = np.full(len(row), (now - self.config.start) // DAY, np.int64)
        self.layout.add(self.counts, day, go["source"], go["arm"] + 1, self.group[row],
                        _M["sends"])

    def attribute(self, ev: EventBatch) -> None:
        """Count the world's events: purchases site-wide per group, and response events
        (carrying a ``campaign_id``) on their email if its reward window is open."""
        if len(ev) == 0:
            return
        cfg = self.config
        day = (ev.time - cfg.start) // DAY
        typ = ev.type
        purchase = typ == EVENT_CODES["purchase_completed"]
        revenue_cents = np.rint(np.nan_to_num(ev.column("revenue")) * 100).astype(np.int64)
        if purchase.any():
            grp = self.group[ev.subscriber[purchase] - self.start]
            site = np.full(int(purchase.sum()), self.layout.site, np.int64)
            zero = np.zeros(len(site), np.int64)
            self.layout.add(self.counts, day[purchase], site, zero, grp, _M["orders_all"])
            self.layout.add(self.counts, day[purchase], site, zero, grp, _M["revenue_all"],
                            revenue_cents[purchase])
            if self.books is not None:
                self.books.purchase(ev.subscriber[purchase] - self.start,
                                    revenue_cents[purchase])
        camp = ev.column("campaign_id")
        resp = np.flatnonzero(camp >= 0)
        if len(resp) == 0:
            return
        pos = self.sent.positions(email_id_of(ev.subscriber[resp], camp[resp]))
        ok = pos >= 0
        resp, pos = resp[ok], pos[ok]
        cols = self.sent.cols
        within = ev.time[resp] <= cols["time"][pos] + cfg.reward_window_seconds
        resp, pos = resp[within], pos[within]
        if len(resp) == 0:
            return
        typ_r = typ[resp]
        machine = ev.column("machine")[resp]
        src = source_of(camp[resp])
        arm = cols["arm"][pos].astype(np.int64) + 1
        grp = cols["group"][pos].astype(np.int64)
        d = day[resp]
        is_open = typ_r == EVENT_CODES["email_open"]
        # an order's margin: its revenue times its email's margin ratio, in cents
        margin_cents = np.rint(revenue_cents[resp] * cols["margin_ratio"][pos]).astype(np.int64)
        for metric, mask, vals in (
            ("opens", is_open, 1),
            ("machine_opens", is_open & (machine == 1), 1),
            ("human_opens", is_open & (machine != 1), 1),
            ("clicks", typ_r == EVENT_CODES["email_click"], 1),
            ("orders", typ_r == EVENT_CODES["purchase_completed"], 1),
            ("revenue", typ_r == EVENT_CODES["purchase_completed"], revenue_cents[resp]),
            ("margin", typ_r == EVENT_CODES["purchase_completed"], margin_cents),
            ("unsubscribes", typ_r == EVENT_CODES["unsubscribe"], 1),
        ):
            if mask.any():
                v = vals[mask] if isinstance(vals, np.ndarray) else vals
                self.layout.add(self.counts, d[mask], src[mask], arm[mask], grp[mask],
                                _M[metric], v)
                if self.books is not None and metric in _BOOK_METRICS:
                    self.books.respond(ev.subscriber[resp][mask] - self.start, src[mask],
                                       metric, v)
        click = typ_r == EVENT_CODES["email_click"]
        buy = typ_r == EVENT_CODES["purchase_completed"]
        np.add.at(cols["clicks"], pos[click], 1)
        np.add.at(cols["orders"], pos[buy], 1)
        np.add.at(cols["revenue"], pos[buy], revenue_cents[resp][buy])

    def count_decisions(self, dec: Any) -> np.ndarray:
        """Count the trigger engine's decisions (fires, cancels, expiries, suppressions)
        and return the mask of fires for treatment-group subscribers, bool (len(dec),)."""
        row = dec.subscriber - self.start
        grp = self.group[row]
        day = (dec.time - self.config.start) // DAY
        src = dec.rule + 1
        zero = np.zeros(len(dec), np.int64)
        for code, metric in _KIND_METRIC.items():
            mask = dec.kind == code
            if mask.any():
                self.layout.add(self.counts, day[mask], src[mask], zero[mask], grp[mask], metric)
        return np.asarray((dec.kind == _FIRE) & (grp == 0))

    def _reward_values(self, done: dict[str, np.ndarray]) -> np.ndarray:
        reward = self.config.reward
        if reward == "click":
            return (done["clicks"] > 0).astype(np.float64)
        if reward == "order":
            return (done["orders"] > 0).astype(np.float64)
        return done["revenue"] / 100.0

    def finalize(self, sent_before: int, with_context: bool) -> Rewards:
        """Close the reward windows of emails delivered before ``sent_before`` (s): log
        them (when decisions are recorded) and return the policy-decided ones' rewards."""
        done = self.sent.pop_until(sent_before)
        reward = self._reward_values(done)
        if self.config.record_decisions and len(reward):
            self._log(self._log_rows(done, reward))
        learn = done["arm"] >= 0
        return Rewards(done["email_id"][learn], done["subscriber"][learn],
                       done["time"][learn], done["arm"][learn], reward[learn],
                       done["context"][learn] if with_context else None)

    def _log_rows(self, done: dict[str, np.ndarray], reward: np.ndarray) -> dict[str, Any]:
        rows = {k: done[k] for k in ("email_id", "subscriber", "time", "source", "arm",
                                     "propensity", "expected")}
        rows["reward"] = reward
        for key in ("expected_arms", "email", "series", "entered_at", "step"):
            if key in done:
                rows[key] = done[key]
        rows["context"] = done["context"]
        return rows

    def _log(self, rows: dict[str, np.ndarray]) -> None:
        if self.decision_sink is not None:
            self.decision_sink.append(rows)
        else:
            self.decision_log.append(rows)

    def decisions(self) -> dict[str, np.ndarray] | None:
        """The decision log (None unless decisions are recorded in memory); emails still
        in their reward window are logged with the reward observed so far. A streamed log
        gets them too and is closed."""
        if not self.config.record_decisions:
            return None
        done = self.sent.pop_all()
        if len(done["email_id"]):
            self._log(self._log_rows(done, self._reward_values(done)))
        if self.decision_sink is not None:
            self.decision_sink.close()
            return None
        parts = self.decision_log
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else None
