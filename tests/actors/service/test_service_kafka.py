"""Kafka adapter against librdkafka's mock cluster (real Kafka protocol, in process):
keyed partitions, committed offsets, seek, consumer groups, credentials."""

from __future__ import annotations

import json
import logging

import pytest

from actors.service.codec import decode_messages, encode_messages
from actors.service.kafka import KafkaSink, KafkaSource
from actors.service.partitioning import partition_of
from actors.service.transport import Message, OutMessage, advance
from service.service_helpers import make_events, rows_of

MOCK_PARTITIONS = 4          # what the mock cluster gives a topic it creates


def _drain(source: KafkaSource, want: int, rounds: int = 60) -> list[Message]:
    got: list[Message] = []
    for _ in range(rounds):
        got += source.poll(1000, timeout=0.2)
        if len(got) >= want:
            break
    return got


def test_json_events_are_keyed_by_subscriber(kafka_bootstrap, unique_name) -> None:
    batch = make_events(400, seed=6, subscribers=300)
    with KafkaSink(kafka_bootstrap, unique_name) as sink:
        assert sink.partitions == MOCK_PARTITIONS
        out = encode_messages(batch, sink.partitions, "json")
        sink.publish(out)
    with KafkaSource(kafka_bootstrap, unique_name, partitions=[0, 1, 2, 3]) as src:
        got = _drain(src, len(out))
    assert len(got) == len(batch)
    cols = sorted(batch.columns)
    part = partition_of(batch.subscriber, MOCK_PARTITIONS)
    for p in range(MOCK_PARTITIONS):
        msgs = [m for m in got if m.partition == p]
        assert [m.offset for m in msgs] == list(range(len(msgs)))    # Kafka offsets
        decoded = decode_messages(msgs, "json")
        assert decoded.dead_letters == []
        assert [m.key for m in msgs] == [str(s).encode() for s in decoded.events.subscriber]
        assert rows_of(decoded.events, cols) == [
            r for r, q in zip(rows_of(batch, cols), part, strict=True) if q == p]


def test_committed_offsets_resume_and_seek_replays(kafka_bootstrap, unique_name) -> None:
    with KafkaSink(kafka_bootstrap, unique_name) as sink:
        sink.publish([OutMessage(i % 2, f"m{i}".encode(), msg_id=f"id{i}") for i in range(30)])
    with KafkaSource(kafka_bootstrap, unique_name, group="g", partitions=[0, 1]) as src:
        assert src.positions() == {0: 0, 1: 0}
        got = _drain(src, 30)
        assert sorted(m.payload for m in got) == sorted(f"m{i}".encode() for i in range(30))
        assert src.positions() == {0: 15, 1: 15}
        first = [m for m in got if m.partition == 0][:6] + [m for m in got if m.partition == 1][:4]
        checkpoint = json.dumps(advance({}, first))
        src.commit(advance({}, first))
        assert src.committed() == {0: 6, 1: 4}
    with KafkaSource(kafka_bootstrap, unique_name, group="g", partitions=[0, 1]) as again:
        assert again.positions() == {0: 6, 1: 4}                 # from the group's commits
        resumed = _drain(again, 20)
        assert sorted(m.payload for m in resumed) == sorted(
            [f"m{i}".encode() for i in range(12, 30, 2)] + [f"m{i}".encode()
                                                           for i in range(9, 30, 2)])
        again.seek(json.loads(checkpoint))
        assert again.positions() == {0: 6, 1: 4}
        assert len(_drain(again, 20)) == 20
        again.seek({1: 13})                                        # partition 0: earliest
        replay = _drain(again, 17)
        assert sorted(m.offset for m in replay if m.partition == 1) == [13, 14]
        assert len([m for m in replay if m.partition == 0]) == 15
        with pytest.raises(ValueError, match=r"partition 3 is not owned"):
            again.seek({3: 0})
    with KafkaSource(kafka_bootstrap, unique_name, group="other", partitions=[1]) as fresh:
        assert fresh.positions() == {1: 0}                        # a new group: earliest


def test_arrow_batches_through_a_consumer_group(kafka_bootstrap, unique_name) -> None:
    batch = make_events(2000, seed=7)
    with KafkaSink(kafka_bootstrap, unique_name) as sink:
        out = encode_messages(batch, sink.partitions, "arrow", max_bytes=4096)
        sink.publish(out)
    with KafkaSource(kafka_bootstrap, unique_name, group="grp") as src:   # group-assigned
        src.seek({2: 1})                        # applied when partition 2 is assigned
        got = _drain(src, len(out) - 1, rounds=100)
        assert sorted(src.positions()) == [0, 1, 2, 3]
    assert len(got) == len(out) - 1
    assert min(m.offset for m in got if m.partition == 2) == 1
    skipped = next(m for m in out if m.partition == 2)            # offset 0 of partition 2
    decoded = decode_messages(got)
    assert decoded.dead_letters == []
    assert len(decoded.events) == len(batch) - len(
        decode_messages([Message(2, 0, 1, skipped.payload)]).events)


def test_options_pass_through_and_secrets_are_never_shown(kafka_bootstrap, unique_name,
                                                         caplog) -> None:
    secret = "kafka-Pa55-word"
    caplog.set_level(logging.DEBUG)
    options = {"client.id": "triggerlab-test", "sasl.username": "svc", "sasl.password": secret,
               "socket.timeout.ms": 5000}
    with KafkaSink(kafka_bootstrap, unique_name, options=options) as sink:
        sink.publish([OutMessage(0, b"x")])
        with KafkaSource(kafka_bootstrap, unique_name, partitions=[0], options=options) as src:
            assert [m.payload for m in _drain(src, 1)] == [b"x"]
            shown = repr(sink) + repr(src)
    assert "'sasl.password': '***'" in shown and "'client.id': 'triggerlab-test'" in shown
    with pytest.raises(ValueError, match=r"options\['group.id'\]: set by the adapter"):
        KafkaSource(kafka_bootstrap, unique_name, options={"group.id": "x"})
    with pytest.raises(ValueError, match=r"options: .*no.such.option") as bad:
        KafkaSink(kafka_bootstrap, unique_name, options={"sasl.password": secret,
                                                         "no.such.option": 1})
    for text in (shown, caplog.text, str(bad.value)):
        assert secret not in text
