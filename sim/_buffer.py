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


_INT = [c for c, (dtype, _) in E.COLUMNS.items() if dtype is np.int64]
_FLOAT = [c for c, (dtype, _) in E.COLUMNS.items() if dtype is np.float64]
_TIME = _INT.index("time")
_SUBSCRIBER = _INT.index("subscriber")


def _blocks(ev: E.Events, order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The int64 and float64 columns of ``ev`` as two (columns, m) blocks, rows taken
    in ``order`` (None: as they are)."""
    n = E.size(ev)
    ints = np.empty((len(_INT), n), np.int64)
    floats = np.empty((len(_FLOAT), n), np.float64)
    for block, names in ((ints, _INT), (floats, _FLOAT)):
        for row, name in zip(block, names, strict=True):
            if order is None:
                row[:] = ev[name]
            else:
                np.take(ev[name], order, out=row, mode="clip")  # unbuffered; valid
    return ints, floats


def _events(ints: np.ndarray, floats: np.ndarray) -> E.Events:
    """Events whose columns are the rows of the blocks (views)."""
    cols = dict(zip(_INT, ints, strict=True))
    cols.update(zip(_FLOAT, floats, strict=True))
    return {name: cols[name] for name in E.COLUMNS}


def time_subscriber_order(time: np.ndarray, subscriber: np.ndarray) -> np.ndarray:
    """``np.lexsort((subscriber, time))`` (int64 (m,) each): a stable sort by ``(time,
    subscriber)``, as one stable argsort of ``(time - min) * width + (subscriber - min)``
    when that key fits in 62 bits (else the lexsort itself)."""
    if len(time) < 2:
        return np.arange(len(time))
    t0, t1 = int(time.min()), int(time.max())
    s0, s1 = int(subscriber.min()), int(subscriber.max())
    width = s1 - s0 + 1
    if (t1 - t0 + 1) * width >= 2**62:
        return np.lexsort((subscriber, time))
    return np.argsort((time - t0) * width + (subscriber - s0), kind="stable")


class _Chunk:
    """One pushed chunk, sorted stably by time, its columns in two blocks (int64 and
    float64, (columns, n)); rows ``[pos, n)`` are pending."""

    __slots__ = ("floats", "ints", "pos", "seq", "time")

    def __init__(self, ints: np.ndarray, floats: np.ndarray, seq: int) -> None:
        self.ints, self.floats = ints, floats
        self.time = ints[_TIME]
        self.pos = 0
        self.seq = seq

    def __len__(self) -> int:
        return len(self.time)


#: A partly popped chunk of more rows than this drops its consumed rows once they are
#: more than 3/4 of it (smaller chunks keep them: a bounded waste per chunk).
COMPACT_ROWS = 4096


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
        order = None
        if len(t) > 1 and (t[1:] < t[:-1]).any():
            order = np.argsort(t, kind="stable")
        chunk = _Chunk(*_blocks(ev, order), self._seq)
        self._seq += 1
        heapq.heappush(self._heap, (int(chunk.time[0]), chunk.seq, chunk))

    def pop_until(self, t1: int) -> E.Events:
        """Remove and return the events with ``time <= t1`` (ties in push order)."""
        ints, floats = self._pop_blocks(t1)
        return E.empty() if ints is None else _events(ints, floats)

    def pop_sorted(self, t1: int) -> E.Events:
        """:meth:`pop_until` sorted stably by ``(time, subscriber)`` (the world's order)."""
        ints, floats = self._pop_blocks(t1)
        if ints is None:
            return E.empty()
        order = time_subscriber_order(ints[_TIME], ints[_SUBSCRIBER])
        return _events(ints[:, order], floats[:, order])

    def _pop_blocks(self, t1: int) -> tuple[np.ndarray | None, np.ndarray]:
        """The int64 and float64 blocks of the events due by ``t1``, removed
        (``(None, ...)``: none), in chunk push order."""
        heap = self._heap
        due: list[_Chunk] = []
        while heap and heap[0][0] <= t1:
            due.append(heapq.heappop(heap)[2])
        if not due:
            return None, np.zeros((len(_FLOAT), 0))
        due.sort(key=lambda c: c.seq)
        ints: list[np.ndarray] = []
        floats: list[np.ndarray] = []
        for c in due:
            n = len(c)
            hi = n if c.time[-1] <= t1 else c.pos + int(
                np.searchsorted(c.time[c.pos:], t1, side="right"))
            lo = c.pos
            ints.append(c.ints[:, lo:hi])
            floats.append(c.floats[:, lo:hi])
            if hi == n:
                continue
            if 4 * hi > n and n > COMPACT_ROWS:  # drop the consumed rows
                c.ints, c.floats = c.ints[:, hi:].copy(), c.floats[:, hi:].copy()
                c.time = c.ints[_TIME]
                hi = 0
            c.pos = hi
            heapq.heappush(heap, (int(c.time[hi]), c.seq, c))
        if len(ints) == 1:
            return ints[0], floats[0]
        return np.concatenate(ints, axis=1), np.concatenate(floats, axis=1)

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
        return sizes, E.concat([_events(c.ints[:, c.pos:], c.floats[:, c.pos:])
                                for c in live])

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
