"""Load-test targets of issue 8 in one command.

``python -m experiments.bench loadtest [--subscribers N] [--shards N] [--duration S]
[--rate R] [--json] [--record]``

Runs the reference rules on Ray engine shards over one pre-generated simulator stream
twice: with ``--max`` (sustained throughput; target >= 2,000,000 events/s on 1,000,000
subscribers and 2 shards) and open-loop at ``--rate`` (p99 decision latency; target
<= 250 ms at 1,000,000 events/s), and reports engine bytes per subscriber (target <= 200).
Both runs must pass the reference-engine check. The 1-minute load average before each
run is printed, because the machine's 2 cores may be shared.
"""

from __future__ import annotations

import argparse
import os
import time

from experiments.bench._common import emit


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench loadtest")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--rate", type=float, default=1_000_000.0, help="events/s offered")
    parser.add_argument("--pool-events", type=int, default=8_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)

    from actors.ray_runtime import init_ray
    from experiments.loadtest import LoadTestConfig, behavior_stream, rule_columns, run_loadtest
    from policies.triggers import default_rules

    rules = default_rules()
    t = time.perf_counter()
    stream = behavior_stream(args.subscribers, args.pool_events, seed=args.seed,
                             columns=rule_columns(rules))
    gen_s = time.perf_counter() - t
    init_ray(include_dashboard=False, log_to_driver=False, configure_logging=False,
             logging_level="ERROR")
    load_max = os.getloadavg()[0]
    fast = run_loadtest(stream, rules, LoadTestConfig(
        shards=args.shards, rate=None, duration=args.duration))
    load_rate = os.getloadavg()[0]
    paced = run_loadtest(stream, rules, LoadTestConfig(
        shards=args.shards, rate=args.rate, duration=args.duration))
    fs, ps = fast.summary, paced.summary
    figures = {
        "subscribers": args.subscribers,
        "shards": args.shards,
        "pool events (pre-generated)": len(stream.events),
        "pool generation s": round(gen_s, 1),
        "max: throughput events/s (target >= 2,000,000)": round(fs["throughput_eps"]),
        "max: events processed": fs["events_processed"],
        "max: load average before": round(load_max, 2),
        f"rate {args.rate:,.0f}/s: sustained": "yes" if ps["sustained"] else "no",
        f"rate {args.rate:,.0f}/s: p50 ms": round(ps["latency_p50_ms"], 1),
        f"rate {args.rate:,.0f}/s: p99 ms (target <= 250)": round(ps["latency_p99_ms"], 1),
        f"rate {args.rate:,.0f}/s: max ms": round(ps["latency_max_ms"], 1),
        f"rate {args.rate:,.0f}/s: load average before": round(load_rate, 2),
        "engine bytes / subscriber (target <= 200)": round(fs["bytes_per_subscriber"], 1),
        "shard RSS MiB": ", ".join(f"{v / 2**20:.0f}" for v in fast.shards["rss_bytes"]),
        "reference check": "passed" if fast.check["passed"] and paced.check["passed"]
        else "FAILED",
    }
    emit("loadtest", argv, figures, as_json=args.json, record=args.record,
         title="Load test targets (reference rules, simulator stream)")
    return 0 if fast.passed and paced.passed else 1
