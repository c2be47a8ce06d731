"""A one-line progress bar for long runs: ticks, simulated date, events/s.

Shown on a terminal (``sys.stderr.isatty()``) and quiet elsewhere (CI, notebooks,
pipes) unless forced with ``enabled=True``.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Progress of a run of ``total`` ticks.

    Parameters
    ----------
    total : int
        Number of ticks.
    enabled : bool or None
        None: only when ``stream`` is a terminal.
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    every : float
        Minimum seconds between redraws.
    """

    def __init__(self, total: int, enabled: bool | None = None, stream: TextIO | None = None,
                 every: float = 0.5) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = (bool(getattr(self.stream, "isatty", lambda: False)())
                        if enabled is None else bool(enabled))
        self.every = every
        self.t0 = time.perf_counter()
        self._last = -1e9
        self.done = 0
        self.events = 0

    def update(self, tick: int, sim_time: int, events: int) -> None:
        """Record that ``tick`` (0-based) finished at simulated ``sim_time`` with
        ``events`` events; redraw if due."""
        if tick + 1 <= self.done:
            return  # a replayed tick is not counted twice
        self.done = tick + 1
        self.events += events
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.every and self.done < self.total:
            return
        self._last = now
        self.stream.write("\r" + self.line(sim_time, now - self.t0))
        self.stream.flush()

    def line(self, sim_time: int, elapsed: float) -> str:
        """The text of the bar."""
        frac = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        date = datetime.fromtimestamp(sim_time, UTC).strftime("%Y-%m-%d %H:%M")
        rate = self.events / elapsed if elapsed > 0 else 0.0
        return (f"[{bar}] tick {self.done}/{self.total}  {date} UTC  "
                f"{rate:,.0f} events/s  {elapsed:,.0f} s")

    def close(self) -> None:
        """Finish the line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
