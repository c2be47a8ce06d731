"""``triggerlab loadtest``: push an event stream through the trigger engine on Ray shards.

Exit status 0 only when the target rate was sustained and the correctness check
passed (and, with ``--p99-target``, the p99 latency met it); 1 otherwise; 2 for bad input.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from policies.errors import SpecError

_DUR = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*([kKmM])?\s*$")
_INT = re.compile(r"^\s*[+-]?\d+\s*$")
DEFAULT_POOL = 8_000_000


def parse_seconds(text: str, name: str = "duration") -> float:
    """``"60s"``, ``"1.5s"``, ``"20ms"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    m = _DUR.match(str(text))
    if not m:
        raise SpecError(f"{name}: expected a duration like '60s', '20ms' or '2m', got {text!r}")
    scale = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(2)]
    value = float(m.group(1)) * scale
    if not math.isfinite(value):
        raise SpecError(f"{name}: expected a finite duration, got {text!r}")
    return value


def parse_count(text: str, name: str = "rate") -> float:
    """``"500000"``, ``"500k"``, ``"1M"``, ``"2e6"`` -> a positive finite number."""
    m = _RATE.match(str(text))
    value = float(m.group(1)) * {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, None: 1.0}[
        m.group(2)] if m else float("nan")
    if not (math.isfinite(value) and value > 0):
        raise SpecError(f"{name}: expected a positive number like 500000, 500k or 1M, got {text!r}")
    return value


def parse_whole(text: str, name: str) -> int:
    """A positive whole count like :func:`parse_count` (``"1M"``, ``"2e6"``); fractions
    (``"0.5"``, ``"2.5"``) are refused, not truncated."""
    value = parse_count(text, name)
    if value != int(value):
        raise SpecError(f"{name}: expected a whole number like 500000, 500k or 1M, got {text!r}")
    return int(value)


def parse_int(text: str, name: str) -> int:
    """A plain integer (sign allowed: the range is the config's check)."""
    if not _INT.match(str(text)):
        raise SpecError(f"{name}: expected an integer, got {text!r}")
    return int(text)


def parse_number(text: str, name: str) -> float:
    """A finite number (``"2.5"``, ``"1e3"``); NaN and infinities are refused."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise SpecError(f"{name}: expected a finite number, got {text!r}")
    return value


#: Option (argparse dest) -> parser. Values stay text for argparse and are converted in
#: :func:`run`, so that a bad value is one ``triggerlab loadtest: error: ...`` line; the
#: ranges are checked in one place, :class:`~experiments.loadtest.LoadTestConfig`.
PARSERS: dict[str, Any] = {
    "subscribers": parse_whole, "rate": parse_count, "duration": parse_seconds,
    "shards": parse_int, "speedup": parse_number, "pool_events": parse_whole,
    "batch_window": parse_seconds, "batch_size": parse_whole,
    "checkpoint_every": parse_seconds, "kill_shard_at": parse_seconds,
    "kill_shard": parse_int, "check_events": parse_whole, "p99_target": parse_seconds,
    "seed": parse_int,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", required=True,
                   help="rule set YAML file ('reference' = the three reference rules)")
    p.add_argument("--subscribers", default=None,
                   help="subscribers of a generated stream (default 1M)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--rate", default=None,
                      help="offered events per second, open loop (default 500k)")
    load.add_argument("--max", action="store_true", help="offer as fast as the shards take")
    p.add_argument("--duration", default=None,
                   help="seconds of offered load, e.g. 60s (default 60s; at most 24h)")
    p.add_argument("--shards", default="2",
                   help="engine shards / Ray actors (2; at most 256 and the subscribers)")
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
    p.add_argument("--speedup", default=None,
                   help="with --replay: arrive at recorded timestamps / SPEEDUP")
    p.add_argument("--subscriber-table", type=Path, default=None,
                   help="with --replay: subscriber table (Parquet/CSV with a subscriber "
                        "column); default: generated attributes for the ids in the log")
    p.add_argument("--pool-events", default=None,
                   help=f"events pre-generated before the clock starts and offered again if the "
                   f"run needs more (default min(rate x duration, "
                   f"{DEFAULT_POOL:,}); with --max min(20 x subscribers, {DEFAULT_POOL:,}))")
    p.add_argument("--batch-window", default="20ms",
                   help="arrivals per batch and shard (default 20ms)")
    p.add_argument("--batch-size", default="50000",
                   help="events per batch at most (default 50000; with --max the batch size)")
    p.add_argument("--checkpoint-every", default="10s",
                   help="seconds between shard checkpoints (default 10s)")
    p.add_argument("--kill-shard-at", default=None,
                   help="kill a shard this far into the run, e.g. 30s (before the end of "
                        "--duration)")
    p.add_argument("--kill-shard", default=None,
                   help="with --kill-shard-at: which shard to kill (0)")
    p.add_argument("--cold-restart", action="store_true",
                   help="after a kill start a new actor process instead of the warm standby")
    p.add_argument("--check-events", default="300k",
                   help="events checked against the reference engine (the subscriber sample is "
                        "sized to it; default 300k)")
    p.add_argument("--p99-target", default=None,
                   help="also require p99 latency <= this, e.g. 250ms")
    p.add_argument("--seed", default="1", help="seed of the generated stream (1)")
    p.add_argument("--out", type=Path, default=None,
                   help="write loadtest.json, per_second.csv and PNG plots here")
    p.add_argument("--record", action="store_true", help="append the figures to BENCHMARKS.md")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")


def _rules(text: str) -> Any:
    from policies.triggers import check_supported, default_rules, load_rules

    if text == "reference":
        return default_rules()
    path = Path(text)
    if not path.exists():
        raise SpecError(f"rules: no such file {text!r} (or 'reference')")
    rules = load_rules(path)
    check_supported(rules)  # before any work (the engine shards would refuse it)
    return rules


def _stream(args: argparse.Namespace, rules: Any, config: Any) -> Any:
    from experiments.loadtest import behavior_stream, mix_stream, parse_mix, replay_stream
    from experiments.loadtest.generator import read_subscriber_table, rule_columns

    columns = rule_columns(rules)
    if args.replay is not None:
        table = None
        if args.subscriber_table is not None:
            table = read_subscriber_table(args.subscriber_table)
        return replay_stream(args.replay, subscribers=table, seed=config.seed, columns=columns)
    if args.mix is not None:
        return mix_stream(config.subscribers, config.pool_events, parse_mix(args.mix),
                          seed=config.seed, columns=columns)
    return behavior_stream(config.subscribers, config.pool_events, seed=config.seed,
                           source=args.source, columns=columns)


def _only(flag: str, given: bool, needs: str, ok: bool) -> None:
    if given and not ok:
        raise SpecError(f"{flag}: only with {needs}")


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~experiments.loadtest.LoadTestConfig` of the command line.

    Every value is parsed (:data:`PARSERS`), options that only make sense together are
    paired, and the config checks every range before anything is generated or started.
    """
    from experiments.loadtest import LoadTestConfig

    v: dict[str, Any] = {dest: None if getattr(args, dest) is None else parse(getattr(args, dest),
                                                             dest.replace("_", "-"))
         for dest, parse in PARSERS.items()}
    from experiments.loadtest.generator import check_table_path

    replay = args.replay is not None
    _only("speedup", v["speedup"] is not None, "--replay", replay)
    _only("subscriber-table", args.subscriber_table is not None, "--replay", replay)
    if replay:
        check_table_path(args.replay, "replay")
    if args.subscriber_table is not None:
        check_table_path(args.subscriber_table, "subscriber-table")
    if v["speedup"] is not None and (v["rate"] is not None or args.max):
        raise SpecError("speedup: the replay's timestamps set the rate; drop --rate/--max")
    if v["speedup"] is not None and v["duration"] is not None:
        raise SpecError("duration: the replay's timestamps set the length; drop --duration")
    if replay and v["subscribers"] is not None:
        raise SpecError("subscribers: a replay's subscribers are the ids in its log (or "
                        "--subscriber-table); drop --subscribers")
    if replay and v["pool_events"] is not None:
        raise SpecError("pool-events: a replay offers its log; drop --pool-events")
    killing = v["kill_shard_at"] is not None
    _only("kill-shard", v["kill_shard"] is not None, "--kill-shard-at", killing)
    _only("cold-restart", args.cold_restart, "--kill-shard-at", killing)
    subscribers = None if replay else (v["subscribers"] or 1_000_000)
    duration = 60.0 if v["duration"] is None else v["duration"]
    rate = None if args.max or v["speedup"] is not None else (v["rate"] or 500_000.0)
    pool = v["pool_events"]
    if pool is None and not replay:
        want = 20.0 * subscribers if rate is None else rate * duration  # type: ignore[operator]
        pool = int(max(1.0, min(want, DEFAULT_POOL)))
    return LoadTestConfig(
        shards=v["shards"], rate=rate, duration=duration, partition=args.partition,
        window=v["batch_window"], max_batch=v["batch_size"],
        checkpoint_every=v["checkpoint_every"], kill_at=v["kill_shard_at"],
        kill_shard=v["kill_shard"] or 0, standby=not args.cold_restart,
        check_events=v["check_events"], speedup=v["speedup"], subscribers=subscribers,
        pool_events=pool, p99_target=v["p99_target"], seed=v["seed"],
    )


def run(args: argparse.Namespace) -> int:
    from experiments.loadtest import run_loadtest
    from experiments.loadtest.report import summary_table, write_outputs

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    if args.out is not None:  # before the work, naming the user's path
        from experiments.runner import check_out_dir

        check_out_dir(args.out, "--out")
    config = config_from_args(args)
    rules = _rules(args.rules)
    t = time.perf_counter()
    stream = _stream(args, rules, config)
    say(f"pre-generated {len(stream.events):,} events for {len(stream.subscribers):,} "
        f"subscribers ({stream.source}) in {time.perf_counter() - t:.1f} s")
    from actors.ray_runtime import init_ray

    init_ray(args.address, include_dashboard=False, log_to_driver=False,
             configure_logging=False, logging_level="ERROR")
    result = run_loadtest(stream, rules, config)
    target = config.p99_target
    p99_ok = target is None or result.summary["latency_p99_ms"] <= 1000 * target
    say(summary_table(result, p99_target_ms=None if target is None else 1000 * target))
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
