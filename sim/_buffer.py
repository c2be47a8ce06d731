"""The world's buffer of future events: push chunks of events, pop those due by a time.

What :meth:`EventBuffer.pop_until` returns is defined up to the order of events of
different ``(time, subscriber)``: the world sorts it stably by ``(time, subscriber)``
before use, so only the order of *ties* (events of one subscriber at one time) counts,
and it is the order of pushing (chunk by chunk, row by row within a chunk).

:class:`EventBuffer` (fast path) keeps each pushed chunk sorted stably by time with a
cursor and a heap of the chunks' next event times: a pop touches only the chunks with
due events and slices them (no per-bucket row selection). :class:`EventBufferReference`
is its specification: one set of columns in push order, popped by a mask.
"""

from __future__ import annotations

import heapq

import numpy as np

from sim import _events as E

__all__ = ["EventBuffer", "EventBufferReference"]


class _Chunk:
    """One pushed chunk, sorted stably by time; rows ``[pos, len)`` are pending."""

    __slots__ = ("ev", "pos", "seq", "time")

    def __init__(self, ev: E.Events, seq: int) -> None:
        self.ev = ev
        self.time = ev["time"]
        self.pos = 0
        self.seq = seq

    def __len__(self) -> int:
        return len(self.time)


class EventBuffer:
    """Future events, popped by time (see the module docstring)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, _Chunk]] = []  # (next time, seq, chunk)
        self._seq = 0

    def push(self, ev: E.Events) -> None:
        """Add a chunk of events (any order, any times)."""
        if E.size(ev) == 0:
            return
        t = ev["time"]
        if len(t) > 1 and (t[1:] < t[:-1]).any():
            ev = E.take(ev, np.argsort(t, kind="stable"))
        chunk = _Chunk(ev, self._seq)
        self._seq += 1
        heapq.heappush(self._heap, (int(chunk.time[0]), chunk.seq, chunk))

    def pop_until(self, t1: int) -> E.Events:
        """Remove and return the events with ``time <= t1`` (ties in push order)."""
        heap = self._heap
        due: list[_Chunk] = []
        while heap and heap[0][0] <= t1:
            due.append(heapq.heappop(heap)[2])
        if not due:
            return E.empty()
        due.sort(key=lambda c: c.seq)
        pieces: list[E.Events] = []
        for c in due:
            n = len(c)
            hi = n if c.time[-1] <= t1 else c.pos + int(
                np.searchsorted(c.time[c.pos:], t1, side="right"))
            lo = c.pos
            pieces.append(c.ev if lo == 0 and hi == n else
                          {name: col[lo:hi] for name, col in c.ev.items()})
            if hi == n:
                continue
            if 4 * hi > n:  # drop the consumed rows (memory <= 4/3 of the pending)
                c.ev = {name: col[hi:].copy() for name, col in c.ev.items()}
                c.time = c.ev["time"]
                hi = 0
            c.pos = hi
            heapq.heappush(heap, (int(c.time[hi]), c.seq, c))
        return E.concat(pieces)

    def pending(self) -> int:
        """Number of buffered events."""
        return sum(len(c) - c.pos for _, _, c in self._heap)

    def chunks(self) -> int:
        """Number of chunks held."""
        return len(self._heap)

    def pack(self) -> tuple[np.ndarray, E.Events]:
        """``(rows per chunk, columns)``: the pending events, chunk by chunk in push order."""
        live = sorted((c for _, _, c in self._heap), key=lambda c: c.seq)
        sizes = np.array([len(c) - c.pos for c in live], np.int64)
        return sizes, E.concat([{n: col[c.pos:] for n, col in c.ev.items()} for c in live])

    @classmethod
    def unpack(cls, sizes: np.ndarray, ev: E.Events) -> EventBuffer:
        """The buffer of :meth:`pack`."""
        buf = cls()
        lo = 0
        for m in np.asarray(sizes, np.int64).tolist():
            buf.push({name: col[lo:lo + m] for name, col in ev.items()})
            lo += m
        return buf


class EventBufferReference:
    """Specification of :class:`EventBuffer`: all pending events in push order."""

    def __init__(self) -> None:
        self._ev = E.empty()

    def push(self, ev: E.Events) -> None:
        self._ev = E.concat([self._ev, ev])

    def pop_until(self, t1: int) -> E.Events:
        due = self._ev["time"] <= t1
        out = E.take(self._ev, due)
        self._ev = E.take(self._ev, ~due)
        return out

    def pending(self) -> int:
        return E.size(self._ev)
