"""The world's future-event buffer (fast path) against its one-array reference."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import _events as E
from sim._buffer import EventBuffer, EventBufferReference


def _sorted(ev: E.Events) -> E.Events:
    """The world's use of a pop: stable sort by (time, subscriber)."""
    return E.take(ev, np.lexsort((ev["subscriber"], ev["time"])))


def _same(a: E.Events, b: E.Events) -> None:
    for name in E.COLUMNS:
        assert a[name].dtype == b[name].dtype
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@st.composite
def _chunk(draw: st.DrawFn, row0: int) -> E.Events:
    big = draw(st.booleans()) and draw(st.booleans())
    n = draw(st.integers(5000, 9000)) if big else draw(st.integers(0, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    span = draw(st.sampled_from([1, 3, 100, 10**6]))   # few times: many ties
    lo = draw(st.integers(0, 2000))
    time = lo + rng.integers(0, span, n)
    sub = rng.integers(0, draw(st.sampled_from([1, 2, 50])), n)
    # the row id rides in ``token``: ties must come out in push order
    return E.make(sub, time, 1, token=np.arange(row0, row0 + n), price=rng.random(n))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_buffer_pops_what_the_reference_pops(data) -> None:
    fast, ref = EventBuffer(), EventBufferReference()
    t, rows = 0, 0
    for _ in range(data.draw(st.integers(1, 12))):
        for _ in range(data.draw(st.integers(0, 3))):
            ev = data.draw(_chunk(rows))
            rows += E.size(ev)
            fast.push(ev)
            ref.push(ev)
        if data.draw(st.booleans()):  # a checkpoint in between
            fast = pickle.loads(pickle.dumps(EventBuffer.unpack(*fast.pack())))
        t += data.draw(st.sampled_from([0, 1, 7, 300, 5000, 10**7]))
        if data.draw(st.booleans()):  # the world's sorted pop
            _same(fast.pop_sorted(t), _sorted(ref.pop_until(t)))
        else:
            _same(_sorted(fast.pop_until(t)), _sorted(ref.pop_until(t)))
        assert fast.pending() == ref.pending()
    _same(_sorted(fast.pop_until(2**62)), _sorted(ref.pop_until(2**62)))
    assert fast.pending() == 0 and fast.chunks() == 0


def test_buffer_frees_consumed_rows_of_a_large_chunk() -> None:
    buf = EventBuffer()
    n = 100_000
    buf.push(E.make(np.zeros(n, np.int64), np.arange(n), 1))
    buf.pop_until(n * 3 // 4)
    (_, _, chunk), = buf._heap
    assert len(chunk) <= n // 4 + 1 and buf.pending() == n - n * 3 // 4 - 1
