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

#: The columns that identify a decision (compared row for row); journeys add
#: :data:`_JOURNEY_COLS`.
_DECISION_COLS = ("subscriber", "rule", "kind", "time", "entered_at", "attempt")
_JOURNEY_COLS = ("step", "path", "propensity")


def _columns(d: Decisions) -> tuple[str, ...]:
    return _DECISION_COLS + (_JOURNEY_COLS if d.journeys else ())


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
    return pd.DataFrame({c: getattr(d, c) for c in _columns(d)})


def duplicate_instances(decisions: Decisions) -> int:
    """Rows deciding a trigger instance -- (rule, subscriber, entered_at), and the node
    for a journey step -- already decided before.

    Without failure reports every trigger instance of a plain rule gets exactly one
    decision, and every node a journey instance reaches exactly one (a send fires, is
    skipped, suppressed or expires; a wait-until, branch or split takes a path; an exit
    ends the journey where it is), so any count above zero is a duplicated decision (the
    same ``trigger_id`` twice).
    """
    d = decisions
    step = d.step if d.journeys else np.full(len(d), -1, np.int64)
    order = np.lexsort((step, d.entered_at, d.subscriber, d.rule))
    same = np.ones(max(len(order) - 1, 0), bool)
    for col in (d.rule, d.subscriber, d.entered_at, step):
        c = col[order]
        same &= c[1:] == c[:-1]
    return int(same.sum())


def counter_mismatch_count(decisions: Decisions, stats: pd.DataFrame) -> int:
    """Sum over rules and kinds of |decisions received - the engines' own counters|.

    ``stats``: :meth:`TriggerEngine.stats` rows (one per rule, or per shard and rule).
    The counters cover the plain kinds (journeys' exit, skip, branch and split rows are
    not counted in ``stats``).
    """
    rule_ids = list(decisions.rule_ids)
    n_kinds = len(KINDS)
    decisions = decisions[decisions.kind < n_kinds]
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
    return len(a) == len(b) and a.journeys == b.journeys and all(
        np.array_equal(getattr(a, c), getattr(b, c)) for c in _columns(a)
    )
