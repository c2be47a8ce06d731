"""The organic path's fast kernels equal their numpy / plain-Python references exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.catalog import MAX_EVENT_DAYS, Catalog, _Index, _Spans
from sim.clock import DAY

T0 = 1_704_067_200
BUSY = {"stockout_rate_per_day": 0.3, "price_drop_rate_per_day": 0.3}


@st.composite
def _spans_and_queries(draw: st.DrawFn) -> tuple[_Index, np.ndarray, np.ndarray]:
    n_products = draw(st.integers(1, 12))
    k = draw(st.integers(0, 40))
    g = np.random.default_rng(draw(st.integers(0, 2**32)))
    product = g.integers(0, n_products, k)
    start = g.integers(0, 50, k)
    end = start + g.integers(0, 20, k)
    depth = np.where(g.random(k) < 0.4, -1.0,
                     np.where(g.random(k) < 0.2, 0.0, g.random(k)))
    idx = _Index.build(_Spans(product, start, end, depth), n_products)
    m = draw(st.integers(0, 60))
    qp = g.integers(0, n_products, m)
    # times on span boundaries too (start inclusive, end exclusive)
    edges = np.concatenate([start, end, end - 1, [-1, 0, 80]])
    qt = np.where(g.random(m) < 0.5, g.integers(-5, 80, m), g.choice(edges, m))
    return idx, qp.astype(np.int64), qt.astype(np.int64)


@settings(max_examples=200, deadline=None)
@given(case=_spans_and_queries())
def test_span_lookup_kernel_equals_the_numpy_reference(case) -> None:
    idx, product, t = case
    depth, out, sale = idx.lookup(product, t)
    some, best, gone = idx.state_reference(product, t)
    want_depth = np.zeros(len(product))
    want_out = np.zeros(len(product), bool)
    want_depth[some] = best
    want_out[some] = gone
    assert depth.dtype == np.float64 and out.dtype == bool
    np.testing.assert_array_equal(depth, want_depth)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(sale, np.flatnonzero(want_depth > 0))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**40), m=st.integers(0, 3000), day=st.integers(0, 40),
       busy=st.booleans())
def test_catalog_state_equals_its_reference(seed: int, m: int, day: int, busy: bool) -> None:
    cat = Catalog(seed, {**BUSY} if busy else "retail")
    g = np.random.default_rng(seed)
    product = g.integers(0, len(cat), m)
    t = T0 + day * DAY + g.integers(-MAX_EVENT_DAYS * DAY, 3 * DAY, m)
    price, stock = cat.state(product, t)
    ref_price, ref_stock = cat.state_reference(product, t)
    np.testing.assert_array_equal(price, ref_price)
    np.testing.assert_array_equal(stock, ref_stock)
    if m:  # a scalar time
        np.testing.assert_array_equal(cat.state(product, int(t[0]))[0],
                                      cat.state_reference(product, int(t[0]))[0])
