"""Issue 19, section 1: one bad event must not break (or fool) the batch builders.

Every class of bad core value -- times out of range or in the wrong unit, values beyond
int64, the wrong kind of id -- is rejected with a message naming the row and the field,
whichever way the batch is built (records, quarantine, pandas, arrow, the constructor),
and ``validate="quarantine"`` keeps the good rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import EventBatch, InvalidEventError
from policies.event_schema import (
    MAX_TIME,
    MIN_TIME,
    check_time,
    parse_time,
    time_range_error,
)

T0 = 1_700_000_000
RANGE = (r"expected seconds since the epoch in \[946684800, 4102444800\) "
         r"\(2000-01-01 to 2100-01-01\)")

#: (time value, message regex after "records[1].time: ")
BAD_TIMES = [
    (T0 * 1000, RANGE + r", got 1700000000000 \(looks like milliseconds: 1700000000 s is "
                        r"2023-11-14T22:13:20Z\)"),
    (T0 * 10**6, r"looks like microseconds"),
    (T0 * 10**9, r"looks like nanoseconds"),
    (10**30, RANGE + r", got 10{30}$"),
    (2**64, RANGE + r", got 18446744073709551616$"),
    (-(2**70), RANGE + r", got -1180591620717411303424$"),
    (-5, RANGE + r", got -5$"),
    (0, RANGE + r", got 0$"),
    (MIN_TIME - 1, RANGE + r", got 946684799$"),
    (MAX_TIME, RANGE + r", got 4102444800$"),
    (np.int64(2**62), RANGE),
    (np.uint64(2**64 - 1), RANGE),
    (float(T0) * 1000, r"looks like milliseconds"),
    (1e300, RANGE),
    (float("nan"), r"expected whole seconds since the epoch, got nan"),
    (float("inf"), r"expected whole seconds since the epoch, got inf"),
    (-float("inf"), r"expected whole seconds since the epoch, got -inf"),
    (np.float32("nan"), r"expected whole seconds since the epoch"),
    (T0 + 0.5, r"expected whole seconds since the epoch, got 1700000000.5"),
    (Decimal("NaN"), r"expected seconds since the epoch or an aware time, got Decimal"),
    (True, r"expected seconds since the epoch, got True"),
    ("9999-01-01T00:00:00+00:00", RANGE + r", got 253370764800$"),
    ("1969-12-31T23:59:59+00:00", RANGE + r", got -1$"),
    ("0001-01-01T00:00:00+14:00", RANGE + r", got -62135647200$"),
    ("9999-12-31T23:59:59-14:00", RANGE + r", got 253402351199$"),
    ("2024-05-01T12:00:00", r"expected a timezone-aware time, got naive"),
    ("yesterday", r"expected an ISO-8601 time with offset"),
    ("", r"expected an ISO-8601 time with offset"),
    (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), RANGE + r", got 946684740$"),
    (datetime(2150, 1, 1, tzinfo=timezone(timedelta(hours=5))), RANGE),
    (datetime(2024, 1, 1), r"expected a timezone-aware time, got naive"),  # noqa: DTZ001
    (np.datetime64("2024-01-01T00:00:00"), r"numpy datetime64 .* \(no zone\)"),
    (np.datetime64("NaT"), r"numpy datetime64"),
    ([T0], r"expected seconds since the epoch or an aware time, got \[1700000000\]"),
]

#: (subscriber value, message regex after "records[1].subscriber: ")
BAD_SUBSCRIBERS = [
    (2**64, r"expected an integer id in \[-2\*\*63, 2\*\*63\), got 18446744073709551616$"),
    (2**63, r"got 9223372036854775808$"),
    (-(2**63) - 1, r"got -9223372036854775809$"),
    (np.uint64(2**64 - 1), r"got np.uint64\(18446744073709551615\)$"),
    (7.0, r"got 7.0$"),
    (7.5, r"got 7.5$"),
    (float("nan"), r"got nan$"),
    (True, r"got True$"),
    ("7", r"got '7'$"),
    (Decimal(7), r"got Decimal\('7'\)$"),
]


def _records(**bad: object) -> list[dict]:
    return [
        {"subscriber": 1, "time": T0, "type": "add_to_cart"},
        {"subscriber": 2, "time": T0 + 1, "type": "add_to_cart", **bad},
        {"subscriber": 3, "time": T0 + 2, "type": "add_to_cart"},
    ]


def _cases() -> list:
    return ([pytest.param("time", v, m, id=f"time={v!r}"[:40]) for v, m in BAD_TIMES]
            + [pytest.param("subscriber", v, m, id=f"subscriber={v!r}"[:40])
               for v, m in BAD_SUBSCRIBERS]
            + [pytest.param("type", True, r"unknown event type True", id="type=True"),
               pytest.param("type", 2**64, r"unknown event type 18446744073709551616",
                            id="type=2**64"),
               pytest.param("type", 1.0, r"unknown event type 1.0", id="type=1.0"),
               pytest.param("cart_value", 10**400, r"expected a finite number, got 1000",
                            id="cart_value=10**400"),
               pytest.param("category", 2**64, r"expected a code in \[0, 2\*\*63\), got 1844",
                            id="category=2**64"),
               pytest.param("category", -2, r"expected a code in \[0, 2\*\*63\), got -2",
                            id="category=-2")])


@pytest.mark.parametrize(("field", "value", "message"), _cases())
def test_bad_value_raises_naming_row_and_field(field, value, message) -> None:
    with pytest.raises(InvalidEventError, match=rf"^records\[1\]\.{field}: (.*)?{message}"):
        EventBatch.from_records(_records(**{field: value}))


@pytest.mark.parametrize(("field", "value", "message"), _cases())
def test_quarantine_keeps_the_good_rows(field, value, message) -> None:
    good, rejected = EventBatch.from_records(_records(**{field: value}), validate="quarantine")
    assert good.subscriber.tolist() == [1, 3]
    assert rejected["index"].tolist() == [1] and rejected["field"].tolist() == [field]
    assert pd.Series(rejected["reason"]).str.contains(message).all()


def test_the_issue_example_no_longer_poisons_the_engine() -> None:
    """A millisecond time among good rows is quarantined; the clock stays in 2023."""
    from policies.triggers import TriggerEngine, default_rules

    recs = [{"subscriber": 1, "time": T0, "type": "add_to_cart"},
            {"subscriber": 1, "time": T0 * 1000, "type": "add_to_cart"},
            {"subscriber": 1, "time": T0 + 60, "type": "add_to_cart"}]
    good, rejected = EventBatch.from_records(recs, validate="quarantine")
    assert "looks like milliseconds" in rejected["reason"][0]
    subs = pd.DataFrame({"utc_offset_minutes": [0]}, index=pd.Index([1], name="subscriber"))
    engine = TriggerEngine(default_rules(), subscribers=subs)
    engine.process(good)
    assert engine.clock == T0 + 60
    engine.process(EventBatch.from_records([{"subscriber": 1, "time": T0 + 120,
                                             "type": "product_view"}]))


def test_time_range_is_configurable_for_live_use() -> None:
    now = T0
    recs = [{"subscriber": 1, "time": now + 3600, "type": "add_to_cart"},
            {"subscriber": 1, "time": now + 86400 * 400, "type": "add_to_cart"}]
    good, rejected = EventBatch.from_records(recs, validate="quarantine", max_time=now + 7200)
    assert len(good) == 1 and rejected["index"].tolist() == [1]
    assert "[946684800, 1700007200)" in rejected["reason"][0]
    df = pd.DataFrame(recs)
    with pytest.raises(InvalidEventError, match=r"^records\[1\]\.time: expected .*1700007200"):
        EventBatch.from_pandas(df, max_time=now + 7200)
    assert len(EventBatch.from_pandas(df)) == 2
    early = EventBatch.from_records([{"subscriber": 1, "time": 5, "type": "add_to_cart"}],
                                    min_time=0)
    assert early.time.tolist() == [5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_time": 10, "max_time": 10}, r"^max_time: expected > min_time \(10\), got 10$"),
     ({"min_time": -1}, r"^min_time: expected int seconds since the epoch in \[0, "),
     ({"max_time": 10**30}, r"^max_time: expected int seconds since the epoch"),
     ({"max_time": 2.5e9}, r"^max_time: expected int seconds"),
     ({"min_time": True}, r"^min_time: expected int seconds")],
)
def test_bad_time_bounds(kwargs, message) -> None:
    with pytest.raises(InvalidEventError, match=message):
        EventBatch.from_records(_records(), **kwargs)
    with pytest.raises(InvalidEventError, match=message):
        EventBatch.from_pandas(pd.DataFrame(_records()), **kwargs)


def _frame(**cols: object) -> pd.DataFrame:
    base: dict[str, object] = {"subscriber": [1, 2, 3], "time": [T0, T0 + 1, T0 + 2],
                               "type": ["add_to_cart"] * 3}
    return pd.DataFrame({**base, **cols})


@pytest.mark.parametrize(
    ("cols", "message"),
    [
        ({"time": [T0, T0 * 1000, T0]}, r"^records\[1\]\.time: .*looks like milliseconds"),
        ({"time": np.array([T0, 2**64 - 1, T0], np.uint64)},
         r"^records\[1\]\.time: expected seconds .*got 18446744073709551615"),
        ({"time": [T0, -5, T0]}, r"^records\[1\]\.time: expected seconds .*got -5$"),
        ({"time": [float(T0), 1e30, float(T0)]}, r"^records\[1\]\.time: expected seconds"),
        ({"time": [float(T0), T0 + 0.5, float(T0)]},
         r"^records\[1\]\.time: expected whole seconds since the epoch, got 1700000000.5$"),
        ({"time": [float(T0), np.inf, float(T0)]}, r"^records\[1\]\.time: expected whole"),
        ({"time": [float(T0), np.nan, float(T0)]}, r"^records\[1\]\.time: missing$"),
        ({"time": pd.to_datetime([T0, T0 * 1000 // 10**6 * 10**6, T0], unit="s", utc=True)},
         r"^records\[1\]\.time: expected seconds .*looks like milliseconds"),
        ({"time": pd.to_datetime([T0, 0, T0], unit="s", utc=True)},
         r"^records\[1\]\.time: expected seconds .*got 0$"),
        ({"time": [T0, "2300-01-01T00:00:00+00:00", T0]},
         r"^records\[1\]\.time: expected seconds .*got 10413792000$"),
        ({"time": [T0, 10**30, "2024-01-01T00:00:00Z"]},
         r"^records\[1\]\.time: expected seconds .*got 10{30}$"),
        ({"time": [True, False, True]}, r"^records\[0\]\.time: expected seconds since the epoch"),
        ({"time": pd.to_datetime([T0] * 3, unit="s")},
         r"^records\[0\]\.time: expected a timezone-aware time, got naive "
         r"'2023-11-14T22:13:20'$"),
        ({"subscriber": np.array([1, 2**64 - 1, 3], np.uint64)},
         r"^records\[1\]\.subscriber: expected an integer id in \[-2\*\*63, 2\*\*63\), got "
         r"18446744073709551615$"),
        ({"subscriber": [1, 2**64, 3]}, r"^records\[1\]\.subscriber: expected an integer id"),
        ({"subscriber": [1.0, 2.5, 3.0]},
         r"^records\[1\]\.subscriber: expected an integer id .*got 2.5$"),
        ({"subscriber": [1.0, 2.0**60, 3.0]}, r"^records\[1\]\.subscriber: expected an integer"),
        ({"subscriber": [1, "2", 3]}, r"^records\[1\]\.subscriber: expected an integer id"),
        ({"subscriber": [True, False, True]},
         r"^records\[0\]\.subscriber: expected an integer id .*got True$"),
        ({"subscriber": [1, None, 3]}, r"^records\[1\]\.subscriber: missing$"),
        ({"type": ["add_to_cart", None, "add_to_cart"]}, r"^records\[1\]\.type: missing$"),
        ({"type": ["add_to_cart", 500, "add_to_cart"]},
         r"^records\[1\]\.type: unknown event type 500$"),
        ({"type": [1, 99, 1]}, r"^records\[1\]\.type: unknown event type 99$"),
        ({"category": np.array([1, 2**64 - 1, 2], np.uint64)},
         r"^records\[1\]\.category: expected a code in \[0, 2\*\*63\)"),
        ({"category": [1, -7, 2]},
         r"^records\[1\]\.category: expected a code .*got -7$"),
        ({"category": [1.0, 2.5, np.nan]},
         r"^records\[1\]\.category: expected an integer code, got 2.5$"),
        ({"category": [1, 2**64, 2]},
         r"^records\[1\]\.category: expected a code in \[0, 2\*\*63\)"),
        ({"cart_value": [1.0, np.inf, 2.0]},
         r"^records\[1\]\.cart_value: expected a finite number, got inf$"),
        ({"cart_value": [True, False, True]},
         r"^records\[0\]\.cart_value: expected a number, got True$"),
    ],
)
def test_from_pandas_and_arrow_check_every_cell(cols, message) -> None:
    df = _frame(**cols)
    with pytest.raises(InvalidEventError, match=message):
        EventBatch.from_pandas(df)
    try:
        import pyarrow as pa
        table = pa.Table.from_pandas(df, preserve_index=False)
    except Exception:  # a column arrow itself cannot hold (ints beyond uint64)
        return
    with pytest.raises(InvalidEventError):
        EventBatch.from_arrow(table)


def test_from_pandas_keeps_valid_columns_unchanged() -> None:
    df = _frame(subscriber=[1.0, 2.0, -3.0], category=[1.0, np.nan, 4.0],
                product_id=np.array([2**62, 1, 2], np.uint64))
    b = EventBatch.from_pandas(df)
    assert b.subscriber.tolist() == [1, 2, -3]
    assert b.columns["category"].tolist() == [1, -1, 4]
    assert b.columns["product_id"].tolist() == [2**62, 1, 2]
    mixed = _frame(time=[T0, "2023-11-14T22:13:21+00:00", datetime.fromtimestamp(T0 + 2, UTC)])
    assert EventBatch.from_pandas(mixed).time.tolist() == [T0, T0 + 1, T0 + 2]


@pytest.mark.parametrize(
    ("column", "values"),
    [("time", [10**30]), ("time", [1.5]), ("time", np.array([2**64 - 1], np.uint64)),
     ("time", [np.nan]), ("time", ["x"]), ("subscriber", [2**64]), ("type", [2.5]),
     ("time", np.array([1e19]))],
)
def test_constructor_rejects_values_beyond_int64(column, values) -> None:
    cols = {"subscriber": [1], "time": [T0], "type": [1], column: values}
    with pytest.raises(InvalidEventError, match=rf"^{column}: expected int64 values, got "):
        EventBatch(cols["subscriber"], cols["time"], cols["type"])


def test_constructor_rejects_int_columns_beyond_int64() -> None:
    with pytest.raises(InvalidEventError, match=r"^columns\['category'\]: expected int64 "):
        EventBatch([1], [T0], [1], {"category": [2**64]})


@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_parse_time_accepts_exactly_the_range(t: int) -> None:
    if MIN_TIME <= t < MAX_TIME:
        assert parse_time(t) == t == check_time(t)
    else:
        with pytest.raises(InvalidEventError, match=r"^expected seconds since the epoch in"):
            parse_time(t)


@given(st.integers(min_value=MIN_TIME, max_value=MAX_TIME - 1))
def test_milliseconds_are_always_named(t: int) -> None:
    assert "looks like milliseconds" in time_range_error(t * 1000 + 999)
