"""One readable scenario per numbered point of the engine contract, on both engines."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from trigger_helpers import DAY, HOUR, T0, both_engines, events, rows, subscribers

from policies.errors import InvalidEventError, LateEventError
from policies.triggers import Decisions, TriggerEngine, TriggerIdError, default_rules, load_rules

NOON = T0 + 12 * HOUR

CART = {
    "id": "cart",
    "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "where": {"cart_value": {"min": 25}}, "within": "60m"}],
    "exclude": ["purchase_completed", "cart_cleared"],
    "delay": "1h",
    "expire": "1d",
    "priority": 10,
}
BROWSE = {
    "id": "browse",
    "type": "browse_abandonment",
    "when": [{"event": "product_view", "within": "30m", "count": 2}],
    "exclude": ["add_to_cart"],
    "delay": "1h",
    "expire": "1d",
    "priority": 5,
}


def engine(name: str, *rules: dict, settings: dict | None = None, subs: Any = None,
           **kw: Any) -> TriggerEngine:
    spec: dict[str, Any] = {"rules": [dict(r) for r in rules]}
    if settings:
        spec["settings"] = settings
    if subs is None:
        subs = subscribers({1: {"stage": "prospect"}, 2: {"stage": "customer"}})
    return TriggerEngine(load_rules(spec), subscribers=subs, engine=name, **kw)


# 1. time order; due instances decided before each event; until decides -----------


@both_engines
def test_1_batch_is_sorted_and_due_sends_are_decided_before_later_events(engine_name):
    e = engine(engine_name, CART)
    # given out of order: the purchase at +90 min comes after the 1 h send, so it fires
    batch = events(
        (1, NOON + 90 * 60, "purchase_completed"),
        (1, NOON, "add_to_cart", {"cart_value": 40.0}),
    )
    assert rows(e.process(batch)) == [("fire", "cart", 1, NOON + HOUR, NOON, 1)]


@both_engines
def test_1_until_decides_everything_due_at_or_before_it(engine_name):
    e = engine(engine_name, CART)
    batch = events((1, NOON, "add_to_cart", {"cart_value": 40.0}))
    assert rows(e.process(batch, until=NOON + HOUR - 1)) == []
    assert rows(e.process(events(), until=NOON + HOUR)) == [
        ("fire", "cart", 1, NOON + HOUR, NOON, 1)
    ]
    assert e.clock == NOON + HOUR


# 2. entry ------------------------------------------------------------------------


@both_engines
def test_2_entry_needs_count_matching_events_within_the_window(engine_name):
    e = engine(engine_name, BROWSE)
    batch = events(
        (1, NOON, "product_view"),
        (1, NOON + 31 * 60, "product_view"),  # first one fell out of the 30 min window
        (1, NOON + 40 * 60, "product_view"),  # two within 30 min: enters here
        (2, NOON, "add_to_cart"),
    )
    assert rows(e.process(batch, until=NOON + DAY)) == [
        ("fire", "browse", 1, NOON + 100 * 60, NOON + 40 * 60, 1)
    ]
    assert e.stats().loc["browse", "entered"] == 1


@both_engines
def test_2_where_predicates_filter_events(engine_name):
    e = engine(engine_name, CART)
    batch = events(
        (1, NOON, "add_to_cart", {"cart_value": 20.0}),
        (2, NOON, "add_to_cart"),  # cart_value missing: no match
    )
    assert rows(e.process(batch, until=NOON + DAY)) == []
    assert e.stats().loc["cart", "entered"] == 0


@both_engines
def test_2_exclusion_in_window_blocks_entry(engine_name):
    e = engine(engine_name, CART)
    batch = events(
        (1, NOON, "purchase_completed"),
        (1, NOON + 59 * 60, "add_to_cart", {"cart_value": 40.0}),  # purchase within 60 min
        (2, NOON, "purchase_completed"),
        (2, NOON + 60 * 60, "add_to_cart", {"cart_value": 40.0}),  # exactly 60 min: outside
    )
    assert rows(e.process(batch, until=NOON + DAY)) == [
        ("fire", "cart", 2, NOON + 2 * HOUR, NOON + HOUR, 1)
    ]


@both_engines
def test_2_segment_unknown_subscriber_and_missing_attribute_do_not_match(engine_name):
    rule = {**CART, "segment": {"stage": {"in": ["prospect"]}, "score": {"min": 0.5}}}
    subs = subscribers({
        1: {"stage": "prospect", "score": 0.9},
        2: {"stage": "customer", "score": 0.9},  # wrong stage
        3: {"stage": "prospect", "score": float("nan")},  # missing score
    })
    e = engine(engine_name, rule, subs=subs)
    batch = events(*[(s, NOON, "add_to_cart", {"cart_value": 40.0}) for s in (1, 2, 3, 4)])
    assert [r[2] for r in rows(e.process(batch, until=NOON + DAY))] == [1]
    # attributes change only through update_subscribers, and count from then on
    e.update_subscribers(subscribers({2: {"stage": "prospect", "score": 0.9}}))
    later = NOON + DAY + HOUR
    batch = events((2, later, "add_to_cart", {"cart_value": 40.0}))
    assert [r[2] for r in rows(e.process(batch, until=later + DAY))] == [2]


@both_engines
def test_2_one_pending_instance_and_reentry_policies(engine_name):
    once = {**CART, "id": "once", "reentry": "once", "priority": 1}
    cool = {**CART, "id": "cool", "reentry": {"cooldown": "3h"}, "priority": 2}
    e = engine(engine_name, CART, once, cool)
    carts = [(1, NOON + m * 60, "add_to_cart", {"cart_value": 40.0}) for m in (0, 30, 90, 150, 250)]
    d = e.process(events(*carts), until=NOON + DAY)
    entered = {rule: [r[4] for r in rows(d) if r[1] == rule] for rule in ("cart", "once", "cool")}
    # always: re-enters once the previous send fired (pending at +30 min blocks)
    assert entered["cart"] == [NOON, NOON + 90 * 60, NOON + 150 * 60, NOON + 250 * 60]
    assert entered["once"] == [NOON]
    # cooldown counts from the fire at +60 min: +150 is too early, +250 is fine
    assert entered["cool"] == [NOON, NOON + 250 * 60]


# 3. cancel -----------------------------------------------------------------------


@both_engines
def test_3_exclusion_after_entry_cancels(engine_name):
    e = engine(engine_name, CART)
    batch = events(
        (1, NOON, "add_to_cart", {"cart_value": 40.0}),
        (1, NOON + 30 * 60, "purchase_completed"),
        (2, NOON, "add_to_cart", {"cart_value": 40.0}),
        (2, NOON + HOUR, "cart_cleared"),  # at the send time: the send went first
    )
    assert rows(e.process(batch, until=NOON + DAY)) == [
        ("cancel", "cart", 1, NOON + 30 * 60, NOON, 1),
        ("fire", "cart", 2, NOON + HOUR, NOON, 1),
    ]
    assert e.stats().loc["cart", "cancelled"] == 1


# 4. quiet hours, frequency cap with priority, expiry ---------------------------------


@both_engines
def test_4_quiet_hours_postpone_in_local_time(engine_name):
    subs = subscribers({1: {"utc_offset_minutes": 0}, 2: {"utc_offset_minutes": -300}})
    e = engine(engine_name, CART, settings={"quiet_hours": {"start": "22:00", "end": "08:00"}},
               subs=subs)
    t = T0 + 22 * HOUR  # 22:00 UTC, 17:00 for subscriber 2
    batch = events(*[(s, t - HOUR, "add_to_cart", {"cart_value": 40.0}) for s in (1, 2)])
    assert rows(e.process(batch, until=t + DAY)) == [
        ("fire", "cart", 2, t, t - HOUR, 1),  # 17:00 local: not quiet
        ("fire", "cart", 1, T0 + DAY + 8 * HOUR, t - HOUR, 1),  # postponed to 08:00
    ]


@both_engines
def test_4_postponed_past_expiry_expires(engine_name):
    rule = {**CART, "expire": "2h"}
    e = engine(engine_name, rule, settings={"quiet_hours": {"start": "22:00", "end": "08:00"}})
    t = T0 + 22 * HOUR
    batch = events((1, t - HOUR, "add_to_cart", {"cart_value": 40.0}))
    assert rows(e.process(batch, until=t + DAY)) == [("expire", "cart", 1, t, t - HOUR, 1)]
    assert e.stats().loc["cart", "expired"] == 1


@both_engines
def test_4_frequency_cap_suppresses_lower_priority_first(engine_name):
    # two sends due at the same time: the higher priority (cart) takes the one slot
    e2 = engine(engine_name, {**BROWSE, "exclude": []}, CART,
                settings={"frequency_cap": {"max": 1, "per": "24h"}})
    batch = events(
        (1, NOON, "product_view"), (1, NOON, "product_view"),
        (1, NOON, "add_to_cart", {"cart_value": 40.0}),
        (1, NOON + 2 * HOUR, "add_to_cart", {"cart_value": 40.0}),  # + 3h: still capped
    )
    d2 = rows(e2.process(batch, until=NOON + DAY))
    assert d2 == [
        ("suppress", "browse", 1, NOON + HOUR, NOON, 1),  # rows sorted by rule order
        ("fire", "cart", 1, NOON + HOUR, NOON, 1),
        ("suppress", "cart", 1, NOON + 3 * HOUR, NOON + 2 * HOUR, 1),
    ]
    assert e2.stats().loc[["browse", "cart"], "suppressed"].tolist() == [1, 1]


@both_engines
def test_4_cap_window_rolls(engine_name):
    e = engine(engine_name, CART, settings={"frequency_cap": {"max": 1, "per": "2h"}})
    carts = [(1, NOON + m * 60, "add_to_cart", {"cart_value": 40.0}) for m in (0, 61, 180)]
    d = rows(e.process(events(*carts), until=NOON + DAY))
    # sends due at +60 (fires), +121 (within 2 h of it: suppressed), +240 (fires)
    assert [(k, t - NOON) for k, _, _, t, _, _ in d] == [
        ("fire", 3600), ("suppress", 121 * 60), ("fire", 240 * 60)
    ]


# 5. failures and retries -----------------------------------------------------------


@both_engines
def test_5_failed_sends_are_retried_with_backoff_then_cancelled(engine_name):
    e = engine(engine_name, CART, settings={"retry": {"max_attempts": 3, "backoff": "30m"}})
    d = e.process(events((1, NOON, "add_to_cart", {"cart_value": 40.0})), until=NOON + HOUR)
    tid = d.trigger_id[0]
    assert tid == f"cart:1:{NOON}"
    now = NOON + HOUR + 60
    assert rows(e.report_failures([tid], now)) == []
    assert rows(e.report_failures([tid], now)) == []  # repeated report: ignored
    d2 = e.process(events(), until=now + 30 * 60)  # retry after 30 min x 1
    assert rows(d2) == [("fire", "cart", 1, now + 30 * 60, NOON, 2)]
    assert list(d2.trigger_id) == [tid]
    now2 = now + 30 * 60 + 5
    e.report_failures(d2, now2)
    d3 = e.process(events(), until=now2 + 60 * 60)  # after 30 min x 2
    assert rows(d3) == [("fire", "cart", 1, now2 + 60 * 60, NOON, 3)]
    assert rows(e.report_failures([tid], now2 + 61 * 60)) == [
        ("cancel", "cart", 1, now2 + 61 * 60, NOON, 3)
    ]
    assert e.stats().loc["cart", ["fired", "retried", "cancelled"]].tolist() == [3, 2, 1]


@both_engines
def test_5_failed_send_frees_its_cap_slot(engine_name):
    e = engine(engine_name, CART, BROWSE,
               settings={"frequency_cap": {"max": 1, "per": "24h"}})
    d = e.process(events((1, NOON, "add_to_cart", {"cart_value": 40.0})), until=NOON + HOUR)
    e.report_failures(d, NOON + HOUR)
    d2 = e.process(events(), until=NOON + 2 * HOUR)
    assert rows(d2) == [("fire", "cart", 1, NOON + 90 * 60, NOON, 2)]


@both_engines
def test_5_unknown_trigger_ids_are_errors(engine_name):
    e = engine(engine_name, CART)
    with pytest.raises(TriggerIdError, match=r"expected '<rule>:<subscriber>:<entered_at>'"):
        e.report_failures(["garbage"], NOON)
    with pytest.raises(TriggerIdError, match=r"unknown rule 'nope'"):
        e.report_failures([f"nope:1:{NOON}"], NOON)
    with pytest.raises(TriggerIdError, match=r"not the latest send of rule 'cart' to subscriber 1"):
        e.report_failures([f"cart:1:{NOON}"], NOON)


# 6. late events ----------------------------------------------------------------------


@both_engines
def test_6_late_events_raise_or_are_dropped_and_counted(engine_name):
    e = engine(engine_name, CART)
    e.process(events((1, NOON, "page_view")), until=NOON + HOUR)
    late = events((1, NOON + 10, "add_to_cart", {"cart_value": 40.0}),
                  (1, NOON + 20, "page_view"), (1, NOON + HOUR, "page_view"))
    with pytest.raises(LateEventError, match=r"^2 of 3 events are late: before the engine clock "
                       rf"{NOON + HOUR} by up to 3590 s"):
        e.process(late)
    assert e.clock == NOON + HOUR  # nothing was handled
    d = engine(engine_name, CART, on_late="drop")
    d.process(events((1, NOON, "page_view")), until=NOON + HOUR)
    assert len(d.process(late, until=NOON + DAY)) == 0
    assert d.stats().loc["cart", "late"] == 1  # the add_to_cart; page views concern no rule
    with pytest.raises(LateEventError, match=r"until: .* is before the engine clock"):
        d.process(events(), until=NOON)
    with pytest.raises(InvalidEventError, match=r"until: expected >= the batch's last event"):
        d.process(events((1, NOON + 2 * DAY, "page_view")), until=NOON + DAY + 1)


# 7. deterministic ids, replay, checkpoints -----------------------------------------


@both_engines
def test_7_replay_gives_the_same_ids(engine_name):
    batch = events(*[(s, NOON + s * 60, "add_to_cart", {"cart_value": 40.0}) for s in (1, 2)])
    ids = [list(engine(engine_name, CART).process(batch, until=NOON + DAY).trigger_id)
           for _ in range(2)]
    assert ids[0] == ids[1] == [f"cart:1:{NOON + 60}", f"cart:2:{NOON + 120}"]


@both_engines
def test_checkpoint_restore_continues_like_uninterrupted(engine_name, rng):
    from experiments.synthetic import generate_events, generate_subscribers

    subs = generate_subscribers(300, rng, start_id=10_000)
    stream = generate_events(subs, rng, days=3)
    end = int(stream.time[-1]) + 2 * DAY
    whole = TriggerEngine(default_rules(), subscribers=subs, engine=engine_name)
    expected = whole.process(stream, until=end)
    e = TriggerEngine(default_rules(), subscribers=subs, engine=engine_name)
    half = len(stream) // 2
    first = e.process(stream[:half], until=int(stream.time[half - 1]))
    state = pickle.loads(pickle.dumps(e.state_dict()))
    e.process(stream[half:], until=end)  # the original goes on; the state must not move
    restored = TriggerEngine.from_state_dict(state)
    second = restored.process(stream[half:], until=end)
    assert Decisions.concat([first, second]).sorted().equals(expected)
    assert len(expected) > 20
    assert restored.stats().equals(whole.stats())


@both_engines
def test_shallow_state_dict_is_live_and_restores_when_pickled_at_once(engine_name, rng):
    from experiments.synthetic import generate_events, generate_subscribers

    subs = generate_subscribers(200, rng, start_id=10_000)
    stream = generate_events(subs, rng, days=3)
    end = int(stream.time[-1]) + 2 * DAY
    half = len(stream) // 2
    e = TriggerEngine(default_rules(), subscribers=subs, engine=engine_name)
    e.process(stream[:half], until=int(stream.time[half - 1]))
    deep, shallow = e.state_dict(), e.state_dict(deep=False)
    pickled = pickle.dumps(shallow)                    # what a checkpoint does
    expected = e.process(stream[half:], until=end)
    restored = TriggerEngine.from_state_dict(pickle.loads(pickled))
    assert restored.process(stream[half:], until=end).equals(expected)
    assert TriggerEngine.from_state_dict(deep).stats().equals(
        TriggerEngine.from_state_dict(pickle.loads(pickled)).stats())
    # the shallow state moved on with the engine; the deep copy did not
    assert pickle.dumps(shallow["core"]) != pickle.dumps(deep["core"])
    assert pickle.loads(pickled)["core"].keys() == deep["core"].keys()


@both_engines
def test_sparse_int64_ids(engine_name):
    ids = [-5, 3, 2**40, 17]
    subs = subscribers({i: {"stage": "x"} for i in ids})
    e = engine(engine_name, CART, subs=subs)
    batch = events(*[(i, NOON, "add_to_cart", {"cart_value": 40.0}) for i in [*ids, 99]])
    d = e.process(batch, until=NOON + DAY)
    assert sorted(d.subscriber.tolist()) == sorted(ids)
    assert np.all(d.kind == 0)


def test_engine_argument_errors():
    subs = subscribers({1: {}})
    with pytest.raises(ValueError, match=r"engine: expected 'fast' or 'reference', got 'turbo'"):
        TriggerEngine(default_rules(), subscribers=subs, engine="turbo")
    with pytest.raises(ValueError, match=r"on_late: expected 'raise' or 'drop', got 'ignore'"):
        TriggerEngine(default_rules(), subscribers=subs, on_late="ignore")
    with pytest.raises(ValueError, match=r"subscribers: expected a pandas DataFrame"):
        TriggerEngine(default_rules(), subscribers={1: {}})  # type: ignore[arg-type]
    e = TriggerEngine(default_rules(), subscribers=subs)
    with pytest.raises(InvalidEventError, match=r"events: expected an EventBatch, got list"):
        e.process([])  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"until: expected int seconds"):
        e.process(events(), until="tomorrow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"state: expected a TriggerEngine.state_dict"):
        TriggerEngine.from_state_dict({"version": 0})


def test_engine_stores_parameters_unchanged():
    subs = subscribers({1: {}})
    rules = {"rules": [CART]}
    before = subs.copy()
    e = TriggerEngine(rules, subscribers=subs, engine="reference")
    assert e.rules is rules and not hasattr(e, "subscribers")   # the table is read, not kept
    assert rules == {"rules": [CART]}
    pd.testing.assert_frame_equal(subs, before)                # nor changed


@both_engines
def test_engine_object_pickles_mid_stream(engine_name):
    e = engine(engine_name, CART)
    e.process(events((1, NOON, "add_to_cart", {"cart_value": 40.0})), until=NOON + 60)
    clone = pickle.loads(pickle.dumps(e))
    rest = events((2, NOON + 120, "add_to_cart", {"cart_value": 40.0}))
    assert rows(clone.process(rest, until=NOON + DAY)) == rows(e.process(rest, until=NOON + DAY))
    assert clone.n_pending() == e.n_pending() == 0


def test_segment_mask_matches_predicate_semantics():
    from policies.triggers import Predicate, segment_mask

    df = pd.DataFrame(
        {
            "stage": ["a", "b", None, "a", 3],
            "score": [0.2, 0.5, 0.9, float("nan"), 0.5],
            "flag": [True, False, True, True, False],
            "n": [1, 2, 3, 4, 5],
        },
        index=pd.Index([10, 11, 12, 13, 14], name="subscriber"),
    )
    preds = [
        Predicate("stage", "in", ("a", "b")), Predicate("stage", "equals", "a"),
        Predicate("score", "min", 0.5), Predicate("score", "max", 0.5),
        Predicate("score", "equals", 0.5), Predicate("flag", "equals", True),
        Predicate("n", "in", (2, 5)), Predicate("n", "equals", "2"),
        Predicate("stage", "min", 1), Predicate("missing", "equals", 1),
    ]
    for p in preds:
        expected = [p.matches(v) for v in (df[p.column] if p.column in df else [None] * 5)]
        assert segment_mask(df, [p]).tolist() == expected, p
    assert segment_mask(df, [preds[0], preds[2]]).tolist() == [False, True, False, False, False]
