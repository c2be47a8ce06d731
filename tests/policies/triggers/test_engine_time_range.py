"""The engine's own event-time range (``min_time`` / ``max_time``): a service that builds
batches elsewhere still bounds what the engine accepts. Out-of-range events raise, or
with ``on_late="drop"`` are skipped and counted, in both engines alike; the range
bounds ``until`` and ``now`` too and survives a checkpoint."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from trigger_helpers import DAY, HOUR, T0, both_engines, events, rows, subscribers

from policies import EventBatch
from policies.errors import InvalidEventError, LateEventError
from policies.event_schema import EVENT_TYPES, MAX_TIME, MIN_TIME
from policies.triggers import STAT_NAMES, TriggerEngine, load_rules

CART: dict[str, Any] = {
    "id": "cart",
    "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "60m"}],
    "exclude": ["purchase_completed"],
    "delay": "1h",
    "expire": "1d",
}
BROWSE: dict[str, Any] = {
    "id": "browse",
    "type": "browse_abandonment",
    "when": [{"event": "product_view", "within": "2h"}],
    "delay": "2h",
    "expire": "1d",
}
NOW = T0 + 12 * HOUR
LIVE = {"min_time": NOW - 7 * DAY, "max_time": NOW + 300}  # a week back, 5 min of skew


def _engine(name: str, **kw: Any) -> TriggerEngine:
    return TriggerEngine(load_rules({"rules": [CART, BROWSE]}),
                         subscribers=subscribers({1: {}, 2: {}}), engine=name, **kw)


def _batch(times: list[int], types: list[str] | None = None) -> EventBatch:
    types = types or ["add_to_cart"] * len(times)
    # the constructor takes int64 arrays as they are: batches built without the checks
    return EventBatch(np.arange(len(times)) % 2 + 1, np.array(times, np.int64),
                      np.array([EVENT_TYPES.code(t) for t in types], np.int64))


#: (engine range, event times, message regex of the raise; the out-of-range ones are
#: the events outside the range)
CASES = [
    (LIVE, [NOW - 60, NOW + 86_400], rf"got {NOW + 86_400} .*1 of 2 events outside"),
    (LIVE, [NOW - 60, NOW + 300], rf"\[{NOW - 7 * DAY}, {NOW + 300}\) \(2025-12-29T12:00:00Z "
                                  rf"to 2026-01-05T12:05:00Z\), got {NOW + 300} "),
    (LIVE, [NOW - 8 * DAY, NOW - 60], rf"got {NOW - 8 * DAY} "),
    (LIVE, [(NOW - 60) * 1000, NOW - 30],
     rf"got {(NOW - 60) * 1000} \(looks like milliseconds: {NOW - 60} s is "
     r"2026-01-05T11:59:00Z\)"),
    (LIVE, [NOW - 8 * DAY, NOW, NOW + DAY], rf"got {NOW - 8 * DAY} .*2 of 3 events outside"),
    ({"max_time": NOW + 300}, [MIN_TIME, NOW + 301],
     rf"\[{MIN_TIME}, {NOW + 300}\) \(2000-01-01 to 2026-01-05T12:05:00Z\), got {NOW + 301} "),
    ({"min_time": NOW}, [NOW - 1, NOW], rf"\[{NOW}, {MAX_TIME}\).*got {NOW - 1} "),
    ({}, [NOW, MAX_TIME], rf"got {MAX_TIME} "),
    ({}, [NOW, 2**63 - 1], r"got 9223372036854775807 "),
]


@both_engines
@pytest.mark.parametrize(("bounds", "times", "message"), CASES)
def test_out_of_range_events_raise_before_anything_is_handled(engine_name, bounds, times,
                                                              message) -> None:
    e = _engine(engine_name, **bounds)
    with pytest.raises(InvalidEventError, match=rf"^events\.time: expected seconds since the "
                                                rf"epoch in .*{message}"):
        e.process(_batch(times))
    assert e.clock is None and e.n_pending() == 0
    assert e.stats()["out_of_range"].sum() == 0


@both_engines
@pytest.mark.parametrize(("bounds", "times", "message"), CASES)
def test_with_on_late_drop_they_are_skipped_and_counted(engine_name, bounds, times,
                                                        message) -> None:
    lo, hi = bounds.get("min_time", MIN_TIME), bounds.get("max_time", MAX_TIME)
    e = _engine(engine_name, on_late="drop", **bounds)
    batch = _batch(times)
    inside = (batch.time >= lo) & (batch.time < hi)
    d = e.process(batch)
    clean = _engine(engine_name, **bounds)
    assert rows(d) == rows(clean.process(batch[inside]))
    assert e.clock == clean.clock  # dropped events never move the clock
    st = e.stats()
    assert st.loc["cart", "out_of_range"] == int((~inside).sum())  # add_to_cart: cart only
    assert st.loc["browse", "out_of_range"] == 0 and st["late"].sum() == 0
    assert st.drop(columns="out_of_range").equals(clean.stats().drop(columns="out_of_range"))


def test_both_engines_count_alike_and_by_the_rules_that_mention_the_type() -> None:
    stats = []
    for name in ("reference", "fast"):
        e = _engine(name, on_late="drop", **LIVE)
        e.process(_batch([NOW - 9 * DAY, NOW - 8 * DAY, NOW, NOW + DAY, NOW + 2 * DAY],
                         ["add_to_cart", "product_view", "page_view", "purchase_completed",
                          "page_view"]))
        e.process(_batch([NOW - 10], ["add_to_cart"]))  # late: counted as late, not here
        stats.append(e.stats())
    assert stats[0].equals(stats[1])
    # add_to_cart and purchase_completed (its exclude) concern cart, product_view browse,
    # page_view no rule
    assert stats[0]["out_of_range"].to_dict() == {"cart": 2, "browse": 1}
    assert stats[0]["late"].to_dict() == {"cart": 1, "browse": 0}
    assert e.n_out_of_range() == 4 and e.n_late() == 1  # each dropped event once
    assert list(stats[0].columns) == list(STAT_NAMES) and STAT_NAMES[-1] == "out_of_range"


@both_engines
@pytest.mark.parametrize(("call", "value", "message"), [
    ("until", NOW + 300, rf"^until: expected seconds since the epoch in \[{NOW - 7 * DAY}, "
                         rf"{NOW + 300}\) .*got {NOW + 300}$"),
    ("until", NOW - 8 * DAY, rf"^until: expected .*got {NOW - 8 * DAY}$"),
    ("now", NOW + 301, rf"^now: expected .*got {NOW + 301}$"),
    ("now", NOW - 8 * DAY, rf"^now: expected .*got {NOW - 8 * DAY}$"),
])
def test_until_and_now_lie_in_the_range_too(engine_name, call, value, message) -> None:
    e = _engine(engine_name, on_late="drop", **LIVE)
    with pytest.raises(InvalidEventError, match=message):
        if call == "until":
            e.process(EventBatch.empty(), until=value)
        else:
            e.report_failures([], now=value)
    assert e.clock is None


@both_engines
def test_a_live_service_moves_the_upper_bound(engine_name) -> None:
    e = _engine(engine_name, on_late="drop", max_time=NOW + 300)
    cart = events((1, NOW, "add_to_cart", {"cart_value": 40.0}))
    e.process(cart, until=NOW + 60)
    ahead = _batch([NOW + HOUR])  # a source clock an hour fast
    e.process(ahead, until=NOW + 120)
    assert e.stats().loc["cart", "out_of_range"] == 1
    e.set_time_range(max_time=NOW + 2 * HOUR + 300)  # an hour later, the same event is fine
    d = e.process(ahead, until=NOW + 2 * HOUR)
    # the first cart's send, then the one the formerly out-of-range event started
    assert [(r[0], r[3], r[4]) for r in rows(d)] == [("fire", NOW + HOUR, NOW),
                                                     ("fire", NOW + 2 * HOUR, NOW + HOUR)]
    assert (e.min_time, e.max_time) == (MIN_TIME, NOW + 2 * HOUR + 300)
    late = _engine(engine_name, max_time=NOW + 300)  # the range leaves lateness as it was
    late.process(_batch([NOW]), until=NOW + 10)
    with pytest.raises(LateEventError):
        late.process(_batch([NOW - 5]))


@both_engines
def test_the_range_and_the_counts_survive_a_checkpoint(engine_name) -> None:
    e = _engine(engine_name, on_late="drop", **LIVE)
    e.process(_batch([NOW - 60, NOW + DAY]))
    restored = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(e.state_dict())))
    assert (restored.min_time, restored.max_time) == (LIVE["min_time"], LIVE["max_time"])
    assert restored.stats().equals(e.stats())
    for x in (e, restored):
        x.process(_batch([NOW + 2 * DAY]), until=NOW + 200)
    assert restored.stats().equals(e.stats())
    assert restored.stats().loc["cart", "out_of_range"] == 2
    assert restored.n_out_of_range() == e.n_out_of_range() == 2
    # a state saved before the engine had a range of its own: the default range, no counts
    old = e.state_dict()
    for key in ("min_time", "max_time", "out_of_range", "n_out_of_range"):
        del old[key]
    legacy = TriggerEngine.from_state_dict(old)
    assert (legacy.min_time, legacy.max_time) == (MIN_TIME, MAX_TIME)
    assert legacy.stats()["out_of_range"].sum() == 0 and legacy.n_out_of_range() == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_time": NOW, "max_time": NOW}, rf"^max_time: expected > min_time \({NOW}\), "
                                         rf"got {NOW}$"),
    ({"max_time": MIN_TIME}, r"^max_time: expected > min_time"),
    ({"min_time": -1}, r"^min_time: expected int seconds since the epoch in \[0, "),
    ({"max_time": 10**30}, r"^max_time: expected int seconds since the epoch"),
    ({"max_time": float(NOW)}, r"^max_time: expected int seconds"),
    ({"min_time": True}, r"^min_time: expected int seconds"),
    ({"max_time": "now"}, r"^max_time: expected int seconds"),
])
def test_bad_ranges_are_refused(kwargs, message) -> None:
    with pytest.raises(InvalidEventError, match=message):
        _engine("fast", **kwargs)
    e = _engine("reference")
    with pytest.raises(InvalidEventError, match=message):
        e.set_time_range(**kwargs)
    assert (e.min_time, e.max_time) == (MIN_TIME, MAX_TIME)  # unchanged
