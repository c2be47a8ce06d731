"""``triggerlab loadtest``: push an event stream through the trigger engine on Ray shards,
or (``--target nats://...`` / ``kafka://...``) through a running trigger service.

Exit status 0 only when the target rate was sustained and the correctness check
passed (and, with ``--p99-target``, the p99 latency met it); 1 otherwise; 2 for bad input.
With ``--target`` the load test publishes to the service's event stream and reads its
decision stream and progress markers (:mod:`experiments.loadtest.target`); exit status
0 when the service applied everything and decided what the reference engine decides.
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
    p.add_argument("--shards", default=None,
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
    p.add_argument("--checkpoint-every", default=None,
                   help="seconds between shard checkpoints (default 10s)")
    p.add_argument("--kill-shard-at", default=None,
                   help="kill a shard this far into the run, e.g. 30s (before the end of "
                        "--duration)")
    p.add_argument("--kill-shard", default=None,
                   help="with --kill-shard-at: which shard to kill (0)")
    p.add_argument("--cold-restart", action="store_true",
                   help="after a kill start a new actor process instead of the warm standby")
    p.add_argument("--check-events", default=None,
                   help="events checked against the reference engine (the subscriber sample is "
                        "sized to it; default 300k)")
    p.add_argument("--p99-target", default=None,
                   help="also require p99 latency <= this, e.g. 250ms")
    p.add_argument("--seed", default="1", help="seed of the generated stream (1)")
    p.add_argument("--out", type=Path, default=None,
                   help="write loadtest.json, per_second.csv and PNG plots here")
    p.add_argument("--record", action="store_true", help="append the figures to BENCHMARKS.md")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    t = p.add_argument_group("against a running service (docs/production.md)")
    t.add_argument("--target", default=None, metavar="URL",
                   help="nats://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC: publish to the "
                        "event stream a `triggerlab serve` reads, time its decisions")
    t.add_argument("--json", action="store_true",
                   help="with --target: one JSON event per message (default: Arrow batches)")
    t.add_argument("--policy", default=None, metavar="POLICY.yaml",
                   help="with --target: the service's --policy (for the check)")
    t.add_argument("--policy-seed", default=None,
                   help="with --target: the service's --seed (0)")
    t.add_argument("--partitions", default=None,
                   help="with --target: partitions of the stream if the load test creates "
                        "it (4)")
    t.add_argument("--write-subscribers", type=Path, default=None, metavar="PATH",
                   help="with --target: create the stream, write the generated subscriber "
                        "table (.parquet/.csv, for `serve --subscriber-table`) and exit")
    t.add_argument("--service-timeout", default=None,
                   help="with --target: wait this long for the service's shards (60s; a "
                        "first start compiles the engine)")
    t.add_argument("--drain-timeout", default=None,
                   help="with --target: after publishing, wait this long for the service "
                        "to apply everything (60s)")
    t.add_argument("--connect-timeout", default=None,
                   help="with --target: seconds to reach the broker (10s)")


def rules_option(text: str) -> Any:
    """``--rules``: ``reference`` or a rules file; journeys (rules with steps) included."""
    from policies.triggers import default_rules, load_rules

    if text == "reference":
        return default_rules()
    path = Path(text)
    if not path.exists():
        raise SpecError(f"rules: no such file {text!r} (or 'reference')")
    return load_rules(path)


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
    for dest, default in (("shards", 2), ("checkpoint_every", 10.0),
                          ("check_events", 300_000)):
        if v[dest] is None:
            v[dest] = default
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


#: Target-mode options (argparse dest -> parser), each refused without ``--target``.
TARGET_ONLY = ("json", "policy", "policy_seed", "partitions", "write_subscribers",
               "service_timeout", "drain_timeout", "connect_timeout")
#: In-process options refused with ``--target`` (dest -> why).
NOT_WITH_TARGET = {
    "max": "a service is loaded open loop at --rate; drop --max",
    "shards": "the service has its shards (`triggerlab serve --shards`); drop --shards",
    "kill_shard_at": "kill the service's shard or process yourself; drop --kill-shard-at",
    "kill_shard": "only with --kill-shard-at, which a target does not take",
    "cold_restart": "only with --kill-shard-at, which a target does not take",
    "checkpoint_every": "the service checkpoints (`serve --checkpoint-every`); drop it",
    "check_events": "a target is checked on every event; drop --check-events",
    "speedup": "a target is loaded at --rate; drop --speedup",
    "record": "record service figures with `python -m experiments.bench service --record`",
    "address": "the service runs its own Ray; drop --address",
}


def _given(args: argparse.Namespace, dest: str) -> bool:
    value = getattr(args, dest)
    return value not in (None, False)


def run(args: argparse.Namespace) -> int:
    if args.target is not None:
        for dest, why in NOT_WITH_TARGET.items():
            if _given(args, dest):
                raise SpecError(f"{dest.replace('_', '-')}: with --target, {why}")
        return _run_target(args)
    for dest in TARGET_ONLY:
        if _given(args, dest):
            raise SpecError(f"{dest.replace('_', '-')}: only with --target")
    from experiments.loadtest import run_loadtest
    from experiments.loadtest.report import summary_table, write_outputs

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    if args.out is not None:  # before the work, naming the user's path
        from experiments.runner import check_out_dir

        check_out_dir(args.out, "--out")
    config = config_from_args(args)
    rules = rules_option(args.rules)
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


def _run_target(args: argparse.Namespace) -> int:
    """``--target``: load a running service (:mod:`experiments.loadtest.target`)."""
    import dataclasses
    import json

    from actors.service.endpoints import Endpoint
    from actors.service.transport import TransportError
    from experiments.loadtest.generator import check_table_path
    from experiments.loadtest.report import _clean
    from experiments.loadtest.target import (
        TargetConfig,
        open_stream,
        run_target,
        target_table,
    )

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    if "://" not in args.target:
        raise SpecError(f"--target: expected nats://HOST:PORT/STREAM or "
                        f"kafka://HOST:PORT/TOPIC, got {args.target!r}")
    endpoint = Endpoint.parse(args.target, option="--target")
    v = {d: None if getattr(args, d) is None else PARSERS[d](getattr(args, d),
                                                            d.replace("_", "-"))
         for d in ("subscribers", "rate", "duration", "pool_events", "batch_window",
                   "batch_size", "p99_target", "seed")}
    timeouts = {d: parse_seconds(getattr(args, d) or default, d.replace("_", "-"))
                for d, default in (("service_timeout", "60s"), ("drain_timeout", "60s"),
                                   ("connect_timeout", "10s"))}
    if not timeouts["connect_timeout"] > 0:
        raise SpecError(f"connect-timeout: expected a duration > 0, got "
                        f"{args.connect_timeout!r}")
    partitions = parse_int(args.partitions or "4", "partitions")
    if partitions < 1:
        raise SpecError(f"partitions: expected an integer >= 1, got {partitions}")
    policy_seed = parse_int(args.policy_seed or "0", "policy-seed")
    if policy_seed < 0:
        raise SpecError(f"policy-seed: expected an integer >= 0, got {policy_seed}")
    rate = v["rate"] or 500_000.0
    duration = 60.0 if v["duration"] is None else v["duration"]
    config = TargetConfig(rate, duration, "json" if args.json else "arrow",
                          window=0.02 if v["batch_window"] is None else v["batch_window"],
                          max_batch=v["batch_size"] or 50_000,
                          service_timeout=timeouts["service_timeout"],
                          drain_timeout=timeouts["drain_timeout"])
    if args.write_subscribers is not None:
        suffix = args.write_subscribers.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise SpecError(f"write-subscribers: expected a .parquet or .csv path, got "
                            f"{str(args.write_subscribers)!r}")
    if args.out is not None:
        from experiments.runner import check_out_dir

        check_out_dir(args.out, "--out")
    replay = args.replay is not None
    if replay and v["subscribers"] is not None:
        raise SpecError("subscribers: a replay's subscribers are the ids in its log (or "
                        "--subscriber-table); drop --subscribers")
    if args.subscriber_table is not None and not replay:
        raise SpecError("subscriber-table: only with --replay")
    if replay:
        check_table_path(args.replay, "replay")
    rules = rules_option(args.rules)
    policy = None
    if args.policy is not None:
        from actors.registry import make_policy
        from experiments.spec import parse_policy, read_yaml

        pc = parse_policy(read_yaml(Path(args.policy), "policy"), "policy")
        if pc is not None:
            policy = make_policy(pc.name, pc.params, decides=pc.decides, reward="click",
                                 seed=policy_seed)
    endpoint = dataclasses.replace(endpoint, timeout=timeouts["connect_timeout"])
    pool = v["pool_events"] or int(max(1.0, min(rate * duration, DEFAULT_POOL)))
    if args.write_subscribers is not None:
        pool = 1     # the population does not depend on the number of events drawn
    cfg = argparse.Namespace(subscribers=v["subscribers"] or 1_000_000, pool_events=pool,
                             seed=1 if v["seed"] is None else v["seed"])
    try:         # reach the broker (and make the stream) before generating anything
        open_stream(endpoint, partitions).close()
    except TransportError as exc:
        raise OSError(str(exc)) from exc
    t = time.perf_counter()
    stream = _stream(args, rules, cfg)
    say(f"pre-generated {len(stream.events):,} events for {len(stream.subscribers):,} "
        f"subscribers ({stream.source}) in {time.perf_counter() - t:.1f} s")
    try:
        if args.write_subscribers is not None:
            table = stream.subscribers.reset_index()
            path = args.write_subscribers
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".csv":
                table.to_csv(path, index=False)
            else:
                table.to_parquet(path)
            sink = open_stream(endpoint, partitions)
            n = sink.partitions
            sink.close()
            say(f"wrote the subscriber table {path}; stream {endpoint.name!r} has {n} "
                f"partition(s)")
            return 0
        result = run_target(stream.events, stream.subscribers, rules, endpoint, config,
                            policy=policy, policy_seed=policy_seed, n_partitions=partitions,
                            say=say)
    except TransportError as exc:   # a broker out of reach: one line
        raise OSError(str(exc)) from exc
    target = v["p99_target"]
    p99_ok = target is None or result.summary["latency_p99_ms"] <= 1000 * target
    say(target_table(result, p99_target_ms=None if target is None else 1000 * target))
    ok = result.passed and p99_ok
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "loadtest.json"
        path.write_text(json.dumps(_clean({"argv": sys.argv, "passed": ok,
                                           "summary": result.summary,
                                           "check": result.check}), indent=1) + "\n",
                        encoding="utf-8")
        say(f"wrote {path}")
    say("PASS" if ok else "FAIL" + ("" if p99_ok else " (p99 over target)"))
    return 0 if ok else 1
