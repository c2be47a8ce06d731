"""Crashes of a running service: a Ray shard actor killed mid-stream, and a service
process killed with SIGKILL mid-stream against a real nats-server. On restart the
decisions equal the uninterrupted run's (the simulator's engine run), none lost or
doubled."""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas.testing as pdt
import pytest

from actors import PolicyConfig
from actors.registry import make_policy
from actors.service.codec import encode_messages
from actors.service.decision_log import read_decision_log
from actors.service.endpoints import Endpoint
from actors.service.files import write_event_log
from actors.service.jetstream import NatsSink
from actors.service.shard import ShardConfig
from policies.triggers import default_rules
from service.service_helpers import RULE_ARMS, reference_decisions, sort_log, trigger_stream

POLICY = PolicyConfig("thompson", {"arm_names": RULE_ARMS})
SEED = 5
GRACE = 86_400


@pytest.fixture(scope="module")
def stream():
    events, table = trigger_stream(n_events=6000, seed=8)
    end = int(events.time.max()) + 3 * 86400
    policy = make_policy(POLICY.name, POLICY.params, decides=POLICY.decides, reward="click",
                         seed=SEED)
    ref = reference_decisions(events, table, end=end, policy=policy, seed=SEED)
    assert len(ref) > 40
    return events, table, end, ref


@pytest.mark.ray
def test_a_killed_ray_shard_restarts_from_its_checkpoint(ray_session, stream, tmp_path):
    from actors.service.runner import remote_shard_runner

    ray = ray_session
    events, table, end, ref = stream
    path = tmp_path / "events.parquet"
    write_event_log(path, [events], row_group_rows=300)        # 20 messages
    cfg = ShardConfig(default_rules(), table, POLICY, seed=SEED, grace=GRACE)
    ep = Endpoint.parse(str(path))
    cls = remote_shard_runner()
    kw = dict(shard=0, partitions=[0], checkpoint_dir=str(tmp_path / "ck"),
              checkpoint_every=3)
    actor = cls.remote(cfg, ep, **kw)
    for _ in range(11):
        ray.get(actor.step.remote(1))
    ray.kill(actor, no_restart=True)
    actor = cls.remote(cfg, ep, **kw)
    assert ray.get(actor.stats.remote())["restored"]
    while ray.get(actor.step.remote(4)).messages:
        pass
    ray.get(actor.advance_to.remote(end + GRACE))
    stats = ray.get(actor.stats.remote())
    assert stats["dropped_replays"] > 0            # it re-derived rows written before
    ray.get(actor.close.remote())
    ray.kill(actor)
    got = read_decision_log(tmp_path / "ck" / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)


SCRIPT = textwrap.dedent("""
    import pickle, sys
    from actors.service.endpoints import Endpoint
    from actors.service.runner import ShardRunner

    cfg, url, root, end, grace, n_events = pickle.load(open(sys.argv[1], "rb"))
    ep = Endpoint.parse(url)
    runners = [ShardRunner(cfg, ep, shard=s, partitions=[s], checkpoint_dir=root,
                           checkpoint_every=2) for s in range(cfg.key_partitions)]
    print("restored", all(r.restored for r in runners), flush=True)
    for _ in range(2000):                 # until every event was handled
        if sum(r.core.counters.events for r in runners) >= n_events:
            break
        n = sum(r.step(max_messages=2, timeout=0.3).messages for r in runners)
        print("step", n, sum(r.next_part for r in runners), flush=True)
    for r in runners:
        r.advance_to(end + grace)
        r.close()
    print("done", flush=True)
""")


def _publish_in_time_order(url: str, stream: str, events, partitions: int) -> None:
    """Chunks of a few hours, each as messages per partition: the stream is in time order
    up to a chunk's span."""
    t = events.time
    edges = np.arange(int(t.min()), int(t.max()) + 4 * 3600, 4 * 3600)
    with NatsSink(url, stream, n_partitions=partitions) as sink:
        for lo, hi in itertools.pairwise(edges):
            part = events[(t >= lo) & (t < hi)]
            if len(part):
                sink.publish(encode_messages(part, partitions, "arrow", max_bytes=4096))


def test_kill_9_of_the_service_process_mid_stream(nats_server, unique_name, stream, tmp_path):
    events, table, end, ref = stream
    _publish_in_time_order(nats_server.url, unique_name, events, partitions=2)
    cfg = ShardConfig(default_rules(), table, POLICY, seed=SEED, grace=GRACE,
                      key_partitions=2)
    args = tmp_path / "args.pkl"
    args.write_bytes(pickle.dumps((cfg, f"{nats_server.url}/{unique_name}",
                                   str(tmp_path / "ck"), end, GRACE, len(events))))
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    cmd = [sys.executable, str(script), str(args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "restored False"
    steps = parts = 0
    while steps < 6 or parts < 3:         # steps, checkpoints and log parts done, not all
        line = proc.stdout.readline()
        assert line.startswith("step"), line
        steps += int(line.split()[1]) > 0
        parts = int(line.split()[2])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    mid = read_decision_log(tmp_path / "ck" / "decisions")
    assert 0 < len(mid) < len(ref)        # killed mid-stream
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == "restored True" and "done" in out.stdout
    assert time.monotonic() - t0 < 60
    got = read_decision_log(tmp_path / "ck" / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)


def test_kafka_shards_crash_and_restart(kafka_bootstrap, unique_name, stream, tmp_path):
    """Four shards, one partition each, on librdkafka's mock cluster; shard 1 crashes
    after a few steps and a new one continues from its checkpoint."""
    from actors.service.kafka import KafkaSink
    from actors.service.runner import ShardRunner

    events, table, end, ref = stream
    sent: dict[int, int] = {}
    for suffix in ("", "_decisions", "_dead"):        # the mock auto-creates 4 partitions
        with KafkaSink(kafka_bootstrap, unique_name + suffix) as sink:
            if not suffix:
                msgs = encode_messages(events, sink.partitions, "arrow", max_bytes=4096)
                sink.publish(msgs)
                for m in msgs:
                    sent[m.partition] = sent.get(m.partition, 0) + 1
    ep = Endpoint.parse(f"kafka://{kafka_bootstrap}/{unique_name}")
    cfg = ShardConfig(default_rules(), table, POLICY, seed=SEED, grace=GRACE,
                      key_partitions=4)

    def make(s: int) -> ShardRunner:
        return ShardRunner(cfg, ep, shard=s, partitions=[s], checkpoint_dir=str(tmp_path),
                           checkpoint_every=2, group=unique_name)

    def finish(r: ShardRunner) -> None:
        for _ in range(500):                   # until every message of its partition
            if r.positions.get(r.shard, 0) >= sent[r.shard]:
                break
            r.step(max_messages=5, timeout=0.2)
        assert r.positions[r.shard] == sent[r.shard]
        r.advance_to(end + GRACE)
        r.close()

    crashed = make(1)
    n = 0
    while n < 9:
        n += crashed.step(max_messages=3, timeout=0.3).messages
    del crashed                                   # no close, no final checkpoint
    for s in range(4):
        r = make(s)
        assert r.restored == (s == 1)
        finish(r)
    got = read_decision_log(tmp_path / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)


def test_the_service_rides_out_a_broker_restart(stream, tmp_path, unique_name):
    """The nats-server is killed (SIGKILL) and restarted mid-stream: the shards reconnect
    and continue, and the decisions equal the uninterrupted run's."""
    from actors.service.brokers import NatsServer, find_nats_server
    from actors.service.runner import ShardRunner

    if find_nats_server() is None:
        pytest.skip("nats-server binary not found")
    events, table, end, ref = stream
    with NatsServer(tmp_path / "nats") as server:
        _publish_in_time_order(server.url, unique_name, events, partitions=2)
        cfg = ShardConfig(default_rules(), table, POLICY, seed=SEED, grace=GRACE,
                          key_partitions=2)
        ep = Endpoint.parse(f"{server.url}/{unique_name}")
        runners = [ShardRunner(cfg, ep, shard=s, partitions=[s],
                               checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=2)
                   for s in range(2)]
        n = 0
        while n < 20:
            n += sum(r.step(max_messages=2, timeout=0.3).messages for r in runners)
        server.restart(crash=True)
        for _ in range(500):                  # until every event was handled
            if sum(r.core.counters.events for r in runners) >= len(events):
                break
            for r in runners:
                r.step(max_messages=50, timeout=0.3)
        for r in runners:
            assert r.source.reconnects >= 1
            r.advance_to(end + GRACE)
            r.close()
    pdt.assert_frame_equal(sort_log(read_decision_log(tmp_path / "ck" / "decisions")), ref)
