"""The Ray runtime's own cost: ``python -m experiments.bench ray_overhead [--json] [--record]``.

Runs the call pattern of the simulation loop (:mod:`actors.driver`) with stub actors that
do no work (:mod:`actors.ray_overhead`): per block of ``--ticks-per-call`` ticks, one
``steps`` call per shard returning outputs shaped like a shard's (choices and rewards of
``--emails-per-tick`` emails split over the shards), one ``decide_block`` call on the
learner taking the shards' outputs by reference and returning arms, the shards of block
``b`` waiting for the learner's output of block ``b - lag / ticks_per_call``, at most 4
blocks in flight, and the driver fetching one count per shard and the arms per block. It
reports the CPU seconds that the driver and each actor process spend on Ray alone
(calls, serialization, scheduling), per tick and in all.

With ``--inline-wall-s T`` (the inline run's wall time of the same number of ticks,
from ``python -m experiments.bench run``) it also prints the best Ray/inline ratio that
those CPU seconds allow on this machine's cores, if the shards' own work split
perfectly: ``T / ((T + overhead_cpu_s) / cores)``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from experiments.bench._common import emit

NAME = "ray_overhead"


def measure(ticks: int, shards: int, emails_per_tick: int, ticks_per_call: int,
            lag: int, max_in_flight: int = 4) -> dict[str, float]:
    """Run the stub loop (:func:`actors.ray_overhead.measure_stub_loop`); CPU seconds of
    the driver, the shards (each) and the learner."""
    from actors.ray_overhead import measure_stub_loop

    if lag % ticks_per_call:
        raise SystemExit("--lag must be a multiple of --ticks-per-call")
    return measure_stub_loop(ticks, shards, emails_per_tick, ticks_per_call, lag,
                             max_in_flight)


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

    from actors.ray_runtime import cluster_cpus, init_ray

    init_ray(log_to_driver=False, configure_logging=False, include_dashboard=False)
    m = measure(args.ticks, args.shards, args.emails_per_tick, args.ticks_per_call, args.lag)
    cores = cluster_cpus(os.cpu_count() or 1)
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
