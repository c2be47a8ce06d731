"""Event-time watermark: puts slightly out-of-order events back in time order for an
engine shard.

Messages from several partitions (or producers) arrive interleaved, so a shard sees
events a little out of time order, while the trigger engine needs them in order
(contract point 1 of :mod:`policies.triggers.engine`). A :class:`Watermark` holds what it
is given and releases, in time order, every event at or before the **watermark**
``W = (latest event time seen) - grace``, together with ``until = W`` for
:meth:`TriggerEngine.process <policies.triggers.TriggerEngine.process>`, so the engine
also decides everything due by then.

* An event that arrives with a time before the last released watermark is **late**: the
  engine has moved past it, so it is not released but returned by :meth:`Watermark.add`
  with its reason, for the dead-letter stream, and counted. An event exactly at the last
  watermark is still on time (the engine accepts events at its clock).
* Ties keep arrival order (stable), so a replay of the same arrivals releases the same
  batches.
* :meth:`close` makes events at or before a time late (a shard calls it after handing
  the engine a catalog event at the watermark: at equal times the engine takes
  subscriber events before catalog events, so a subscriber event of that second that
  arrives afterwards can no longer be taken in order).
* **Bounded memory**: when more than ``max_held`` events are held, :meth:`release` also
  releases the oldest ones beyond the bound (the watermark is forced forward to the
  newest of them) and counts them in ``n_forced``: later arrivals older than that become
  late. Backlog pressure therefore shows as ``n_forced`` and ``n_late``, never as memory.
* **Idle sources**: :meth:`advance_to` moves the latest time seen without an event (a
  heartbeat or the broker's time), so the watermark moves when no events arrive. Its
  time must lie in the event time range ``[MIN_TIME, MAX_TIME)`` (2000 to 2100), as
  event times do: a heartbeat in milliseconds would otherwise move the watermark to
  the year 55,000 and make every later event late.
* While the watermark is before ``MIN_TIME`` (a grace longer than the events' age) it
  releases nothing and ``until`` is None (unless the bound forces events out): no event
  can be due yet, and the engine refuses an ``until`` outside its range.
* Cost: what is held stays sorted, in pieces (one per :meth:`add`, merged every
  ``_MAX_PIECES`` adds), so a :meth:`release` costs what it releases plus a slice per
  piece, not a sort of everything held. Released rows of a piece stay in memory until
  its next merge.
* :meth:`state_dict` / :meth:`from_state_dict`: held events and counters as plain data
  for a checkpoint; a restored watermark releases exactly what the original would.

Times are int64 seconds since the epoch, as in :class:`~policies.events.EventBatch`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.checks import show
from policies.errors import TriggerLabValueError
from policies.event_schema import MAX_TIME, MIN_TIME, time_range_error
from policies.events import EventBatch

__all__ = ["Late", "Watermark", "late_reason"]

#: Default bound on held events (about 100 MB of events with a few data columns).
DEFAULT_MAX_HELD = 2_000_000
#: Held pieces (sorted runs) beyond which they are merged into one.
_MAX_PIECES = 32
#: The keys of a :meth:`Watermark.state_dict`.
_STATE_KEYS = ("version", "grace", "max_held", "held", "max_seen", "released_to",
               "n_released", "n_late", "n_forced")


def late_reason(time: int, watermark: int, grace: int) -> str:
    """The dead-letter reason of an event that came after its time was released."""
    return (f"late: event time {time} is before the watermark {watermark} "
            f"(grace {grace} s)")


@dataclass(frozen=True)
class Late:
    """Events refused by :meth:`Watermark.add`, in arrival order, and why (one reason a
    row); ``rows`` are their positions in the batch given (int64)."""

    events: EventBatch
    reasons: list[str]
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.events)


def _whole(name: str, value: Any, low: int, high: int | None = None) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not low <= int(value) <= (int(value) if high is None else high)):
        what = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise TriggerLabValueError(f"{name}: expected whole seconds {what}, got {show(value)}"
                                   if name == "grace" else
                                   f"{name}: expected an integer {what}, got {show(value)}")
    return int(value)


def _time(name: str, value: Any) -> int:
    """Int seconds since the epoch in ``[MIN_TIME, MAX_TIME)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TriggerLabValueError(f"{name}: expected int seconds, got {show(value)}")
    if not MIN_TIME <= int(value) < MAX_TIME:
        raise TriggerLabValueError(f"{name}: {time_range_error(int(value))}")
    return int(value)


def _merge(pieces: list[EventBatch]) -> EventBatch:
    """Pieces, each in time order and all in arrival order, as one batch in time order
    (ties in arrival order)."""
    if len(pieces) == 1:
        return pieces[0]
    return EventBatch.concat(pieces).sort_by_time()


class Watermark:
    """Reorder buffer with an event-time watermark (see the module docstring).

    Parameters
    ----------
    grace : int
        Seconds an event may arrive after later events and still be released in order.
    max_held : int
        Most events held at once (>= 1).
    """

    def __init__(self, grace: int, max_held: int = DEFAULT_MAX_HELD) -> None:
        self.grace = _whole("grace", grace, 0, MAX_TIME - MIN_TIME)
        self.max_held = _whole("max_held", max_held, 1)
        self._held: list[EventBatch] = []   # pieces in arrival order, each in time order
        self._n_held = 0
        self.max_seen: int | None = None   # latest event time seen (or advanced to)
        self.released_to: int | None = None  # the last watermark released
        self.closed_to: int | None = None    # events at or before it are late (close)
        self.n_released = 0
        self.n_late = 0
        self.n_forced = 0

    # -- input ----------------------------------------------------------------

    def add(self, batch: EventBatch) -> Late:
        """Hold ``batch``'s on-time events; return the late ones with their reasons."""
        if not isinstance(batch, EventBatch):
            raise TriggerLabValueError(f"batch: expected an EventBatch, got {show(batch)}")
        if len(batch) == 0:
            return Late(EventBatch.empty(), [])
        if self.released_to is None:
            late = np.zeros(len(batch), bool)
        else:
            late = batch.time < self.released_to
        if self.closed_to is not None:
            late |= batch.time <= self.closed_to
        on_time = batch[~late] if late.any() else batch
        if len(on_time):
            self._held.append(on_time.sort_by_time())
            self._n_held += len(on_time)
            if len(self._held) > _MAX_PIECES:
                self._held = [_merge(self._held)]
            self._see(int(on_time.time.max()))
        refused = batch[late]
        self.n_late += len(refused)
        w = self.released_to
        return Late(refused, [late_reason(t, w, self.grace) if t < w else
                              f"late: event time {t} is at or before a catalog event "
                              f"already handled (time {self.closed_to})"
                              for t in refused.time.tolist()] if w is not None else [],
                    np.flatnonzero(late).astype(np.int64))

    def close(self, time: int) -> None:
        """From now on, events at or before ``time`` (s, at most the last released
        watermark) are late (see the module docstring)."""
        t = _time("time", time)
        if self.released_to is None or t > self.released_to:
            raise TriggerLabValueError(f"time: expected at most the released watermark "
                                       f"{self.released_to}, got {t}")
        self.closed_to = t if self.closed_to is None else max(self.closed_to, t)

    def advance_to(self, time: int) -> None:
        """Treat ``time`` (s) as seen, so the watermark moves without events."""
        self._see(_time("time", time))

    def _see(self, t: int) -> None:
        self.max_seen = t if self.max_seen is None else max(self.max_seen, t)

    # -- output ---------------------------------------------------------------

    @property
    def watermark(self) -> int | None:
        """``max_seen - grace``, never behind the last released watermark; None before
        anything was seen."""
        if self.max_seen is None:
            return self.released_to
        w = self.max_seen - self.grace
        return w if self.released_to is None else max(w, self.released_to)

    @property
    def n_held(self) -> int:
        """Events held now."""
        return self._n_held

    def release(self) -> tuple[EventBatch, int | None]:
        """Events at or before the watermark in time order (ties in arrival order), and
        ``until`` (the watermark; None before anything was seen or while it is before
        ``MIN_TIME``)."""
        w = self.watermark
        if w is None:
            return EventBatch.empty(), None
        cuts = [int(np.searchsorted(p.time, w, side="right")) for p in self._held]
        due = sum(cuts)
        if w < MIN_TIME and self._n_held <= self.max_held:
            return EventBatch.empty(), None      # nothing can be due; the engine refuses w
        if self._n_held - due > self.max_held:   # bounded memory: force the oldest out
            held = _merge(self._held)
            excess = self._n_held - due - self.max_held
            forced_to = int(held.time[due + excess - 1])
            cut = int(np.searchsorted(held.time, forced_to, side="right"))  # whole seconds
            self.n_forced += cut - due
            w = max(w, forced_to)
            self._held, cuts = [held], [cut]
        out = _merge([p[:c] for p, c in zip(self._held, cuts, strict=True) if c]) \
            if any(cuts) else EventBatch.empty()
        self._held = [p[c:] for p, c in zip(self._held, cuts, strict=True) if c < len(p)]
        self._n_held -= len(out)
        self.released_to = w
        self.n_released += len(out)
        return out, w

    # -- checkpoints ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain, picklable state (held events as an EventBatch)."""
        held = _merge(self._held) if self._held else EventBatch.empty()
        return {"version": 1, "grace": self.grace, "max_held": self.max_held,
                "held": held, "max_seen": self.max_seen, "released_to": self.released_to,
                "n_released": self.n_released, "n_late": self.n_late,
                "n_forced": self.n_forced, "closed_to": self.closed_to}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Watermark:
        """Restore what :meth:`state_dict` saved (held events in time or arrival order)."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise TriggerLabValueError(
                "state: expected a Watermark.state_dict() of version 1, got "
                f"{show(state.get('version') if isinstance(state, dict) else state)}")
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise TriggerLabValueError(f"state: missing {', '.join(map(repr, missing))} "
                                       "(expected a Watermark.state_dict())")
        self = cls(state["grace"], state["max_held"])
        held = state["held"]
        if not isinstance(held, EventBatch):
            raise TriggerLabValueError(f"state['held']: expected an EventBatch, got {show(held)}")
        for key in ("max_seen", "released_to"):
            if state[key] is not None:
                _time(f"state[{key!r}]", state[key])
        for key in ("n_released", "n_late", "n_forced"):
            _whole(f"state[{key!r}]", state[key], 0)
        if len(held) and state["max_seen"] is None:
            raise TriggerLabValueError("state['max_seen']: None while events are held")
        self._held = [held.sort_by_time()] if len(held) else []
        self._n_held = len(held)
        self.max_seen = state["max_seen"]
        self.released_to = state["released_to"]
        self.closed_to = state.get("closed_to")     # absent in checkpoints before it
        if self.closed_to is not None:
            _time("state['closed_to']", self.closed_to)
        self.n_released = int(state["n_released"])
        self.n_late = int(state["n_late"])
        self.n_forced = int(state["n_forced"])
        return self
