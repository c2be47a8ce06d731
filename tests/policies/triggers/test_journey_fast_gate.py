"""The fast engine's catalog entry gates decide as the reference (docs/journeys.md, "How
the fast engine keeps journeys"): each catalog block keeps a lower bound of the first
time its owner could enter a catalog journey, and a price drop before it skips the
block. Drops are drawn close together, so that many of them fall inside a gate: while
the journey runs (a wait, a send held by quiet hours, a wait-until), in a cooldown, after
``once``; journeys also end early (exit on a purchase of the entry's product or on any
cleared cart, a wait-until that exits), which must lower the gate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.policies.triggers.test_journey_cuts import (
    SPAN,
    SUBS,
    _table,
    assert_fast_matches_reference_with_cuts,
)
from tests.policies.triggers.trigger_helpers import DAY, T0

QUIET = {"quiet_hours": {"start": "22:00", "end": "08:00"}}
#: (reentry, steps, settings) of the catalog journey.
VARIANTS = [
    ({"cooldown": "6h"}, [{"send": "alert"}], QUIET),
    ("once", [{"wait": "3h"}, {"send": "alert"}], {}),
    ("always", [{"wait_until": {"events": ["email_click"], "within": "5h",
                                "happened": ["exit"], "timed_out": [{"send": "alert"}]}}],
     QUIET),
    ({"cooldown": "1d"}, [{"send": "alert"}, {"wait": "2h"}, {"send": "alert"}], {}),
]


def _rules(reentry: Any, steps: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {"rules": [{
        "id": "drop", "type": "price_drop",
        "when": [{"catalog": {"event": "price_drop", "audience": {"viewed": "3d",
                                                                  "carted": "1d"}}}],
        "exit": [{"event": "purchase_completed", "match": "product_id"},
                 {"event": "cart_cleared"}],
        "reentry": reentry, "emails": {"alert": {}}, "steps": steps}],
        "settings": extra}


@st.composite
def _scenarios(draw: Any) -> dict[str, Any]:
    """Views, carts, purchases, clicks and cleared carts of 4 subscribers over 3
    products; price drops in bursts (a few hours apart) on them."""
    reentry, steps, extra = draw(st.sampled_from(VARIANTS))
    n = draw(st.integers(0, 80))
    times = sorted(draw(st.lists(st.integers(0, SPAN // 600), min_size=n, max_size=n)))
    kinds = st.sampled_from(["product_view", "product_view", "add_to_cart",
                             "purchase_completed", "email_click", "cart_cleared"])
    records = []
    for t in times:
        kind = draw(kinds)
        rec: dict[str, Any] = {"subscriber": draw(st.sampled_from(SUBS)), "time": T0 + 600 * t,
                               "type": kind}
        if kind in ("product_view", "add_to_cart", "purchase_completed"):
            rec["product_id"] = draw(st.integers(0, 2))
        records.append(rec)
    catalog = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, SPAN // 600))
        for gap in draw(st.lists(st.integers(0, 36), min_size=1, max_size=5)):
            start += gap  # 10-minute steps: up to 6 h apart
            catalog.append({"time": T0 + 600 * min(start, SPAN // 600), "type": "price_drop",
                            "product_id": draw(st.integers(0, 2)), "old_price": 100.0,
                            "new_price": 80.0})
    subs = _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4,
                  draw(st.lists(st.sampled_from([0, -300, 330]), min_size=4, max_size=4)))
    return {"rules": _rules(reentry, steps, extra), "subs": subs, "records": records,
            "catalog": catalog, "updates": [], "failures": []}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=_scenarios(), data=st.data())
def test_drops_inside_and_outside_entry_gates_decide_as_the_reference(sc: dict[str, Any],
                                                                      data: Any) -> None:
    assert_fast_matches_reference_with_cuts(sc, data)


def _gate_after(reentry: Any, steps: list[Any], extra: dict[str, Any], drop_at: int,
                until: int) -> tuple[int, Any]:
    """Subscriber 1 views product 0 at T0, a drop of it at ``drop_at``: the absolute gate
    of subscriber 1's catalog block after the call up to ``until``, and the engine."""
    from policies import EventBatch
    from policies.event_schema import EVENT_TYPES
    from policies.triggers import CatalogBatch, TriggerEngine, load_rules

    subs = _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4)
    engine = TriggerEngine(load_rules(_rules(reentry, steps, extra)), subscribers=subs,
                           engine="fast")
    view = EventBatch(np.array([1], np.int64), np.array([T0], np.int64),
                      np.array([EVENT_TYPES.code("product_view")], np.int64),
                      {"product_id": np.array([0], np.int64)})
    engine.process(view, until=T0)
    drop = CatalogBatch.from_records([{"time": drop_at, "type": "price_drop", "product_id": 0,
                                       "old_price": 2.0, "new_price": 1.0}])
    engine.process(EventBatch.empty(), until=until, catalog=drop)
    core = engine._core
    b = int(core.cslot[core.rows_of(np.array([1], np.int64))[0]])
    return int(core.cgate[b]) + int(core.meta[2]), engine


@pytest.mark.parametrize(("reentry", "steps", "extra", "drop_at", "until", "gate"), [
    # sent at once, then a 6 h cooldown from the send (the journey's end)
    ({"cooldown": "6h"}, [{"send": "alert"}], {}, T0 + 3600, T0 + 3600, T0 + 3600 + 6 * 3600),
    # running: waiting 3 h after the entry (the cursor's due time)
    ("once", [{"wait": "3h"}, {"send": "alert"}], {}, T0 + 600, T0 + 600, T0 + 600 + 3 * 3600),
    # ended with reentry once: never again (the largest gate)
    ("once", [{"wait": "3h"}, {"send": "alert"}], {}, T0 + 600, T0 + DAY, "never"),
    # held by quiet hours (T0 is midnight UTC; a drop at 23:00 waits for 08:00)
    ({"cooldown": "6h"}, [{"send": "alert"}], QUIET, T0 + 23 * 3600, T0 + 23 * 3600,
     T0 + 32 * 3600),
    # reentry always, ended: no bound
    ("always", [{"send": "alert"}], {}, T0 + 600, T0 + 600, "none"),
])
def test_the_gate_is_the_first_time_an_entry_could_be_taken(reentry, steps, extra, drop_at,
                                                             until, gate) -> None:
    got, engine = _gate_after(reentry, steps, extra, drop_at, until)
    assert int(engine.stats().loc["drop", "entered"]) == 1
    stored = got - int(engine._core.meta[2])  # int32 seconds after the catalog epoch
    if gate == "none":
        assert stored == np.iinfo(np.int32).min
    elif gate == "never":
        assert stored == np.iinfo(np.int32).max
    else:
        assert got == gate


def test_a_drop_inside_the_gate_changes_nothing_and_one_after_it_enters() -> None:
    """Cooldown 6 h after a send at T0 + 1 h: drops at T0 + 2 h and T0 + 7 h - 1 s are
    refused (skipped), one at T0 + 7 h enters, in both engines."""
    from policies import EventBatch
    from policies.event_schema import EVENT_TYPES
    from policies.triggers import CatalogBatch, TriggerEngine, load_rules

    subs = _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4)
    drops = CatalogBatch.from_records([
        {"time": T0 + s, "type": "price_drop", "product_id": 0, "old_price": 2.0,
         "new_price": 1.0} for s in (3600, 2 * 3600, 7 * 3600 - 1, 7 * 3600)])
    view = EventBatch(np.array([1], np.int64), np.array([T0], np.int64),
                      np.array([EVENT_TYPES.code("product_view")], np.int64),
                      {"product_id": np.array([0], np.int64)})
    out = {}
    for name in ("reference", "fast"):
        engine = TriggerEngine(load_rules(_rules({"cooldown": "6h"}, [{"send": "alert"}], {})),
                               subscribers=subs, engine=name)
        d = engine.process(view, until=T0 + DAY, catalog=drops)
        out[name] = d
        assert d.to_pandas().query("kind == 'fire'")["time"].tolist() == [T0 + 3600,
                                                                          T0 + 7 * 3600]
    assert out["fast"].equals(out["reference"])
