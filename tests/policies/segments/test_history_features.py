"""history_features: agrees with the per-subscriber reference, never reads past ``now``,
and rejects bad arguments with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.errors import TriggerLabValueError
from policies.event_schema import BUILTIN_EVENT_TYPES, EVENT_TYPES
from policies.events import EventBatch
from policies.segments import HISTORY_FEATURES, history_features, history_features_reference

NOW = 1_720_000_000
DAY = 86_400
TYPES = [EVENT_TYPES.code(t) for t in BUILTIN_EVENT_TYPES]


@st.composite
def logs(draw: st.DrawFn, max_size: int = 60) -> EventBatch:
    n = draw(st.integers(0, max_size))
    ints = st.lists
    sub = draw(ints(st.integers(0, 6), min_size=n, max_size=n))
    # times around now, on whole days often (window edges), past now sometimes
    off = draw(ints(st.one_of(st.integers(-40 * DAY, 3 * DAY),
                              st.integers(-6, 2).map(lambda d: d * 7 * DAY)),
                    min_size=n, max_size=n))
    typ = draw(ints(st.sampled_from(TYPES), min_size=n, max_size=n))
    rev = draw(ints(st.one_of(st.just(np.nan), st.floats(0, 500)), min_size=n, max_size=n))
    cat = draw(ints(st.integers(-1, 4), min_size=n, max_size=n))
    cart = draw(ints(st.one_of(st.just(np.nan), st.sampled_from([10.0, 20.0, 35.5])),
                     min_size=n, max_size=n))
    return EventBatch(np.array(sub, np.int64), NOW + np.array(off, np.int64),
                      np.array(typ, np.int64),
                      {"revenue": np.array(rev, np.float64), "category": np.array(cat, np.int64),
                       "cart_value": np.array(cart, np.float64)})


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(logs(), st.sampled_from([None, [3, 0, 9, 5], [0, 1, 2, 3, 4, 5, 6, 7], []]),
       st.sampled_from([(7.0, 4), (1.0, 2), (2.5, 3), (1 / 3, 5)]))
def test_fast_equals_reference(batch: EventBatch, subs: list[int] | None,
                               window: tuple[float, int]) -> None:
    w, k = window
    fast = history_features(batch, NOW, subs, window_days=w, n_windows=k)
    ref = history_features_reference(batch, NOW, subs, window_days=w, n_windows=k)
    assert list(fast.columns) == list(HISTORY_FEATURES)
    same(fast, ref)


@settings(max_examples=100, deadline=None)
@given(logs(), logs(), st.integers(1, 10**6))
def test_events_after_now_change_nothing(batch: EventBatch, later: EventBatch,
                                         shift: int) -> None:
    """Appending any events after ``now`` (any subscribers, types, values) or shuffling
    the log leaves every feature as it was."""
    subs = np.arange(0, 8)
    before = history_features(batch, NOW, subs)
    future = EventBatch(later.subscriber, np.maximum(later.time, NOW + 1) + shift, later.type,
                        later.columns)
    both = EventBatch.concat([batch, future])
    perm = np.random.default_rng(shift).permutation(len(both))
    same(before, history_features(both[perm], NOW, subs))


def test_worked_example() -> None:
    """Hand-computed values: two purchases, windows of 7 days, categories."""
    rec = [
        {"subscriber": 1, "time": NOW - 20 * DAY, "type": "page_view", "category": 2},
        {"subscriber": 1, "time": NOW - 10 * DAY, "type": "purchase_completed", "revenue": 30.0},
        {"subscriber": 1, "time": NOW - 7 * DAY, "type": "email_open"},     # window 1 edge
        {"subscriber": 1, "time": NOW - 2 * DAY, "type": "email_open"},
        {"subscriber": 1, "time": NOW - 1 * DAY, "type": "email_open"},
        {"subscriber": 1, "time": NOW - DAY // 2, "type": "purchase_completed",
         "revenue": 50.0},
        {"subscriber": 1, "time": NOW, "type": "product_view", "category": 5},
        {"subscriber": 1, "time": NOW - 3 * DAY, "type": "product_view", "category": 5},
        {"subscriber": 1, "time": NOW + 1, "type": "email_open"},           # after now
        {"subscriber": 1, "time": NOW - 5 * DAY, "type": "add_to_cart", "cart_value": 9.0},
        {"subscriber": 2, "time": NOW - 30 * DAY, "type": "unsubscribe"},
        {"subscriber": 2, "time": NOW - 4 * DAY, "type": "add_to_cart", "cart_value": 12.0},
        {"subscriber": 2, "time": NOW - 3 * DAY, "type": "add_to_cart", "cart_value": 30.0},
    ]
    f = history_features(EventBatch.from_records(rec), NOW, [1, 2, 3])
    r1 = f.loc[1]
    assert r1["recency_days"] == 0.5 and r1["frequency"] == 2
    assert r1["monetary"] == 40.0 and r1["revenue"] == 80.0
    assert r1["days_since_engagement"] == 0.0 and r1["tenure_days"] == 20.0
    assert r1["opens_last"] == 2 and r1["opens_mean"] == 0.75
    # counts by window (latest first) 2, 1, 0, 0 against x = 0, -1, -2, -3: slope 0.7
    assert r1["opens_trend"] == pytest.approx(0.7)
    assert r1["sessions_last"] == 0 and r1["sessions_mean"] == 0.25
    assert r1["top_category"] == 5 and r1["top_category_share"] == pytest.approx(2 / 3)
    assert r1["open_cart_value"] == 0 and np.isnan(r1["open_cart_days"])  # bought after it
    r2 = f.loc[2]
    assert r2["open_cart_value"] == 30.0 and r2["open_cart_days"] == 3.0
    assert r2["days_since_engagement"] == 3.0 and r2["tenure_days"] == 30.0
    assert r2["top_category"] == -1 and np.isnan(r2["top_category_share"])
    assert f.loc[3, "open_cart_value"] == 0 and np.isnan(f.loc[3, "open_cart_days"])
    r3 = f.loc[3]
    assert r3["frequency"] == 0 and np.isnan(r3["recency_days"]) and np.isnan(r3["tenure_days"])
    assert f["frequency"].dtype == np.int64 and f["top_category"].dtype == np.int64


GOOD = EventBatch.from_records([{"subscriber": 1, "time": NOW, "type": "page_view"}])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"events": [1, 2]}, r"events: expected an EventBatch, got \[1, 2\]"),
    ({"now": 1.7e9}, r"now: expected int seconds since the epoch, got 1700000000.0"),
    ({"now": True}, r"now: expected int seconds since the epoch, got True"),
    ({"now": 1_700_000_000_000}, r"now: expected seconds .* \(looks like milliseconds"),
    ({"window_days": 0}, r"window_days: expected a number > 0, got 0"),
    ({"window_days": float("nan")}, r"window_days: expected a number > 0, got nan"),
    ({"n_windows": 1}, r"n_windows: expected an integer >= 2, got 1"),
    ({"n_windows": 2.0}, r"n_windows: expected an integer >= 2, got 2.0"),
    ({"subscribers": [[1, 2]]}, r"subscribers: expected a 1-d array of integer ids"),
    ({"subscribers": ["a"]}, r"subscribers: expected a 1-d array of integer ids"),
    ({"subscribers": [1.5]}, r"subscribers: expected a 1-d array of integer ids"),
    ({"subscribers": [4, 1, 4]}, r"subscribers: expected each id once, got 4 twice"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"events": GOOD, "now": NOW, **kwargs}
    with pytest.raises(TriggerLabValueError, match=match):
        history_features(**args)
