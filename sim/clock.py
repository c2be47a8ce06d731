"""Simulated time: a clock whose ``now`` only the driver moves.

Like SimPy's ``Environment.now``, :attr:`SimClock.now` is read-only; the one object
that drives a run calls :meth:`SimClock.advance` to move to the next tick and hands the
interval ``(t0, t1]`` to the world and the trigger engine. Times are int64 seconds
since the Unix epoch, UTC.

Example
-------
>>> clock = SimClock(start=1_700_000_000, step=900)
>>> clock.advance()
(1700000000, 1700000900)
>>> clock.now, clock.ticks
(1700000900, 1)
"""

from __future__ import annotations

import numbers

from policies.errors import SpecError

__all__ = ["DAY", "HOUR", "MINUTE", "SimClock"]

MINUTE = 60
HOUR = 3600
DAY = 86400


class SimClock:
    """A simulated clock with a fixed step.

    Parameters
    ----------
    start : int
        Start time, seconds since the Unix epoch (UTC).
    step : int
        Step length in seconds (> 0); 900 is a 15-minute tick.
    """

    __slots__ = ("_now", "_start", "_step", "_ticks")

    def __init__(self, start: int, step: int = 900) -> None:
        if isinstance(start, bool) or not isinstance(start, numbers.Integral):
            raise SpecError(f"start: expected int seconds since the epoch, got {start!r}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step <= 0:
            raise SpecError(f"step: expected a positive number of seconds, got {step!r}")
        self._start: int = int(start)
        self._step: int = int(step)
        self._now: int = int(start)
        self._ticks: int = 0

    @property
    def now(self) -> int:
        """Current simulated time in seconds (read-only)."""
        return self._now

    @property
    def start(self) -> int:
        """Start time in seconds."""
        return self._start

    @property
    def step(self) -> int:
        """Step length in seconds."""
        return self._step

    @property
    def ticks(self) -> int:
        """Number of steps taken."""
        return self._ticks

    def advance(self) -> tuple[int, int]:
        """Move one step forward; return the interval ``(t0, t1]`` just covered."""
        t0 = self._now
        self._now = t0 + self._step
        self._ticks += 1
        return t0, self._now

    def __repr__(self) -> str:
        return f"SimClock(now={self._now}, step={self._step}, ticks={self._ticks})"
