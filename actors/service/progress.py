"""Progress markers: what an engine shard publishes after each step, so that a consumer
of the decision stream knows how far the service has got.

A shard of a broker source publishes one marker to the stream ``<stream>_progress``
(partition ``shard mod partitions``, one JSON object per message) after every step
that read messages or wrote decisions, once the step's decisions are stored on the
decision stream, and a heartbeat at most every ``heartbeat`` seconds while idle. A
marker with watermark ``W`` says: every event of the shard's partitions read so far
with time ``<= W`` is applied, and every decision due by ``W`` that those events cause
is on the decision stream. The load test (``triggerlab loadtest --target``) times
events by it: an event is decided when the first marker of its shard with a watermark
at or after its time is emitted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from policies.errors import TriggerLabValueError

__all__ = ["ProgressMarker"]


@dataclass(frozen=True)
class ProgressMarker:
    """One shard's progress after a step.

    Attributes
    ----------
    shard : int
    partitions : tuple of int
        The key partitions the shard owns.
    messages, events, written : int
        Totals since the shard's state began (the checkpoint's counters: messages read,
        good events of its subscribers, decisions written by this process's runner).
    watermark, max_seen : int or None
        Seconds since the epoch (None before the first event).
    grace : int
        The watermark's grace, seconds.
    dead_bad, dead_late, dead_foreign : int
        Dead letters by cause, totals.
    emitted : float
        Wall time (seconds since the epoch) when the marker was made: after the step's
        decisions were stored on the decision stream.
    heartbeat : bool
        Made by an idle step (nothing read, nothing written).
    """

    shard: int
    partitions: tuple[int, ...]
    messages: int
    events: int
    written: int
    watermark: int | None
    max_seen: int | None
    grace: int
    dead_bad: int
    dead_late: int
    dead_foreign: int
    emitted: float
    heartbeat: bool

    def to_json(self) -> bytes:
        """The marker as one JSON object (UTF-8)."""
        return json.dumps({**asdict(self), "partitions": list(self.partitions)}).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> ProgressMarker:
        """Read :meth:`to_json` output; :class:`TriggerLabValueError` for anything else."""
        try:
            body: Any = json.loads(payload)
            return cls(**{**body, "partitions": tuple(int(p) for p in body["partitions"])})
        except (ValueError, TypeError, KeyError) as exc:
            raise TriggerLabValueError(
                f"progress marker: expected a JSON ProgressMarker, got {payload[:60]!r} "
                f"({type(exc).__name__})") from None
