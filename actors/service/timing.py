"""Where a shard's time goes: wall seconds per part of its steps, summed over the run.

The parts (:data:`PARTS`), in the order a step meets them:

* ``poll`` -- reading messages from the event, attributes and catalog sources;
* ``decode`` -- messages to events and dead letters, partition ownership;
* ``watermark`` -- holding and releasing events in time order;
* ``engine`` -- :meth:`TriggerEngine.process <policies.triggers.TriggerEngine.process>`
  and attribute updates;
* ``arms`` -- the policy's keyed draw of each fire's arm and propensity;
* ``table`` -- decision rows as the decision-log table (contexts included);
* ``log`` -- writing the decision-log part;
* ``publish`` -- decisions and dead letters to their streams;
* ``progress`` -- progress markers;
* ``checkpoint`` -- writing the checkpoint and committing positions.

Wall time (``time.perf_counter``), so a part that waits (a poll's timeout, a broker's
acknowledgement) counts its waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PARTS", "PartTimes"]

PARTS = ("poll", "decode", "watermark", "engine", "arms", "table", "log", "publish",
         "progress", "checkpoint")


class PartTimes:
    """Seconds per part (:data:`PARTS`), accumulated by :meth:`part`."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Add the wall time of the ``with`` body to ``name``."""
        if name not in self.seconds:
            raise KeyError(f"part: expected one of {PARTS}, got {name!r}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def as_dict(self) -> dict[str, float]:
        """A copy of the seconds per part."""
        return dict(self.seconds)
