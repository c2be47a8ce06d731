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

    Parameters
    ----------
    columns : mapping of name -> (dtype, trailing shape)
        Must include ``email_id`` and ``time`` (delivery time, s, non-decreasing).
    """

    def __init__(self, columns: Mapping[str, tuple[Any, tuple[int, ...]]]) -> None:
        self._spec = dict(columns)
        self._cap = 1024
        self.cols = {k: np.zeros((self._cap, *tail), dt) for k, (dt, tail) in self._spec.items()}
        self.head = 0  # first live position
        self.tail = 0  # one past the last position
        self.base = 0  # absolute row of position 0
        self._index: dict[int, int] | None = {}

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
            col[lo:hi] = rows[k]
        absolute = range(self.base + lo, self.base + hi)
        self.index.update(zip(rows["email_id"].tolist(), absolute, strict=True))
        self.tail = hi

    def _compact(self, extra: int) -> None:
        live = self.tail - self.head
        cap = self._cap
        while live + extra > cap // 2:
            cap *= 2
        new = {k: np.zeros((cap, *tail), dt) for k, (dt, tail) in self._spec.items()}
        for k, col in self.cols.items():
            new[k][:live] = col[self.head:self.tail]
        self.base += self.head
        self.cols, self._cap = new, cap
        self.head, self.tail = 0, live

    def __getstate__(self) -> dict[str, Any]:
        # only live rows; the id -> row index is rebuilt on load
        return {"spec": self._spec, "base": self.base + self.head,
                "cols": {k: col[self.head:self.tail].copy() for k, col in self.cols.items()}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._spec = state["spec"]
        live = len(state["cols"]["email_id"])
        self._cap = max(1024, 2 * live)
        self.cols = {k: np.zeros((self._cap, *tail), dt) for k, (dt, tail) in self._spec.items()}
        for k, col in state["cols"].items():
            self.cols[k][:live] = col
        self.head, self.tail, self.base = 0, live, state["base"]
        self._index = None  # rebuilt on first use

    @property
    def index(self) -> dict[int, int]:
        """Email id -> absolute row of the live emails."""
        if self._index is None:
            ids = self.cols["email_id"][self.head:self.tail].tolist()
            start = self.base + self.head
            self._index = dict(zip(ids, range(start, start + len(ids)), strict=True))
        return self._index

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions (into :attr:`cols`) of live emails ``ids``; -1 when unknown."""
        get = self.index.get
        absolute = np.fromiter((get(e, -1) for e in ids.tolist()), np.int64, len(ids))
        pos = absolute - self.base
        return np.where((absolute >= 0) & (pos >= self.head), pos, -1)

    def pop_until(self, time_limit: int) -> dict[str, np.ndarray]:
        """Remove and return (copies of) the emails with ``time <= time_limit``."""
        t = self.cols["time"][self.head:self.tail]
        k = int(np.searchsorted(t, time_limit, side="right"))
        out = {name: col[self.head:self.head + k].copy() for name, col in self.cols.items()}
        for e in out["email_id"].tolist():
            del self.index[e]
        self.head += k
        return out

    def pop_all(self) -> dict[str, np.ndarray]:
        """Remove and return every live email."""
        return self.pop_until(np.iinfo(np.int64).max)
