"""The metrics sink: exact per-day counters and ground-truth sums, and their tidy tables.

Each shard accumulates into dense integer arrays laid out by :class:`MetricsLayout`;
the driver adds the shards' arrays and turns them into the tables of
:class:`~actors.result.RunResult`. Everything is an integer so that sums are exact and
do not depend on the order in which shards are added (same results on 1 or 8 shards):

* counts are int64; revenue and margin are kept in cents (the response model rounds
  revenue to cents; an order's margin is rounded to cents);
* ground-truth sums (expected opens, clicks, orders, revenue, regret, margin,
  unsubscribes) are fixed point:
  each email's value is rounded to a multiple of ``2**-32`` (error < 1.2e-10 per email)
  before it is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "EMAIL_METRICS",
    "FIXED_SCALE",
    "GROUPS",
    "METRICS",
    "RULE_METRICS",
    "SITE_METRICS",
    "TRUTH_COLUMNS",
    "MetricsLayout",
    "to_fixed",
]

#: Metrics of emails, per (day, source, arm, group); attributed within the reward window.
#: ``revenue`` is what the orders paid (net of the emails' discounts); ``margin`` is that
#: revenue less the orders' unit costs (:func:`sim.response.probabilities`).
EMAIL_METRICS: tuple[str, ...] = ("sends", "opens", "human_opens", "machine_opens", "clicks",
                                  "orders", "revenue", "margin", "unsubscribes")
#: Trigger-engine decisions per rule (arm "").
RULE_METRICS: tuple[str, ...] = ("fires", "cancels", "expires", "suppressions")
#: Organic totals (source "site", arm ""): every order, all revenue, group sizes.
SITE_METRICS: tuple[str, ...] = ("orders_all", "revenue_all", "subscribers")
METRICS: tuple[str, ...] = EMAIL_METRICS + RULE_METRICS + SITE_METRICS
_CENTS = {METRICS.index("revenue"), METRICS.index("margin"), METRICS.index("revenue_all")}
#: Groups: subscribers that receive triggered mail, and the holdout.
GROUPS: tuple[str, ...] = ("treatment", "holdout")
#: Truth columns (then one expected-reward total per arm).
TRUTH_COLUMNS: tuple[str, ...] = ("sends", "expected_opens", "expected_clicks",
                                  "expected_orders", "expected_revenue",
                                  "expected_incremental_orders", "expected_regret",
                                  "expected_margin", "expected_unsubscribes")
#: Fixed-point scale of ground-truth sums.
FIXED_SCALE = float(2**32)


def to_fixed(x: np.ndarray) -> np.ndarray:
    """Float values as int64 multiples of ``2**-32`` (round half to even)."""
    return np.rint(np.asarray(x, np.float64) * FIXED_SCALE).astype(np.int64)


@dataclass(frozen=True)
class MetricsLayout:
    """Shape and labels of the counter arrays of one run.

    Parameters
    ----------
    rule_ids : tuple of str
        Rule ids in rule order; sources are ``("campaign", *rule_ids, "site")`` with codes
        0 .. len(rule_ids) + 1 (code ``r + 1`` is rule ``r``).
    arm_names : tuple of str
        The policy's arms (empty without a policy); arm slot 0 is ``""`` (no policy
        decision), slot ``a + 1`` is arm ``a``.
    n_days : int
        Days of the run (counter rows).
    holdout : bool
        Whether the holdout group exists (its rows appear in the tables).
    journey_emails : tuple of tuple of str
        Per rule, the names of its journey's emails (empty for a plain rule; empty
        altogether without journeys): the decision log names each journey send's email.
    """

    rule_ids: tuple[str, ...]
    arm_names: tuple[str, ...]
    n_days: int
    holdout: bool
    journey_emails: tuple[tuple[str, ...], ...] = ()

    @property
    def has_journeys(self) -> bool:
        """Whether some rule is a journey."""
        return any(self.journey_emails)

    @property
    def sources(self) -> tuple[str, ...]:
        """Source labels in code order."""
        return ("campaign", *self.rule_ids, "site")

    @property
    def site(self) -> int:
        """Code of the ``site`` source."""
        return len(self.rule_ids) + 1

    @property
    def arms(self) -> tuple[str, ...]:
        """Arm labels in slot order (slot 0 = "")."""
        return ("", *self.arm_names)

    @property
    def counts_shape(self) -> tuple[int, int, int, int, int]:
        """(days, sources, arm slots, groups, metrics)."""
        return (self.n_days, len(self.sources), len(self.arms), len(GROUPS), len(METRICS))

    @property
    def truth_shape(self) -> tuple[int, int, int, int]:
        """(sources, arm slots, groups, truth columns + one per arm)."""
        return (len(self.sources), len(self.arms), len(GROUPS),
                len(TRUTH_COLUMNS) + len(self.arm_names))

    def new_counts(self) -> np.ndarray:
        """Zero counters, int64 of :attr:`counts_shape`."""
        return np.zeros(self.counts_shape, np.int64)

    def new_truth(self) -> np.ndarray:
        """Zero truth sums, int64 of :attr:`truth_shape`."""
        return np.zeros(self.truth_shape, np.int64)

    # -- accumulation -----------------------------------------------------------------

    def add(self, counts: np.ndarray, day: np.ndarray, source: np.ndarray, arm: np.ndarray,
            group: np.ndarray, metric: int, values: np.ndarray | int = 1) -> None:
        """Add ``values`` (int64; scalar broadcasts) at the given cells, in place."""
        day = np.asarray(day, np.int64)
        if day.size == 0:
            return
        idx = np.ravel_multi_index(
            (np.clip(day, 0, self.n_days - 1), source, arm, group,
             np.full(day.shape, metric, np.int64)), counts.shape)
        vals = np.broadcast_to(np.asarray(values, np.int64), day.shape)
        flat = counts.reshape(-1)
        np.add.at(flat, idx, vals)

    def add_truth(self, truth: np.ndarray, source: np.ndarray, arm: np.ndarray,
                  group: np.ndarray, columns: np.ndarray) -> None:
        """Add rows of fixed-point values ``columns`` (n, truth width) at the cells."""
        if len(source) == 0:
            return
        cell = np.ravel_multi_index((source, arm, group), truth.shape[:3])
        flat = truth.reshape(-1, truth.shape[3])
        np.add.at(flat, cell, np.asarray(columns, np.int64))

    # -- tables -------------------------------------------------------------------------

    def _groups(self) -> list[int]:
        return [0, 1] if self.holdout else [0]

    def metrics_frame(self, counts: np.ndarray) -> pd.DataFrame:
        """Tidy metrics: day, source, arm, group, metric, value (float).

        Rows: every email source x arm x group x email metric, every rule x group x
        rule metric (arm ""), and site x group x site metric (arm ""), for every day;
        zeros included, so every table of a run has the same rows.
        """
        parts = []
        email_m = [METRICS.index(m) for m in EMAIL_METRICS]
        rule_m = [METRICS.index(m) for m in RULE_METRICS]
        site_m = [METRICS.index(m) for m in SITE_METRICS]
        email_src = list(range(self.site))
        rule_src = list(range(1, self.site))
        blocks = [(email_src, list(range(len(self.arms))), email_m),
                  (rule_src, [0], rule_m),
                  ([self.site], [0], site_m)]
        for srcs, arms, mets in blocks:
            if not srcs:
                continue
            grid = np.array(np.meshgrid(np.arange(self.n_days), srcs, arms, self._groups(),
                                        mets, indexing="ij")).reshape(5, -1)
            parts.append(grid)
        g = np.concatenate(parts, axis=1)
        raw = counts[g[0], g[1], g[2], g[3], g[4]].astype(np.float64)
        cents = np.isin(g[4], list(_CENTS))
        value = np.where(cents, raw / 100.0, raw)
        df = pd.DataFrame({
            "day": g[0].astype(np.int64),
            "source": np.array(self.sources, dtype=object)[g[1]],
            "arm": np.array(self.arms, dtype=object)[g[2]],
            "group": np.array(GROUPS, dtype=object)[g[3]],
            "metric": np.array(METRICS, dtype=object)[g[4]],
            "value": value,
        })
        return df.sort_values(["day", "source", "arm", "group", "metric"],
                              kind="stable").reset_index(drop=True)

    def truth_frame(self, truth: np.ndarray) -> pd.DataFrame:
        """One row per (source, arm, group) with sends > 0: sends, expected sums,
        expected_regret and best_arm (the arm with the highest total expected reward over
        the row's emails; "" for emails no policy decided)."""
        rows = []
        k = len(self.arm_names)
        width = len(TRUTH_COLUMNS)
        for s in range(self.site):
            for a in range(len(self.arms)):
                for g in self._groups():
                    cell = truth[s, a, g]
                    if cell[0] == 0:
                        continue
                    row: dict[str, object] = {"source": self.sources[s], "arm": self.arms[a],
                                              "group": GROUPS[g], "sends": int(cell[0])}
                    for j, name in enumerate(TRUTH_COLUMNS[1:], start=1):
                        row[name] = cell[j] / FIXED_SCALE
                    per_arm = cell[width:width + k]
                    decided = a > 0 and k > 0  # only policy-decided emails have arms
                    row["best_arm"] = self.arm_names[int(np.argmax(per_arm))] if decided else ""
                    rows.append(row)
        cols = ["source", "arm", "group", *TRUTH_COLUMNS, "best_arm"]
        return pd.DataFrame(rows, columns=cols)


def sum_arrays(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise sum of equally shaped integer arrays (exact, order-independent)."""
    out = np.zeros_like(parts[0])
    for p in parts:
        out += p
    return out
