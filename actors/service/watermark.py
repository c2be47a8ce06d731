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
* **Bounded memory**: when more than ``max_held`` events are held, :meth:`release` also
  releases the oldest ones beyond the bound (the watermark is forced forward to the
  newest of them) and counts them in ``n_forced``: later arrivals older than that become
  late. Backlog pressure therefore shows as ``n_forced`` and ``n_late``, never as memory.
* **Idle sources**: :meth:`advance_to` moves the latest time seen without an event (a
  heartbeat or the broker's time), so the watermark moves when no events arrive.
* :meth:`state_dict` / :meth:`from_state_dict`: held events and counters as plain data
  for a checkpoint; a restored watermark releases exactly what the original would.

Times are int64 seconds since the epoch, as in :class:`~policies.events.EventBatch`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.checks import show
from policies.errors import TriggerLabValueError
from policies.events import EventBatch

__all__ = ["Late", "Watermark", "late_reason"]

#: Default bound on held events (about 100 MB of events with a few data columns).
DEFAULT_MAX_HELD = 2_000_000


def late_reason(time: int, watermark: int, grace: int) -> str:
    """The dead-letter reason of an event that came after its time was released."""
    return (f"late: event time {time} is before the watermark {watermark} "
            f"(grace {grace} s)")


@dataclass(frozen=True)
class Late:
    """Events refused by :meth:`Watermark.add`, in arrival order, and why (one reason a row)."""

    events: EventBatch
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.events)


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise TriggerLabValueError(f"{name}: expected whole seconds >= {low}, got {show(value)}"
                                   if name == "grace" else
                                   f"{name}: expected an integer >= {low}, got {show(value)}")
    return int(value)


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
        self.grace = _whole("grace", grace, 0)
        self.max_held = _whole("max_held", max_held, 1)
        self._held: list[EventBatch] = []
        self._n_held = 0
        self.max_seen: int | None = None   # latest event time seen (or advanced to)
        self.released_to: int | None = None  # the last watermark released
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
        on_time = batch[~late] if late.any() else batch
        if len(on_time):
            self._held.append(on_time)
            self._n_held += len(on_time)
            self._see(int(on_time.time.max()))
        refused = batch[late]
        self.n_late += len(refused)
        w = self.released_to
        return Late(refused, [late_reason(t, w, self.grace) for t in refused.time.tolist()]
                    if w is not None else [])

    def advance_to(self, time: int) -> None:
        """Treat ``time`` (s) as seen, so the watermark moves without events."""
        if isinstance(time, bool) or not isinstance(time, numbers.Integral):
            raise TriggerLabValueError(f"time: expected int seconds, got {show(time)}")
        self._see(int(time))

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
        ``until`` (the watermark; None before anything was seen)."""
        w = self.watermark
        if w is None:
            return EventBatch.empty(), None
        held = EventBatch.concat(self._held) if len(self._held) != 1 else self._held[0]
        order = np.argsort(held.time, kind="stable")
        times = held.time[order]
        cut = int(np.searchsorted(times, w, side="right"))
        excess = len(held) - cut - self.max_held
        if excess > 0:                      # bounded memory: force the oldest out
            cut += excess
            forced_to = int(times[cut - 1])
            while cut < len(held) and times[cut] == forced_to:
                cut += 1                    # never split a second between two releases
            self.n_forced += cut - int(np.searchsorted(times, w, side="right"))
            w = max(w, forced_to)
        out = held[order[:cut]]
        rest = held[np.sort(order[cut:])]   # keep arrival order among the held
        self._held = [rest] if len(rest) else []
        self._n_held = len(rest)
        self.released_to = w
        self.n_released += len(out)
        return out, w

    # -- checkpoints ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain, picklable state (held events as an EventBatch)."""
        held = EventBatch.concat(self._held) if self._held else EventBatch.empty()
        return {"version": 1, "grace": self.grace, "max_held": self.max_held,
                "held": held, "max_seen": self.max_seen, "released_to": self.released_to,
                "n_released": self.n_released, "n_late": self.n_late,
                "n_forced": self.n_forced}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Watermark:
        """Restore what :meth:`state_dict` saved."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise TriggerLabValueError(
                "state: expected a Watermark.state_dict() of version 1, got "
                f"{show(state.get('version') if isinstance(state, dict) else state)}")
        self = cls(state["grace"], state["max_held"])
        held = state["held"]
        if not isinstance(held, EventBatch):
            raise TriggerLabValueError(f"state['held']: expected an EventBatch, got {show(held)}")
        self._held = [held] if len(held) else []
        self._n_held = len(held)
        self.max_seen = state["max_seen"]
        self.released_to = state["released_to"]
        self.n_released = int(state["n_released"])
        self.n_late = int(state["n_late"])
        self.n_forced = int(state["n_forced"])
        return self
