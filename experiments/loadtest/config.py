"""The parameters and the result of a load test (:func:`experiments.loadtest.run_loadtest`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policies.errors import SpecError

__all__ = ["LoadTestConfig", "LoadTestResult"]


@dataclass(frozen=True)
class LoadTestConfig:
    """Parameters of a load test (times in seconds).

    Attributes
    ----------
    shards : int
        Engine shards (Ray actors).
    rate : float or None
        Offered events per second; None = as fast as possible (``--max``).
    duration : float
        Seconds of offered load.
    partition : {"range", "hash"}
        How subscribers are split over shards: contiguous id ranges of equal size (the
        engine of a shard then holds dense ids and no id map) or a hash of the id.
    window : float
        Arrivals collected into one batch per shard (rate / replay mode).
    max_batch : int
        Events per batch at most (the batch size with ``--max``).
    max_inflight : int
        Batches in flight per shard with ``--max``.
    sweep_every : int or None
        Every this many batches a shard also decides everything due by the batch's last
        event time (``until``); None: about every 0.25 s of arrivals (every 10 batches
        with ``--max``).
    checkpoint_every : float
        Seconds between checkpoints of each shard.
    kill_at : float or None
        Kill shard ``kill_shard`` this many seconds into the run.
    standby : bool
        With a kill: keep one warm spare actor (started and warmed up before the clock)
        that takes over the killed shard's checkpoint; otherwise start a new actor
        process at the kill (cold restart: adds the process start to the recovery).
    check_events : int
        Budget of events for the offline reference check (the subscriber sample is
        sized to it); the whole stream is checked when it is smaller.
    speedup : float or None
        Replay at recorded timestamps / speedup.
    engine : {"fast", "reference"}
        Engine inside the shards.
    drain_timeout : float
        Give up waiting for the backlog this many seconds after the offered load ends.
    """

    shards: int = 2
    rate: float | None = 100_000.0
    duration: float = 10.0
    partition: str = "range"
    window: float = 0.02
    max_batch: int = 50_000
    max_inflight: int = 3
    sweep_every: int | None = None
    checkpoint_every: float = 10.0
    kill_at: float | None = None
    kill_shard: int = 0
    standby: bool = True
    check_events: int = 300_000
    speedup: float | None = None
    engine: str = "fast"
    drain_timeout: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) or self.shards < 1:
            raise SpecError(f"shards: expected an int >= 1, got {self.shards!r}")
        if self.rate is not None and not self.rate > 0:
            raise SpecError(f"rate: expected events per second > 0, got {self.rate!r}")
        if not self.duration > 0:
            raise SpecError(f"duration: expected seconds > 0, got {self.duration!r}")
        if self.kill_at is not None and not 0 <= self.kill_at:
            raise SpecError(f"kill_shard_at: expected seconds >= 0, got {self.kill_at!r}")
        if not 0 <= self.kill_shard < self.shards:
            raise SpecError(f"kill_shard: expected 0..{self.shards - 1}, got {self.kill_shard}")
        if not self.checkpoint_every > 0:
            raise SpecError(f"checkpoint_every: expected seconds > 0, got {self.checkpoint_every}")
        if self.max_batch < 1 or self.max_inflight < 1 or self.check_events < 1:
            raise SpecError("max_batch, max_inflight and check_events: expected >= 1")


@dataclass
class LoadTestResult:
    """Everything measured; :func:`experiments.loadtest.report.to_json` serializes it."""

    config: LoadTestConfig
    summary: dict[str, Any]
    per_second: pd.DataFrame
    shards: pd.DataFrame
    check: dict[str, Any]
    recovery: dict[str, Any] | None
    stats: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def passed(self) -> bool:
        """Target rate sustained and the correctness check passed."""
        return bool(self.summary["sustained"] and self.check["passed"])
