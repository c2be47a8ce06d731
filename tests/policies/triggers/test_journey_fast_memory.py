"""The fast engine's compact journey state decides as the reference (docs/journeys.md,
"Semantics: the engine contract", points 3 and 8): catalog audiences over more products
than a subscriber's memory holds (least recently viewed or carted forgotten, the audience
lists of a call built from the memory and extended by the call's events), cut into calls
and checkpoints at random points.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.event_schema import MAX_TIME, MIN_TIME
from tests.policies.triggers.test_journey_cuts import SPAN, SUBS, _run, _table
from tests.policies.triggers.trigger_helpers import DAY, T0

#: (audience, reentry) of the catalog journey; windows shorter than the stream so that
#: remembered views expire, and both kinds of memory.
AUDIENCES = [
    ({"viewed": "2d", "carted": "5d"}, {"cooldown": "1d"}),
    ({"viewed": "3d"}, "once"),
    ({"carted": "1d"}, {"cooldown": "1s"}),
]


def _catalog_rules(audience: dict[str, str], reentry: Any) -> dict[str, Any]:
    return {"rules": [{
        "id": "drop", "type": "price_drop",
        "when": [{"catalog": {"event": "price_drop", "audience": audience}}],
        "exit": [{"event": "purchase_completed", "match": "product_id"}],
        "reentry": reentry, "emails": {"alert": {}},
        "steps": [{"wait": "2h"}, {"send": "alert"}]}]}


@st.composite
def _scenarios(draw: Any) -> dict[str, Any]:
    """Views, carts and purchases over 14 products (the memory holds 8), price drops on
    any of them, up to 4 subscribers."""
    audience, reentry = draw(st.sampled_from(AUDIENCES))
    n = draw(st.integers(0, 150))
    times = sorted(draw(st.lists(st.integers(0, SPAN // 600), min_size=n, max_size=n)))
    kinds = st.sampled_from(["product_view", "product_view", "add_to_cart",
                             "purchase_completed"])
    records = [{"subscriber": draw(st.sampled_from(SUBS)), "time": T0 + 600 * t,
                "type": draw(kinds), "product_id": draw(st.integers(0, 13))} for t in times]
    catalog = [{"time": T0 + 600 * draw(st.integers(0, SPAN // 600)), "type": "price_drop",
                "product_id": draw(st.integers(0, 13)), "old_price": 100.0,
                "new_price": 80.0} for _ in range(draw(st.integers(0, 12)))]
    subs = _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4)
    return {"rules": _catalog_rules(audience, reentry), "subs": subs, "records": records,
            "catalog": catalog, "updates": [], "failures": []}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=_scenarios(), data=st.data())
def test_catalog_audiences_beyond_the_memory_decide_as_the_reference(sc: dict[str, Any],
                                                                     data: Any) -> None:
    ref, ref_stats, _ = _run(sc, [], set(), "reference")
    cuts = data.draw(st.lists(st.tuples(st.integers(0, SPAN // 600).map(
        lambda x: T0 + 600 * x), st.booleans()), max_size=5))
    checkpoints = set(data.draw(st.lists(st.integers(0, 6), max_size=2)))
    fast, fast_stats, _ = _run(sc, cuts, checkpoints, "fast")
    assert fast.equals(ref), (ref.to_pandas().to_string(), fast.to_pandas().to_string())
    assert fast_stats.equals(ref_stats)


def test_a_forgotten_product_leaves_the_audience_and_returns_with_a_new_view() -> None:
    """Subscriber 1 views products 0..8 (9 > 8: product 0 is forgotten), then 0 again;
    drops of 0 before and after that view: only the second one enters."""
    views = [{"subscriber": 1, "time": T0 + 60 * k, "type": "product_view", "product_id": k}
             for k in range(9)]
    views.append({"subscriber": 1, "time": T0 + 3600, "type": "product_view", "product_id": 0})
    drop = {"type": "price_drop", "product_id": 0, "old_price": 10.0, "new_price": 5.0}
    sc = {"rules": _catalog_rules({"viewed": "2d"}, {"cooldown": "1s"}),
          "subs": _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4),
          "records": views, "catalog": [{"time": T0 + 1800, **drop},
                                         {"time": T0 + 2 * 3600, **drop}],
          "updates": [], "failures": []}
    for name in ("reference", "fast"):
        d, stats, _ = _run(sc, [(T0 + 1800, True)], set(), name)
        assert int(stats.loc["drop", "entered"]) == 1, name
        fires = d.to_pandas().query("kind == 'fire'")
        assert fires["time"].tolist() == [T0 + 4 * 3600], name


@pytest.mark.parametrize("n_products", [1, 8, 9, 30])
def test_every_subscriber_remembering_a_dropped_product_is_visited_once(n_products: int) -> None:
    """A drop of product 0 reaches every subscriber whose memory holds it (viewed first
    or last, among ``n_products`` products) and no other."""
    from policies import EventBatch
    from policies.triggers import CatalogBatch, TriggerEngine, load_rules

    subs = _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4)
    engine = TriggerEngine(load_rules(_catalog_rules({"viewed": "2d"}, "once")),
                           subscribers=subs, engine="fast")
    records = []
    for sub, order in ((1, range(n_products)), (2, range(n_products - 1, -1, -1)), (3, [])):
        records += [{"subscriber": sub, "time": T0 + 60 * k, "type": "product_view",
                     "product_id": p} for k, p in enumerate(order)]
    engine.process(EventBatch.from_records(records), until=T0 + DAY)
    engine.process(EventBatch.empty(), until=T0 + DAY + 1, catalog=CatalogBatch.from_records(
        [{"time": T0 + DAY + 1, "type": "price_drop", "product_id": 0, "old_price": 2.0,
          "new_price": 1.0}]))
    entered = int(engine.stats().loc["drop", "entered"])
    # subscriber 2 viewed 0 last; subscriber 1 viewed it first: forgotten beyond 8
    assert entered == (1 if n_products > 8 else 2)


#: Event times around the catalog memory's int32 epoch moves: the first times after 2**31 s,
#: a jump of more than 2**31 + 2**30 s (what was remembered before it is forgotten: older
#: than any window) next to one of less (remembered: inside the 36500d window), and the
#: end of the widest engine range (9999-12-31). Catalog events exist from 2000 to 2100.
EPOCH_TIMES = [
    [MIN_TIME, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 600, MAX_TIME - 10],
    [100, MIN_TIME + 5, 2**31 + 2**30 + 200, MAX_TIME - 5],
    [MIN_TIME, MAX_TIME - 5, 2**33, 253_402_300_799 - DAY],
]


@pytest.mark.parametrize("times", EPOCH_TIMES)
@pytest.mark.parametrize("window", ["2d", "36500d"])
def test_catalog_memory_times_across_epoch_moves_decide_as_the_reference(
        times: list[int], window: str) -> None:
    """Views, carts and purchases at each time (some subscribers only at the first ones:
    old memories), then drops of both products one second later: the same decisions in
    both engines, with the widest window too."""
    from policies import EventBatch
    from policies.triggers import CatalogBatch, TriggerEngine, load_rules

    subs = _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4)
    out = {}
    for name in ("reference", "fast"):
        engine = TriggerEngine(load_rules(_catalog_rules({"viewed": window, "carted": window},
                                                         {"cooldown": "1s"})),
                               subscribers=subs, engine=name, min_time=0,
                               max_time=253_402_300_799)
        parts = []
        for k, t in enumerate(times):  # one call per time: lists built from the memory
            records = [{"subscriber": 1, "time": t, "type": "product_view", "product_id": 0},
                       {"subscriber": 3, "time": t, "type": "purchase_completed",
                        "product_id": 0}]
            if k < 2:  # subscriber 2 viewed product 1 at the first two times only
                records.append({"subscriber": 2, "time": t, "type": "product_view",
                                "product_id": 1})
            if k == 0:  # subscriber 4 viewed product 0 and carted 1 at the first time only
                records += [{"subscriber": 4, "time": t, "type": "product_view",
                             "product_id": 0},
                            {"subscriber": 4, "time": t, "type": "add_to_cart",
                             "product_id": 1}]
            drops = [{"time": t + 1, "type": "price_drop", "product_id": p, "old_price": 2.0,
                      "new_price": 1.0} for p in (0, 1) if MIN_TIME <= t + 1 < MAX_TIME]
            batch = EventBatch.from_records(records, min_time=0, max_time=253_402_300_799)
            parts.append(engine.process(batch, until=t + 1,
                                        catalog=CatalogBatch.from_records(drops)))
        out[name] = (parts, engine.stats())
    for a, b in zip(out["reference"][0], out["fast"][0], strict=True):
        assert a.equals(b), (a.to_pandas().to_string(), b.to_pandas().to_string())
    assert out["fast"][1].equals(out["reference"][1])
    assert int(out["fast"][1].loc["drop", "entered"]) > 0
