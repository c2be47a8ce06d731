"""Distinct rows of a few columns in linear time (hash tables, no sort).

The response and delay models evaluate some terms once per distinct combination of a few
per-email values (category and hour, hour distance and window) and broadcast the result.
``np.unique(..., axis=0, return_inverse=True)`` does that with a sort of the rows, which
dominated a campaign tick of a million emails; :func:`distinct_rows` gives the same
grouping with ``pandas.factorize`` per column and once on the combined code.
:func:`distinct_rows_reference` is its specification.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["distinct_rows", "distinct_rows_reference", "group_order"]

#: Above this many combinations of the columns' codes the combined code is factorized
#: column by column (it stays an exact int64 below 2**62).
_MAX_COMBINED = 1 << 62


def distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The distinct rows of ``columns`` and each row's index among them.

    Parameters
    ----------
    *columns : ndarray, shape (n,)
        One or more columns of equal length (ints or floats; NaN is a value of its own).

    Returns
    -------
    inverse : ndarray of int64, shape (n,)
        ``uniques[j][inverse[i]] == columns[j][i]`` for every row ``i`` and column ``j``.
    uniques : tuple of ndarray, shape (k,) each
        The distinct rows, one array per column, in the order of their first occurrence.
    """
    if not columns:
        raise ValueError("distinct_rows: expected at least one column")
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError(f"distinct_rows: columns of unequal lengths "
                         f"{[len(c) for c in columns]}")
    code = np.zeros(n, np.int64)
    size = 1
    for col in columns:
        c, u = pd.factorize(np.asarray(col), sort=False, use_na_sentinel=False)
        if size * max(len(u), 1) >= _MAX_COMBINED:   # compress what is combined so far
            code, seen = pd.factorize(code, sort=False)
            size = max(len(seen), 1)
        code = code * max(len(u), 1) + c
        size *= max(len(u), 1)
    inverse, _ = pd.factorize(code, sort=False)
    inverse = inverse.astype(np.int64, copy=False)
    first = np.full(int(inverse.max()) + 1 if n else 0, n, np.int64)
    np.minimum.at(first, inverse, np.arange(n, dtype=np.int64))
    return inverse, tuple(np.asarray(c)[first] for c in columns)


def distinct_rows_reference(*columns: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Specification of :func:`distinct_rows`, one row at a time."""
    index: dict[tuple[object, ...], int] = {}
    inverse = np.empty(len(columns[0]), np.int64)
    firsts: list[int] = []
    for i, row in enumerate(zip(*(np.asarray(c).tolist() for c in columns), strict=True)):
        key = tuple("nan" if isinstance(v, float) and v != v else v for v in row)
        if key not in index:
            index[key] = len(firsts)
            firsts.append(i)
        inverse[i] = index[key]
    first = np.asarray(firsts, np.int64)
    return inverse, tuple(np.asarray(c)[first] for c in columns)


def group_order(inverse: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by ``inverse`` (codes in ``[0, k)``): ``order`` (int64, (n,)), the rows
    of group ``g`` in increasing order being ``order[bounds[g]:bounds[g + 1]]``, and
    ``bounds`` (int64, (k + 1,)). A stable counting sort: linear in n."""
    counts = np.bincount(inverse, minlength=k)
    bounds = np.zeros(k + 1, np.int64)
    np.cumsum(counts, out=bounds[1:])
    small = inverse.astype(np.uint16) if k <= 1 << 16 else inverse
    return np.argsort(small, kind="stable").astype(np.int64, copy=False), bounds
