"""The due sweep's chunked scan finds exactly the rows a plain comparison does."""

from __future__ import annotations

import numba
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from policies.triggers._fast import _SWEEP_CHUNK, FAR, NONE, next_due_row


@numba.njit(cache=True)
def _walk(next_due, start, until):  # pragma: no cover - compiled
    """Every row :func:`next_due_row` visits from ``start`` on, as the sweeps walk."""
    out = np.empty(next_due.shape[0], np.int64)
    k = 0
    s = next_due_row(next_due, start, until)
    while s < next_due.shape[0]:
        out[k] = s
        k += 1
        s = next_due_row(next_due, s + 1, until)
    return out[:k]


_TIMES = st.one_of(st.integers(-10, 10), st.sampled_from([NONE, FAR, 0, 2**63 - 1]),
                   st.integers(-2**63, 2**63 - 1))


@given(times=st.lists(_TIMES, max_size=4 * _SWEEP_CHUNK + 3), until=_TIMES,
       start=st.integers(0, 4 * _SWEEP_CHUNK + 10), due_share=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_next_due_row_agrees_with_a_comparison(times: list[int], until: int, start: int,
                                               due_share: float, seed: int) -> None:
    next_due = np.array(times, np.int64)
    # sparse and dense due rows alike: some rows set to exactly ``until``
    rng = np.random.default_rng(seed)
    next_due[rng.random(len(next_due)) < due_share * due_share] = until
    want = np.flatnonzero(next_due <= until)
    want = want[want >= start]
    assert next_due_row(next_due, start, np.int64(until)) == (
        want[0] if len(want) else len(next_due))
    assert np.array_equal(_walk(next_due, np.int64(start), np.int64(until)), want)


def test_next_due_row_at_chunk_edges() -> None:
    n = 3 * _SWEEP_CHUNK + 1
    for row in (0, _SWEEP_CHUNK - 1, _SWEEP_CHUNK, 2 * _SWEEP_CHUNK, n - 1):
        next_due = np.full(n, FAR, np.int64)
        next_due[row] = 5
        for start in (0, row, row + 1):
            want = row if start <= row else n
            assert next_due_row(next_due, start, np.int64(5)) == want
            assert next_due_row(next_due, start, np.int64(4)) == n
    assert next_due_row(np.zeros(0, np.int64), 0, np.int64(0)) == 0
