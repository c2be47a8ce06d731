"""NATS JetStream adapter against a real nats-server on loopback: publish, consume,
commit, replay from positions, keyed partitions, server restart, credentials."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from actors.service.brokers import NatsServer
from actors.service.codec import decode_messages, encode_messages
from actors.service.jetstream import NatsSink, NatsSource
from actors.service.partitioning import partition_of
from actors.service.transport import Message, OutMessage, TransportError, advance
from service.service_helpers import make_events, rows_of

PARTS = 4


def _drain(source: NatsSource, want: int, rounds: int = 40) -> list[Message]:
    got: list[Message] = []
    for _ in range(rounds):
        got += source.poll(1000, timeout=0.3)
        if len(got) >= want:
            break
    return got


def _payloads(n: int, tag: str) -> list[OutMessage]:
    return [OutMessage(i % PARTS, f"{tag}{i}".encode(), key=str(i).encode()) for i in range(n)]


def test_events_travel_keyed_by_subscriber(nats_server, unique_name) -> None:
    batch = make_events(3000, seed=5, subscribers=2000)
    out = encode_messages(batch, PARTS, "arrow", max_bytes=8 * 1024)
    with NatsSink(nats_server.url, unique_name, n_partitions=PARTS) as sink:
        assert sink.partitions == PARTS
        sink.publish(out)
    # two sources own disjoint partitions, as two engine shards would
    with NatsSource(nats_server.url, unique_name, partitions=[0, 2], durable="a") as a, \
            NatsSource(nats_server.url, unique_name, partitions=[1, 3], durable="b") as b:
        got_a, got_b = _drain(a, 10**9, rounds=4), _drain(b, 10**9, rounds=4)
    assert {m.partition for m in got_a} == {0, 2} and {m.partition for m in got_b} == {1, 3}
    assert len(got_a) + len(got_b) == len(out)
    cols = sorted(batch.columns)
    part = partition_of(batch.subscriber, PARTS)
    for p in range(PARTS):
        msgs = [m for m in got_a + got_b if m.partition == p]
        assert [m.offset for m in msgs] == sorted(m.offset for m in msgs)
        decoded = decode_messages(msgs)
        assert decoded.dead_letters == []
        assert set(partition_of(decoded.events.subscriber, PARTS).tolist()) == {p}
        # the partition's events, in publishing order
        assert rows_of(decoded.events, cols) == [
            r for r, q in zip(rows_of(batch, cols), part, strict=True) if q == p]


def test_commit_resume_and_replay_from_a_checkpoint(nats_server, unique_name) -> None:
    with NatsSink(nats_server.url, unique_name, n_partitions=PARTS) as sink:
        sink.publish(_payloads(40, "m"))
    with NatsSource(nats_server.url, unique_name, durable="svc") as src:
        first = _drain(src, 40)
        assert [m.payload for m in first] == [f"m{i}".encode() for i in range(40)]
        assert [m.offset for m in first] == list(range(1, 41))      # stream sequences
        assert all(m.key == str(i).encode() for i, m in enumerate(first))
        assert all(m.broker_time and m.broker_time > 1.7e9 for m in first)
        checkpoint = json.dumps(advance({}, first[:25]))              # a plain dict
        src.commit(advance({}, first[:25]))
        assert src.committed() == {0: 26, 1: 23, 2: 24, 3: 25}
        assert src.poll(10, timeout=0.2) == []
        with pytest.raises(ValueError, match=r"partition 7 is not owned"):
            src.commit({7: 1})
    # a restart without seek resumes after what was committed
    with NatsSource(nats_server.url, unique_name, durable="svc") as again:
        resumed = _drain(again, 15)
        assert [m.payload for m in resumed] == [f"m{i}".encode() for i in range(25, 40)]
    # seek replays from the checkpoint's positions, whatever was committed since
    with NatsSource(nats_server.url, unique_name, durable="svc") as replay:
        replay.commit(advance({}, resumed))
        replay.seek(json.loads(checkpoint))
        assert replay.positions() == {0: 26, 1: 23, 2: 24, 3: 25}
        assert [m.payload for m in _drain(replay, 15)] == [
            f"m{i}".encode() for i in range(25, 40)]
        replay.seek({1: 10})            # other partitions: from the start
        again = _drain(replay, 10**9, rounds=3)
        assert [m.payload for m in again if m.partition == 1] == [
            f"m{i}".encode() for i in range(9, 40, 4)]
        assert len([m for m in again if m.partition == 0]) == 10


def test_sink_refuses_bad_partitions_and_streams(nats_server, unique_name) -> None:
    with NatsSink(nats_server.url, unique_name, n_partitions=2) as sink:
        with pytest.raises(ValueError, match=r"partition must be in \[0, 2\), got 5"):
            sink.publish([OutMessage(5, b"x")])
    with pytest.raises(ValueError, match=r"has 2 partitions, got 3"):
        NatsSink(nats_server.url, unique_name, n_partitions=3)
    with pytest.raises(ValueError, match=r"does not exist; give its partition count"):
        NatsSource(nats_server.url, unique_name + "_missing")
    with pytest.raises(ValueError, match=r"partitions: expected ints in \[0, 2\), got 2"):
        NatsSource(nats_server.url, unique_name, partitions=[2])
    with NatsSource(nats_server.url, unique_name, durable="v") as src:
        with pytest.raises(ValueError, match=r"timeout: expected seconds > 0, got 0"):
            src.poll(10, timeout=0)
        with pytest.raises(ValueError, match=r"max_messages: expected an int >= 1"):
            src.poll(0)
    with pytest.raises(ValueError, match=r"options\['reconnected_cb'\]: set by the adapter"):
        NatsSink(nats_server.url, unique_name, options={"reconnected_cb": print})


def test_server_restart_mid_stream_loses_and_doubles_nothing(tmp_path, unique_name) -> None:
    with NatsServer(tmp_path / "js") as server, \
            NatsSink(server.url, unique_name, n_partitions=PARTS, timeout=20) as sink, \
            NatsSource(server.url, unique_name, durable="svc") as src:
        sink.publish(_payloads(200, "a"))
        got = src.poll(60, timeout=1.0)
        assert 0 < len(got) <= 60
        src.commit(advance({}, got[:30]))
        server.restart(crash=True)                 # kill -9 and start again, same store
        sink.publish(_payloads(200, "b"))          # the sink reconnects (and retries)
        for _ in range(40):                        # the source reconnects before the next
            if src.reconnects >= 1:                # outage (else one reconnection can
                break                              # cover both, seen under load)
            got += src.poll(50, timeout=0.3)
        assert src.reconnects >= 1
        # the server goes away again while messages are being published
        server.kill()
        threading.Timer(0.5, server.start).start()
        sink.publish(_payloads(100, "c"))
        got += _drain(src, 500 - len(got))
        assert src.reconnects >= 2
    payloads = [m.payload for m in got]
    expected = [f"{t}{i}".encode() for t, n in (("a", 200), ("b", 200), ("c", 100))
                for i in range(n)]
    assert sorted(payloads) == sorted(expected)               # nothing lost or doubled
    for p in range(PARTS):                                     # and in order per partition
        offsets = [m.offset for m in got if m.partition == p]
        assert offsets == sorted(set(offsets))


def test_unreachable_server_is_reported_after_the_timeout(tmp_path, unique_name) -> None:
    server = NatsServer(tmp_path / "js").start()
    with NatsSource(server.url, unique_name, n_partitions=1, unavailable_timeout=0.5) as src:
        server.stop()
        with pytest.raises(TransportError, match=r"server unavailable for more than 0.5 s"):
            for _ in range(20):
                assert src.poll(10, timeout=0.2) == []
    with pytest.raises(TransportError, match=r"cannot connect"):
        NatsSource(server.url, unique_name, connect_timeout=0.5)


def test_credentials_pass_through_and_are_never_shown(tmp_path, unique_name, caplog) -> None:
    secret = "s3cr3t-Pa55word"
    caplog.set_level(logging.DEBUG)
    with NatsServer(tmp_path / "js", user="svc", password=secret) as server:
        options = {"user": "svc", "password": secret}
        with NatsSink(server.url, unique_name, n_partitions=1, options=options) as sink, \
                NatsSource(server.url, unique_name, options=options) as src:
            sink.publish([OutMessage(0, b"hello")])
            assert [m.payload for m in _drain(src, 1)] == [b"hello"]
            shown = repr(src) + repr(sink)
            assert "'password': '***'" in repr(src)
        with pytest.raises(TransportError, match=r"cannot connect within 1 s") as wrong:
            NatsSource(server.url, unique_name, options={"user": "svc", "password": "nope-" +
                                                         secret}, connect_timeout=1)
        url_with_secret = server.url.replace("//", f"//svc:{secret}@")
        with NatsSource(url_with_secret, unique_name) as src2:
            shown += repr(src2)
            assert "***@127.0.0.1" in repr(src2)
        server_log = server.log_file.read_text()
    for text in (shown, str(wrong.value), caplog.text, server_log):
        assert secret not in text


@pytest.mark.ray
def test_a_source_works_inside_a_ray_actor(ray_session, nats_server, unique_name) -> None:
    """The synchronous API runs in a Ray actor (the adapter brings its own event loop)."""
    ray = ray_session

    @ray.remote
    class Reader:
        def __init__(self, url: str, stream: str) -> None:
            from actors.service.jetstream import NatsSource

            self.source = NatsSource(url, stream, durable="ray-shard")

        def read(self, want: int) -> list[bytes]:
            got: list = []
            for _ in range(40):
                got += self.source.poll(100, timeout=0.3)
                if len(got) >= want:
                    break
            self.source.commit(advance({}, got))
            return [m.payload for m in got]

    with NatsSink(nats_server.url, unique_name, n_partitions=PARTS) as sink:
        sink.publish(_payloads(12, "r"))
    reader = Reader.remote(nats_server.url, unique_name)
    assert ray.get(reader.read.remote(12), timeout=60) == [f"r{i}".encode() for i in range(12)]
    ray.kill(reader)
