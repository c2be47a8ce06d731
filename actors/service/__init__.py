"""The trigger service's transports: event wire formats and broker adapters.

* :mod:`~actors.service.transport` -- the interface: :class:`Source` (messages with
  positions, commit, seek) and :class:`Sink` (publish to partitions);
* :mod:`~actors.service.codec` -- Arrow IPC batches and JSON events, decoded with dead
  letters for whatever is malformed;
* :mod:`~actors.service.partitioning` -- subscriber -> partition;
* adapters: :class:`NatsSource` / :class:`NatsSink` (NATS JetStream,
  :mod:`~actors.service.jetstream`), :class:`KafkaSource` / :class:`KafkaSink`
  (:mod:`~actors.service.kafka`), :class:`ParquetSource` (:mod:`~actors.service.files`);
* :mod:`~actors.service.brokers` -- a local ``nats-server`` and librdkafka's mock Kafka
  cluster for tests, the quickstart and benchmarks.

The adapters are imported on first use (their client libraries take a while to load).
"""

from __future__ import annotations

import importlib
from typing import Any

from actors.service.codec import (
    FORMATS,
    DeadLetter,
    Decoded,
    decode_messages,
    encode_arrow,
    encode_json,
    encode_messages,
    encode_table,
    events_table,
    sniff,
)
from actors.service.partitioning import partition_of
from actors.service.transport import (
    Message,
    OutMessage,
    Positions,
    Sink,
    Source,
    TransportError,
    advance,
    check_positions,
    redact_options,
    redact_url,
)
from actors.service.watermark import Late, Watermark

_LAZY = {
    "NatsSink": "actors.service.jetstream",
    "NatsSource": "actors.service.jetstream",
    "KafkaSink": "actors.service.kafka",
    "KafkaSource": "actors.service.kafka",
    "ParquetSource": "actors.service.files",
    "write_event_log": "actors.service.files",
    "NatsServer": "actors.service.brokers",
    "find_nats_server": "actors.service.brokers",
    "mock_kafka_cluster": "actors.service.brokers",
    "nats_server": "actors.service.brokers",
}

__all__ = [
    "FORMATS",
    "DeadLetter",
    "Decoded",
    "KafkaSink",
    "KafkaSource",
    "Late",
    "Message",
    "NatsServer",
    "NatsSink",
    "NatsSource",
    "OutMessage",
    "ParquetSource",
    "Positions",
    "Sink",
    "Source",
    "TransportError",
    "Watermark",
    "advance",
    "check_positions",
    "decode_messages",
    "encode_arrow",
    "encode_json",
    "encode_messages",
    "encode_table",
    "events_table",
    "find_nats_server",
    "mock_kafka_cluster",
    "nats_server",
    "partition_of",
    "redact_options",
    "redact_url",
    "sniff",
    "write_event_log",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'actors.service' has no attribute {name!r}")
