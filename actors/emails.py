"""Email identity and the store of delivered emails awaiting their rewards.

Ids are shard-independent: every subscriber counts the emails it has been sent
(``seq``), and

* ``email_id = subscriber << 24 | seq`` (unique within a run);
* the ``campaign`` code handed to the response model is ``seq << 8 | source``; its low
  16 bits (which key the email's random numbers) depend only on the subscriber, the
  email's rank and its source, and response events carry it back as ``campaign_id``,
  so :func:`email_id_of` recovers the email of every response event.

:class:`EmailStore` keeps delivered emails in delivery order (a FIFO: an email's reward
window closes in the order emails were sent) with a dict from email id to row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policies.triggers.decisions import trigger_id

__all__ = ["SEQ_BITS", "EmailStore", "campaign_code", "draw_keys", "email_id", "email_id_of",
           "source_of"]

#: The store's column of each email's previous email of the same subscriber.
_PREV = "_prev"
#: Bits of the per-subscriber email counter inside an email id.
SEQ_BITS = 24
_SEQ_MASK = (1 << SEQ_BITS) - 1


def email_id(subscriber: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """``subscriber << 24 | seq`` (int64)."""
    return (np.asarray(subscriber, np.int64) << SEQ_BITS) | (np.asarray(seq, np.int64) & _SEQ_MASK)


def campaign_code(seq: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``seq << 8 | source`` (int64), the response model's campaign code of an email."""
    return ((np.asarray(seq, np.int64) & _SEQ_MASK) << 8) | (np.asarray(source, np.int64) & 0xFF)


def email_id_of(subscriber: np.ndarray, campaign_id: np.ndarray) -> np.ndarray:
    """Email id of response events from their subscriber and ``campaign_id``."""
    return (np.asarray(subscriber, np.int64) << SEQ_BITS) | (np.asarray(campaign_id, np.int64) >> 8)


def draw_keys(rule_ids: Sequence[str], source: np.ndarray, subscriber: np.ndarray,
              entered_at: np.ndarray, step: np.ndarray) -> list[str]:
    """The key each email's keyed policy draw uses (:mod:`policies.keyed`): a rule's
    send (source ``r + 1``) its trigger id (:func:`policies.triggers.trigger_id` of
    ``rule_ids[r]``, the subscriber, ``entered_at`` and the journey node ``step``, -1
    without steps); a campaign email (source 0) ``"campaign:<subscriber>:<entered_at>"``
    (its due time)."""
    return [trigger_id(rule_ids[s - 1], u, e, k) if s > 0 else f"campaign:{u}:{e}"
            for s, u, e, k in zip(np.asarray(source).tolist(), np.asarray(subscriber).tolist(),
                                  np.asarray(entered_at).tolist(), np.asarray(step).tolist(),
                                  strict=True)]


def source_of(campaign_id: np.ndarray) -> np.ndarray:
    """Source code (0 campaign, r + 1 rule r) of a campaign code."""
    return np.asarray(campaign_id, np.int64) & 0xFF


class EmailStore:
    """Columns of delivered emails in delivery order, indexed by email id.

    The index is a chain per subscriber, not a hash table: ``last[s]`` is the absolute row
    of subscriber ``s``'s latest email and each row holds the row of the same subscriber's
    previous one (8 bytes per subscriber and per live email; a dict of a million live
    emails took about 100 bytes each). A look-up walks a subscriber's chain from the
    latest email back to the one asked (a few steps: the emails of one subscriber still in
    their reward window).

    Parameters
    ----------
    columns : mapping of name -> (dtype, trailing shape)
        Must include ``email_id`` (:func:`email_id`) and ``time`` (delivery time, s,
        non-decreasing).
    start, stop : int
        The subscribers ``[start, stop)`` whose emails the store holds.
    storage : mapping of name -> dtype, optional
        Narrower dtypes the store keeps some integer columns in (:attr:`cols`); appended
        values must fit exactly, and :meth:`pop_until` returns the columns' own dtypes.
    """

    def __init__(self, columns: Mapping[str, tuple[Any, tuple[int, ...]]],
                 start: int, stop: int, storage: Mapping[str, Any] | None = None) -> None:
        self._setup(columns, start, stop, storage)

    def _setup(self, columns: Mapping[str, tuple[Any, tuple[int, ...]]],
               start: int, stop: int, storage: Mapping[str, Any] | None) -> None:
        self._spec = {**dict(columns), _PREV: (np.int64, ())}
        self._storage = dict(storage or {})
        unknown = set(self._storage) - set(columns)
        if unknown:
            raise ValueError(f"storage: unknown columns {sorted(unknown)}")
        self.start, self.stop = int(start), int(stop)
        self._cap = 1024
        self.cols = self._new(self._cap)
        self.head = 0  # first live position
        self.tail = 0  # one past the last position
        self.base = 0  # absolute row of position 0
        self._last = np.full(self.stop - self.start, -1, np.int64)

    def __len__(self) -> int:
        return self.tail - self.head

    def append(self, rows: Mapping[str, np.ndarray]) -> None:
        """Append emails (``time`` must not precede the last appended time)."""
        m = len(rows["email_id"])
        if m == 0:
            return
        if self.tail + m > self._cap:
            self._compact(m)
        lo, hi = self.tail, self.tail + m
        for k, col in self.cols.items():
            if k != _PREV:
                col[lo:hi] = rows[k]
                if k in self._storage and not np.array_equal(col[lo:hi], rows[k]):
                    raise ValueError(f"{k}: values outside {np.dtype(self._storage[k])}")
        absolute = np.arange(self.base + lo, self.base + hi, dtype=np.int64)
        self.cols[_PREV][lo:hi] = self._link(self._row_of(rows["email_id"]), absolute)
        self.tail = hi

    def _row_of(self, ids: np.ndarray) -> np.ndarray:
        """The subscriber row (``subscriber - start``) of email ids; refused outside."""
        row = (np.asarray(ids, np.int64) >> SEQ_BITS) - self.start
        if len(row) and (row.min() < 0 or row.max() >= len(self._last)):
            raise ValueError(f"email ids of subscribers outside [{self.start}, {self.stop})")
        return row

    def _link(self, row: np.ndarray, absolute: np.ndarray) -> np.ndarray:
        """Each new email's previous email of its subscriber (absolute row, -1: none);
        ``last`` moves to the new ones. ``absolute`` is increasing."""
        order = np.argsort(row, kind="stable")
        r, a = row[order], absolute[order]
        first = np.ones(len(r), bool)
        first[1:] = r[1:] != r[:-1]
        prev_sorted = np.empty(len(r), np.int64)
        prev_sorted[first] = self._last[r[first]]
        prev_sorted[~first] = a[:-1][~first[1:]]
        last = np.ones(len(r), bool)
        last[:-1] = first[1:]
        self._last[r[last]] = a[last]
        prev = np.empty(len(r), np.int64)
        prev[order] = prev_sorted
        return prev

    def _new(self, cap: int) -> dict[str, np.ndarray]:
        return {k: np.zeros((cap, *tail), self._storage.get(k, dt))
                for k, (dt, tail) in self._spec.items()}

    def _compact(self, extra: int) -> None:
        """Make room for ``extra`` rows: move the live rows to the front, in place when
        they and the new rows fill at most 3/4 of the arrays, else into arrays 1.5 times
        as large as needed (amortized O(1) per row; the memory a shard holds stays within
        about twice its live emails)."""
        live = self.tail - self.head
        need = live + extra
        if need <= self._cap * 3 // 4:
            for col in self.cols.values():
                col[:live] = col[self.head:self.tail]
        else:
            cap = max(1024, need * 3 // 2)
            new = self._new(cap)
            for k, col in self.cols.items():
                new[k][:live] = col[self.head:self.tail]
            self.cols, self._cap = new, cap
        self.base += self.head
        self.head, self.tail = 0, live

    def __getstate__(self) -> dict[str, Any]:
        # only live rows; the chains are rebuilt on load
        spec = {k: v for k, v in self._spec.items() if k != _PREV}
        return {"spec": spec, "base": self.base + self.head, "start": self.start,
                "stop": self.stop, "storage": self._storage,
                "cols": {k: col[self.head:self.tail].copy() for k, col in self.cols.items()
                         if k != _PREV}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["spec"], state["start"], state["stop"], state["storage"])
        self.base = state["base"]  # absolute row of the first live email
        self.append(state["cols"])

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions (into :attr:`cols`) of live emails ``ids``; -1 when unknown."""
        ids = np.asarray(ids, np.int64)
        row = (ids >> SEQ_BITS) - self.start
        known = (row >= 0) & (row < len(self._last))
        out = np.full(len(ids), -1, np.int64)
        todo = np.flatnonzero(known)
        cur = self._last[row[todo]]
        first = self.base + self.head
        eid, prev = self.cols["email_id"], self.cols[_PREV]
        while len(todo):
            live = cur >= first
            todo, cur = todo[live], cur[live]
            pos = cur - self.base
            hit = eid[pos] == ids[todo]
            out[todo[hit]] = pos[hit]
            todo, cur = todo[~hit], prev[pos[~hit]]
        return out

    def pop_until(self, time_limit: int) -> dict[str, np.ndarray]:
        """Remove and return (copies of) the emails with ``time <= time_limit``."""
        t = self.cols["time"][self.head:self.tail]
        k = int(np.searchsorted(t, time_limit, side="right"))
        out = {name: col[self.head:self.head + k].astype(self._spec[name][0])
               for name, col in self.cols.items() if name != _PREV}
        self.head += k
        return out

    def pop_all(self) -> dict[str, np.ndarray]:
        """Remove and return every live email."""
        return self.pop_until(np.iinfo(np.int64).max)
