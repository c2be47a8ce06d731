"""The fast engine's compact journey state decides as the reference (docs/journeys.md,
"Semantics: the engine contract", points 3 and 8): catalog audiences over more products
than a subscriber's memory holds (least recently viewed or carted forgotten, the audience
lists of a call built from the memory and extended by the call's events), cut into calls
and checkpoints at random points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.event_schema import EVENT_TYPES, MAX_TIME, MIN_TIME
from tests.policies.triggers.test_journey_cuts import (
    SPAN,
    SUBS,
    _run,
    _table,
    assert_fast_matches_reference_with_cuts,
)
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
    assert_fast_matches_reference_with_cuts(sc, data)


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


@pytest.mark.parametrize("ids", [
    [0, 2**31 - 2, 2**31 - 1, 2**31],
    [2**62, 2**63 - 1, 5, 2**31 - 1],
    [2**40 + k for k in range(10)],  # more large ids than the memory holds
    [5, 2**32 + 5, 2**33 + 5, 7],  # the same low 32 bits
])
def test_large_product_ids_in_the_catalog_memory_decide_as_the_reference(ids: list[int]) -> None:
    """The memory holds product ids of 2**31 - 1 and more by a code: views, a purchase of
    one of them (exit matched on the id), then drops of each, cut in two calls."""
    records = [{"subscriber": 1 + k % 4, "time": T0 + 60 * k, "type": "product_view",
                "product_id": p} for k, p in enumerate(ids)]
    records += [{"subscriber": 1 + k % 4, "time": T0 + 3600 + 60 * k, "type": "add_to_cart",
                 "product_id": p} for k, p in enumerate(reversed(ids))]
    records.append({"subscriber": 2, "time": T0 + 2 * 3600 + 30, "type": "purchase_completed",
                    "product_id": ids[1]})
    catalog = [{"time": T0 + 2 * 3600 + 60 * k, "type": "price_drop", "product_id": p,
                "old_price": 9.0, "new_price": 4.0} for k, p in enumerate(ids)]
    sc = {"rules": _catalog_rules({"viewed": "2d", "carted": "1d"}, {"cooldown": "1h"}),
          "subs": _table(["customer"] * 4, [0.2] * 4, [float("nan")] * 4, [0] * 4),
          "records": records, "catalog": catalog, "updates": [], "failures": []}
    ref, ref_stats, _ = _run(sc, [], set(), "reference")
    fast, fast_stats, _ = _run(sc, [(T0 + 2 * 3600, True)], {1}, "fast")
    assert fast.equals(ref), (ref.to_pandas().to_string(), fast.to_pandas().to_string())
    assert fast_stats.equals(ref_stats)
    assert int(ref_stats.loc["drop", "entered"]) >= 3


def _finished_journeys(engine_name: str, n: int) -> Any:
    """``n`` subscribers each run a one-send journey to its end, a sixteenth of them per
    call (and 4 do it twice)."""
    import pandas as pd

    from policies import EventBatch
    from policies.triggers import TriggerEngine, load_rules

    rules = {"rules": [{"id": "cart", "type": "cart_abandonment",
                        "when": [{"event": "add_to_cart", "within": "1h"}],
                        "reentry": {"cooldown": "1d"}, "emails": {"hello": {}},
                        "steps": [{"wait": "1h"}, {"send": "hello"}]}]}
    subs = pd.DataFrame({"lifecycle_stage": ["customer"] * n},
                        index=pd.Index(np.arange(n, dtype=np.int64), name="subscriber"))
    engine = TriggerEngine(load_rules(rules), subscribers=subs, engine=engine_name)
    out = []
    chunk = max(1, n // 16)
    for c, lo in enumerate(range(0, n, chunk)):  # 16 calls: every journey ends in its call
        rows = np.arange(lo, min(n, lo + chunk), dtype=np.int64)
        carts = EventBatch(rows, T0 + c * DAY + rows - lo,
                           np.full(len(rows), EVENT_TYPES.code("add_to_cart"), np.int64))
        out.append(engine.process(carts, until=T0 + c * DAY + 2 * 3600 + chunk))
    again = EventBatch(np.arange(min(4, n), dtype=np.int64), T0 + 20 * DAY + np.arange(min(4, n)),
                       np.full(min(4, n), EVENT_TYPES.code("add_to_cart"), np.int64))
    out.append(engine.process(again, until=T0 + 22 * DAY))
    return engine, out


def test_finished_journeys_keep_a_parked_record_not_a_running_one() -> None:
    """Bytes of state per subscriber after one finished journey each: the parked record
    (re-entry memory and latest send, 68 bytes) and a free record reused by the next
    entry, not a full record per (subscriber, journey) ever entered (216 bytes)."""
    n = 8192
    engine, _ = _finished_journeys("fast", n)
    empty, _ = _finished_journeys("fast", 0)
    per_sub = (engine.state_nbytes() - empty.state_nbytes()) / n
    stats = engine.stats()
    assert int(stats.loc["cart", "fired"]) == n + 4 and int(stats.loc["cart", "pending"]) == 0
    # about 60 of per-subscriber columns, 68 parked and a share of the free records (146
    # measured); a full record per finished journey made it about 290
    assert per_sub < 200, per_sub


@pytest.mark.parametrize("report_at", [DAY, 4 * DAY])
def test_a_failure_report_on_a_parked_send_retries_as_the_reference(report_at: int) -> None:
    """The latest send of a finished (parked) journey reported failed: retried from the
    parked record, as the reference does; re-entered subscribers too."""
    from policies import EventBatch
    from policies.triggers import Decisions

    out = {}
    for name in ("reference", "fast"):
        engine, parts = _finished_journeys(name, 6)
        fires = Decisions.concat(parts).to_pandas().query("kind == 'fire'")
        ids = sorted(set(fires["trigger_id"]))
        parts.append(engine.report_failures(ids[-3:], now=T0 + report_at + 22 * DAY))
        parts.append(engine.process(EventBatch.empty(), until=T0 + report_at + 24 * DAY))
        out[name] = (Decisions.concat(parts).sorted(), engine.stats())
    assert out["fast"][0].equals(out["reference"][0])
    assert out["fast"][1].equals(out["reference"][1])
    assert int(out["fast"][1].loc["cart", "retried"]) > 0


def test_a_full_catalog_memory_costs_140_bytes_a_subscriber() -> None:
    """8 remembered products (int32 ids and times: 8 x 16 bytes, owner, length and entry
    gate) beside the per-subscriber columns; int64 times and ids made it 272."""
    import pandas as pd

    from policies import EventBatch
    from policies.triggers import TriggerEngine, load_rules

    n = 8192
    subs = pd.DataFrame({"lifecycle_stage": ["customer"] * n},
                        index=pd.Index(np.arange(n, dtype=np.int64), name="subscriber"))
    rules = load_rules(_catalog_rules({"viewed": "2d"}, "once"))
    engines = [TriggerEngine(rules, subscribers=subs, engine="fast") for _ in range(2)]
    rows = np.repeat(np.arange(n, dtype=np.int64), 8)
    views = EventBatch(rows, T0 + np.arange(8 * n, dtype=np.int64),
                       np.full(8 * n, EVENT_TYPES.code("product_view"), np.int64),
                       {"product_id": np.tile(np.arange(8, dtype=np.int64), n) * 1000})
    engines[1].process(views, until=T0 + 8 * n)
    per_sub = (engines[1].state_nbytes() - engines[0].state_nbytes()) / n
    assert 130 <= per_sub < 150, per_sub
