"""Issue 19, section 1: extreme input never breaks the engines and never splits them.

Every time (``until``, ``now``, event times) and every duration is bounded at validation,
so the fast engine's int64 arithmetic cannot overflow or loop; the subscriber table is
checked once for both engines; and on the extremes that remain valid (times at the
range's edges, durations at their maximum) the two engines decide identically.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trigger_helpers import DAY, HOUR, T0, both_engines, events, rows, subscribers

from policies import EventBatch
from policies.errors import InvalidEventError, LateEventError, RuleError, TriggerLabValueError
from policies.event_schema import MAX_TIME, MIN_TIME
from policies.triggers import Decisions, TriggerEngine, load_rules
from policies.triggers.durations import MAX_DURATION, parse_duration
from policies.triggers.ruleset import Condition, FrequencyCap, Retry, Rule

CART: dict[str, Any] = {
    "id": "cart",
    "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "60m"}],
    "exclude": ["purchase_completed"],
    "delay": "1h",
    "expire": "1d",
}
RANGE = r"expected seconds since the epoch in \[946684800, 4102444800\)"


def _engine(name: str, rule: dict | None = None, settings: dict | None = None,
            subs: pd.DataFrame | None = None) -> TriggerEngine:
    spec: dict[str, Any] = {"rules": [rule or CART]}
    if settings:
        spec["settings"] = settings
    subs = subscribers({1: {}, 2: {}}) if subs is None else subs
    return TriggerEngine(load_rules(spec), subscribers=subs, engine=name)


# -- until / now -------------------------------------------------------------------

BAD_UNTIL = [
    (9 * 10**18, RANGE + r".*got 9000000000000000000"),  # fast engine looped for minutes
    (2**70, RANGE + r".*got 1180591620717411303424"),   # OverflowError in the fast engine
    (2**63, RANGE),
    (np.int64(2**63 - 1), RANGE),
    (np.uint64(2**64 - 1), RANGE),
    (-(2**70), RANGE),
    (-1, RANGE + r".*got -1$"),
    (0, RANGE + r".*got 0$"),
    (MIN_TIME - 1, RANGE),
    (MAX_TIME, RANGE + r".*got 4102444800$"),
    (T0 * 1000, r"looks like milliseconds"),
    (True, r"expected int seconds since the epoch, got True"),
    (float(T0), r"expected int seconds since the epoch, got 1767571200.0"),
    (float("nan"), r"expected int seconds since the epoch, got nan"),
    (str(T0), r"expected int seconds since the epoch, got '1767571200'"),
]


@both_engines
@pytest.mark.parametrize(("until", "message"), BAD_UNTIL)
def test_until_out_of_range_is_rejected_by_both_engines(engine_name, until, message) -> None:
    e = _engine(engine_name)
    e.process(events((1, T0, "add_to_cart")))
    started = time.perf_counter()
    with pytest.raises(InvalidEventError, match=rf"^until: (.*)?{message}"):
        e.process(EventBatch.empty(), until=until)
    assert time.perf_counter() - started < 5
    assert e.clock == T0  # nothing moved
    assert e.n_pending() == 1


@both_engines
@pytest.mark.parametrize(("now", "message"), BAD_UNTIL[:6])
def test_report_failures_now_out_of_range(engine_name, now, message) -> None:
    e = _engine(engine_name)
    d = e.process(events((1, T0, "add_to_cart")), until=T0 + 2 * HOUR)
    with pytest.raises(InvalidEventError, match=rf"^now: (.*)?{message}"):
        e.report_failures(d, now=now)


@both_engines
def test_until_at_the_edges_of_the_range(engine_name) -> None:
    e = _engine(engine_name)
    d = e.process(events((1, T0, "add_to_cart")), until=MAX_TIME - 1)
    assert rows(d) == [("fire", "cart", 1, T0 + HOUR, T0, 1)]
    with pytest.raises(LateEventError, match=r"^until: 1767571199 is before the engine clock"):
        e.process(EventBatch.empty(), until=T0 - 1)
    early = _engine(engine_name)
    assert len(early.process(EventBatch.empty(), until=MIN_TIME)) == 0


# -- event times of batches built without the checks --------------------------------

@both_engines
@pytest.mark.parametrize(
    ("times", "message"),
    [([T0, T0 * 1000], r"got 1767571200000 \(looks like milliseconds"),
     ([0, T0], r"got 0 \("),
     ([-(2**62), T0], r"got -4611686018427387904 "),
     ([T0, 2**63 - 1], r"got 9223372036854775807 "),
     ([MAX_TIME], r"got 4102444800 ")],
)
def test_unchecked_batch_times_are_rejected(engine_name, times, message) -> None:
    e = _engine(engine_name)
    batch = EventBatch(np.ones(len(times), np.int64), np.array(times, np.int64),
                       np.full(len(times), 2, np.int64))
    with pytest.raises(InvalidEventError, match=rf"^events\.time: {RANGE}.*{message}"):
        e.process(batch)
    assert e.clock is None


# -- durations ----------------------------------------------------------------------

AT_MOST = r"expected a duration of at most 36500d \(100 years\), got "


def _with(path: str, value: Any) -> dict:
    rule = {**CART, "when": [dict(CART["when"][0])]}
    spec: dict[str, Any] = {"rules": [rule], "settings": {}}
    if path == "within":
        rule["when"][0]["within"] = value
    elif path in ("delay", "expire"):
        rule[path] = value
        if path == "delay":
            rule["expire"] = value
    elif path == "cooldown":
        rule["reentry"] = {"cooldown": value}
    elif path == "per":
        spec["settings"]["frequency_cap"] = {"max": 1, "per": value}
    else:
        spec["settings"]["retry"] = {"max_attempts": 2, "backoff": value}
    return spec


PATHS = {
    "within": r"rules\[0\]\.when\[0\]\.within",
    "delay": r"rules\[0\]\.delay",
    "expire": r"rules\[0\]\.expire",
    "cooldown": r"rules\[0\]\.reentry\.cooldown",
    "per": r"settings\.frequency_cap\.per",
    "backoff": r"settings\.retry\.backoff",
}

BAD_DURATIONS = [
    ("100000000000000d", AT_MOST + r"'100000000000000d'"),   # engines disagreed
    ("1000000000000000d", AT_MOST + r"'1000000000000000d'"),  # overflowed at run time
    ("36501d", AT_MOST + r"'36501d'"),
    ("876001h", AT_MOST),
    ("3153600001s", AT_MOST),
    ("9" * 5000 + "s", AT_MOST),  # beyond Python's int-from-string digit limit
    ("-5m", r"expected a duration like '30m', got '-5m'"),
    ("1.5h", r"expected a duration like '30m', got '1.5h'"),
    ("\u0663d", r"expected a duration like '30m', got '\u0663d'"),  # Arabic-Indic 3
    ("inf d", r"expected a duration like '30m'"),
    (10**20, r"expected a duration like '30m', got 100000000000000000000"),
    (float("nan"), r"expected a duration like '30m', got nan"),
    (True, r"expected a duration like '30m', got True"),
]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("value", "message"), BAD_DURATIONS)
def test_every_duration_is_bounded_at_validation(path, value, message) -> None:
    with pytest.raises(RuleError, match=rf"^{PATHS[path]}: {message}"):
        load_rules(_with(path, value))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [("within", "0s", r"expected a positive duration"),
     ("per", "0s", r"expected a positive duration"),
     ("backoff", "0m", r"expected a positive duration"),
     ("cooldown", "0d", r"expected a positive duration")],
)
def test_zero_durations_where_they_mean_nothing(path, value, message) -> None:
    with pytest.raises(RuleError, match=rf"^{PATHS[path]}: {message}"):
        load_rules(_with(path, value))


@pytest.mark.parametrize("path", list(PATHS))
def test_the_longest_duration_is_accepted(path) -> None:
    load_rules(_with(path, "36500d"))
    assert parse_duration("36500d") == MAX_DURATION == 36500 * DAY
    assert parse_duration("0s") == 0 and parse_duration("000001m") == 60


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda: Condition("add_to_cart", within=MAX_DURATION + 1), r"^within: expected a positive"),
     (lambda: Condition("add_to_cart", within=2**70), r"^within: expected a positive"),
     (lambda: Rule("r", "cart_abandonment", (Condition("add_to_cart", 60),), delay=0,
                   expire=2**70), r"^expire: expected a duration <= 36500d"),
     (lambda: Rule("r", "cart_abandonment", (Condition("add_to_cart", 60),), delay=2**70,
                   expire=2**71), r"^delay: expected a duration >= 0 and <= 36500d"),
     (lambda: Rule("r", "cart_abandonment", (Condition("add_to_cart", 60),), delay=0,
                   expire=0, reentry="cooldown", cooldown=2**70),
      r"^cooldown: expected a positive duration"),
     (lambda: FrequencyCap(max=1, per=2**70), r"^per: expected a positive duration"),
     (lambda: FrequencyCap(max=1, per=True), r"^per: expected a positive duration"),
     (lambda: Retry(backoff=2**70), r"^backoff: expected a positive duration")],
)
def test_dataclasses_bound_durations_too(make, message) -> None:
    with pytest.raises(RuleError, match=message):
        make()


# -- the subscriber table -----------------------------------------------------------

def _table(index: Any, **cols: Any) -> pd.DataFrame:
    return pd.DataFrame(cols or {"stage": ["a"] * len(index)},
                        index=pd.Index(index, name="subscriber"))


BAD_TABLES = [
    (lambda: _table([1, 2, 1]), r"^subscribers\.index\[2\]: duplicate subscriber id 1$"),
    (lambda: _table(np.array([1, 2**64 - 1], np.uint64)),
     r"^subscribers\.index\[1\]: expected an int64 subscriber id, got 18446744073709551615"),
    (lambda: _table([1.0, 2.0]), r"^subscribers: expected an integer index"),
    (lambda: _table([1, 2], utc_offset_minutes=[0, 10**6]),
     r"^subscribers\.utc_offset_minutes\[1\]: expected whole minutes in \[-1440, 1440\] or "
     r"missing, got 1000000"),
    (lambda: _table([1, 2], utc_offset_minutes=[0.0, np.inf]),
     r"^subscribers\.utc_offset_minutes\[1\]: expected whole minutes"),
    (lambda: _table([1, 2], utc_offset_minutes=[0.0, 30.5]),
     r"^subscribers\.utc_offset_minutes\[1\]: expected whole minutes .*got 30.5"),
    (lambda: _table([1, 2], utc_offset_minutes=[0, -1441]),
     r"^subscribers\.utc_offset_minutes\[1\]: expected whole minutes"),
    (lambda: _table([1, 2], utc_offset_minutes=["x", "y"]),
     r"^subscribers\.utc_offset_minutes\[0\]: expected whole minutes in \[-1440, 1440\] or "
     r"missing, got 'x' \(subscriber 1; 2 bad rows\)$"),
    (lambda: _table([1, 2], utc_offset_minutes=[True, False]),
     r"^subscribers\.utc_offset_minutes\[0\]: expected whole minutes .*, got True "
     r"\(subscriber 1; 2 bad rows\)$"),
]


@both_engines
@pytest.mark.parametrize(("make", "message"), BAD_TABLES)
def test_bad_subscriber_tables_are_rejected_by_both_engines(engine_name, make, message) -> None:
    with pytest.raises(TriggerLabValueError, match=message):
        _engine(engine_name, subs=make())
    e = _engine(engine_name)
    with pytest.raises(TriggerLabValueError, match=message):
        e.update_subscribers(make())


@both_engines
def test_valid_extreme_tables(engine_name) -> None:
    subs = _table([-(2**63), 2**63 - 1, 0], utc_offset_minutes=[-1440, 1440, np.nan])
    e = _engine(engine_name, subs=subs)
    d = e.process(events((-(2**63), T0, "add_to_cart"), (2**63 - 1, T0, "add_to_cart"),
                         (0, T0, "add_to_cart")), until=T0 + DAY)
    assert sorted(d.subscriber.tolist()) == [-(2**63), 0, 2**63 - 1]


# -- categories the fast engine treats as missing -----------------------------------

@both_engines
def test_negative_category_codes_are_missing_in_both_engines(engine_name) -> None:
    rule = {**CART, "when": [{"event": "add_to_cart", "within": "60m",
                              "where": {"category": {"max": 3}}}]}
    e = _engine(engine_name, rule)
    batch = EventBatch(np.array([1, 2]), np.array([T0, T0]), np.array([2, 2]),
                       {"category": np.array([-5, 2])})
    d = e.process(batch, until=T0 + DAY)
    assert d.subscriber.tolist() == [2]


# -- differential: both engines agree on the extremes that remain valid -------------

EDGE_TIMES = [MIN_TIME, MIN_TIME + 1, T0, MAX_TIME - 2 * MAX_DURATION // 100_000,
              MAX_TIME - DAY, MAX_TIME - 2, MAX_TIME - 1]
EDGE_DURATIONS = ["0s", "1s", "59s", "1h", "36499d", "36500d"]


@st.composite
def extreme_specs(draw: Any) -> dict:
    delay = draw(st.sampled_from(EDGE_DURATIONS))
    expire = draw(st.sampled_from([d for d in EDGE_DURATIONS
                                   if parse_duration(d) >= parse_duration(delay)]))
    rule: dict[str, Any] = {
        "id": "r0", "type": "cart_abandonment",
        "when": [{"event": "add_to_cart", "count": draw(st.sampled_from([1, 2])),
                  "within": draw(st.sampled_from(EDGE_DURATIONS[1:]))}],
        "exclude": draw(st.sampled_from([[], ["purchase_completed"]])),
        "delay": delay, "expire": expire,
        "reentry": draw(st.sampled_from(["always", "once",
                                         {"cooldown": draw(st.sampled_from(EDGE_DURATIONS[1:]))}])),
    }
    spec: dict[str, Any] = {"rules": [rule], "settings": {
        "retry": {"max_attempts": draw(st.sampled_from([1, 100])),
                  "backoff": draw(st.sampled_from(EDGE_DURATIONS[1:]))}}}
    if draw(st.booleans()):
        spec["settings"]["frequency_cap"] = {"max": draw(st.sampled_from([1, 64])),
                                             "per": draw(st.sampled_from(EDGE_DURATIONS[1:]))}
    if draw(st.booleans()):
        spec["settings"]["quiet_hours"] = {"start": "23:59", "end": "00:00"}
    return spec


@settings(max_examples=60, deadline=None)
@given(spec=extreme_specs(), data=st.data())
def test_engines_agree_on_extreme_times_and_durations(spec, data) -> None:
    times = sorted(data.draw(st.lists(st.sampled_from(EDGE_TIMES), min_size=1, max_size=8)))
    types = data.draw(st.lists(st.sampled_from([2, 2, 6]), min_size=len(times),
                               max_size=len(times)))
    ids = data.draw(st.lists(st.sampled_from([-(2**63), 0, 2**63 - 1]), min_size=len(times),
                             max_size=len(times)))
    batch = EventBatch(np.array(ids, np.int64), np.array(times, np.int64),
                       np.array(types, np.int64))
    cut = data.draw(st.integers(0, len(times)))
    until = data.draw(st.sampled_from([None, MAX_TIME - 1]))
    offsets = data.draw(st.lists(st.sampled_from([-1440, 0, 1440]), min_size=3, max_size=3))
    subs = _table([-(2**63), 0, 2**63 - 1], utc_offset_minutes=offsets)
    results = []
    for name in ("reference", "fast"):
        e = TriggerEngine(load_rules(spec), subscribers=subs, engine=name)
        first = e.process(batch[:cut], until=None)
        second = e.process(batch[cut:], until=until)
        # report_failures decides what is due by its `now` first: pick the latest sends
        # after that, or a send decided there would make the reported one not the latest
        due = e.process(EventBatch.empty(), until=MAX_TIME - 1)
        fires = Decisions.concat([second, due]).sorted().to_pandas()
        fires = fires[fires["kind"] == "fire"].drop_duplicates(["subscriber", "rule"],
                                                               keep="last")
        failed = e.report_failures(list(fires["trigger_id"]), MAX_TIME - 1) if len(fires) else None
        results.append((first, Decisions.concat([second, due]), failed, e.stats(),
                        e.n_pending()))
    (f1, s1, x1, st1, n1), (f2, s2, x2, st2, n2) = results
    assert f1.equals(f2) and s1.equals(s2) and st1.equals(st2) and n1 == n2
    closed = st1[["fired", "cancelled", "expired", "suppressed", "pending"]].sum(axis=1)
    assert (st1["entered"] + st1["failed"]).equals(closed)
    assert (x1 is None) == (x2 is None) and (x1 is None or x1.equals(x2))
