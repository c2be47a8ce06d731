"""EventBatch: construction, conversion, validation and quarantine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import EVENT_TYPES, EventBatch, InvalidEventError, TriggerLabError
from policies.event_schema import parse_time, register_categories, register_event_type

T0 = 1_700_000_000


def test_from_records_basic_columns() -> None:
    b = EventBatch.from_records(
        [
            {"subscriber": 7, "time": T0, "type": "add_to_cart", "cart_value": 40.0},
            {"subscriber": 8, "time": T0 + 5, "type": "email_click", "link_type": "product"},
        ]
    )
    assert len(b) == 2
    assert b.subscriber.dtype == np.int64 and b.time.dtype == np.int64
    assert b.type_names() == ["add_to_cart", "email_click"]
    assert np.isnan(b.columns["cart_value"][1]) and b.columns["cart_value"][0] == 40.0
    assert b.columns["link_type"].tolist() == [-1, 0]
    df = b.to_pandas()
    assert pd.isna(df["link_type"][0]) and df["link_type"][1] == "product"
    assert df["type"].tolist() == ["add_to_cart", "email_click"]


@pytest.mark.parametrize(
    "value",
    [
        T0,
        datetime.fromtimestamp(T0, UTC),
        datetime.fromtimestamp(T0, UTC).astimezone(timezone(timedelta(hours=-5))),
        "2023-11-14T22:13:20+00:00",
        "2023-11-14T22:13:20Z",
        "2023-11-15T00:13:20+02:00",
        pd.Timestamp(T0, unit="s", tz="UTC"),
        float(T0),
    ],
)
def test_time_forms_agree(value: object) -> None:
    assert parse_time(value) == T0


def test_pandas_round_trip_and_aware_datetimes() -> None:
    b = EventBatch.from_records(
        [
            {"subscriber": 1, "time": T0, "type": "product_view", "time_on_page": 31.5,
             "category": 3},
            {"subscriber": 2, "time": T0 + 1, "type": "email_click", "link_type": "cart"},
        ]
    )
    back = EventBatch.from_pandas(b.to_pandas())
    assert back.equals(b)
    df = b.to_pandas()
    df["time"] = pd.to_datetime(df["time"], unit="s", utc=True).dt.tz_convert("Europe/Paris")
    assert EventBatch.from_pandas(df).equals(b)
    naive = df.assign(time=df["time"].dt.tz_localize(None))
    with pytest.raises(InvalidEventError,
                       match=r"^records\[0\]\.time: expected a timezone-aware time, got naive"):
        EventBatch.from_pandas(naive)


def test_arrow_round_trip() -> None:
    b = EventBatch.from_records(
        [{"subscriber": 3, "time": T0, "type": "add_to_cart", "cart_value": 12.0}]
    )
    assert EventBatch.from_arrow(b.to_arrow()).equals(b)


def test_concat_slice_sort() -> None:
    a = EventBatch.from_records([{"subscriber": 1, "time": T0 + 10, "type": "page_view"}])
    c = EventBatch.from_records(
        [
            {"subscriber": 2, "time": T0, "type": "add_to_cart", "cart_value": 9.0},
            {"subscriber": 3, "time": T0 + 10, "type": "add_to_cart", "cart_value": 1.0},
        ]
    )
    both = EventBatch.concat([a, c])
    assert len(both) == 3 and np.isnan(both.columns["cart_value"][0])
    s = both.sort_by_time()
    assert s.subscriber.tolist() == [2, 1, 3]  # stable: ties keep their order
    assert s[1:].subscriber.tolist() == [1, 3]
    assert s[np.array([True, False, True])].subscriber.tolist() == [2, 3]
    assert len(EventBatch.concat([])) == 0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"time": T0, "type": "add_to_cart"}, r"records\[0\]\.subscriber: missing"),
        ({"subscriber": 1, "type": "add_to_cart"}, r"records\[0\]\.time: missing"),
        ({"subscriber": 1, "time": T0}, r"records\[0\]\.type: missing"),
        ({"subscriber": 1, "time": T0, "type": "teleport"}, r"type: unknown event type 'teleport'"),
        ({"subscriber": 1, "time": "2024-05-01T12:00:00", "type": "page_view"},
         r"records\[0\]\.time: expected a timezone-aware time"),
        ({"subscriber": 1, "time": datetime(2024, 5, 1), "type": "page_view"},  # noqa: DTZ001
         r"time: expected a timezone-aware time, got naive"),
        ({"subscriber": 1, "time": "yesterday", "type": "page_view"}, r"time: expected an ISO"),
        ({"subscriber": 1, "time": T0, "type": "add_to_cart", "cart_value": float("nan")},
         r"records\[0\]\.cart_value: expected a number, got NaN"),
        ({"subscriber": 1, "time": T0, "type": "add_to_cart", "cart_value": "forty"},
         r"cart_value: expected a number, got 'forty'"),
        ({"subscriber": "x", "time": T0, "type": "page_view"}, r"subscriber: expected an integer"),
        ({"subscriber": 1, "time": T0, "type": "email_click", "link_type": "banner"},
         r"link_type: unknown category 'banner'"),
        ({"subscriber": 1, "time": T0, "type": "page_view", "page_url": "/x"},
         r"page_url: text in an undeclared column"),
    ],
)
def test_invalid_records(record: dict, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message) as info:
        EventBatch.from_records([record])
    assert isinstance(info.value, ValueError) and isinstance(info.value, TriggerLabError)


def test_quarantine_keeps_good_rows_and_explains_bad_ones() -> None:
    records = [
        {"subscriber": 1, "time": T0, "type": "add_to_cart", "cart_value": 30.0},
        {"subscriber": 2, "time": T0, "type": "nope"},
        {"subscriber": 3, "time": "2024-01-01T00:00:00", "type": "page_view"},
        {"subscriber": 4, "time": T0 + 1, "type": "page_view"},
    ]
    good, rejected = EventBatch.from_records(records, validate="quarantine")
    assert good.subscriber.tolist() == [1, 4]
    assert rejected["index"].tolist() == [1, 2]
    assert rejected["field"].tolist() == ["type", "time"]
    assert all(rejected["reason"].str.len() > 5)
    assert len(good) + len(rejected) == len(records)


def test_registries_extend() -> None:
    code = register_event_type("wishlist_add")
    assert EVENT_TYPES.code("wishlist_add") == code == register_event_type("wishlist_add")
    mapping = register_categories("device", ["ios", "android"])
    b = EventBatch.from_records(
        [{"subscriber": 1, "time": T0, "type": "wishlist_add", "device": "android"}]
    )
    assert b.columns["device"].tolist() == [mapping["android"]]
    assert b.to_pandas()["device"].tolist() == ["android"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 1000), st.integers(0, 10**6), st.sampled_from(EVENT_TYPES.names[:12]),
            st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)),
        ),
        max_size=30,
    )
)
def test_records_pandas_round_trip(rows: list[tuple]) -> None:
    recs = [
        {"subscriber": s, "time": T0 + t, "type": ty, "cart_value": v} for s, t, ty, v in rows
    ]
    b = EventBatch.from_records(recs)
    assert len(b) == len(recs)
    assert EventBatch.from_pandas(b.to_pandas()).equals(b)
    s = b.sort_by_time()
    assert np.all(np.diff(s.time) >= 0)
