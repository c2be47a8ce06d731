"""The trigger service: N engine shards over one source, inline or as Ray actors, and the
progress they report.

Partitions go to shards round robin (shard ``s`` owns partitions ``p`` with ``p % N ==
s``), so a subscriber always reaches the same shard. A Parquet log has one partition:
every shard reads it and keeps the subscribers of its own ``partition_of(id, N)``.
The checkpoint directory remembers the layout (``service.json``: shards, partitions,
source); a restart with another layout is refused, since each shard's checkpoint holds
the state of its own subscribers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.service.endpoints import Endpoint
from actors.service.learner import FeedbackLearner, LearnerProgress, remote_learner
from actors.service.runner import Progress, ShardRunner, remote_shard_runner
from actors.service.shard import ShardConfig
from actors.service.storage import Location
from policies import checks
from policies.errors import TriggerLabValueError

__all__ = ["EXECUTORS", "LAYOUT_FILE", "Service", "Tally"]

#: Where the shards run.
EXECUTORS = ("inline", "ray")
#: The layout file in the checkpoint directory.
LAYOUT_FILE = "service.json"


class Service:
    """Engine shards over ``endpoint`` (see the module docstring).

    Parameters
    ----------
    config : ShardConfig
        ``key_partitions`` is set here (the stream's partitions, or ``shards`` for a
        file).
    endpoint : Endpoint
    checkpoint_dir : path or URI
    shards : int
    executor : {"inline", "ray"}
    checkpoint_every : int
        Steps between a shard's checkpoints.
    group : str
        Consumer group / durable name prefix.
    feedback : Endpoint, optional
        A feedback stream: a :class:`~actors.service.learner.FeedbackLearner` (a Ray
        actor with the ``ray`` executor) learns the policy from it and publishes versions
        the shards load.
    reward_window : int
        The learner's reward window, seconds.
    attributes : Endpoint, optional
        Subscriber-attribute updates the shards apply in event-time order
        (:meth:`ShardRunner <actors.service.runner.ShardRunner>`'s ``attributes``).
    catalog : Endpoint, optional
        The catalog stream (price drops, restocks) every shard reads whole
        (:meth:`ShardRunner <actors.service.runner.ShardRunner>`'s ``catalog``).
    """

    def __init__(self, config: ShardConfig, endpoint: Endpoint, checkpoint_dir: str, *,
                 shards: int = 1, executor: str = "inline", checkpoint_every: int = 20,
                 group: str = "triggerlab", feedback: Endpoint | None = None,
                 reward_window: int = 86_400, attributes: Endpoint | None = None,
                 catalog: Endpoint | None = None) -> None:
        checks.check_int("--shards", shards, error=TriggerLabValueError, low=1)
        if executor not in EXECUTORS:
            raise TriggerLabValueError(f"--executor: expected one of {EXECUTORS}, got "
                                       f"{executor!r}")
        n = shards if endpoint.kind == "file" else endpoint.partitions()
        if shards > n:
            raise TriggerLabValueError(f"--shards: expected at most {n} (the stream's "
                                       f"partitions), got {shards}")
        self.shards = shards
        self.executor = executor
        self.endpoint = endpoint
        self.config = dataclasses.replace(config, key_partitions=n)
        self._check_layout(Location.of(checkpoint_dir), n)
        owned = [[p for p in range(n) if p % shards == s] for s in range(shards)]
        kw: list[dict[str, Any]] = [dict(shard=s, partitions=owned[s],
                                         checkpoint_dir=checkpoint_dir,
                                         checkpoint_every=checkpoint_every, group=group,
                                         attributes=attributes, catalog=catalog)
                                    for s in range(shards)]
        self._kw = kw
        learn: dict[str, Any] | None = None if feedback is None else dict(
            checkpoint_dir=checkpoint_dir, reward_window=reward_window,
            group=f"{group}-learner")
        self._learner: Any = None
        self._learner_actor: Any = None
        if executor == "inline":
            self._runners: list[Any] = [ShardRunner(self.config, endpoint, **k) for k in kw]
            self._actors: list[Any] = []
            if learn is not None and feedback is not None:
                self._learner = FeedbackLearner(self.config, feedback, **learn)
        else:
            import ray

            cls = remote_shard_runner()
            self._actors = [cls.remote(self.config, endpoint, **k) for k in kw]
            ray.get([a.ready.remote() for a in self._actors])
            self._runners = []
            if learn is not None and feedback is not None:
                self._learner_actor = remote_learner().remote(self.config, feedback, **learn)

    def _check_layout(self, loc: Location, n: int) -> None:
        layout = {"shards": self.shards, "partitions": n, "source": self.endpoint.name}
        data = loc.read(LAYOUT_FILE)
        if data is not None:
            saved = json.loads(data)
            if saved != layout:
                raise TriggerLabValueError(
                    f"--checkpoint-dir: written by a service with {saved.get('shards')} "
                    f"shard(s) over {saved.get('partitions')} partition(s) of "
                    f"{saved.get('source')!r}; got {self.shards} over {n} of "
                    f"{self.endpoint.name!r} (use a new directory)")
        else:
            loc.write_atomic(LAYOUT_FILE, json.dumps(layout).encode())

    def _call(self, method: str, *args: Any) -> list[Any]:
        if self._actors:
            import ray

            return list(ray.get([getattr(a, method).remote(*args) for a in self._actors]))
        return [getattr(r, method)(*args) for r in self._runners]

    def step(self, max_messages: int = 1000, timeout: float = 0.5) -> list[Progress]:
        """One step of every shard (in parallel on Ray), then of the learner."""
        reports = self._call("step", max_messages, timeout)
        if self._learner is not None:
            self.learned = self._learner.step(max_messages, 0.05)
        elif self._learner_actor is not None:
            import ray

            self.learned = ray.get(self._learner_actor.step.remote(max_messages, 0.05))
        return reports

    learned: LearnerProgress | None = None

    def advance_to(self, time_s: int) -> list[Progress]:
        """Every shard decides what is due by ``time_s - grace``."""
        return self._call("advance_to", time_s)

    def pids(self) -> list[int]:
        """The process id of each shard (this process's for ``inline``)."""
        return self._call("process_id")

    def restart_shard(self, shard: int) -> float:
        """Start shard ``shard`` again from its checkpoint (after its process died, or to
        replace it: the old one is dropped without a checkpoint); returns the seconds
        until the new one is built, restored and positioned to replay."""
        t0 = time.perf_counter()
        if self._actors:
            import ray

            ray.kill(self._actors[shard])     # a dead actor's kill is a no-op
            new = remote_shard_runner().remote(self.config, self.endpoint, **self._kw[shard])
            ray.get(new.ready.remote())
            self._actors[shard] = new
        else:
            self._runners[shard].close(checkpoint=False)
            self._runners[shard] = ShardRunner(self.config, self.endpoint, **self._kw[shard])
        return time.perf_counter() - t0

    def stats(self) -> list[dict[str, Any]]:
        """Each shard's counters."""
        return self._call("stats")

    def close(self, checkpoint: bool = True) -> None:
        """Checkpoint every shard (by default) and release the connections."""
        self._call("close", checkpoint)
        if self._learner is not None:
            self._learner.close(checkpoint)
        if self._learner_actor is not None:
            import ray

            ray.get(self._learner_actor.close.remote(checkpoint))
            ray.kill(self._learner_actor)
        if self._actors:
            import ray

            for a in self._actors:
                ray.kill(a)
            self._actors = []
        self._runners = []


@dataclass
class Tally:
    """Totals over the shards' :class:`Progress` reports, and the progress line.

    ``clock`` gives wall seconds (injected: ``time.monotonic`` by default); ``now``
    gives the wall time since the epoch for the watermark's lag.
    """

    start: float = field(default_factory=time.monotonic)
    events: int = 0
    decisions: int = 0
    dead: int = 0
    messages: int = 0
    last: dict[int, Progress] = field(default_factory=dict)
    _mark: tuple[float, int, int] | None = None

    def add(self, reports: Sequence[Progress]) -> None:
        for p in reports:
            self.events += p.events
            self.decisions += p.decisions
            self.dead += p.dead_letters
            self.messages += p.messages
            self.last[p.shard] = p

    def line(self, now_monotonic: float | None = None, wall: float | None = None) -> str:
        """``serve: 12.0 s | events 1,200 (100/s) | decisions 30 (2.5/s) | watermark
        2026-01-05 10:00:00Z (lag 300 s) | backlog 0 | dead letters 2 (bad 1, late 1,
        foreign 0)``; rates since the previous line."""
        t = time.monotonic() if now_monotonic is None else now_monotonic
        wall_now = time.time() if wall is None else wall
        t0, e0, d0 = self._mark if self._mark is not None else (self.start, 0, 0)
        dt = max(t - t0, 1e-9)
        self._mark = (t, self.events, self.decisions)
        reports = list(self.last.values())
        marks = [p.watermark for p in reports if p.watermark is not None]
        if marks:
            w = min(marks)
            stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(w))
            wm = f"watermark {stamp} (lag {max(0, int(wall_now - w)):,} s)"
        else:
            wm = "watermark none yet"
        backlogs = [p.backlog for p in reports]
        backlog = ("n/a" if not reports or any(b is None for b in backlogs)
                   else f"{sum(b for b in backlogs if b is not None):,}")
        tot = [p.totals for p in reports]
        bad = sum(x["dead_bad"] for x in tot)
        late = sum(x["dead_late"] for x in tot)
        foreign = sum(x["dead_foreign"] for x in tot)
        return (f"serve: {t - self.start:.1f} s | events {self.events:,} "
                f"({(self.events - e0) / dt:,.0f}/s) | decisions {self.decisions:,} "
                f"({(self.decisions - d0) / dt:,.1f}/s) | {wm} | backlog {backlog} | "
                f"dead letters {bad + late + foreign:,} (bad {bad:,}, late {late:,}, "
                f"foreign {foreign:,})")


def checkpoint_dir_text(path: str) -> str:
    """``--checkpoint-dir`` as given (local paths made absolute; URIs unchanged)."""
    return path if "://" in path else os.path.abspath(path)
