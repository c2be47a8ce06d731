"""distinct_rows and group_order against their one-row-at-a-time specification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sim import _grouping
from sim._grouping import distinct_rows, distinct_rows_reference, group_order

_floats = st.sampled_from([0.0, -0.0, 0.5, 12.0, np.inf, -np.inf, np.nan, 1e300])


@st.composite
def _columns(draw: st.DrawFn) -> list[np.ndarray]:
    n = draw(st.integers(0, 60))
    k = draw(st.integers(1, 4))
    cols = []
    for _ in range(k):
        if draw(st.booleans()):
            cols.append(np.array(draw(st.lists(st.sampled_from(
                [0, 1, -1, 7, 2**62, -(2**63), 2**63 - 1]), min_size=n, max_size=n)),
                np.int64))
        else:
            cols.append(np.array(draw(st.lists(_floats, min_size=n, max_size=n)), np.float64))
    return cols


def _same_grouping(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two code vectors group the rows identically (first-seen order)."""
    return bool(np.array_equal(a, b))


@settings(max_examples=300, deadline=None)
@given(_columns())
def test_distinct_rows_matches_the_reference(cols: list[np.ndarray]) -> None:
    inv, uniq = distinct_rows(*cols)
    ref_inv, ref_uniq = distinct_rows_reference(*cols)
    # -0.0 and 0.0 may be told apart by one and not the other: compare on the values
    for c, u in zip(cols, uniq, strict=True):
        np.testing.assert_array_equal(u[inv], c)     # each row maps to its own values
    assert len(set(inv.tolist())) == len(uniq[0])    # every distinct row used
    fold = [np.where(c == 0, 0.0, c) if c.dtype.kind == "f" else c for c in cols]
    assert _same_grouping(distinct_rows(*fold)[0], distinct_rows_reference(*fold)[0])
    assert len(ref_uniq[0]) == len(set(ref_inv.tolist()))


def test_distinct_rows_large_codes_compress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Combined codes that would overflow are compressed first, with the same grouping."""
    rng = np.random.default_rng(3)
    cols = [rng.integers(0, 50, 2000) for _ in range(3)]
    want = distinct_rows_reference(*cols)[0]
    monkeypatch.setattr(_grouping, "_MAX_COMBINED", 60)
    np.testing.assert_array_equal(distinct_rows(*cols)[0], want)


def test_distinct_rows_refuses_bad_columns() -> None:
    with pytest.raises(ValueError, match="at least one column"):
        distinct_rows()
    with pytest.raises(ValueError, match="unequal lengths"):
        distinct_rows(np.zeros(3), np.zeros(2))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 80), elements=st.integers(0, 5)))
def test_group_order_is_a_stable_grouping(inv: np.ndarray) -> None:
    k = int(inv.max()) + 1 if len(inv) else 0
    order, bounds = group_order(inv, k)
    assert sorted(order.tolist()) == list(range(len(inv)))
    for g in range(k):
        rows = order[bounds[g]:bounds[g + 1]]
        assert rows.tolist() == np.flatnonzero(inv == g).tolist()
