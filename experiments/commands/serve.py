"""``triggerlab serve``: run the trigger rules and a policy as a service on an event stream.

``--source`` is ``nats://HOST:PORT/STREAM``, ``kafka://HOST:PORT/TOPIC`` or a Parquet
event log (a file or a directory of them). Every ``--progress`` seconds one line reports
events/s, decisions/s, the watermark and its lag behind the wall clock, the backlog and
the dead letters. Ctrl-C (SIGINT) or SIGTERM stops it cleanly: the step in progress
finishes, every shard writes its checkpoint, exit status 0. A Parquet log is served to
its end (``--drain``: then decide everything due up to its latest event); a broker
source until stopped, or until no message came for ``--stop-when-idle``. Bad options,
and a broker out of reach: one line, exit status 2 (the shards keep their last
checkpoint). See docs/production.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from policies.errors import SpecError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", required=True, help="rules YAML file (or 'reference')")
    p.add_argument("--policy", default=None, metavar="POLICY.yaml",
                   help="the policy choosing each send's variant (as a spec's "
                        "arms[i].policy); none: no variants")
    p.add_argument("--split-policy", action="append", default=[], metavar="NAME=POLICY.yaml",
                   help="a policy a journey split names (split: {policy: NAME}); repeat "
                        "for each name")
    p.add_argument("--source", required=True,
                   help="nats://HOST:PORT/STREAM, kafka://HOST:PORT/TOPIC or a Parquet log")
    p.add_argument("--subscriber-table", required=True, metavar="PATH",
                   help="subscriber table (Parquet or CSV with a 'subscriber' column)")
    p.add_argument("--checkpoint-dir", required=True, metavar="DIR",
                   help="checkpoints and the decision log (a path or a pyarrow.fs URI)")
    p.add_argument("--shards", default="1", help="engine shards (1)")
    p.add_argument("--executor", choices=("inline", "ray"), default="ray",
                   help="shards as Ray actors (ray, default) or in this process (inline)")
    p.add_argument("--engine", choices=("fast", "reference"), default="fast",
                   help="engine implementation (both run journeys)")
    p.add_argument("--seed", default="0", help="seed of the policy's draws (0)")
    p.add_argument("--reward", choices=("click", "order", "revenue"), default="click",
                   help="what the policy learns from (click)")
    p.add_argument("--grace", default="300s",
                   help="watermark grace: how late an event may arrive (300s)")
    p.add_argument("--max-skew", default="1h",
                   help="events later than the wall clock plus this are dead-lettered (1h)")
    p.add_argument("--checkpoint-every", default="20", help="steps between checkpoints (20)")
    p.add_argument("--max-messages", default="1000", help="messages per poll (1000)")
    p.add_argument("--progress", default="5s", help="seconds between progress lines (5s)")
    p.add_argument("--stop-when-idle", default=None, metavar="SECONDS",
                   help="broker sources: stop once no message came for this long")
    p.add_argument("--drain", action="store_true",
                   help="Parquet log: at its end, decide everything due up to its latest "
                        "event")
    p.add_argument("--feedback", default=None, metavar="SOURCE",
                   help="feedback stream (trigger_id, reward, time per response; same "
                        "address forms as --source): a learner updates the policy from it")
    p.add_argument("--attributes", default=None, metavar="SOURCE",
                   help="subscriber-attribute updates (subscriber, time, attributes per "
                        "message; same address forms as --source, a broker stream with "
                        "the same partitions): applied in event-time order")
    p.add_argument("--catalog", default=None, metavar="SOURCE",
                   help="catalog events (price_drop / back_in_stock with time, product_id, "
                        "old_price, new_price per message; same address forms as "
                        "--source): every shard reads all of it, for catalog journeys")
    p.add_argument("--reward-window", default="1d",
                   help="with --feedback: how long after a send its responses count (1d)")
    p.add_argument("--connect-timeout", default="10s",
                   help="seconds to reach the broker before giving up (10s)")
    p.add_argument("--group", default="triggerlab", help="consumer group / durable prefix")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")


def _window(text: str) -> int:
    """``--reward-window`` as the rules write durations (``90s``, ``2h``, ``1d``), > 0."""
    from policies.triggers.durations import parse_duration

    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise SpecError(f"--reward-window: {exc}") from None
    if window < 1:
        raise SpecError(f"--reward-window: expected a duration > 0, got {text!r}")
    return window


class _Stop:
    """SIGINT / SIGTERM set a flag; the loop stops between steps."""

    def __init__(self) -> None:
        self.why: str | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.why = signal.Signals(signum).name


def run(args: argparse.Namespace) -> int:
    from actors.service.endpoints import Endpoint
    from actors.service.service import Service, Tally, checkpoint_dir_text
    from actors.service.shard import ShardConfig
    from experiments.commands.loadtest import parse_int, parse_seconds
    from experiments.loadtest.generator import check_table_path, read_subscriber_table
    from experiments.spec import parse_policy, read_yaml
    from policies.errors import RuleWarning
    from policies.triggers import TriggerEngine

    shards = parse_int(args.shards, "--shards")
    seed = parse_int(args.seed, "--seed")
    grace = parse_seconds(args.grace, "--grace")
    skew = parse_seconds(args.max_skew, "--max-skew")
    every = parse_int(args.checkpoint_every, "--checkpoint-every")
    max_messages = parse_int(args.max_messages, "--max-messages")
    progress = parse_seconds(args.progress, "--progress")
    idle = None if args.stop_when_idle is None else parse_seconds(args.stop_when_idle,
                                                                  "--stop-when-idle")
    for name, value, text in (("--grace", grace, args.grace), ("--max-skew", skew,
                                                               args.max_skew)):
        if value != int(value):
            raise SpecError(f"{name}: expected whole seconds, got {text!r}")
    if max_messages < 1:
        raise SpecError(f"--max-messages: expected an integer >= 1, got {max_messages}")
    if progress <= 0:
        raise SpecError(f"--progress: expected a duration > 0, got {args.progress!r}")
    window = _window(args.reward_window)
    connect = parse_seconds(args.connect_timeout, "--connect-timeout")
    if connect <= 0:
        raise SpecError(f"--connect-timeout: expected a duration > 0, got "
                        f"{args.connect_timeout!r}")
    endpoint = dataclasses.replace(Endpoint.parse(args.source), timeout=connect)
    feedback = None
    if args.feedback is not None:
        if args.policy is None:
            raise SpecError("--feedback: a learner needs --policy")
        feedback = dataclasses.replace(Endpoint.parse(args.feedback, option="--feedback"),
                                       timeout=connect)
    attributes = None
    if args.attributes is not None:
        attributes = dataclasses.replace(
            Endpoint.parse(args.attributes, option="--attributes"), timeout=connect)
    catalog = None
    if args.catalog is not None:
        catalog = dataclasses.replace(Endpoint.parse(args.catalog, option="--catalog"),
                                      timeout=connect)
    if args.drain and endpoint.kind != "file":
        raise SpecError("--drain: only with a Parquet log as --source")
    from experiments.commands.loadtest import rules_option

    rules = rules_option(args.rules)
    policy = None
    if args.policy is not None:
        policy = parse_policy(read_yaml(Path(args.policy), "policy"), "policy")
    splits = {}
    for text in args.split_policy:
        name, sep, path = text.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise SpecError(f"--split-policy: expected NAME=POLICY.yaml, got {text!r}")
        if name.strip() in splits:
            raise SpecError(f"--split-policy: {name.strip()!r} given twice")
        pc = parse_policy(read_yaml(Path(path.strip()), f"split-policy {name.strip()}"),
                          f"split-policy {name.strip()}")
        if pc is not None:
            splits[name.strip()] = pc
    check_table_path(Path(args.subscriber_table), "subscriber-table")
    table = read_subscriber_table(args.subscriber_table)
    config = ShardConfig(rules, table, policy, seed=seed, reward=args.reward,
                         grace=int(grace), max_skew=int(skew), engine=args.engine,
                         split_policies=splits)
    config.make_policy()           # the policy's parameters, checked before anything starts
    with warnings.catch_warnings():  # the journeys' split policies, checked against them
        warnings.simplefilter("ignore", RuleWarning)
        TriggerEngine(rules, subscribers=table.iloc[:0], engine="reference",
                      policies=config.make_split_policies(), seed=seed)
    if args.executor == "ray":
        from actors import init_ray

        init_ray(args.address)
    from actors.service.transport import TransportError

    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        service = Service(config, endpoint, checkpoint_dir_text(args.checkpoint_dir),
                          shards=shards, executor=args.executor, checkpoint_every=every,
                          group=args.group, feedback=feedback, reward_window=int(window),
                          attributes=attributes, catalog=catalog)
        return _loop(service, Tally(), stop, endpoint.kind == "file", progress, idle,
                     args.drain, max_messages, grace=int(grace))
    except TransportError as exc:   # a broker out of reach: one line (the URL was given)
        raise OSError(str(exc)) from exc
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _loop(service: Any, tally: Any, stop: _Stop, finite: bool, progress: float,
          idle: float | None, drain: bool, max_messages: int, *, grace: int) -> int:
    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    say(f"serve: {service.shards} shard(s) ({service.executor}) on "
        f"{service.endpoint!r}, {service.config.key_partitions} partition(s)")
    next_line = time.monotonic() + progress
    quiet_since = time.monotonic()
    end = "end of the log"
    while True:
        if stop.why is not None:
            end = f"stopped by {stop.why}"
            break
        reports = service.step(max_messages, 0.5)
        tally.add(reports)
        now = time.monotonic()
        if any(r.messages for r in reports):
            quiet_since = now
        elif finite:
            break
        elif idle is not None and now - quiet_since >= idle:
            end = f"no message for {idle:g} s"
            break
        if now >= next_line:
            say(tally.line())
            next_line = now + progress
    if drain and stop.why is None:
        seen = [r.max_seen for r in tally.last.values() if r.max_seen is not None]
        if seen:
            tally.add(service.advance_to(max(seen) + grace))
    service.close(checkpoint=True)
    say(tally.line())
    if service.learned is not None:
        say(f"serve: learner at policy version {service.learned.version}, "
            f"{service.learned.applied_total:,} sends learned from")
    say(f"serve: {end}; checkpoint written")
    return 0
