"""The fast engine's vectorized inactivity clock start equals its cell-by-cell rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.triggers._fast_journeys import _attr_time, _attr_times

_INTS = st.integers(-(2**63), 2**63 - 1)
_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=64),
                    st.sampled_from([2.0**62, -(2.0**62), 1.7e9 + 0.5, -0.5, 0.0]))


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.lists(_INTS, max_size=20).map(lambda v: pd.Series(v, dtype=np.int64)),
    st.lists(st.integers(0, 2**64 - 1), max_size=20).map(
        lambda v: pd.Series(np.array(v, dtype=np.uint64))),
    st.lists(_FLOATS, max_size=20).map(lambda v: pd.Series(v, dtype=np.float64)),
    st.lists(st.one_of(_FLOATS, st.just(float("inf")), st.none(), st.booleans(),
                       st.text(max_size=3)), max_size=10).map(
        lambda v: pd.Series(v, dtype=object)),
))
def test_vectorized_clock_start_equals_the_cell_rule(column: pd.Series) -> None:
    try:
        want = [_attr_time(v) for v in column.tolist()]
    except OverflowError:   # an infinite cell: the cell rule raises, so must the column's
        import pytest

        with pytest.raises(OverflowError):
            _attr_times(column)
        return
    np.testing.assert_array_equal(_attr_times(column), np.array(want, np.int64))
