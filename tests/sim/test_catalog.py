"""The catalog: global (shard-invariant) and deterministic, its rates match its
parameters, views carry its prices, carts and purchases name in-stock products."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from policies.errors import SpecError
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from policies.triggers import CatalogBatch, TriggerEngine
from sim import DAY, HOUR, EmailBatch, Population, SimClock, World
from sim.catalog import MAX_EVENT_DAYS, PRODUCTS_PER_CATEGORY, Catalog
from sim.presets import get_preset

CODE = {n: EVENT_TYPES.code(n) for n in EVENT_TYPES.names}
T0 = 1_704_067_200  # 2024-01-01, the default population time
#: many sales and stock-outs, so that every branch shows up in a few simulated days
BUSY = {"stockout_rate_per_day": 0.2, "price_drop_rate_per_day": 0.2}


def _batches_equal(a: CatalogBatch, b: CatalogBatch) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
               for f in ("time", "type", "product_id", "old_price", "new_price"))


def _run(worlds: list[World], days: float, emails: bool = True, tick: int = 900
         ) -> tuple[list[list[EventBatch]], list[list[CatalogBatch]]]:
    """Step the worlds together; a cart reminder 1-2 h after a cart and a campaign on
    day 1 (so email-driven purchases exist too)."""
    clock = SimClock(worlds[0].now, tick)
    ev: list[list[EventBatch]] = [[] for _ in worlds]
    cat: list[list[CatalogBatch]] = [[] for _ in worlds]
    for _ in range(int(days * DAY / tick)):
        now = clock.now
        for w in worlds:
            p = w.population
            if emails and now % DAY == 15 * 3600 and (now - p.time) // DAY == 1:
                w.send(EmailBatch.make(p.ids[p.subscribed], now, campaign=1))
            age = now - p.cart_time
            due = p.subscribed & (p.cart_value > 0) & (age > HOUR) & (age <= HOUR + tick)
            if emails and due.any():
                w.send(EmailBatch.make(p.ids[due], now, campaign=100, kind="cart_abandonment"))
        t0, t1 = clock.advance()
        for k, w in enumerate(worlds):
            ev[k].append(w.step(t0, t1))
            cat[k].append(w.catalog_events(t0, t1))
    return ev, cat


@pytest.fixture(scope="module")
def busy_run() -> tuple[World, EventBatch, list[CatalogBatch]]:
    world = World(Population.generate(4000, seed=21, preset={**BUSY, "session_rate_per_day": 0.4,
                                                             "intent_alpha": 3.0}), seed=21)
    ev, cat = _run([world], days=4)
    b = EventBatch.concat(ev[0])
    return world, b[np.lexsort((b.subscriber, b.time))], cat[0]


# -- determinism and shard invariance -------------------------------------------------


@settings(max_examples=6, deadline=None)
@given(n=st.integers(20, 400), cut=st.floats(0.05, 0.95), seed=st.integers(0, 2**40))
def test_shards_see_the_same_catalog_and_their_events_make_the_whole(n: int, cut: float,
                                                                     seed: int) -> None:
    k = max(1, min(n - 1, int(n * cut)))
    whole = World(Population.generate(n, seed=seed, preset=BUSY), seed=seed)
    left = World(Population.generate(k, seed=seed, preset=BUSY), seed=seed)
    right = World(Population.generate(n - k, seed=seed, start=k, preset=BUSY), seed=seed)
    ev, cat = _run([whole, left, right], days=1.5)
    for step, (w, a, b) in enumerate(zip(*ev, strict=True)):
        merged = EventBatch.concat([a, b])
        assert merged[np.lexsort((merged.subscriber, merged.time))].equals(w), step
    for w, a, b in zip(*cat, strict=True):
        assert _batches_equal(w, a) and _batches_equal(w, b)
    assert sum(len(c) for c in cat[0]) > 0
    assert Population.concat([left.population, right.population]).equals(whole.population)


def test_the_catalog_is_a_function_of_seed_and_interval() -> None:
    a, b, c = Catalog(5), Catalog(5), Catalog(6)
    # asked in different pieces and orders, the same events
    week = a.events(T0, T0 + 7 * DAY)
    pieces = [b.events(t, t + 3 * HOUR) for t in range(T0 + 7 * DAY - 3 * HOUR, T0 - 1,
                                                        -3 * HOUR)][::-1]
    joined = CatalogBatch(*(np.concatenate([getattr(p, f) for p in pieces])
                            for f in ("time", "type", "product_id", "old_price", "new_price")))
    assert len(week) > 100 and _batches_equal(week, joined)
    assert np.array_equal(a.list_price, b.list_price)
    assert not np.array_equal(a.list_price, c.list_price)
    assert not _batches_equal(week, c.events(T0, T0 + 7 * DAY))
    # sorted by time, valid rows
    assert (np.diff(week.time) >= 0).all() and (week.time > T0).all()


def test_world_and_catalog_pickle_round_trip() -> None:
    world = World(Population.generate(1500, seed=8, preset=BUSY), seed=8)
    _run([world], days=1)
    blob = pickle.dumps(world.catalog)
    assert len(blob) < 5000  # seed and preset only: the rest is recomputed
    assert pickle.loads(blob) == world.catalog
    clone = pickle.loads(pickle.dumps(world))
    (x, y), (cx, cy) = _run([world, clone], days=1)
    for p, q in zip(x, y, strict=True):
        assert p.equals(q)
    for p, q in zip(cx, cy, strict=True):
        assert _batches_equal(p, q)
    assert world.population.equals(clone.population)


# -- the rates match the parameters --------------------------------------------------


def _clipped_exp_mean(mean_days: float) -> float:
    """E[min(max(X, 1 h), MAX_EVENT_DAYS)] in days, X exponential of mean ``mean_days``."""
    a, c = HOUR / DAY, float(MAX_EVENT_DAYS)
    return a + mean_days * (math.exp(-a / mean_days) - math.exp(-c / mean_days))


@pytest.mark.parametrize("overrides", [
    {},
    {"stockout_rate_per_day": 0.05, "restock_mean_days": 1.0},
    {"price_drop_rate_per_day": 0.03, "price_drop_mean_days": 6.0},
])
def test_shares_on_sale_and_out_of_stock_match_the_parameters(overrides) -> None:
    """At 60 times 1.5 days apart, the share of products out of stock (on sale) equals
    ``1 - exp(-rate E[length])`` (arrivals close to Poisson) within 5 standard errors
    plus 5 % of the expectation (the day-bound Bernoulli starts are not exactly Poisson)."""
    p = get_preset("retail", **overrides)
    cat = Catalog(3, p)
    ids = cat.product_id
    times = T0 + 30 * DAY + (np.arange(60) * 1.5 * DAY).astype(np.int64)
    out = np.array([(~cat.in_stock(ids, t)).mean() for t in times])
    sale = np.array([(cat.price(ids, t) < cat.list_price).mean() for t in times])
    for got, rate, mean_days in ((out, p.stockout_rate_per_day, p.restock_mean_days),
                                 (sale, p.price_drop_rate_per_day, p.price_drop_mean_days)):
        want = 1.0 - math.exp(-rate * _clipped_exp_mean(mean_days))
        se = got.std(ddof=1) / math.sqrt(len(got))
        assert abs(got.mean() - want) < 5 * se + 0.05 * want, (got.mean(), want)


def test_price_drop_and_restock_counts_and_depths_match_the_parameters() -> None:
    """With one-hour sales and stock-outs (overlaps negligible), price drops per
    product-day are Binomial(rate) (within 4 sd), their depth is uniform on
    [min, max] (KS p > 0.001, depth measured on cent-rounded prices), and every
    stock-out ends in a restock."""
    p = get_preset("retail", price_drop_rate_per_day=0.02, price_drop_mean_days=1e-3,
                   stockout_rate_per_day=0.01, restock_mean_days=1e-3,
                   price_drop_min=0.1, price_drop_max=0.5)
    cat = Catalog(11, p)
    days = 60
    b = cat.events(T0, T0 + days * DAY)
    drops = b[b.type == 0]
    backs = b[b.type == 1]
    trials = days * len(cat)
    for got, rate in ((len(drops), 0.02), (len(backs), 0.01)):
        sd = math.sqrt(trials * rate * (1 - rate))
        assert abs(got - trials * rate) < 4 * sd + 5, (got, trials * rate)
    depth = (drops.old_price - drops.new_price) / drops.old_price
    cheap = drops.old_price >= 20  # cent rounding moves the depth of cheap items
    ks = stats.kstest(depth[cheap], stats.uniform(0.1, 0.4).cdf)
    assert ks.pvalue > 1e-3
    assert (backs.new_price > 0).all() and np.isnan(backs.old_price).all()
    # a back-in-stock event is one hour after its stock-out started: out just before
    assert (~cat.in_stock(backs.product_id, backs.time - 1)).all()
    assert cat.in_stock(backs.product_id, backs.time).all()
    assert (cat.price(drops.product_id, drops.time) == drops.new_price).all()
    assert (cat.price(drops.product_id, drops.time - 1) == drops.old_price).all()


def test_list_prices_and_margins_follow_the_preset() -> None:
    p = get_preset("retail")
    cat = Catalog(2, p)
    assert len(cat) == p.n_categories * PRODUCTS_PER_CATEGORY
    assert abs(cat.list_price.mean() - p.item_price_mean) < 0.01
    log_sd = np.log(cat.list_price).std()
    assert abs(log_sd - p.item_price_sigma) < 0.15 * p.item_price_sigma
    lo, hi = p.margin_rate_mean - p.margin_rate_spread, p.margin_rate_mean + p.margin_rate_spread
    assert ((cat.category_margin_rate >= lo) & (cat.category_margin_rate <= hi)).all()
    assert np.allclose(cat.unit_cost, np.round(cat.list_price * (1 - cat.margin_rate), 2))
    assert (cat.category == cat.product_id // PRODUCTS_PER_CATEGORY).all()
    df = cat.to_pandas(T0)
    assert list(df.columns) == ["category", "list_price", "price", "margin_rate", "unit_cost",
                                "in_stock"]


# -- the world uses the catalog ----------------------------------------------------------


def test_views_carry_the_catalog_price(busy_run) -> None:
    world, b, _ = busy_run
    views = b[(b.type == CODE["product_view"]) & (b.column("campaign_id") == -1)]
    assert len(views) > 1000
    price = world.catalog.price(views.column("product_id"), views.time)
    assert np.array_equal(views.column("price"), price)
    assert (views.column("price") < world.catalog.list_price[views.column("product_id")]).any()


def test_purchases_name_the_carted_product(busy_run) -> None:
    """Every purchase names a product, and it is the product of the subscriber's latest
    add to cart before it (organic, cart reminders and other emails alike)."""
    _, b, _ = busy_run
    adds = b[b.type == CODE["add_to_cart"]]
    buys = b[b.type == CODE["purchase_completed"]]
    assert len(buys) > 50 and (buys.column("campaign_id") >= 0).sum() > 5
    assert (buys.column("product_id") >= 0).all() and (adds.column("product_id") >= 0).all()
    for sub, t, product in zip(buys.subscriber, buys.time, buys.column("product_id"),
                               strict=True):
        mine = (adds.subscriber == sub) & (adds.time <= t)
        assert mine.any()
        assert adds.column("product_id")[np.flatnonzero(mine)[-1]] == product


def test_no_out_of_stock_product_is_carted_or_bought(busy_run) -> None:
    world, b, _ = busy_run
    named = b[((b.type == CODE["add_to_cart"]) | (b.type == CODE["purchase_completed"]))]
    assert len(named) > 100
    assert world.catalog.in_stock(named.column("product_id"), named.time).all()
    # the busy catalog does keep products out of stock that subscribers viewed
    views = b[b.type == CODE["product_view"]]
    assert (~world.catalog.in_stock(views.column("product_id"), views.time)).sum() > 50


def _out_then_in(cat: Catalog) -> tuple[int, int, int]:
    """A product, a time it is out of stock and a later time it is back."""
    t = T0 + 10 * DAY
    product = int(np.flatnonzero(~cat.in_stock(cat.product_id, t))[0])
    later = t + HOUR * int(np.argmax(cat.in_stock(np.full(400, product),
                                                  t + HOUR * np.arange(400))))
    assert later > t
    return product, t, later


# (type, product, when, token) rows in time order -> which are valid; cart_seq is 3
@pytest.mark.parametrize(("rows", "valid"), [
    ([("purchase_completed", "oos", "out", -1)], [False]),
    ([("purchase_completed", "oos", "back", -1)], [True]),
    ([("add_to_cart", "oos", "out", -1)], [False]),
    ([("product_view", "oos", "out", -1)], [True]),   # viewing is fine: the audience
    ([("purchase_completed", "none", "out", -1)], [True]),  # no product named
    ([("purchase_completed", "fine", "out", 3)], [True]),
    # an out-of-stock purchase does not resolve the cart: the clear after it does
    ([("purchase_completed", "oos", "out", 3), ("cart_cleared", "none", "later", 3)],
     [False, True]),
    ([("purchase_completed", "fine", "out", 3), ("cart_cleared", "none", "later", 3)],
     [True, False]),
    ([("purchase_completed", "oos", "out", 2)], [False]),  # stale and out of stock
])
def test_valid_mask_drops_carts_and_purchases_of_out_of_stock_products(rows, valid) -> None:
    from sim import _events as E
    from sim.state import valid_mask

    pop = Population.generate(1, seed=1)
    pop.cart_seq[:] = 3
    cat = Catalog(1)
    oos, t_out, t_back = _out_then_in(cat)
    fine = int(np.flatnonzero(cat.in_stock(cat.product_id, t_out))[0])
    product = {"oos": oos, "fine": fine, "none": -1}
    when = {"out": t_out, "back": t_back, "later": t_out + 1}
    ev = E.concat([E.make(np.array([0]), np.array([when[w]]), CODE[typ],
                          product_id=np.array([product[pid]]), token=np.array([tok]))
                   for typ, pid, w, tok in rows])
    assert valid_mask(pop, ev, cat).tolist() == valid


def test_a_catalog_journey_enters_the_viewers_of_a_dropped_product(busy_run) -> None:
    """The world's catalog events drive a price-drop journey through the engine: each
    entered subscriber viewed the product within the audience window."""
    world, b, cats = busy_run
    rules = {"rules": [{
        "id": "price_alert", "type": "price_drop",
        "when": [{"catalog": {"event": "price_drop", "audience": {"viewed": "14d"}}}],
        "exit": [{"event": "purchase_completed", "match": "product_id"}],
        "emails": {"alert": {}},
        "steps": [{"send": "alert"}],
    }]}
    engine = TriggerEngine(rules, subscribers=world.subscribers())
    catalog = CatalogBatch(*(np.concatenate([getattr(c, f) for c in cats])
                             for f in ("time", "type", "product_id", "old_price", "new_price")))
    until = int(max(b.time.max(), catalog.time.max()))
    d = engine.process(b, until=until, catalog=catalog).to_pandas()
    fires = d[d.kind == "fire"]
    assert len(fires) > 10
    views = b[b.type == CODE["product_view"]]
    for sub, t in zip(fires.subscriber.head(30), fires.time.head(30), strict=True):
        viewed = views.column("product_id")[(views.subscriber == sub) & (views.time <= t)]
        drops = catalog.product_id[(catalog.time <= t) & (catalog.type == 0)]
        assert np.isin(viewed, drops).any()


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "message"), [
    (lambda w: w.catalog_events(w.now, w.now), r"t1: expected a time after t0"),
    (lambda w: w.catalog_events(1.5, w.now), r"t0: expected int seconds since the epoch, got 1.5"),
    (lambda w: w.catalog_events(w.now, "later"), r"t1: expected int seconds since the epoch"),
    (lambda w: w.catalog.price(np.array([12_000]), T0),
     r"product: expected ids in \[0, 12000\), got 12000"),
    (lambda w: w.catalog.in_stock(np.array([-1, 3]), T0),
     r"product: expected ids in \[0, 12000\), got -1"),
    (lambda w: Catalog(None), r"seed: expected an integer >= 0 \(a seed is required\)"),
    (lambda w: Catalog(1, {"price_drop_min": 0.3, "price_drop_max": 0.2}),
     r"price_drop_max: expected a fraction in \[price_drop_min=0.3, 1\), got 0.2"),
    (lambda w: Catalog(1, {"price_drop_max": 1.0}),
     r"price_drop_max: expected a fraction in \[price_drop_min=0.05, 1\), got 1.0"),
    (lambda w: Catalog(1, {"stockout_rate_per_day": -0.1}),
     r"stockout_rate_per_day: expected a probability in \[0, 1\], got -0.1"),
    (lambda w: Catalog(1, {"restock_mean_days": 0}),
     r"restock_mean_days: expected a number > 0, got 0"),
])
def test_bad_calls(action, message) -> None:
    world = World(Population.generate(10, seed=1), seed=1)
    with pytest.raises(SpecError, match=message):
        action(world)
