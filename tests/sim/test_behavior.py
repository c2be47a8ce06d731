"""Organic behavior: fast session realization == reference; the no-email funnel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from sim import _events as E
from sim.behavior import (
    daily_update,
    realize_sessions,
    realize_sessions_reference,
    schedule_day,
    session_rate,
)
from sim.catalog import Catalog
from sim.clock import DAY, SimClock
from sim.population import Population
from sim.rng import KeyedRandom
from sim.world import World

CODE = {n: EVENT_TYPES.code(n) for n in EVENT_TYPES.names}


def _records_key(rec: dict) -> tuple:
    return (rec["subscriber"], rec["time"], rec["type"])


#: a catalog where a third of the products run out and go on sale every day, so that
#: the in-stock and sale branches of the session model are exercised
BUSY_CATALOG = {"stockout_rate_per_day": 0.35, "price_drop_rate_per_day": 0.35}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**40), day=st.integers(19_000, 19_500),
       carts=st.integers(0, 2**31 - 1), busy=st.booleans())
def test_fast_session_realization_equals_reference(seed: int, day: int, carts: int,
                                                   busy: bool) -> None:
    pop = Population.generate(400, seed=seed, time=day * DAY,
                              preset=BUSY_CATALOG if busy else "retail")
    pop.intent[:] = np.clip(pop.intent * 2.5, 0, 1)  # more carts to compare
    g = np.random.default_rng(carts)
    has = g.random(len(pop)) < 0.3
    pop.cart_value[has] = np.round(g.uniform(10, 200, has.sum()), 2).astype(np.float32)
    pop.cart_items[has] = 2
    pop.cart_seq[:] = g.integers(0, 5, len(pop))
    rng = KeyedRandom(seed)
    sched = schedule_day(pop, rng, day, after=day * DAY - 1)
    _, first = np.unique(sched.subscriber, return_index=True)
    sched = sched.take(np.sort(first))  # one session per subscriber
    a, b = pop.copy(), pop.copy()
    catalog = Catalog(seed, pop.preset)
    fast = realize_sessions(a, rng, sched, catalog)
    ref = realize_sessions_reference(b, rng, sched, catalog)
    assert a.equals(b)
    assert E.size(fast) == len(ref)
    order = np.lexsort((fast["type"], fast["time"], fast["subscriber"]))
    ref = sorted(ref, key=_records_key)
    for i, rec in zip(order, ref, strict=True):
        for col, value in rec.items():
            got = fast[col][i]
            assert got == pytest.approx(value, rel=1e-12), (col, got, value)
        for col in E.COLUMNS:
            if col not in rec:
                missing = E.COLUMNS[col][1]
                got = fast[col][i]
                assert (np.isnan(got) and np.isnan(missing)) or got == missing, col


def test_sessions_start_after_and_on_their_day() -> None:
    pop = Population.generate(5000, seed=3)
    rng = KeyedRandom(3)
    day = pop.time // DAY + 1
    s = schedule_day(pop, rng, day, after=day * DAY + 6 * 3600)
    assert (s.start > day * DAY + 6 * 3600).all() and (s.start < (day + 1) * DAY).all()
    assert np.all(np.diff(s.start) >= 0)
    full = schedule_day(pop, rng, day, after=0)
    assert abs(len(full) - session_rate(pop).sum()) < 4 * np.sqrt(session_rate(pop).sum())
    # local start hours concentrate around the preferred hour
    row = full.subscriber - pop.start
    local = ((full.start + pop.utc_offset_minutes[row].astype(np.int64) * 60) // 3600) % 24
    d = np.abs(local - pop.preferred_hour[row])
    assert (np.minimum(d, 24 - d) <= 3).mean() > 0.6


@pytest.fixture(scope="module")
def organic() -> tuple[EventBatch, World]:
    """Three weeks of 15-minute ticks, no emails at all."""
    world = World(Population.generate(12_000, seed=21), seed=21)
    clock = SimClock(world.now, 900)
    out = []
    for _ in range(21 * 96):
        t0, t1 = clock.advance()
        ev = world.step(t0, t1)
        assert ((ev.time > t0) & (ev.time <= t1)).all()
        assert np.all(np.diff(ev.time) >= 0)
        out.append(ev)
    return EventBatch.concat(out), world


def test_without_email_about_70_percent_of_carts_are_abandoned(organic) -> None:
    ev, world = organic
    from experiments.calibration import _cart_abandonment

    rate = _cart_abandonment(ev, world.population.time, 21)
    assert 0.65 <= rate <= 0.82, rate
    assert (ev.column("campaign_id") == -1).all()


def test_some_abandoned_carts_come_back_on_their_own(organic) -> None:
    ev, _ = organic
    df = ev.to_pandas(decode=False)
    carts = df[df.type == CODE["add_to_cart"]].groupby("subscriber").time.max()
    buys = df[df.type == CODE["purchase_completed"]]
    last_cart = buys.subscriber.map(carts)
    later = (buys.time - last_cart) > 3600  # bought an hour or more after the cart
    n_carts = int((df.type == CODE["add_to_cart"]).sum())
    assert later.sum() > 0.02 * n_carts
    assert later.sum() < 0.2 * n_carts
    # every purchase carries its revenue; cart adds carry cart value and items
    assert (buys.revenue > 0).all()
    adds = df[df.type == CODE["add_to_cart"]]
    assert (adds.cart_value > 0).all() and (adds["items"] >= 1).all()
    views = df[df.type == CODE["product_view"]]
    assert views.time_on_page.between(5, 2000).all() and (views.product_id >= 0).all()
    # the browse-abandonment rule needs sessions with >= 3 views of >= 30 s
    assert (views.time_on_page >= 30).mean() > 0.3


def test_lifecycle_and_engagement_evolve(organic) -> None:
    ev, world = organic
    start = Population.generate(12_000, seed=21)
    end = world.population
    bought = np.unique(ev.subscriber[ev.type == CODE["purchase_completed"]])
    was_prospect = start.lifecycle[bought] == 1
    assert was_prospect.any()
    assert (end.lifecycle[bought][was_prospect] >= 2).all()  # now (new) customers
    assert (end.n_purchases[bought] > start.n_purchases[bought]).all()
    # new subscribers signed up more than two weeks before the end are no longer new
    end_time = start.time + 21 * DAY
    matured = (start.lifecycle == 0) & (start.signup_time < end_time - 15 * DAY)
    assert matured.sum() > 100
    assert (end.lifecycle[matured] != 0).all()
    assert (end.lifecycle[start.lifecycle != 0] != 0).all()


def test_daily_update_fatigue_lowers_engagement() -> None:
    pop = Population.generate(2000, seed=4)
    base = pop.engagement.copy()
    rng = KeyedRandom(4)
    for d in range(30):  # sustained fatigue on the first half (NPE -3 every morning)
        pop.npe[:1000] = -3.0
        daily_update(pop, rng, pop.time // DAY + 1 + d)
    assert pop.engagement[:1000].mean() < 0.75 * base[:1000].mean()
    assert abs(pop.engagement[1000:].mean() - base[1000:].mean()) < 0.02
    np.testing.assert_allclose(pop.npe[:1000], -3.0 * 0.85, rtol=1e-6)  # discounted daily
    assert pop.intent.min() >= 0 and pop.intent.max() <= 1


@settings(max_examples=30, deadline=None)
@given(lam=st.floats(0.0, 3.0), seed=st.integers(0, 2**32 - 1))
def test_poisson_inverse_matches_scipy(lam: float, seed: int) -> None:
    from scipy.stats import poisson

    from sim.behavior import _poisson_inverse

    u = np.random.default_rng(seed).random(500)
    u = u[np.abs(poisson.cdf(np.floor(poisson.ppf(u, lam)), lam) - u) > 1e-9]  # no ties
    got = _poisson_inverse(u, np.full(len(u), lam), 6)
    np.testing.assert_array_equal(got, np.minimum(poisson.ppf(u, lam), 6).astype(np.int64))
