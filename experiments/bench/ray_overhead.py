"""The Ray runtime's own cost: ``python -m experiments.bench ray_overhead [--json] [--record]``.

Runs the call pattern of the simulation loop (:mod:`actors.driver`) with stub actors that
do no work: per block of ``--ticks-per-call`` ticks, one ``steps`` call per shard
returning outputs shaped like a shard's (choices and rewards of ``--emails-per-tick``
emails split over the shards), one ``decide_block`` call on the learner taking the
shards' outputs by reference and returning arms, the shards of block ``b`` waiting for
the learner's output of block ``b - lag / ticks_per_call``, at most 4 blocks in flight,
and the driver fetching one count per shard and the arms per block. It reports the CPU
seconds that the driver and each actor process spend on Ray alone (calls, serialization,
scheduling), per tick and in all.

With ``--inline-wall-s T`` (the inline run's wall time of the same number of ticks,
from ``python -m experiments.bench run``) it also prints the best Ray/inline ratio that
those CPU seconds allow on this machine's cores, if the shards' own work split
perfectly: ``T / ((T + overhead_cpu_s) / cores)``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from experiments.bench._common import emit

NAME = "ray_overhead"


def _process_cpu_s() -> float:
    """CPU seconds (user + system, all threads) of the calling process."""
    t = os.times()
    return t.user + t.system


def _actors(n_emails: int) -> tuple[Any, Any]:
    import ray

    @ray.remote(num_cpus=0)
    class ShardStub:
        def cpu(self) -> float:
            return _process_cpu_s()

        @ray.method(num_returns=2)
        def steps(self, first: int, count: int, arms: Any) -> tuple[list[dict[str, Any]], int]:
            ids = np.arange(n_emails, dtype=np.int64)
            out = [{"tick": first + j,
                    "choices": {"email_id": ids, "subscriber": ids, "due": ids, "source": ids},
                    "rewards": {"email_id": ids, "subscriber": ids, "time": ids, "arm": ids,
                                "reward": np.zeros(n_emails)},
                    "n_events": 1, "n_sent": n_emails} for j in range(count)]
            return out, count

    @ray.remote(num_cpus=0)
    class LearnerStub:
        def cpu(self) -> float:
            return _process_cpu_s()

        def decide_block(self, first: int, count: int, *outputs: list[dict[str, Any]]
                         ) -> list[dict[str, np.ndarray]]:
            n = sum(len(o[0]["choices"]["email_id"]) for o in outputs)
            ids = np.arange(n, dtype=np.int64)
            return [{"email_id": ids, "arm": ids % 3, "propensity": np.full(n, 1 / 3)}
                    for _ in range(count)]

    return ShardStub, LearnerStub


def measure(ticks: int, shards: int, emails_per_tick: int, ticks_per_call: int,
            lag: int, max_in_flight: int = 4) -> dict[str, float]:
    """Run the stub loop; CPU seconds of the driver, the shards (each) and the learner."""
    import ray

    if lag % ticks_per_call:
        raise SystemExit("--lag must be a multiple of --ticks-per-call")
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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.bench ray_overhead",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=2880, help="ticks (30 days of 15 min)")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--emails-per-tick", type=int, default=1800,
                    help="emails per tick over all shards (the 1M x 30 d run averages ~1,860)")
    ap.add_argument("--ticks-per-call", type=int, default=1)
    ap.add_argument("--lag", type=int, default=2, help="decision_lag_ticks")
    ap.add_argument("--inline-wall-s", type=float, default=None,
                    help="wall time of the inline run, for the best possible ratio")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    if args.ticks < 1 or args.shards < 1 or args.ticks_per_call < 1 or args.lag < 1:
        ap.error("--ticks, --shards, --ticks-per-call and --lag must be >= 1")

    import ray

    if not ray.is_initialized():
        ray.init(log_to_driver=False, configure_logging=False, include_dashboard=False)
    m = measure(args.ticks, args.shards, args.emails_per_tick, args.ticks_per_call, args.lag)
    cores = float(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    figures: dict[str, Any] = {
        "ticks": args.ticks, "shards": args.shards, "emails_per_tick": args.emails_per_tick,
        "ticks_per_call": args.ticks_per_call, "decision_lag_ticks": args.lag,
        "wall_s": m["wall_s"], "driver_cpu_s": m["driver_cpu_s"],
        "shard_cpu_s": m["shard_cpu_s"], "learner_cpu_s": m["learner_cpu_s"],
        "overhead_cpu_s": m["overhead_cpu_s"],
        "overhead_cpu_ms_per_tick": 1e3 * m["overhead_cpu_s"] / args.ticks,
        "cores": cores,
    }
    if args.inline_wall_s:
        t = args.inline_wall_s
        figures["inline_wall_s"] = t
        figures["ratio_best_possible_vs_inline"] = t / ((t + m["overhead_cpu_s"]) / cores)
    figures["load_avg_1m"] = os.getloadavg()[0]
    emit(NAME, argv, figures, as_json=args.json, record=args.record,
         title="Ray runtime overhead (stub actors, no work)")
    return 0
