"""``triggerlab loadtest``: push an event stream through the trigger engine on Ray shards.

Exit status 0 only when the target rate was sustained and the correctness check
passed (and, with ``--p99-target``, the p99 latency met it); 1 otherwise; 2 for bad input.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from policies.errors import SpecError

_DUR = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([kKmM])?\s*$")
DEFAULT_POOL = 8_000_000


def parse_seconds(text: str, name: str = "duration") -> float:
    """``"60s"``, ``"1.5s"``, ``"20ms"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    m = _DUR.match(str(text))
    if not m:
        raise SpecError(f"{name}: expected a duration like '60s', '20ms' or '2m', got {text!r}")
    scale = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_count(text: str, name: str = "rate") -> float:
    """``"500000"``, ``"500k"``, ``"1M"``, ``"2e6"`` -> a positive number."""
    m = _RATE.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise SpecError(f"{name}: expected a positive number like 500000, 500k or 1M, got {text!r}")
    return float(m.group(1)) * {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, None: 1.0}[m.group(2)]


def _arg(fn: Any, name: str) -> Any:
    """An argparse ``type`` that reports :class:`SpecError` messages as they are."""

    def convert(text: str) -> Any:
        try:
            return fn(text, name)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", required=True,
                   help="rule set YAML file ('reference' = the three reference rules)")
    p.add_argument("--subscribers", type=_arg(lambda v, n: int(parse_count(v, n)), "subscribers"),
                   default=1_000_000, help="subscribers of a generated stream (default 1M)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--rate", type=_arg(parse_count, "rate"), default=None,
                      help="offered events per second, open loop (default 500k)")
    load.add_argument("--max", action="store_true", help="offer as fast as the shards take")
    p.add_argument("--duration", type=_arg(parse_seconds, "duration"), default=60.0,
                   help="seconds of offered load, e.g. 60s (default 60s)")
    p.add_argument("--shards", type=int, default=2, help="engine shards / Ray actors (2)")
    p.add_argument("--partition", choices=("range", "hash"), default="range",
                   help="split subscribers into contiguous id ranges of equal size (default: "
                        "the engine then needs no id map) or by id hash")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--source", choices=("sim", "synthetic"), default="sim",
                     help="behavior model of a generated stream (default: the simulator)")
    src.add_argument("--mix", default=None,
                     help="event-type mix instead, e.g. product_view=0.6,add_to_cart=0.2")
    src.add_argument("--replay", type=Path, default=None,
                     help="recorded events (Parquet or CSV in EventBatch columns)")
    p.add_argument("--speedup", type=float, default=None,
                   help="with --replay: arrive at recorded timestamps / SPEEDUP")
    p.add_argument("--subscriber-table", type=Path, default=None,
                   help="with --replay: subscriber table (Parquet/CSV with a subscriber "
                        "column); default: generated attributes for the ids in the log")
    p.add_argument("--pool-events", type=_arg(lambda v, n: int(parse_count(v, n)), "pool-events"),
                   default=None, help=f"events pre-generated before the clock starts and "
                   f"offered again if the run needs more (default min(rate x duration, "
                   f"{DEFAULT_POOL:,}); with --max min(20 x subscribers, {DEFAULT_POOL:,}))")
    p.add_argument("--batch-window", type=_arg(parse_seconds, "batch-window"),
                   default=0.02, help="arrivals per batch and shard (default 20ms)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="events per batch at most (default 50000; with --max the batch size)")
    p.add_argument("--checkpoint-every", type=_arg(parse_seconds, "checkpoint-every"),
                   default=10.0, help="seconds between shard checkpoints (default 10s)")
    p.add_argument("--kill-shard-at", type=_arg(parse_seconds, "kill-shard-at"),
                   default=None, help="kill a shard this far into the run, e.g. 30s")
    p.add_argument("--kill-shard", type=int, default=0, help="which shard to kill (0)")
    p.add_argument("--cold-restart", action="store_true",
                   help="after a kill start a new actor process instead of the warm standby")
    p.add_argument("--check-events", type=_arg(lambda v, n: int(parse_count(v, n)), "check-events"),
                   default=300_000, help="events checked against the reference engine "
                   "(the subscriber sample is sized to it; default 300k)")
    p.add_argument("--p99-target", type=_arg(parse_seconds, "p99-target"),
                   default=None, help="also require p99 latency <= this, e.g. 250ms")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated stream (1)")
    p.add_argument("--out", type=Path, default=None,
                   help="write loadtest.json, per_second.csv and PNG plots here")
    p.add_argument("--record", action="store_true", help="append the figures to BENCHMARKS.md")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")


def _rules(text: str) -> Any:
    from policies.triggers import default_rules, load_rules

    if text == "reference":
        return default_rules()
    path = Path(text)
    if not path.exists():
        raise SpecError(f"rules: no such file {text!r} (or 'reference')")
    return load_rules(path)


def _stream(args: argparse.Namespace, rules: Any, rate: float | None) -> Any:
    import pandas as pd

    from experiments.loadtest import behavior_stream, mix_stream, parse_mix, replay_stream
    from experiments.loadtest.generator import rule_columns

    columns = rule_columns(rules)
    if args.replay is not None:
        table = None
        if args.subscriber_table is not None:
            tp = args.subscriber_table
            table = pd.read_parquet(tp) if tp.suffix.lower() in (".parquet", ".pq") else (
                pd.read_csv(tp))
            if "subscriber" in table.columns:
                table = table.set_index("subscriber")
        return replay_stream(args.replay, subscribers=table, seed=args.seed, columns=columns)
    pool = args.pool_events
    if pool is None:
        want = 20 * args.subscribers if rate is None else int(rate * args.duration)
        pool = max(1, min(want, DEFAULT_POOL))
    if args.mix is not None:
        return mix_stream(args.subscribers, pool, parse_mix(args.mix), seed=args.seed,
                          columns=columns)
    return behavior_stream(args.subscribers, pool, seed=args.seed, source=args.source,
                           columns=columns)


def run(args: argparse.Namespace) -> int:
    from experiments.loadtest import LoadTestConfig, run_loadtest
    from experiments.loadtest.report import summary_table, write_outputs

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    if args.speedup is not None and args.replay is None:
        raise SpecError("speedup: only with --replay")
    if args.subscriber_table is not None and args.replay is None:
        raise SpecError("subscriber-table: only with --replay")
    if args.speedup is not None and (args.rate is not None or args.max):
        raise SpecError("speedup: the replay's timestamps set the rate; drop --rate/--max")
    if args.out is not None:  # before the work, naming the user's path
        from experiments.runner import check_out_dir

        check_out_dir(args.out, "--out")
    rate = None if args.max or args.speedup is not None else (args.rate or 500_000.0)
    config = LoadTestConfig(
        shards=args.shards, rate=rate, duration=args.duration, partition=args.partition,
        window=args.batch_window,
        max_batch=args.batch_size or 50_000,
        checkpoint_every=args.checkpoint_every, kill_at=args.kill_shard_at,
        kill_shard=args.kill_shard, standby=not args.cold_restart,
        check_events=args.check_events, speedup=args.speedup,
    )
    rules = _rules(args.rules)
    t = time.perf_counter()
    stream = _stream(args, rules, rate)
    say(f"pre-generated {len(stream.events):,} events for {len(stream.subscribers):,} "
        f"subscribers ({stream.source}) in {time.perf_counter() - t:.1f} s")
    from actors.ray_runtime import init_ray

    init_ray(args.address, include_dashboard=False, log_to_driver=False,
             configure_logging=False, logging_level="ERROR")
    result = run_loadtest(stream, rules, config)
    p99_ok = args.p99_target is None or (
        result.summary["latency_p99_ms"] <= 1000 * args.p99_target)
    say(summary_table(result, p99_target_ms=None if args.p99_target is None
                      else 1000 * args.p99_target))
    ok = result.passed and p99_ok
    if args.out is not None:
        paths = write_outputs(result, args.out, argv=sys.argv, exit_status=int(
            not ok))
        say(f"wrote {', '.join(str(p) for p in paths)}")
    if args.record:
        _record(args, result)
        say("recorded in BENCHMARKS.md")
    say("PASS" if ok else "FAIL" + ("" if p99_ok else " (p99 over target)"))
    return 0 if ok else 1


def _record(args: argparse.Namespace, result: Any) -> None:
    import os
    import shlex

    from experiments.bench._common import append_record

    argv = [a for a in sys.argv[1:] if a != "--record"]
    cmd = shlex.join(["triggerlab", *argv]) if argv and argv[0] == "loadtest" else (
        "triggerlab loadtest ...")
    s, c = result.summary, result.check
    load = os.getloadavg()
    figures: dict[str, Any] = {
        "mode": s["mode"], "subscribers": s["subscribers"], "shards": s["shards"],
        "events processed": s["events_processed"],
        "throughput (events/s)": round(s["throughput_eps"]),
        "target rate (events/s)": s["target_rate"] or "max",
        "sustained": s["sustained"],
        "latency p50 / p99 / max (ms)":
            f"{s['latency_p50_ms']:.1f} / {s['latency_p99_ms']:.1f} / "
            f"{s['latency_max_ms']:.1f}",
        "engine bytes / subscriber": round(s["bytes_per_subscriber"], 1),
        "check": "passed" if c["passed"] else "FAILED",
        "load average before (1 min)": f"{load[0]:.2f}",
    }
    if result.recovery is not None:
        r = result.recovery
        figures["kill: restore / caught up (s)"] = f"{r['restore_s']:.2f} / {r['recovery_s']:.2f}"
    append_record("triggerlab loadtest", cmd, figures)
