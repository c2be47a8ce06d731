"""The internal event columns: :func:`sim._events.build` equals concatenated ``make``s."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import _events as E

_DATA = [c for c in E.COLUMNS if c not in ("subscriber", "time", "type")]
_I64 = st.one_of(st.sampled_from([0, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1))
_F64 = st.one_of(st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e308, 5e-324]),
                 st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def _part(draw: st.DrawFn) -> E.Part:
    n = draw(st.integers(0, 6))
    sub = np.array(draw(st.lists(_I64, min_size=n, max_size=n)), np.int64)
    time = np.array(draw(st.lists(_I64, min_size=n, max_size=n)), np.int64)
    cols = {}
    for name in draw(st.lists(st.sampled_from(_DATA), unique=True)):
        dtype = E.COLUMNS[name][0]
        values = _I64 if dtype is np.int64 else _F64
        kind = draw(st.sampled_from(["array", "scalar", "none", "bool"]))
        if kind == "array":
            cols[name] = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype)
        elif kind == "bool":
            cols[name] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
        elif kind == "scalar":
            cols[name] = draw(values)
        else:
            cols[name] = None
    return E.part(sub, time, draw(st.integers(0, 20)), **cols)


def _same(a: E.Events, b: E.Events) -> None:
    assert list(a) == list(b) == list(E.COLUMNS)
    for name in E.COLUMNS:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name  # NaN payloads, -0.0 included


@settings(max_examples=300, deadline=None)
@given(st.lists(_part(), max_size=8))
def test_build_equals_concatenated_makes(parts) -> None:
    ref = E.build_reference(parts)
    _same(E.build(parts), ref)


def test_build_of_nothing_is_empty() -> None:
    _same(E.build([]), E.empty())
    z = np.zeros(0, np.int64)
    _same(E.build([E.part(z, z, 3, price=1.0)]), E.empty())
