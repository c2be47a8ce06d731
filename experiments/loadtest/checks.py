"""The load test's checks and statistics: decisions against the reference engine, no
duplicated trigger instance, decisions against the shards' counters, and weighted
latency percentiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.triggers import KINDS, Decisions

__all__ = [
    "compare_decisions",
    "counter_mismatch_count",
    "duplicate_instances",
    "same_decisions",
    "weighted_percentiles",
]

#: The columns that identify a decision (compared row for row).
_DECISION_COLS = ("subscriber", "rule", "kind", "time", "entered_at", "attempt")


def weighted_percentiles(
    values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]
) -> list[float]:
    """Percentiles ``qs`` (0..100) of ``values`` where each counts ``weights`` times.

    The inverted-CDF definition: the smallest value whose cumulative weight reaches
    ``q / 100`` of the total (``numpy.percentile(..., method="inverted_cdf")`` of the
    values repeated by integer weights).
    """
    v = np.asarray(values, np.float64)
    w = np.asarray(weights, np.float64)
    if len(v) == 0:
        return [float("nan")] * len(qs)
    order = np.argsort(v, kind="stable")
    v, cw = v[order], np.cumsum(w[order])
    total = cw[-1]
    out = []
    for q in qs:
        k = int(np.searchsorted(cw, q / 100.0 * total * (1 - 1e-12), side="left"))
        out.append(float(v[min(k, len(v) - 1)]))
    return out


def _frame(d: Decisions) -> pd.DataFrame:
    return pd.DataFrame({c: getattr(d, c) for c in _DECISION_COLS})


def duplicate_instances(decisions: Decisions) -> int:
    """Rows deciding a (rule, subscriber, entered_at) instance already decided before.

    Without failure reports every trigger instance gets exactly one decision, so any
    count above zero is a duplicated decision (the same ``trigger_id`` twice).
    """
    d = decisions
    order = np.lexsort((d.entered_at, d.subscriber, d.rule))
    same = np.ones(max(len(order) - 1, 0), bool)
    for col in (d.rule, d.subscriber, d.entered_at):
        c = col[order]
        same &= c[1:] == c[:-1]
    return int(same.sum())


def counter_mismatch_count(decisions: Decisions, stats: pd.DataFrame) -> int:
    """Sum over rules and kinds of |decisions received - the engines' own counters|.

    ``stats``: :meth:`TriggerEngine.stats` rows (one per rule, or per shard and rule).
    """
    rule_ids = list(decisions.rule_ids)
    n_kinds = len(KINDS)
    got = np.bincount(decisions.rule * n_kinds + decisions.kind,
                      minlength=len(rule_ids) * n_kinds).reshape(len(rule_ids), n_kinds)
    per_rule = stats.groupby(level="rule").sum().reindex(rule_ids).fillna(0)
    engine = per_rule[["fired", "cancelled", "expired", "suppressed"]].to_numpy(np.int64)
    return int(np.abs(got - engine).sum())


def compare_decisions(reference: Decisions, got: Decisions) -> tuple[int, int]:
    """``(missing, extra)``: rows of ``reference`` absent from ``got`` and vice versa
    (as multisets of all decision columns)."""
    a, b = _frame(reference), _frame(got)
    merged = a.value_counts().rename("ref").to_frame().join(
        b.value_counts().rename("got"), how="outer").fillna(0)
    missing = int((merged["ref"] - merged["got"]).clip(lower=0).sum())
    extra = int((merged["got"] - merged["ref"]).clip(lower=0).sum())
    return missing, extra


def same_decisions(a: Decisions, b: Decisions) -> bool:
    """Whether two decision sets are equal row for row (every decision column)."""
    return len(a) == len(b) and all(
        np.array_equal(getattr(a, c), getattr(b, c)) for c in _DECISION_COLS
    )
