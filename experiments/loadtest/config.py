"""The parameters and the result of a load test (:func:`experiments.loadtest.run_loadtest`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policies.checks import check_bool, check_choice, check_int, check_number
from policies.errors import SpecError

__all__ = ["LoadTestConfig", "LoadTestResult", "check_options", "memory_limit"]


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
    subscribers : int or None
        Subscribers of a generated stream (None: not known yet, e.g. a replay): bounds
        ``shards`` and enters the memory estimate.
    pool_events : int or None
        Events pre-generated before the clock starts (None: not known yet).
    p99_target : float or None
        ``triggerlab loadtest --p99-target``: seconds the p99 latency must not exceed.
    seed : int
        Seed of a generated stream (or of a replay's generated subscriber attributes).

    Every field is checked when the config is built (:func:`check_options` states the
    limits); :func:`~experiments.loadtest.run_loadtest` then checks the stream against
    it (every event's subscriber in the table, a kill within a replay's length).
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
    subscribers: int | None = None
    pool_events: int | None = None
    p99_target: float | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        check_options(self)

    def offered_events(self) -> float:
        """Events a rate run offers (``rate x duration``); NaN with ``--max`` or a replay."""
        if self.rate is None or self.speedup is not None:
            return float("nan")
        return self.rate * self.duration

    def planned_batches(self) -> float:
        """Batches a rate run schedules: per window of arrivals, each shard's share cut
        into batches of at most ``max_batch`` (NaN with ``--max`` or a replay)."""
        if self.rate is None or self.speedup is not None:
            return float("nan")
        per_window = max(1.0, round(self.rate * self.window))
        windows = self.rate * self.duration / per_window
        per_shard = per_window / self.shards
        return windows * min(self.shards, per_window) * max(
            1.0, math.ceil(per_shard / self.max_batch))

    def memory_estimate(self) -> dict[str, float]:
        """Bytes the driver needs before and while offering the load, by part.

        ``subscribers``: the subscriber table and the engine state
        (:data:`BYTES_PER_SUBSCRIBER` each); ``pool``: the pre-generated events
        (:data:`BYTES_PER_POOL_EVENT`); ``schedule``: the open-loop plan and the
        per-batch measurements (:data:`BYTES_PER_BATCH`, rate mode). Unknown parts
        (a replay's size before it is read, ``--max``) count 0.
        """
        batches = self.planned_batches()
        return {
            "subscribers": float(self.subscribers or 0) * BYTES_PER_SUBSCRIBER,
            "pool": float(self.pool_events or 0) * BYTES_PER_POOL_EVENT,
            "schedule": 0.0 if math.isnan(batches) else batches * BYTES_PER_BATCH,
        }


#: Bytes per subscriber (table, population, engine state) in :meth:`memory_estimate`.
BYTES_PER_SUBSCRIBER = 400
#: Bytes per pre-generated event (the pool, its sorted copy and its shard slices).
BYTES_PER_POOL_EVENT = 100
#: Bytes per scheduled batch (plan arrays, 16 arrival samples, latency bookkeeping).
BYTES_PER_BATCH = 600
#: Most shards (Ray actors, one process each) a load test starts.
MAX_SHARDS = 256
#: Longest offered load, seconds (one day).
MAX_DURATION = 86_400.0


def memory_limit() -> float:
    """Bytes a load test may plan to hold: half the machine's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 16 GB
        return 8 * 2.0**30


def _gb(n: float) -> str:
    return f"{n / 2**30:.3g} GB"


def check_options(cfg: LoadTestConfig) -> None:
    """Every option of a load test in one place; a :class:`SpecError` naming the option
    (as ``triggerlab loadtest`` spells it) for the first that is out of range.

    Limits: ``shards`` in [1, 256] and at most ``subscribers``; ``rate``, ``speedup``
    finite and > 0; ``duration`` in (0, 86400] s; ``batch-window`` in (0, duration];
    ``batch-size``, ``max_inflight``, ``check-events``, ``pool-events``, ``subscribers``
    integers >= 1; ``checkpoint-every`` finite and > 0; ``kill-shard-at`` in
    [0, duration) (a kill after the load ends would kill nothing); ``kill-shard`` in
    [0, shards); ``drain_timeout``, ``p99-target`` > 0; ``seed`` >= 0; and the memory
    the run must hold (:meth:`LoadTestConfig.memory_estimate`) at most half of the
    physical memory.
    """
    e = SpecError
    if cfg.subscribers is not None:
        check_int("subscribers", cfg.subscribers, error=e, low=1)
    high = MAX_SHARDS if cfg.subscribers is None else min(MAX_SHARDS, cfg.subscribers)
    what = None
    if cfg.subscribers is not None and cfg.subscribers < MAX_SHARDS:
        what = (f"an integer in [1, {cfg.subscribers}] (at most one shard per subscriber: "
                f"{cfg.subscribers} subscribers)")
    check_int("shards", cfg.shards, error=e, low=1, high=high, what=what)
    if cfg.rate is not None:
        check_number("rate", cfg.rate, error=e, low=0, low_open=True,
                      what="events per second > 0")
    check_number("duration", cfg.duration, error=e, low=0, low_open=True, high=MAX_DURATION,
                  what=f"seconds in (0, {MAX_DURATION:g}]")
    check_choice("partition", cfg.partition, ("range", "hash"), error=e)
    check_number("batch-window", cfg.window, error=e, low=0, low_open=True,
                 high=cfg.duration, what=f"seconds in (0, duration = {cfg.duration:g}]")
    check_int("batch-size", cfg.max_batch, error=e, low=1)
    check_int("max_inflight", cfg.max_inflight, error=e, low=1)
    if cfg.sweep_every is not None:
        check_int("sweep_every", cfg.sweep_every, error=e, low=1)
    check_number("checkpoint-every", cfg.checkpoint_every, error=e, low=0, low_open=True,
                 what="seconds > 0")
    if cfg.kill_at is not None:
        check_number("kill-shard-at", cfg.kill_at, error=e, low=0, high=cfg.duration,
                     high_open=True,
                     what=f"seconds in [0, {cfg.duration:g}) (within the duration)")
    check_int("kill-shard", cfg.kill_shard, error=e, low=0, high=cfg.shards - 1)
    check_bool("standby", cfg.standby, error=e)
    check_int("check-events", cfg.check_events, error=e, low=1)
    if cfg.pool_events is not None:
        check_int("pool-events", cfg.pool_events, error=e, low=1)
    if cfg.speedup is not None:
        check_number("speedup", cfg.speedup, error=e, low=0, low_open=True)
    if cfg.p99_target is not None:
        check_number("p99-target", cfg.p99_target, error=e, low=0, low_open=True,
                     what="seconds > 0")
    check_int("seed", cfg.seed, error=e, low=0)
    check_choice("engine", cfg.engine, ("fast", "reference"), error=e)
    check_number("drain_timeout", cfg.drain_timeout, error=e, low=0, low_open=True,
                 what="seconds > 0")
    parts = cfg.memory_estimate()
    need, limit = sum(parts.values()), memory_limit()
    if need > limit:
        worst = max(parts, key=lambda k: parts[k])
        said = {
            "subscribers": f"{cfg.subscribers or 0:,} subscribers: {_gb(parts['subscribers'])}",
            "pool": f"{cfg.pool_events or 0:,} pre-generated events: {_gb(parts['pool'])}",
            "schedule": f"{cfg.offered_events():.3g} events in {cfg.planned_batches():.3g} "
                        f"batches: {_gb(parts['schedule'])}",
        }
        option = {"subscribers": "subscribers", "pool": "pool-events", "schedule": "rate"}
        raise SpecError(
            f"{option[worst]}: expected a load this machine can hold (at most "
            f"{_gb(limit)}, half the physical memory), got an estimated {_gb(need)} "
            f"({'; '.join(said[k] for k, v in parts.items() if v)}); lower --rate, "
            f"--duration, --subscribers or --pool-events, or raise --batch-window"
        )


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
