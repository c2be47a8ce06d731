"""The Ray runtime's own cost: the simulation loop's call pattern with stub actors.

:func:`measure_stub_loop` runs the call pattern of :mod:`actors.driver` with actors that
do no work: per block of ``ticks_per_call`` ticks, one ``steps`` call per shard
returning :class:`~actors.messages.TickOutput` records shaped like a shard's (choices
and rewards of ``emails_per_tick`` emails split over the shards), one ``decide_block``
call on the learner taking the shards' outputs by reference and returning
:class:`~actors.messages.Arms`, the shards of block ``b`` waiting for the learner's
output of block ``b - lag / ticks_per_call``, at most ``max_in_flight`` blocks in
flight, and the driver fetching one count per shard and the arms per block. Used by
``python -m experiments.bench ray_overhead``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

__all__ = ["measure_stub_loop"]


def _process_cpu_s() -> float:
    """CPU seconds (user + system, all threads) of the calling process."""
    t = os.times()
    return t.user + t.system


def _actors(n_emails: int) -> tuple[Any, Any]:
    import ray

    from actors.messages import Arms, Choices, Rewards, TickOutput

    @ray.remote(num_cpus=0)
    class ShardStub:
        def cpu(self) -> float:
            return _process_cpu_s()

        @ray.method(num_returns=2)
        def steps(self, first: int, count: int, arms: Any) -> tuple[list[TickOutput], int]:
            ids = np.arange(n_emails, dtype=np.int64)
            out = [TickOutput(first + j, Choices(ids, ids, ids, ids),
                              Rewards(ids, ids, ids, ids, np.zeros(n_emails)),
                              1, n_emails) for j in range(count)]
            return out, count

    @ray.remote(num_cpus=0)
    class LearnerStub:
        def cpu(self) -> float:
            return _process_cpu_s()

        def decide_block(self, first: int, count: int, *outputs: list[TickOutput]
                         ) -> list[Arms]:
            n = sum(len(o[0].choices) for o in outputs)
            ids = np.arange(n, dtype=np.int64)
            return [Arms(ids, ids % 3, np.full(n, 1 / 3)) for _ in range(count)]

    return ShardStub, LearnerStub


def measure_stub_loop(ticks: int, shards: int, emails_per_tick: int, ticks_per_call: int,
                      lag: int, max_in_flight: int = 4) -> dict[str, float]:
    """Run the stub loop on the running Ray cluster.

    Parameters
    ----------
    ticks, shards, emails_per_tick, ticks_per_call : int
    lag : int
        ``decision_lag_ticks``, a multiple of ``ticks_per_call``.
    max_in_flight : int
        Blocks submitted ahead of the last finished one.

    Returns
    -------
    dict
        ``wall_s``; CPU seconds of the driver (``driver_cpu_s``), of a shard on average
        (``shard_cpu_s``), of the learner (``learner_cpu_s``) and of all processes
        (``overhead_cpu_s``).
    """
    import ray

    shard_cls, learner_cls = _actors(max(1, emails_per_tick // shards))
    workers = [shard_cls.remote() for _ in range(shards)]
    learner = learner_cls.remote()
    actors = [*workers, learner]
    ray.get([a.cpu.remote() for a in actors])      # started and imported
    lag_blocks = lag // ticks_per_call
    n_blocks = -(-ticks // ticks_per_call)
    cpu0 = ray.get([a.cpu.remote() for a in actors])
    d0, t0 = _process_cpu_s(), time.perf_counter()
    pending: dict[int, tuple[list[Any], Any]] = {}
    arms_log: dict[int, Any] = {}
    done = nxt = 0
    while done < n_blocks:
        while nxt < n_blocks and nxt - done < max_in_flight:
            first = nxt * ticks_per_call
            count = min(ticks_per_call, ticks - first)
            src = nxt - lag_blocks
            arms = None if src < 0 else arms_log.get(src, pending.get(src, (None, None))[1])
            steps = [w.steps.remote(first, count, arms) for w in workers]
            decided = learner.decide_block.remote(first, count, *[o for o, _ in steps])
            pending[nxt] = ([c for _, c in steps], decided)
            nxt += 1
        counts, decided = pending.pop(done)
        ray.get(counts)
        ray.get(decided)
        arms_log[done] = decided
        arms_log.pop(done - lag_blocks, None)
        done += 1
    wall = time.perf_counter() - t0
    driver = _process_cpu_s() - d0
    cpu1 = ray.get([a.cpu.remote() for a in actors])
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    for a in actors:
        ray.kill(a)
    return {"wall_s": wall, "driver_cpu_s": driver,
            "shard_cpu_s": float(np.mean(used[:shards])), "learner_cpu_s": used[-1],
            "overhead_cpu_s": driver + sum(used)}
