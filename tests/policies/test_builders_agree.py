"""One bad cell, three ways in: ``from_records``, ``from_pandas`` and ``from_arrow`` give the
same outcome (raise, or keep the good rows and reject the bad one) with the same reason
text, in both ``validate`` modes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from policies import EventBatch, InvalidEventError

T0 = 1_700_000_000
RANGE = (r"expected seconds since the epoch in \[946684800, 4102444800\) "
         r"\(2000-01-01 to 2100-01-01\)")
AT = datetime.fromtimestamp(T0, UTC)

#: (id, field, the three rows' values of ``field`` (the others are good), pandas dtype
#: (None: inferred), rows rejected, reason regex)
CASES = [
    ("time-milliseconds", "time", [T0, T0 * 1000, T0 + 2], None, [1],
     RANGE + r", got 1700000000000 \(looks like milliseconds: 1700000000 s is "
             r"2023-11-14T22:13:20Z\)"),
    ("time-nanoseconds", "time", [T0, T0 * 10**9, T0 + 2], None, [1],
     RANGE + r", got 1700000000000000000 \(looks like nanoseconds: 1700000000 s is "
             r"2023-11-14T22:13:20Z\)"),
    ("time-negative", "time", [T0, -5, T0 + 2], None, [1], RANGE + r", got -5"),
    ("time-uint64-max", "time", [T0, 2**64 - 1, T0 + 2], "uint64", [1],
     RANGE + r", got 18446744073709551615"),
    ("time-beyond-int64", "time", [T0, 10**30, T0 + 2], None, [1], RANGE + r", got 10{30}"),
    ("time-missing", "time", [T0, None, T0 + 2], None, [1], r"missing"),
    ("time-fraction", "time", [T0, T0 + 0.5, T0 + 2], None, [1],
     r"expected whole seconds since the epoch, got 1700000000.5"),
    ("time-inf", "time", [T0, float("inf"), T0 + 2], None, [1],
     r"expected whole seconds since the epoch, got inf"),
    ("time-aware-out-of-range", "time",
     [AT, datetime(1999, 12, 31, 23, 59, tzinfo=UTC), AT], None, [1], RANGE + r", got 946684740"),
    ("time-naive-datetime", "time",
     [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)],  # noqa: DTZ001
     None, [0, 1, 2], r"expected a timezone-aware time, got naive '2024-01-01T00:00:00'"),
    ("time-iso-without-offset", "time",
     ["2023-11-14T22:13:20+00:00", "2024-05-01T12:00:00", "2023-11-14T22:13:22Z"], None, [1],
     r"expected a timezone-aware time, got naive '2024-05-01T12:00:00'"),
    ("time-mixed-object", "time", [T0, "yesterday", AT], None, [1],
     r"expected an ISO-8601 time with offset like '2024-05-01T12:00:00\+00:00', got 'yesterday'"),
    ("time-bool", "time", [T0, True, T0 + 2], None, [1],
     r"expected seconds since the epoch, got True"),
    ("subscriber-2**63", "subscriber", [1, 2**63, 3], None, [1],
     r"expected an integer id in \[-2\*\*63, 2\*\*63\), got 9223372036854775808"),
    ("subscriber-uint64-max", "subscriber", [1, 2**64 - 1, 3], "uint64", [1],
     r"expected an integer id .*, got 18446744073709551615"),
    ("subscriber-beyond-uint64", "subscriber", [1, 2**64, 3], None, [1],
     r"expected an integer id .*, got 18446744073709551616"),
    ("subscriber-below-int64", "subscriber", [1, -(2**63) - 1, 3], None, [1],
     r"expected an integer id .*, got -9223372036854775809"),
    ("subscriber-fraction", "subscriber", [1, 2.5, 3], None, [1],
     r"expected an integer id .*, got 2.5"),
    ("subscriber-missing", "subscriber", [1, None, 3], None, [1], r"missing"),
    ("subscriber-text", "subscriber", [1, "2", 3], None, [1],
     r"expected an integer id .*, got '2'"),
    ("subscriber-bool", "subscriber", [1, True, 3], None, [1],
     r"expected an integer id .*, got True"),
    ("type-unknown-name", "type", ["add_to_cart", "wishlist_zzz", "add_to_cart"], None, [1],
     r"unknown event type 'wishlist_zzz'"),
    ("type-unknown-code", "type", [2, 99, 2], None, [1], r"unknown event type 99"),
    ("type-code-fraction", "type", [2, 1.5, 2], None, [1], r"unknown event type 1.5"),
    ("type-missing", "type", ["add_to_cart", None, "add_to_cart"], None, [1], r"missing"),
    ("type-bool", "type", [2, True, 2], None, [1], r"unknown event type True"),
    ("category-negative", "category", [1, -7, 2], None, [1],
     r"expected a code in \[0, 2\*\*63\), got -7"),
    ("category-uint64-max", "category", [1, 2**64 - 1, 2], "uint64", [1],
     r"expected a code in \[0, 2\*\*63\), got 18446744073709551615"),
    ("category-fraction", "category", [1, 2.5, 2], None, [1],
     r"expected an integer code, got 2.5"),
    ("category-unknown-word", "link_type", ["cart", "fax", "product"], None, [1],
     r"unknown category 'fax'; known: product, category, content, cart, unsubscribe, other "
     r"\(add yours with register_categories\)"),
    ("category-word-in-a-code-column", "category", [1, "shoes", 2], None, [1],
     r"expected an integer code, got 'shoes' \(declare words with "
     r"register_categories\('category', \[\.\.\.\]\)\)"),
    ("number-inf", "cart_value", [1.0, float("inf"), 2.0], None, [1],
     r"expected a finite number, got inf"),
    ("number-beyond-float", "cart_value", [1.0, 10**400, 2.0], None, [1],
     r"expected a finite number, got 1000.*"),
    ("number-text", "cart_value", [1.0, "12.5", 2.0], None, [1],
     r"expected a number, got '12.5'"),
    ("number-bool", "cart_value", [1.0, True, 2.0], None, [1], r"expected a number, got True"),
    ("number-unhashable", "cart_value", [1.0, [2.0], 3.0], None, [1],
     r"expected a number, got \[2.0\]"),
    ("undeclared-text", "note", [None, "hello", None], None, [1],
     r"text in an undeclared column \('hello'\); declare it with "
     r"register_categories\('note', \[\.\.\.\]\) or send a number"),
]


def _records(field: str, values: list) -> list[dict]:
    base = [{"subscriber": 1, "time": T0, "type": "add_to_cart"},
            {"subscriber": 2, "time": T0 + 1, "type": "add_to_cart"},
            {"subscriber": 3, "time": T0 + 2, "type": "add_to_cart"}]
    return [{**row, field: v} for row, v in zip(base, values, strict=True)]


def _frame(field: str, values: list, dtype: str | None) -> pd.DataFrame:
    base: dict[str, list] = {"subscriber": [1, 2, 3], "time": [T0, T0 + 1, T0 + 2],
                             "type": ["add_to_cart"] * 3}
    col = (pd.Series(np.array(values, dtype=dtype)) if dtype is not None else
           pd.Series(values, dtype=object if any(isinstance(v, list) for v in values) else None))
    return pd.DataFrame({**base, field: col})


def _builders(field: str, values: list, dtype: str | None) -> dict:
    """Each way in that can hold the column (arrow cannot hold every mixed column)."""
    df = _frame(field, values, dtype)
    out = {"records": (EventBatch.from_records, _records(field, values)),
           "pandas": (EventBatch.from_pandas, df)}
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return out
    def kinds(col: pd.Series) -> list:
        return [None if m else type(v) for v, m in zip(col.tolist(), col.isna(), strict=True)]

    if kinds(table.to_pandas()[field]) == kinds(df[field]):  # arrow held the column as it was
        out["arrow"] = (EventBatch.from_arrow, table)
    return out


@pytest.mark.parametrize(("field", "values", "dtype", "bad", "reason"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
@pytest.mark.parametrize("mode", ["raise", "quarantine"])
def test_every_builder_gives_the_same_outcome_and_reason(mode, field, values, dtype, bad,
                                                         reason) -> None:
    builders = _builders(field, values, dtype)
    outcomes = {}
    for name, (build, data) in builders.items():
        if mode == "raise":
            with pytest.raises(InvalidEventError) as err:
                build(data)
            outcomes[name] = str(err.value)
        else:
            good, rejected = build(data, validate="quarantine")
            assert list(rejected.columns) == ["index", "field", "reason", "record"], name
            assert rejected["index"].tolist() == bad, name
            assert set(rejected["field"]) == {field}, name
            assert all(set(r) >= {"subscriber", "time", "type"} for r in rejected["record"])
            outcomes[name] = (rejected["reason"].tolist(), good)
    if mode == "raise":
        first = outcomes["records"]
        assert first.startswith(f"records[{bad[0]}].{field}: ")
        assert re.fullmatch(rf"records\[{bad[0]}\]\.{field}: {reason}", first), first
        assert all(text == first for text in outcomes.values()), outcomes
    else:
        reasons, good = outcomes["records"]
        assert len(good) == 3 - len(bad)
        assert re.fullmatch(reason, reasons[0]), reasons
        for name, (other_reasons, other_good) in outcomes.items():
            assert other_reasons == reasons, (name, other_reasons, reasons)
            assert other_good.equals(good), name


def test_arrow_is_left_out_only_where_it_cannot_hold_the_column() -> None:
    # ints beyond 64 bits, mixed types, text in a number column, a bool among numbers
    # (arrow turns [1.0, True] into doubles): arrow cannot hold these cells as they were
    without = {c[0] for c in CASES if "arrow" not in _builders(*c[1:4])}
    assert without == {
        "time-beyond-int64", "time-mixed-object", "time-bool", "subscriber-beyond-uint64",
        "subscriber-below-int64", "subscriber-text", "subscriber-bool", "type-bool",
        "category-word-in-a-code-column", "number-beyond-float", "number-text",
        "number-bool", "number-unhashable"}


def test_quarantine_keeps_nothing_twice_and_loses_nothing() -> None:
    df = pd.DataFrame({"subscriber": [1, 2, 3, 4, 5],
                       "time": [T0, T0 * 1000, T0, np.nan, T0],
                       "type": ["add_to_cart", "add_to_cart", "nope", "add_to_cart", None],
                       "cart_value": [1.0, 2.0, np.inf, 4.0, 5.0]})
    good, rejected = EventBatch.from_pandas(df, validate="quarantine")
    assert good.subscriber.tolist() == [1]
    # one row per rejected row, naming the first problem from_records would name
    assert rejected[["index", "field"]].values.tolist() == [
        [1, "time"], [2, "type"], [3, "time"], [4, "type"]]
    assert rejected["reason"].tolist()[2:] == ["missing", "missing"]
    assert rejected["record"][0] == {"subscriber": 2, "time": T0 * 1000.0,
                                     "type": "add_to_cart", "cart_value": 2.0}
    b, r = EventBatch.from_arrow(pa.Table.from_pandas(df, preserve_index=False),
                                 validate="quarantine")
    assert b.equals(good) and r["reason"].tolist() == rejected["reason"].tolist()


@pytest.mark.parametrize("way", ["pandas", "arrow"])
def test_validate_and_input_are_checked(way) -> None:
    df = pd.DataFrame({"subscriber": [1], "time": [T0], "type": ["add_to_cart"]})
    build = EventBatch.from_pandas if way == "pandas" else EventBatch.from_arrow
    data = df if way == "pandas" else pa.Table.from_pandas(df)
    with pytest.raises(InvalidEventError, match=r"^validate: expected 'raise' or 'quarantine', "
                                                r"got 'drop'$"):
        build(data, validate="drop")
    with pytest.raises(InvalidEventError, match=r"^(df|table): expected a "):
        build([{"subscriber": 1}])
    with pytest.raises(InvalidEventError, match=r"^time: missing column"):
        build(df.drop(columns="time") if way == "pandas"
              else pa.Table.from_pandas(df.drop(columns="time")), validate="quarantine")


def test_missing_category_codes_agree() -> None:
    # -1 is the missing code of a categorical column (what to_pandas(decode=False) writes)
    recs = _records("category", [1, -1, None])
    df = _frame("category", [1, -1, None], None)
    for batch in (EventBatch.from_records(recs), EventBatch.from_pandas(df),
                  EventBatch.from_arrow(pa.Table.from_pandas(df, preserve_index=False))):
        assert batch.columns["category"].tolist() == [1, -1, -1]


def test_nullable_arrow_ids_stay_exact() -> None:
    table = pa.table({"subscriber": pa.array([2**62 + 1, None, 3], pa.int64()),
                      "time": pa.array([T0, T0, T0], pa.int64()),
                      "type": pa.array(["add_to_cart"] * 3)})
    good, rejected = EventBatch.from_arrow(table, validate="quarantine")
    assert good.subscriber.tolist() == [2**62 + 1, 3]  # not rounded through float64
    assert rejected["reason"].tolist() == ["missing"]
