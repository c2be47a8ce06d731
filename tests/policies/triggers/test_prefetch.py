"""The prefetch hint compiles for the arrays the kernels use and changes nothing."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.triggers._prefetch import prefetch


@numba.njit(cache=True)
def _gather(arr, rows, ahead):  # pragma: no cover - compiled
    """Sum of ``arr[rows]`` (first element of each row), asking ``ahead`` rows on."""
    total = arr.ravel()[0] * 0
    n = rows.shape[0]
    for i in range(n):
        if ahead and i + ahead < n:
            prefetch(arr, rows[i + ahead])
        total += arr[rows[i]].ravel()[0] if arr.ndim > 1 else arr[rows[i]]
    return total


@given(n=st.integers(1, 300), k=st.integers(0, 400), ahead=st.integers(0, 40),
       dtype=st.sampled_from([np.int32, np.int64, np.float64]),
       ndim=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_prefetch_changes_no_result(n: int, k: int, ahead: int, dtype: type, ndim: int,
                                    seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (n,) + (2,) * (ndim - 1)
    arr = rng.integers(0, 1000, shape).astype(dtype)
    rows = rng.integers(0, n, k).astype(np.int64)
    want = sum((arr[r].ravel()[0] for r in rows.tolist()), dtype(0))
    assert _gather(arr, rows, ahead) == want


def test_prefetch_at_extreme_rows_and_empty_views() -> None:
    arr = np.arange(10, dtype=np.int64)
    rows = np.array([0, 9, 9, 0], np.int64)
    assert _gather(arr, rows, 1) == 18
    assert _gather(arr, rows, 0) == 18


def test_prefetch_is_compiled_code_only() -> None:
    with pytest.raises(NotImplementedError, match="not usable in pure-python"):
        prefetch(np.zeros(3), 0)
