"""The organic path's fast kernels equal their numpy / plain-Python references exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import _events as E
from sim._buffer import time_subscriber_order
from sim._events import T
from sim.behavior import (
    MAX_VIEWS,
    _cart_outcomes,
    _cart_outcomes_reference,
    _poisson_inverse,
    _poisson_inverse_reference,
    _session_views,
    _session_views_reference,
)
from sim.catalog import MAX_EVENT_DAYS, PRODUCTS_PER_CATEGORY, Catalog, _Index, _Spans
from sim.clock import DAY
from sim.population import Population
from sim.presets import LIFECYCLE_STAGES
from sim.state import apply_events, apply_events_reference

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


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 500), kmax=st.integers(0, 8),
       scale=st.sampled_from([0.0, 1e-300, 1e-6, 0.05, 1.0, 6.0, 50.0, 800.0]))
def test_poisson_inverse_kernel_equals_the_numpy_reference(seed: int, n: int, kmax: int,
                                                           scale: float) -> None:
    g = np.random.default_rng(seed)
    u = g.random(n)
    u[: n // 10] = np.nextafter(0.0, 1.0)  # extremes: the smallest and largest uniforms
    u[n // 10: n // 5] = np.nextafter(1.0, 0.0)
    lam = g.random(n) * scale
    got = _poisson_inverse(u, lam, kmax)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _poisson_inverse_reference(u, lam, kmax))


_POP_FIELDS = ("last_engaged", "engagement", "subscribed", "cart_value", "cart_items",
               "cart_product", "return_time", "cart_seq", "last_purchase", "n_purchases",
               "intent", "lifecycle")
_TYPES = (T.email_open, T.email_click, T.product_view, T.page_view, T.unsubscribe,
          T.cart_cleared, T.purchase_completed, T.add_to_cart, T.checkout_started)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 40), m=st.integers(0, 300))
def test_apply_events_kernel_equals_the_numpy_reference(seed: int, n: int, m: int) -> None:
    g = np.random.default_rng(seed)
    pop = Population.generate(n, seed=seed % 1000, start=7)
    pop.lifecycle[:] = g.integers(0, len(LIFECYCLE_STAGES), n)
    pop.n_purchases[:] = g.integers(0, 3, n)
    pop.engagement[:] = np.where(g.random(n) < 0.3, np.float32(1.0),
                                 g.random(n).astype(np.float32))  # extremes: at the cap
    pop.cart_seq[:] = g.integers(0, 5, n)
    sub = 7 + g.integers(0, n, m)  # repeated subscribers
    ev = E.make(sub, np.sort(g.integers(T0, T0 + 3 * DAY, m)), 0,
                machine=g.integers(-1, 2, m))
    ev["type"] = g.choice(np.array(_TYPES, np.int64), m)
    ref = Population.generate(n, seed=seed % 1000, start=7)
    for f in _POP_FIELDS:
        getattr(ref, f)[:] = getattr(pop, f)
    apply_events(pop, ev)
    apply_events_reference(ref, ev)
    for f in _POP_FIELDS:
        got, want = getattr(pop, f), getattr(ref, f)
        assert got.dtype == want.dtype, f
        np.testing.assert_array_equal(got, want, err_msg=f)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**40), m=st.integers(0, 400), day=st.integers(0, 30),
       busy=st.booleans(), cart_share=st.sampled_from([0.0, 0.5, 1.0]))
def test_session_views_kernel_equals_the_numpy_reference(seed: int, m: int, day: int,
                                                         busy: bool, cart_share: float
                                                         ) -> None:
    cat = Catalog(seed, {**BUSY} if busy else "retail")
    g = np.random.default_rng(seed)
    start = np.sort(T0 + day * DAY + g.integers(-2 * DAY, DAY, m))
    n_views = g.integers(1, MAX_VIEWS + 1, m)
    u = g.random((m, MAX_VIEWS))
    u[: m // 8] = np.nextafter(0.0, 1.0)  # extremes: the longest pages
    top = (5.0 + -np.log(u) * 40.0).round(1)
    categories = g.integers(0, len(cat) // PRODUCTS_PER_CATEGORY, m)
    base = g.integers(0, PRODUCTS_PER_CATEGORY, m)
    carts = g.random(m) < cart_share
    got = _session_views(start, n_views, top, categories, base, carts, cat)
    want = _session_views_reference(start, n_views, top, categories, base, carts, cat)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**40), c=st.integers(0, 300), day=st.integers(0, 30),
       busy=st.booleans(), p_max=st.sampled_from([0.0, 0.3, 0.95, 1.0]))
def test_cart_outcomes_kernel_equals_the_numpy_reference(seed: int, c: int, day: int,
                                                         busy: bool, p_max: float) -> None:
    cat = Catalog(seed, {**BUSY} if busy else "retail")
    g = np.random.default_rng(seed)
    t_cart = T0 + day * DAY + g.integers(-DAY, DAY, c)
    product = g.integers(0, len(cat), c)
    u = g.random((c, 20))
    u[: c // 8] = np.nextafter(1.0, 0.0)  # extremes
    u[c // 8: c // 4] = np.nextafter(0.0, 1.0)
    r = g.random((c, 4))
    r[: c // 6] = 2.0**-32  # the smallest keyed uniform: the longest delay (~4 days)
    delay = np.maximum(1800.0, -np.log(r[:, 1]) * 4.0 * 3600)
    p_buy, p_ret = g.random(c) * p_max, g.random(c) * p_max
    args = (t_cart, product, u, r, p_buy, p_ret, delay, 0.3, cat)
    got = _cart_outcomes(*args)
    want = _cart_outcomes_reference(*args)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), m=st.integers(0, 400),
       t_span=st.sampled_from([1, 5, 900, 10**6, 2**40, 2**61]),
       s_span=st.sampled_from([1, 3, 200_000, 2**31, 2**62]))
def test_time_subscriber_order_equals_lexsort(seed: int, m: int, t_span: int,
                                              s_span: int) -> None:
    g = np.random.default_rng(seed)
    time = g.integers(-(2**60), 2**60, dtype=np.int64) + g.integers(0, t_span, m)
    sub = g.integers(0, s_span, m, dtype=np.int64)  # ties when the spans are small
    got = time_subscriber_order(time, sub)
    np.testing.assert_array_equal(got, np.lexsort((sub, time)))
