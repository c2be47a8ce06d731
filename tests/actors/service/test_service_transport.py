"""The transport interface's helpers: positions, partitioning, redaction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actors.service import Sink, Source
from actors.service.partitioning import partition_of
from actors.service.transport import (
    Message,
    OutMessage,
    advance,
    check_positions,
    redact_options,
    redact_url,
)
from experiments.loadtest.generator import partition


def test_positions_survive_a_json_checkpoint() -> None:
    positions = {0: 17, 3: 250_000}
    assert check_positions(json.loads(json.dumps(positions))) == positions


@pytest.mark.parametrize(("value", "message"), [
    ([(0, 1)], r"positions: expected a mapping partition -> offset"),
    ({-1: 3}, r"positions: expected partitions as ints >= 0, got -1"),
    ({"a": 3}, r"positions: expected partitions as ints >= 0, got 'a'"),
    ({True: 3}, r"positions: expected partitions as ints >= 0, got True"),
    ({0: -5}, r"positions\[0\]: expected an offset as an int >= 0, got -5"),
    ({0: 2.0}, r"positions\[0\]: expected an offset as an int >= 0, got 2.0"),
    ({"1": "7"}, r"positions\[1\]: expected an offset as an int >= 0, got '7'"),
])
def test_bad_positions(value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_positions(value)


def test_advance_moves_past_messages() -> None:
    msgs = [Message(0, 5, 6, b""), Message(1, 9, 10, b""), Message(0, 7, 8, b""),
            Message(2, 100, 130, b"")]
    assert advance({0: 3, 4: 1}, msgs) == {0: 8, 1: 10, 2: 130, 4: 1}
    assert advance({0: 50}, msgs[:1]) == {0: 50}           # never moves back


def test_partition_of_is_fixed_and_balanced() -> None:
    # the values are part of the wire contract: a change moves every subscriber
    assert partition_of([0, 1, 2**62, -5, 123_456_789], 8).tolist() == [2, 6, 5, 5, 4]
    assert partition_of([7, 8, 9], 4).tolist() == [2, 1, 2]
    assert partition_of(np.array([123_456_789], np.int64), 1000).tolist() == [500]
    ids = np.arange(200_000)
    counts = np.bincount(partition_of(ids, 8), minlength=8)
    assert counts.min() > 0.97 * len(ids) / 8 and counts.max() < 1.03 * len(ids) / 8
    # the in-process load test's hash partitioning is the same function
    assert np.array_equal(partition_of(ids, 5), partition(ids, 5))


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "4"])
def test_partition_count_must_be_positive_int(bad) -> None:
    with pytest.raises(ValueError, match=r"partitions: expected an int >= 1"):
        partition_of([1], bad)


@pytest.mark.parametrize(("options", "hidden"), [
    ({"password": "hunter2", "user": "ann"}, ["hunter2"]),
    ({"sasl.password": "pw1", "sasl.username": "bob"}, ["pw1"]),
    ({"token": "tok", "nkeys_seed": "SUAseed", "user_credentials": "/x.creds"},
     ["'tok'", "SUAseed", "/x.creds"]),
    ({"ssl.key.password": "k", "sasl.oauthbearer.client.secret": "s"}, ["'k'", "'s'"]),
])
def test_redact_options(options: dict, hidden: list[str]) -> None:
    text = repr(redact_options(options))
    for secret in hidden:
        assert secret not in text
    assert "ann" in text or "bob" in text or "***" in text


@pytest.mark.parametrize(("url", "expected"), [
    ("nats://u:p4ss@host:4222", "nats://***@host:4222"),
    ("nats://tok3n@host", "nats://***@host"),
    ("nats://host:4222", "nats://host:4222"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_messages_show_sizes_not_payloads() -> None:
    assert "secret-payload" not in repr(Message(0, 1, 2, b"secret-payload"))
    assert "<14 bytes>" in repr(OutMessage(0, b"secret-payload"))


def test_protocols_are_the_adapters_shape() -> None:
    from actors.service.files import ParquetSource
    from actors.service.jetstream import NatsSink, NatsSource
    from actors.service.kafka import KafkaSink, KafkaSource

    for cls in (NatsSource, KafkaSource, ParquetSource):
        assert all(callable(getattr(cls, m)) for m in
                   ("poll", "positions", "commit", "seek", "close"))
    for cls in (NatsSink, KafkaSink):
        assert all(hasattr(cls, m) for m in ("partitions", "publish", "close"))
    assert Source is not Sink
