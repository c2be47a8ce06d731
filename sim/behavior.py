"""Organic behavior: site sessions, carts, purchases, abandoned carts that come back.

The model (all draws keyed by subscriber, day and purpose, see :mod:`sim.rng`):

* **Session starts** are scheduled once per UTC day (:func:`schedule_day`): a
  Poisson number of sessions with rate
  ``session_rate_per_day * (0.2 + slope * engagement) * (0.5 + 1.8 * intent)``
  (x 0.3 for lapsed subscribers), at local hours spread around the preferred hour.
* **Session content** is drawn when the session starts (:func:`realize_sessions`),
  from the state at that moment: a ``page_view``, 1-6 ``product_view`` events
  (``time_on_page`` s, ``category``, ``product_id``, ``price`` from the catalog,
  :mod:`sim.catalog`), with probability ``cart_probability * intent`` an
  ``add_to_cart`` of the first viewed product in stock (``cart_value``, ``items``,
  ``product_id``), then a purchase in the same session (``checkout_started`` +
  ``purchase_completed`` with ``revenue`` and ``product_id``) or an abandoned cart.
  Without emails about 70 % of carts are never bought (docs/calibration.md, Baymard).
* An abandoned cart **comes back on its own** with probability
  ``return_probability`` (scaled by intent; not if its product is out of stock then)
  after an exponential delay, or is explicitly cleared (``cart_cleared``); both carry
  the cart's sequence number and are dropped if the cart was resolved earlier (by an
  email-driven purchase, say).
* :func:`daily_update` moves intent toward its base (with noise), discounts the hidden
  fatigue state (NPE), pulls engagement toward ``engagement_base * 2 sigmoid(NPE)``
  and applies time-driven lifecycle transitions.

Session content uses :func:`realize_sessions`; :func:`realize_sessions_reference` is
the per-session plain-Python specification it is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim import _events as E
from sim._events import T
from sim._scalar import np_round
from sim.catalog import PRODUCTS_PER_CATEGORY, Catalog, span_state
from sim.clock import DAY, HOUR
from sim.population import NEVER, Population
from sim.presets import LIFECYCLE_STAGES, Preset
from sim.rng import PURPOSES, KeyedRandom, normal_from_uniforms

__all__ = [
    "MAX_SESSIONS_PER_DAY",
    "MAX_VIEWS",
    "SessionSchedule",
    "daily_update",
    "realize_sessions",
    "realize_sessions_reference",
    "schedule_day",
    "session_rate",
    "session_rate_of",
]

MAX_SESSIONS_PER_DAY = 6
MAX_VIEWS = 6
_STAGE = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}
_N_U = 20  # uniforms per session (u[:, 9], u[:, 10], u[:, 14] unused since the catalog)
_VIEW_STRIDE = 37  # view j of a session shows product (base + 37 j) mod 1000


@dataclass
class SessionSchedule:
    """Session starts, sorted by (start, subscriber, k); arrays of shape (m,)."""

    start: np.ndarray  # int64 s
    subscriber: np.ndarray  # int64
    k: np.ndarray  # int64: session number within its day
    day: np.ndarray  # int64: UTC day number

    @classmethod
    def empty(cls) -> SessionSchedule:
        z = np.zeros(0, np.int64)
        return cls(z, z, z, z)

    def __len__(self) -> int:
        return len(self.start)

    def take(self, sel: slice | np.ndarray) -> SessionSchedule:
        return SessionSchedule(self.start[sel], self.subscriber[sel], self.k[sel], self.day[sel])

    @classmethod
    def concat(cls, parts: list[SessionSchedule]) -> SessionSchedule:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("start", "subscriber", "k", "day")))


def session_rate(pop: Population) -> np.ndarray:
    """Expected sessions per day of every subscriber, float64 (n,)."""
    return session_rate_of(pop.preset, pop.engagement, pop.intent,
                           pop.lifecycle == _STAGE["lapsed"])


def session_rate_of(p: Preset, engagement: np.ndarray, intent: np.ndarray,
                    lapsed: np.ndarray) -> np.ndarray:
    """Expected sessions per day at the given engagement, intent (in [0, 1]) and lapsed
    flag, float64 (n,): the formula of :func:`session_rate`."""
    eng = np.asarray(engagement, np.float64)
    it = np.asarray(intent, np.float64)
    rate = p.session_rate_per_day * (0.2 + p.session_engagement_slope * eng) * (0.5 + 1.8 * it)
    return np.where(lapsed, 0.3 * rate, rate)


def _poisson_inverse(u: np.ndarray, lam: np.ndarray, kmax: int) -> np.ndarray:
    """Poisson(lam) counts from uniforms by inverse CDF, truncated at kmax, int64 (n,)
    (``exp`` in numpy, the CDF walk in a numba kernel that stops at the count; the
    same arithmetic as :func:`_poisson_inverse_reference`)."""
    lam = np.asarray(lam, np.float64)
    return _poisson_walk(np.asarray(u, np.float64), lam, np.exp(-lam), kmax)


@numba.njit(cache=True, nogil=True)
def _poisson_walk(u: np.ndarray, lam: np.ndarray, p0: np.ndarray, kmax: int
                  ) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`_poisson_inverse` given ``p0 = exp(-lam)``: the CDF only grows, so a
    subscriber's walk stops at its first ``u <= cdf``."""
    count = np.zeros(len(u), np.int64)
    for i in range(len(u)):
        pk = p0[i]
        cdf = pk
        for k in range(1, kmax + 1):
            if not u[i] > cdf:
                break
            count[i] += 1
            pk = pk * lam[i] / k
            cdf = cdf + pk
    return count


def _poisson_inverse_reference(u: np.ndarray, lam: np.ndarray, kmax: int) -> np.ndarray:
    """Poisson(lam) counts from uniforms by inverse CDF, truncated at kmax (numpy)."""
    pk = np.exp(-lam)
    cdf = pk.copy()
    count = np.zeros(len(u), np.int64)
    for k in range(1, kmax + 1):
        count += u > cdf
        pk = pk * lam / k
        cdf = cdf + pk
    return count


def _clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``np.clip(x, lo, hi)`` without its wrapper's overhead (the same values)."""
    return np.minimum(np.maximum(x, lo), hi)


def schedule_day(pop: Population, rng: KeyedRandom, day: int, after: int) -> SessionSchedule:
    """Session starts of UTC day ``day`` later than ``after`` (s), for all subscribers."""
    ids = pop.ids
    u = rng.dense_uniforms(pop.start, pop.stop, day, PURPOSES["session_count"], k=1)[:, 0]
    count = _poisson_inverse(u, session_rate(pop), MAX_SESSIONS_PER_DAY)
    has = np.flatnonzero(count)
    if len(has) == 0:
        return SessionSchedule.empty()
    reps = count[has]
    rows = np.repeat(has, reps)
    first = np.cumsum(reps) - reps
    k = np.arange(len(rows), dtype=np.int64) - np.repeat(first, reps)
    sub = ids[rows]
    ut = rng.uniforms(sub, day, PURPOSES["session_time"], k=3, index=k)
    spread = pop.preset.hour_spread_hours
    local_hour = pop.preferred_hour[rows].astype(np.float64) + spread * normal_from_uniforms(
        ut[:, 0], ut[:, 1]
    )
    local_sec = np.floor(local_hour * HOUR).astype(np.int64) % DAY
    local_sec = (local_sec + np.floor(ut[:, 2] * 60).astype(np.int64)) % DAY
    utc_sec = (local_sec - pop.utc_offset_minutes[rows].astype(np.int64) * 60) % DAY
    start = day * DAY + utc_sec
    keep = start > after
    start, sub, k = start[keep], sub[keep], k[keep]
    order = np.lexsort((k, sub, start))
    return SessionSchedule(start[order], sub[order], k[order], np.full(len(order), day, np.int64))


SessionViews = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                     np.ndarray, np.ndarray]


def _session_views(start: np.ndarray, n_views: np.ndarray, top: np.ndarray,
                   cat: np.ndarray, base_product: np.ndarray, carts: np.ndarray,
                   catalog: Catalog) -> SessionViews:
    """The product views of m sessions and the product each carting one adds.

    Inputs, shape (m,) unless noted: ``start`` (int64 s), ``n_views`` (1..MAX_VIEWS),
    ``top`` (time on page of each view, s, (m, MAX_VIEWS)), ``cat`` and ``base_product``
    (int64), ``carts`` (bool: the session adds to cart if a viewed product is in stock
    then). Returns, for the views in session order, ``(session, time, product, price,
    time_on_page)`` (shape (v,)), then per session the carted product (-1: none), the
    time of the add (s) and its price there (shape (m,)). One numba pass over the
    sessions; :func:`_session_views_reference` is its numpy specification.
    """
    m = len(start)
    span = 6 * int(np.ceil(top.max())) + 21 if m else 0  # the longest session + the add
    t_lo = int(start.min()) if m else 0
    t_hi = int(start.max()) + span if m else 0
    vr, t_views, viewed, depth, sale, top_v, product, t_cart, cart_depth = _views_kernel(
        start, n_views, top, cat, base_product, carts, *catalog.spans(t_lo, t_hi))
    price = catalog.sale_price(viewed, depth, sale)
    has = np.flatnonzero(product >= 0)
    unit_price = np.zeros(m)
    unit_price[has] = catalog.sale_price(product[has], cart_depth[has],
                                         np.flatnonzero(cart_depth[has] > 0))
    return vr, t_views, viewed, price, top_v, product, t_cart, unit_price


@numba.njit(cache=True, nogil=True)
def _views_kernel(start, n_views, top, cat, base, carts,
                  offsets, sp_start, sp_end, sp_depth):  # pragma: no cover - compiled
    """:func:`_session_views` given the catalog's spans: each session's views and, for a
    carting one, its first viewed product in stock at the add."""
    m = len(start)
    nv = 0
    for i in range(m):
        nv += n_views[i]
    vr = np.empty(nv, np.int64)
    t_views = np.empty(nv, np.int64)
    viewed = np.empty(nv, np.int64)
    depth = np.empty(nv, np.float64)
    sale = np.empty(nv, np.int64)
    top_v = np.empty(nv, np.float64)
    product = np.full(m, -1, np.int64)
    t_cart = np.empty(m, np.int64)
    cart_depth = np.zeros(m, np.float64)
    v = 0
    n_sale = 0
    for i in range(m):
        off = 1  # view j at 1 + sum over earlier views of (ceil(top) + 2) s
        for j in range(n_views[i]):
            if j:
                off += int(np.ceil(top[i, j - 1])) + 2
            pj = cat[i] * PRODUCTS_PER_CATEGORY + (base[i] + _VIEW_STRIDE * j) % (
                PRODUCTS_PER_CATEGORY)
            tj = start[i] + off
            b, _ = span_state(offsets, sp_start, sp_end, sp_depth, pj, tj)
            vr[v], t_views[v], viewed[v], depth[v], top_v[v] = i, tj, pj, b, top[i, j]
            if b > 0:
                sale[n_sale] = v
                n_sale += 1
            v += 1
        tc = start[i] + off + int(np.ceil(top[i, n_views[i] - 1])) + 10
        t_cart[i] = tc
        if carts[i]:
            for j in range(n_views[i]):
                pj = cat[i] * PRODUCTS_PER_CATEGORY + (base[i] + _VIEW_STRIDE * j) % (
                    PRODUCTS_PER_CATEGORY)
                b, out = span_state(offsets, sp_start, sp_end, sp_depth, pj, tc)
                if not out:
                    product[i], cart_depth[i] = pj, b
                    break
    return vr, t_views, viewed, depth, sale[:n_sale], top_v, product, t_cart, cart_depth


def _session_views_reference(start: np.ndarray, n_views: np.ndarray, top: np.ndarray,
                             cat: np.ndarray, base_product: np.ndarray, carts: np.ndarray,
                             catalog: Catalog) -> SessionViews:
    """:func:`_session_views` in numpy, with :meth:`Catalog.state`."""
    m = len(start)
    j = np.arange(MAX_VIEWS)
    # view j happens after the page view and the j previous views
    steps = np.empty((m, MAX_VIEWS))
    steps[:, 0] = 1.0  # offsets: 1, 1 + (ceil(top_0) + 2), ... summed left to right
    steps[:, 1:] = np.ceil(top[:, :-1]) + 2.0
    view_offsets = steps.cumsum(axis=1).astype(np.int64)
    vmask = j[None, :] < n_views[:, None]
    vr, vc = np.nonzero(vmask)
    t_views = start[vr] + view_offsets[vr, vc]
    viewed = cat[vr] * PRODUCTS_PER_CATEGORY + (
        base_product[vr] + _VIEW_STRIDE * vc) % PRODUCTS_PER_CATEGORY
    last_view = start + view_offsets[np.arange(m), n_views - 1] + np.ceil(
        top[np.arange(m), n_views - 1]
    ).astype(np.int64)
    t_cart = last_view + 10
    price = catalog.state(viewed, t_views)[0]
    ci = np.flatnonzero(carts)
    products = cat[ci, None] * PRODUCTS_PER_CATEGORY + (
        base_product[ci, None] + _VIEW_STRIDE * j[None, :]) % PRODUCTS_PER_CATEGORY
    seen = vmask[ci]
    at_cart, stock = catalog.state(products[seen], np.repeat(t_cart[ci], n_views[ci]))
    product = np.full(m, -1, np.int64)
    unit_price = np.zeros(m)
    if len(ci):
        price_at = np.zeros(seen.shape)
        price_at[seen] = at_cart
        stocked = np.zeros(seen.shape, bool)
        stocked[seen] = stock
        has = np.flatnonzero(stocked.any(axis=1))
        first = np.argmax(stocked, axis=1)[has]
        product[ci[has]] = products[has, first]
        unit_price[ci[has]] = price_at[has, first]
    return vr, t_views, viewed, price, top[vr, vc], product, t_cart, unit_price


CartOutcomes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                     np.ndarray, np.ndarray]


def _cart_outcomes(t_cart: np.ndarray, product: np.ndarray, u: np.ndarray, r: np.ndarray,
                   p_buy: np.ndarray, p_ret: np.ndarray, delay: np.ndarray,
                   p_checkout: float, catalog: Catalog) -> CartOutcomes:
    """What becomes of c new carts: checkout, purchase in the session or an organic return.

    Inputs, shape (c,) unless noted: the add's time ``t_cart`` (int64 s) and ``product``,
    the session's uniforms ``u`` ((c, 20)) and return uniforms ``r`` ((c, 4)), the
    purchase and return probabilities, the return ``delay`` (float64 s) and the
    probability of a checkout without a purchase. Returns ``(t_checkout, t_purchase,
    t_abandon, t_return, checkout, buy, ret, return_price)``: int64 times, bool
    outcomes, and the price at the return's view of the carts that return (float64,
    (ret.sum(),)). One numba pass; :func:`_cart_outcomes_reference` is its numpy
    specification.
    """
    c = len(t_cart)
    t_lo = int(t_cart.min()) if c else 0
    t_hi = int(t_cart.max()) + 480 + int(delay.max()) if c else 0  # >= every query
    t_checkout, t_purchase, t_ab, t_ret, checkout, buy, ret, depth = _cart_kernel(
        t_cart, product, u, r, p_buy, p_ret, delay, p_checkout,
        *catalog.spans(t_lo, t_hi))
    depth = depth[ret]
    price = catalog.sale_price(product[ret], depth, np.flatnonzero(depth > 0))
    return t_checkout, t_purchase, t_ab, t_ret, checkout, buy, ret, price


@numba.njit(cache=True, nogil=True)
def _cart_kernel(t_cart, product, u, r, p_buy, p_ret, delay,
                 p_checkout, offsets, sp_start, sp_end, sp_depth):  # pragma: no cover
    """:func:`_cart_outcomes` given the catalog's spans; ``depth``: the sale depth at a
    returning cart's view (0 elsewhere)."""
    c = len(t_cart)
    t_checkout = np.empty(c, np.int64)
    t_purchase = np.empty(c, np.int64)
    t_ab = np.empty(c, np.int64)
    t_ret = np.empty(c, np.int64)
    checkout = np.empty(c, np.bool_)
    buy = np.empty(c, np.bool_)
    ret = np.zeros(c, np.bool_)
    depth = np.zeros(c, np.float64)
    for i in range(c):
        tc = t_cart[i] + 60 + int(np.floor(u[i, 16] * 120))
        tp = tc + 120 + int(np.floor(u[i, 17] * 180))
        wants = u[i, 15] < p_buy[i]
        co = wants or u[i, 18] < p_checkout
        ta = tc if co else t_cart[i]
        tr = ta + int(delay[i])
        _, gone = span_state(offsets, sp_start, sp_end, sp_depth, product[i], tp)
        b = wants and not gone
        if not b and r[i, 0] < p_ret[i]:
            _, gone = span_state(offsets, sp_start, sp_end, sp_depth, product[i], tr)
            if not gone:
                ret[i] = True
                depth[i], _ = span_state(offsets, sp_start, sp_end, sp_depth, product[i],
                                         tr - 240)
        t_checkout[i], t_purchase[i], t_ab[i], t_ret[i] = tc, tp, ta, tr
        checkout[i], buy[i] = co, b
    return t_checkout, t_purchase, t_ab, t_ret, checkout, buy, ret, depth


def _cart_outcomes_reference(t_cart: np.ndarray, product: np.ndarray, u: np.ndarray,
                             r: np.ndarray, p_buy: np.ndarray, p_ret: np.ndarray,
                             delay: np.ndarray, p_checkout: float, catalog: Catalog
                             ) -> CartOutcomes:
    """:func:`_cart_outcomes` in numpy, with :meth:`Catalog.state`."""
    t_checkout = t_cart + 60 + np.floor(u[:, 16] * 120).astype(np.int64)
    t_purchase = t_checkout + 120 + np.floor(u[:, 17] * 180).astype(np.int64)
    wants = u[:, 15] < p_buy
    checkout = wants | (u[:, 18] < p_checkout)
    t_ab = np.where(checkout, t_checkout, t_cart)
    t_ret = t_ab + delay.astype(np.int64)
    # the product at the purchase, at the organic return and at its view (one query)
    nc = len(t_cart)
    later_price, later_stock = catalog.state(
        np.concatenate((product, product, product)),
        np.concatenate([t_purchase, t_ret, t_ret - 240]))
    buy = wants & later_stock[:nc]
    ret = ~buy & (r[:, 0] < p_ret) & later_stock[nc : 2 * nc]
    return t_checkout, t_purchase, t_ab, t_ret, checkout, buy, ret, later_price[2 * nc:][ret]


def _session_draws(pop: Population, rng: KeyedRandom, s: SessionSchedule) -> np.ndarray:
    return rng.uniforms(s.subscriber, s.day, PURPOSES["session"], k=_N_U, index=s.k)


def _return_draws(pop: Population, rng: KeyedRandom, s: SessionSchedule) -> np.ndarray:
    return rng.uniforms(s.subscriber, s.day, PURPOSES["return"], k=4, index=s.k)


def realize_sessions(
    pop: Population, rng: KeyedRandom, s: SessionSchedule, catalog: Catalog
) -> E.Events:
    """Draw the content of sessions ``s`` from the current state and update the cart.

    Views carry the ``catalog`` price of their product at the view; the cart gets the
    first viewed product in stock (none in stock: no cart) at its price times the items
    added; a purchase (in the session or on an organic return) happens only if the
    product is in stock then, and names it. Returns the session's events (times >= each
    session's start; some may lie after the current tick and are buffered by the
    caller). Updates ``cart_*``, ``return_time`` and ``last_engaged`` of the subscribers
    in place.
    """
    m = len(s)
    if m == 0:
        return E.empty()
    p = pop.preset
    row = s.subscriber - pop.start
    u = _session_draws(pop, rng, s)
    ur = _return_draws(pop, rng, s)
    eng = pop.engagement[row].astype(np.float64)
    intent = pop.intent[row].astype(np.float64)
    n_views = 1 + np.minimum(
        np.floor(-np.log(u[:, 0]) * p.views_mean_extra * (0.5 + eng)), MAX_VIEWS - 1
    ).astype(np.int64)
    top = 5.0 + (-np.log(u[:, 1 : 1 + MAX_VIEWS])) * (p.time_on_page_mean_s - 5.0)
    top = top.round(1)
    cat = np.where(
        u[:, 7] < 0.6,
        pop.top_category[row],
        np.where(u[:, 7] < 0.85, pop.second_category[row],
                 np.floor((u[:, 7] - 0.85) / 0.15 * p.n_categories).astype(np.int64)),
    ).astype(np.int64)
    cat = np.minimum(cat, p.n_categories - 1)
    base_product = np.floor(u[:, 8] * PRODUCTS_PER_CATEGORY).astype(np.int64)
    carts = u[:, 12] < p.cart_probability * intent
    vr, t_views, viewed, price, top_v, product, t_cart, unit_price = _session_views(
        s.start, n_views, top, cat, base_product, carts, catalog)
    parts = [
        E.part(s.subscriber, s.start, T.page_view, category=cat,
               time_on_page=(3.0 + 10.0 * u[:, 11]).round(1)),
        E.part(
            s.subscriber[vr], t_views, T.product_view, category=cat[vr],
            product_id=viewed, price=price, time_on_page=top_v,
        ),
    ]
    ci = np.flatnonzero(product >= 0)
    product, t_cart, unit_price = product[ci], t_cart[ci], unit_price[ci]
    if len(ci):
        items = 1 + np.floor(u[ci, 13] * 3).astype(np.int64)
        added = (unit_price * items).round(2)
        crow = row[ci]
        prev_value = pop.cart_value[crow].astype(np.float64)
        prev_items = pop.cart_items[crow].astype(np.int64)
        value = (prev_value + added).round(2)
        n_items = np.minimum(prev_items + items, 100)
        sub_c = s.subscriber[ci]
        seq = pop.cart_seq[crow].astype(np.int64) + 1  # the new (or grown) cart
        parts.append(E.part(sub_c, t_cart, T.add_to_cart, cart_value=value,
                            items=n_items.astype(np.float64), category=cat[ci],
                            product_id=product))
        p_buy = _clip(p.session_purchase_probability * (0.6 + 1.4 * intent[ci]), 0.0, 0.95)
        p_ret = _clip(p.return_probability * (0.4 + 2.2 * intent[ci]), 0.0, 1.0)
        r = ur[ci]
        delay = np.maximum(1800.0, -np.log(r[:, 1]) * p.return_delay_mean_hours * HOUR)
        t_checkout, t_purchase, t_ab, t_ret, checkout, buy, ret, ret_price = _cart_outcomes(
            t_cart, product, u[ci], r, p_buy, p_ret, delay, p.checkout_start_probability,
            catalog)
        parts.append(E.part(sub_c[checkout], t_checkout[checkout], T.checkout_started,
                            cart_value=value[checkout]))
        parts.append(E.part(sub_c[buy], t_purchase[buy], T.purchase_completed,
                            revenue=value[buy], cart_value=value[buy], product_id=product[buy],
                            items=n_items[buy].astype(np.float64), token=seq[buy]))
        # abandoned carts: come back on their own (if the product is in stock), get
        # cleared, or stay
        ab = ~buy
        parts.append(E.part(sub_c[ret], t_ret[ret] - 240, T.product_view,
                            category=cat[ci][ret], price=ret_price,
                            product_id=product[ret],
                            time_on_page=45.0))
        parts.append(E.part(sub_c[ret], t_ret[ret] - 120, T.checkout_started,
                            cart_value=value[ret]))
        parts.append(E.part(sub_c[ret], t_ret[ret], T.purchase_completed,
                            revenue=value[ret], cart_value=value[ret], product_id=product[ret],
                            items=n_items[ret].astype(np.float64), token=seq[ret]))
        clear = ab & ~ret & (r[:, 2] < p.cart_clear_probability)
        t_clear = t_ab + np.maximum(3600.0, -np.log(r[:, 3]) * 2 * DAY).astype(np.int64)
        parts.append(E.part(sub_c[clear], t_clear[clear], T.cart_cleared,
                            cart_value=value[clear], token=seq[clear]))
        # state: the cart as it stands after the session (purchases clear it on emission)
        pop.cart_value[crow] = value
        pop.cart_items[crow] = np.minimum(n_items, 127)
        pop.cart_time[crow] = np.where(buy, t_cart, t_ab)
        pop.cart_seq[crow] = seq
        pop.cart_product[crow] = product
        pop.return_time[crow] = np.where(ret, t_ret, 0)
    pop.last_engaged[row] = np.maximum(pop.last_engaged[row], s.start)
    return E.build(parts)


def realize_sessions_reference(
    pop: Population, rng: KeyedRandom, s: SessionSchedule, catalog: Catalog
) -> list[dict[str, float | int]]:
    """Plain-Python specification of :func:`realize_sessions`, one session at a time.

    Returns event records (dicts with the internal columns) and updates ``pop`` like the
    fast path. Sessions are assumed to belong to distinct subscribers.
    """
    import math

    def price(product: int, t: int) -> float:
        return float(catalog.price(np.array([product]), t)[0])

    def in_stock(product: int, t: int) -> bool:
        return bool(catalog.in_stock(np.array([product]), t)[0])

    p = pop.preset
    n_products = PRODUCTS_PER_CATEGORY
    U = _session_draws(pop, rng, s)
    UR = _return_draws(pop, rng, s)
    out: list[dict[str, float | int]] = []
    for i in range(len(s)):
        sub, t0, u, r = int(s.subscriber[i]), int(s.start[i]), U[i], UR[i]
        row = sub - pop.start
        eng, intent = float(pop.engagement[row]), float(pop.intent[row])
        n_views = 1 + int(min(math.floor(-np.log(u[0]) * p.views_mean_extra * (0.5 + eng)),
                              MAX_VIEWS - 1))
        top = [np_round(5.0 + (-np.log(u[1 + j])) * (p.time_on_page_mean_s - 5.0), 1)
               for j in range(MAX_VIEWS)]
        if u[7] < 0.6:
            cat = int(pop.top_category[row])
        elif u[7] < 0.85:
            cat = int(pop.second_category[row])
        else:
            cat = min(math.floor((u[7] - 0.85) / 0.15 * p.n_categories), p.n_categories - 1)
        base = math.floor(u[8] * n_products)
        out.append({"subscriber": sub, "time": t0, "type": T.page_view, "category": cat,
                    "time_on_page": np_round(3.0 + 10.0 * u[11], 1)})
        offset = 1
        viewed = []
        for j in range(n_views):
            if j:
                offset += math.ceil(top[j - 1]) + 2
            product = cat * n_products + (base + _VIEW_STRIDE * j) % n_products
            viewed.append(product)
            out.append({"subscriber": sub, "time": t0 + offset, "type": T.product_view,
                        "category": cat, "product_id": product,
                        "price": price(product, t0 + offset), "time_on_page": top[j]})
        last_view = t0 + offset + math.ceil(top[n_views - 1])
        t_cart = last_view + 10
        carted = [v for v in viewed if in_stock(v, t_cart)]
        if u[12] < p.cart_probability * intent and carted:
            product = carted[0]
            items = 1 + math.floor(u[13] * 3)
            added = np_round(price(product, t_cart) * items, 2)
            value = np_round(float(pop.cart_value[row]) + added, 2)
            n_items = min(int(pop.cart_items[row]) + items, 100)
            seq = int(pop.cart_seq[row]) + 1
            out.append({"subscriber": sub, "time": t_cart, "type": T.add_to_cart,
                        "cart_value": value, "items": float(n_items), "category": cat,
                        "product_id": product})
            wants = u[15] < min(max(p.session_purchase_probability * (0.6 + 1.4 * intent),
                                    0.0), 0.95)
            t_checkout = t_cart + 60 + math.floor(u[16] * 120)
            t_purchase = t_checkout + 120 + math.floor(u[17] * 180)
            buy = wants and in_stock(product, t_purchase)
            checkout = wants or u[18] < p.checkout_start_probability
            if checkout:
                out.append({"subscriber": sub, "time": t_checkout,
                            "type": T.checkout_started, "cart_value": value})
            t_ret = 0
            if buy:
                out.append({"subscriber": sub, "time": t_purchase,
                            "type": T.purchase_completed, "revenue": value,
                            "cart_value": value, "items": float(n_items), "token": seq,
                            "product_id": product})
            else:
                t_ab = t_checkout if checkout else t_cart
                p_ret = min(max(p.return_probability * (0.4 + 2.2 * intent), 0.0), 1.0)
                delay = max(1800.0, -np.log(r[1]) * p.return_delay_mean_hours * HOUR)
                if r[0] < p_ret and in_stock(product, t_ab + int(delay)):
                    t_ret = t_ab + int(delay)
                    out.append({"subscriber": sub, "time": t_ret - 240,
                                "type": T.product_view, "category": cat,
                                "price": price(product, t_ret - 240),
                                "product_id": product, "time_on_page": 45.0})
                    out.append({"subscriber": sub, "time": t_ret - 120,
                                "type": T.checkout_started, "cart_value": value})
                    out.append({"subscriber": sub, "time": t_ret,
                                "type": T.purchase_completed, "revenue": value,
                                "cart_value": value, "items": float(n_items), "token": seq,
                                "product_id": product})
                elif r[2] < p.cart_clear_probability:
                    t_clear = t_ab + int(max(3600.0, -np.log(r[3]) * 2 * DAY))
                    out.append({"subscriber": sub, "time": t_clear, "type": T.cart_cleared,
                                "cart_value": value, "token": seq})
            pop.cart_value[row] = value
            pop.cart_items[row] = min(n_items, 127)
            pop.cart_time[row] = t_cart if buy else t_ab
            pop.cart_seq[row] = seq
            pop.cart_product[row] = product
            pop.return_time[row] = t_ret
        pop.last_engaged[row] = max(int(pop.last_engaged[row]), t0)
    return out


def daily_update(pop: Population, rng: KeyedRandom, day: int) -> None:
    """Start-of-day state update for UTC day ``day`` (in place).

    Intent reverts to its base with uniform noise; NPE is discounted; engagement moves
    toward ``engagement_base * 2 sigmoid(sensitivity * NPE)``; new subscribers become
    prospects after ``new_subscriber_days``; customers lapse after
    ``lapse_after_days`` without a purchase; new customers become customers after 30
    days.
    """
    p = pop.preset
    now = day * DAY
    u = rng.dense_uniforms(pop.start, pop.stop, day, PURPOSES["daily"], k=1)[:, 0]
    intent = pop.intent + np.float32(p.intent_reversion_per_day) * (pop.intent_base - pop.intent)
    intent += np.float32(p.intent_noise_per_day) * (2.0 * u - 1.0).astype(np.float32)
    np.clip(intent, 0.0, 1.0, out=pop.intent)
    pop.npe *= np.float32(p.npe_discount_per_day)
    sat = 1.0 / (1.0 + np.exp(-p.satisfaction_sensitivity * pop.npe))
    target = np.minimum(pop.engagement_base * (2.0 * sat), 1.0)
    pop.engagement += np.float32(p.engagement_drift_per_day) * (target - pop.engagement)
    np.clip(pop.engagement, 0.0, 1.0, out=pop.engagement)
    lc = pop.lifecycle
    since_purchase = np.where(pop.last_purchase == NEVER, np.inf,
                              (now - pop.last_purchase) / DAY)
    new_to_prospect = (lc == _STAGE["new_subscriber"]) & (
        now - pop.signup_time > p.new_subscriber_days * DAY
    )
    lc[new_to_prospect] = _STAGE["prospect"]
    grown = (lc == _STAGE["new_customer"]) & (since_purchase > 30)
    lc[grown] = _STAGE["customer"]
    lapse = ((lc == _STAGE["customer"]) | (lc == _STAGE["new_customer"])) & (
        since_purchase > p.lapse_after_days
    )
    lc[lapse] = _STAGE["lapsed"]


def expected_daily_update(p: Preset, eng: np.ndarray, intent: np.ndarray, npe: np.ndarray,
                          base_eng: np.ndarray, base_intent: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`daily_update` of engagement, intent and NPE without its zero-mean intent
    noise, in float64 (the deterministic path the truth modules follow day by day).

    Returns new ``(eng, intent, npe)`` arrays, shape (n,) each.
    """
    intent = np.clip(intent + p.intent_reversion_per_day * (base_intent - intent), 0.0, 1.0)
    npe = npe * p.npe_discount_per_day
    sat = 1.0 / (1.0 + np.exp(-p.satisfaction_sensitivity * npe))
    target = np.minimum(base_eng * (2.0 * sat), 1.0)
    eng = np.clip(eng + p.engagement_drift_per_day * (target - eng), 0.0, 1.0)
    return eng, intent, npe
