"""Dynamic segments: scores and clusters as subscriber attributes, refreshed during a run.

A *scorer* is any object with ``score(features) -> DataFrame | Series``
(:class:`Scorer`): it takes a frame of
:func:`~policies.segments.history.history_features` (one row per subscriber) and returns
named columns with the same index (a Series counts as one column, its name).
:class:`~policies.segments.scores.PropensityScores` (``p_<target>`` columns) and a
fitted :class:`~policies.segments.clusters.BehaviorClusters` (via
:class:`ClusterScorer`: the ``cluster`` column) are scorers.

:func:`score_frame` runs scorers and checks what they return; :func:`changed_rows` says
which subscribers' rule segments moved (those are the rows a refresh writes to the
trigger engine); :func:`top_cutoff` and :func:`in_top` select the top ``q`` of
subscribers by a score, exactly ``ceil(q * n)`` of the ``n`` eligible ones (ties broken
by the lower subscriber id), also when the subscribers are spread over shards: each
shard hands :func:`top_cutoff` its ``(ids, scores)`` and applies the one cutoff.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from policies.checks import check_number, expected
from policies.errors import TriggerLabValueError

__all__ = ["ClusterScorer", "Cutoff", "Scorer", "changed_rows", "in_top", "n_top",
           "score_frame", "top_cutoff"]


@runtime_checkable
class Scorer(Protocol):
    """Turns history features into named score columns (same index)."""

    def score(self, features: pd.DataFrame) -> pd.DataFrame | pd.Series:
        """Score columns (float; a cluster label is a whole number) per feature row."""


@dataclass(frozen=True, eq=False)
class ClusterScorer:
    """A fitted :class:`~policies.segments.clusters.BehaviorClusters` as a scorer: one
    column ``cluster`` (whole numbers 0 .. k-1, as float64)."""

    clusters: Any

    def score(self, features: pd.DataFrame) -> pd.Series:
        if not len(features):
            return pd.Series(np.zeros(0), index=features.index, name="cluster")
        return self.clusters.predict(features).astype(np.float64)


def score_frame(scorers: Sequence[Scorer], features: pd.DataFrame,
                columns: Sequence[str]) -> pd.DataFrame:
    """The scores of every scorer side by side: float64 columns ``columns`` (in that
    order), the index of ``features``.

    Raises TriggerLabValueError when a scorer does not return a frame or Series with
    that index, or when a column of ``columns`` is produced by no scorer (or twice).
    """
    parts: list[pd.DataFrame] = []
    for i, s in enumerate(scorers):
        out = s.score(features)
        if isinstance(out, pd.Series):
            if out.name is None:
                raise TriggerLabValueError(f"scorers[{i}]: returned a Series without a name "
                                           "(the name is the column)")
            out = out.to_frame()
        if not isinstance(out, pd.DataFrame):
            raise expected(TriggerLabValueError, f"scorers[{i}]",
                           "a DataFrame or named Series of scores", out)
        if not out.index.equals(features.index):
            raise TriggerLabValueError(f"scorers[{i}]: returned rows other than the "
                                       "features' (expected the same index, in order)")
        parts.append(out)
    both = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=features.index)
    dup = both.columns[both.columns.duplicated()].tolist()
    if dup:
        raise TriggerLabValueError(f"scorers: columns {dup} produced twice")
    missing = [c for c in columns if c not in both.columns]
    if missing:
        raise TriggerLabValueError(f"scorers: no scorer produced {missing} (they produce "
                                   f"{list(both.columns)})")
    return both[list(columns)].astype(np.float64)


def changed_rows(old: list[np.ndarray], new: list[np.ndarray]) -> np.ndarray:
    """Rows whose segment outcome changed in any rule: ``old[r] != new[r]`` for some
    rule ``r`` (bool masks of equal length), bool (n,)."""
    if len(old) != len(new):
        raise TriggerLabValueError(f"masks: expected {len(old)} rules, got {len(new)}")
    if not new:
        return np.zeros(0, bool)
    out = np.zeros(len(new[0]), bool)
    for a, b in zip(old, new, strict=True):
        out |= np.asarray(a, bool) != np.asarray(b, bool)
    return out


def n_top(q: float, n: int) -> int:
    """How many of ``n`` subscribers are the top ``q``: ``ceil(q n)`` (q in (0, 1]; the
    product is rounded to 9 decimals first, so that 0.3 x 10 is 3, not 4)."""
    check_number("q", q, low=0, high=1, low_open=True, error=TriggerLabValueError)
    return min(n, math.ceil(round(q * n, 9)))


@dataclass(frozen=True)
class Cutoff:
    """The last subscriber in the top: a subscriber is in iff its score is above
    ``score``, or equal with id at most ``subscriber``; ``count`` of them in all (0: no
    one, ``score`` is +inf)."""

    score: float
    subscriber: int
    count: int


def top_cutoff(parts: Sequence[tuple[np.ndarray, np.ndarray]], q: float) -> Cutoff:
    """The :class:`Cutoff` of the top ``q`` of the subscribers in ``parts`` (pairs of
    int64 ids and float64 scores, e.g. one per shard; NaN scores are not eligible).

    Ranked by score, highest first, ties by the lower id; ``n_top(q, n)`` of the ``n``
    eligible subscribers are in.
    """
    ids = np.concatenate([np.asarray(p[0], np.int64) for p in parts]) if parts else \
        np.zeros(0, np.int64)
    sc = np.concatenate([np.asarray(p[1], np.float64) for p in parts]) if parts else \
        np.zeros(0)
    ok = ~np.isnan(sc)
    ids, sc = ids[ok], sc[ok]
    k = n_top(q, len(sc))
    if k == 0:
        return Cutoff(math.inf, -1, 0)
    order = np.lexsort((ids, -sc))
    last = order[k - 1]
    return Cutoff(float(sc[last]), int(ids[last]), k)


def in_top(ids: np.ndarray, scores: np.ndarray, cutoff: Cutoff) -> np.ndarray:
    """Whether each subscriber is in the top of ``cutoff``, bool (n,) (NaN: no)."""
    ids = np.asarray(ids, np.int64)
    sc = np.asarray(scores, np.float64)
    with np.errstate(invalid="ignore"):
        return (sc > cutoff.score) | ((sc == cutoff.score) & (ids <= cutoff.subscriber))
