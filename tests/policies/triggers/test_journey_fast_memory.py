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
