"""The event-time watermark (actors/service/watermark.py) against a plain reference, and
the engine fed through it against the engine fed the sorted stream."""

from __future__ import annotations

import itertools
import pickle
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.service import watermark as watermark_module
from actors.service.watermark import Watermark, late_reason
from policies import EventBatch
from policies.errors import TriggerLabValueError
from policies.event_schema import MIN_TIME
from policies.triggers import TriggerEngine, default_rules

T0 = 1_767_571_200 + 12 * 3600
TYPES = ["add_to_cart", "product_view", "purchase_completed", "email_click", "page_view"]


class ReferenceWatermark:
    """One event at a time: a list of held (time, arrival number, event index)."""

    def __init__(self, grace: int, max_held: int) -> None:
        self.grace, self.max_held = grace, max_held
        self.held: list[tuple[int, int, int]] = []
        self.max_seen: int | None = None
        self.released_to: int | None = None
        self.arrivals = 0

    def add(self, times: list[int], first_index: int) -> list[int]:
        late = []
        for k, t in enumerate(times):
            if self.released_to is not None and t < self.released_to:
                late.append(first_index + k)
            else:
                self.held.append((t, self.arrivals, first_index + k))
                self.max_seen = t if self.max_seen is None else max(self.max_seen, t)
            self.arrivals += 1
        return late

    def release(self) -> tuple[list[int], int | None]:
        if self.max_seen is None:
            return [], self.released_to
        w = self.max_seen - self.grace
        if self.released_to is not None:
            w = max(w, self.released_to)
        if w < MIN_TIME and len(self.held) <= self.max_held:
            return [], None                     # nothing can be due before the range
        self.held.sort()
        out = [h for h in self.held if h[0] <= w]
        rest = [h for h in self.held if h[0] > w]
        while len(rest) > self.max_held:       # force the oldest second out, whole
            t = rest[0][0]
            out += [h for h in rest if h[0] == t]
            rest = [h for h in rest if h[0] != t]
            w = t
        self.held = rest
        self.released_to = w
        return [h[2] for h in out], w


def _same(a: EventBatch, b: EventBatch) -> bool:
    """Equal rows (two empty batches are the same whatever their columns)."""
    return len(a) == len(b) and (len(a) == 0 or a.equals(b))


def _stream(times: list[int], subs: list[int], types: list[int]) -> EventBatch:
    return EventBatch.from_records([
        {"subscriber": s, "time": t, "type": TYPES[k],
         **({"cart_value": 50.0} if TYPES[k] == "add_to_cart" else {})}
        for t, s, k in zip(times, subs, types, strict=True)])


arrivals = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 6 * 3600), min_size=n, max_size=n),   # times after T0
    st.lists(st.integers(1, 4), min_size=n, max_size=n),          # subscribers
    st.lists(st.integers(0, len(TYPES) - 1), min_size=n, max_size=n),
    st.lists(st.integers(1, n), min_size=1, max_size=8),           # batch cuts
))


@settings(max_examples=200, deadline=None)
@given(a=arrivals, grace=st.sampled_from([0, 1, 600, 3600, 10**6, 10**9]),
       max_held=st.sampled_from([1, 3, 10, 10**6]), checkpoint=st.integers(0, 8),
       max_pieces=st.sampled_from([1, 2, 32]), release_every=st.sampled_from([1, 3]))
def test_watermark_agrees_with_the_reference(  # type: ignore[no-untyped-def]
        a, grace, max_held, checkpoint, max_pieces, release_every) -> None:
    # grace 10**9 puts the watermark before MIN_TIME (nothing released, until None);
    # max_pieces 1 / 2 merge the held pieces at every / every other add
    with mock.patch.object(watermark_module, "_MAX_PIECES", max_pieces):
        _agrees_with_the_reference(a, grace, max_held, checkpoint, release_every)


def _agrees_with_the_reference(a, grace, max_held, checkpoint, release_every) -> None:  # type: ignore[no-untyped-def]
    offsets, subs, types, cuts = a
    stream = _stream([T0 + o for o in offsets], subs, types)
    bounds = sorted({0, len(stream), *[c for c in cuts if c < len(stream)]})
    wm, ref = Watermark(grace, max_held), ReferenceWatermark(grace, max_held)
    seen_released, seen_late = [], []
    clock = None
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if i == checkpoint:
            wm = Watermark.from_state_dict(pickle.loads(pickle.dumps(wm.state_dict())))
        late = wm.add(stream[lo:hi])
        late_ref = ref.add(stream.time[lo:hi].tolist(), lo)
        assert _same(late.events, stream[np.array(late_ref, np.int64)])
        assert late.reasons == [late_reason(t, ref.released_to, grace)  # type: ignore[arg-type]
                                for t in stream.time[late_ref].tolist()]
        seen_late += late_ref
        if i % release_every and hi < len(stream):
            continue                                          # several adds, one release
        out, until = wm.release()
        out_ref, until_ref = ref.release()
        assert until == until_ref
        assert _same(out, stream[np.array(out_ref, np.int64)])
        assert np.all(np.diff(out.time) >= 0)                 # (a) in time order
        if len(out):
            assert clock is None or out.time[0] >= clock      # never before the engine clock
            assert until is not None and out.time[-1] <= until
        clock = until if until is not None else clock
        assert wm.n_held == len(ref.held) <= max_held
        seen_released += out_ref
    # (b) every event released exactly once or refused exactly once (or still held)
    held = [h[2] for h in ref.held]
    assert sorted(seen_released + seen_late + held) == list(range(len(stream)))
    assert wm.n_late == len(seen_late) and wm.n_released == len(seen_released)


def _subscribers() -> pd.DataFrame:
    return pd.DataFrame({"lifecycle_stage": "prospect", "engagement_score": 0.9,
                         "days_since_engagement": 1.0, "utc_offset_minutes": 0},
                        index=pd.Index([1, 2, 3, 4], name="subscriber"))


@pytest.mark.parametrize("engine", ["fast", "reference"])
@settings(max_examples=40, deadline=None)
@given(a=arrivals, shuffle_seed=st.integers(0, 2**32 - 1),
       grace=st.sampled_from([0, 1800, 10**9]))
def test_the_engine_fed_through_the_watermark_decides_as_on_the_sorted_stream(
        engine: str, a, shuffle_seed: int, grace: int) -> None:  # type: ignore[no-untyped-def]
    # (c) arrivals out of order by at most the grace: nothing is late and the decisions
    # equal those of the stream sorted by time processed at once (events of the same
    # second in arrival order: the order a source gives is all there is to go by)
    offsets, subs, types, cuts = a
    stream = _stream([T0 + o for o in offsets], subs, types).sort_by_time()
    rng = np.random.default_rng(shuffle_seed)
    jitter = stream.time + rng.integers(0, grace + 1, len(stream))   # arrival clock
    arrival = stream[np.argsort(jitter, kind="stable")]
    end = T0 + 10 * 86400
    direct = TriggerEngine(default_rules(), subscribers=_subscribers(), engine=engine)
    expected = direct.process(arrival.sort_by_time(), until=end)
    fed = TriggerEngine(default_rules(), subscribers=_subscribers(), engine=engine)
    wm = Watermark(grace)
    parts = []
    bounds = sorted({0, len(arrival), *[c for c in cuts if c < len(arrival)]})
    for lo, hi in itertools.pairwise(bounds):
        assert len(wm.add(arrival[lo:hi])) == 0
        out, until = wm.release()
        parts.append(fed.process(out, until=until))
    wm.advance_to(end + grace)                       # a heartbeat flushes the rest
    out, until = wm.release()
    parts.append(fed.process(out, until=until))
    got = type(expected).concat(parts, expected.rule_ids).sorted()
    assert got.equals(expected)


GRACE = "grace: expected whole seconds in \\[0, 3155760000\\], got "
GOOD_STATE = Watermark(60).state_dict()
BAD = [
    ("grace negative", lambda: Watermark(-1), GRACE + "-1"),
    ("grace float", lambda: Watermark(1.5), GRACE + "1.5"),
    ("grace bool", lambda: Watermark(True), GRACE + "True"),
    ("grace text", lambda: Watermark("1h"), GRACE + "'1h'"),
    ("grace > 100 years", lambda: Watermark(10**30), GRACE + "1000000000000000000000000000000"),
    ("max_held 0", lambda: Watermark(0, 0), "max_held: expected an integer >= 1, got 0"),
    ("not a batch", lambda: Watermark(0).add([{"time": 1}]), "batch: expected an EventBatch"),
    ("a DataFrame", lambda: Watermark(0).add(pd.DataFrame()), "batch: expected an EventBatch"),
    ("advance float", lambda: Watermark(0).advance_to(1.5), "time: expected int seconds, got 1.5"),
    ("advance None", lambda: Watermark(0).advance_to(None), "time: expected int seconds"),
    ("advance in ms", lambda: Watermark(0).advance_to(1_767_614_400_000),
     "time: expected seconds since the epoch in \\[946684800, 4102444800\\) .*got "
     "1767614400000 \\(looks like milliseconds: 1767614400 s is 2026-01-05T12:00:00Z\\)"),
    ("advance 1970", lambda: Watermark(0).advance_to(0),
     "time: expected seconds since the epoch in \\[946684800, 4102444800\\) .*got 0$"),
    ("advance 10**30", lambda: Watermark(0).advance_to(10**30),
     "time: expected seconds since the epoch .*got 1000000000000000000000000000000"),
    ("state None", lambda: Watermark.from_state_dict(None), "state: expected a Watermark"),
    ("state version", lambda: Watermark.from_state_dict({"version": 2}),
     "state: expected a Watermark.state_dict\\(\\) of version 1, got 2"),
    ("state keys missing", lambda: Watermark.from_state_dict({"version": 1, "grace": 60}),
     "state: missing 'max_held', 'held', 'max_seen', 'released_to', 'n_released', "
     "'n_late', 'n_forced' \\(expected a Watermark.state_dict\\(\\)\\)"),
    ("state held a list", lambda: Watermark.from_state_dict({**GOOD_STATE, "held": []}),
     "state\\['held'\\]: expected an EventBatch, got \\[\\]"),
    ("state max_seen in ms", lambda: Watermark.from_state_dict(
        {**GOOD_STATE, "max_seen": 1_767_614_400_000}),
     "state\\['max_seen'\\]: expected seconds since the epoch .*looks like milliseconds"),
    ("state released_to text", lambda: Watermark.from_state_dict(
        {**GOOD_STATE, "released_to": "2026-01-05"}),
     "state\\['released_to'\\]: expected int seconds, got '2026-01-05'"),
    ("state n_late negative", lambda: Watermark.from_state_dict({**GOOD_STATE, "n_late": -1}),
     "state\\['n_late'\\]: expected an integer >= 0, got -1"),
    ("state grace negative", lambda: Watermark.from_state_dict({**GOOD_STATE, "grace": -5}),
     GRACE + "-5"),
    ("state held without max_seen", lambda: Watermark.from_state_dict(
        {**GOOD_STATE, "held": _stream([T0], [1], [1])}),
     "state\\['max_seen'\\]: None while events are held"),
]


@pytest.mark.parametrize("case, call, message", BAD, ids=[b[0] for b in BAD])
def test_bad_arguments(case: str, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TriggerLabValueError, match=message):
        call()


def test_a_late_event_is_refused_with_its_reason_and_an_event_at_the_watermark_is_not() -> None:
    wm = Watermark(grace=60)
    wm.add(_stream([T0, T0 + 600], [1, 2], [1, 1]))
    out, until = wm.release()
    assert until == T0 + 540 and out.time.tolist() == [T0]
    late = wm.add(_stream([T0 + 539, T0 + 540], [3, 3], [1, 1]))
    assert late.reasons == [f"late: event time {T0 + 539} is before the watermark "
                            f"{T0 + 540} (grace 60 s)"]
    out, until = wm.release()
    assert out.time.tolist() == [T0 + 540] and until == T0 + 540
    assert (wm.n_late, wm.n_released, wm.n_held) == (1, 2, 1)


def test_the_bound_forces_the_oldest_out_and_counts_them() -> None:
    wm = Watermark(grace=10**6, max_held=2)
    wm.add(_stream([T0 + 3, T0 + 1, T0 + 2, T0 + 2], [1, 1, 1, 2], [1, 1, 1, 1]))
    out, until = wm.release()
    assert out.time.tolist() == [T0 + 1, T0 + 2, T0 + 2] and until == T0 + 2
    assert (wm.n_forced, wm.n_held) == (3, 1)


def test_a_heartbeat_in_milliseconds_is_refused_and_changes_nothing() -> None:
    wm = Watermark(grace=60)
    wm.add(_stream([T0, T0 + 600], [1, 2], [1, 1]))
    with pytest.raises(TriggerLabValueError, match="looks like milliseconds"):
        wm.advance_to((T0 + 700) * 1000)
    out, until = wm.release()
    assert until == T0 + 540 and out.time.tolist() == [T0]
    assert len(wm.add(_stream([T0 + 550], [3], [1]))) == 0     # still on time


def test_a_grace_longer_than_the_events_age_releases_nothing_and_gives_no_until() -> None:
    wm = Watermark(grace=10**9)                  # T0 - 10**9 is in 1994, before MIN_TIME
    wm.add(_stream([T0], [1], [1]))
    out, until = wm.release()
    assert (len(out), until, wm.n_held) == (0, None, 1)
    wm.advance_to(T0 + 10**9)
    out, until = wm.release()
    assert out.time.tolist() == [T0] and until == T0
