"""Kafka adapter (``confluent-kafka``, i.e. librdkafka): :class:`KafkaSource` and
:class:`KafkaSink`.

A topic's partitions are the stream's partitions; the sink writes each message to the
partition it names (the subscriber's, :func:`~actors.service.partitioning.partition_of`),
not to librdkafka's key hash, so the same subscriber reaches the same partition on
Kafka and on NATS. Offsets are Kafka offsets (0-based, consecutive per partition).

**Source.** A consumer in group ``group`` with auto-commit off: :meth:`KafkaSource.commit`
stores the group's committed offsets, which a restart without ``seek`` resumes from
(else the earliest offset). With ``partitions`` it reads exactly those (engine shards
own fixed partitions); without, the group coordinator assigns partitions and moves them
between the group's members.

**Sink.** An idempotent producer (``enable.idempotence``: its own retries never
duplicate a message); :meth:`KafkaSink.publish` returns when the brokers acknowledged
every message.

Tested against librdkafka's built-in mock cluster (:func:`~actors.service.brokers.
mock_kafka_cluster`): no Kafka broker can be installed on the development machines. The
mock speaks the Kafka protocol (produce, fetch, consumer groups, offset commits) but
does not create topics through the admin API: it creates them on first use with 4
partitions. Create topics on a real cluster with its own tools.

Client options (``security.protocol``, ``sasl.mechanisms``, ``sasl.username``,
``sasl.password``, ``ssl.ca.location``, ...) pass through to librdkafka unchanged; they
never appear in a repr, a log line or an error message. librdkafka's own log lines go to
the Python logger ``actors.service.kafka.librdkafka``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from actors.service.transport import (
    Closing,
    Message,
    OutMessage,
    Positions,
    TransportError,
    check_positions,
    redact_options,
)
from policies.checks import show
from policies.errors import TriggerLabValueError

__all__ = ["MSG_ID_HEADER", "KafkaSink", "KafkaSource"]

log = logging.getLogger(__name__)
_LIBRDKAFKA_LOG = logging.getLogger("actors.service.kafka.librdkafka")
#: Header carrying an :class:`OutMessage`'s ``msg_id``.
MSG_ID_HEADER = "triggerlab-msg-id"
_RESERVED = ("bootstrap.servers", "group.id", "enable.auto.commit", "logger",
             "on_commit", "error_cb")


def _check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(options or {})
    for key in out:
        if key in _RESERVED:
            raise TriggerLabValueError(
                f"options[{key!r}]: set by the adapter, expected client options such as "
                "security.protocol, sasl.username, sasl.password")
    return out


def _client(cls: Any, config: dict[str, Any], options: Mapping[str, Any]) -> Any:
    """``cls(config)``; a configuration librdkafka refuses is a :class:`ValueError` whose
    message shows no secret option value."""
    try:
        return cls(config)
    except KafkaException as exc:
        text = _error_text(exc)
        for key, value in options.items():
            if redact_options({key: value})[key] == "***":
                text = text.replace(str(value), "***")
        raise TriggerLabValueError(f"options: {text}") from None


def _error_text(exc: BaseException) -> str:
    """A librdkafka error's code and text (they hold no configuration values)."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    return f"{err.name()}: {err.str()}" if err is not None else type(exc).__name__


def _partition_count(client: Any, topic: str, timeout: float, what: str) -> int:
    try:
        md = client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise TransportError(f"{what}: cannot read metadata ({_error_text(exc)})") from None
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        reason = t.error.str() if t is not None and t.error is not None else "no partitions"
        raise TransportError(f"{what}: topic {topic!r} not available ({reason})")
    return len(t.partitions)


class KafkaSource(Closing):
    """Reads a topic as a consumer of group ``group`` with manual offset commits.

    Parameters
    ----------
    bootstrap : str
        ``host:port[,host:port...]`` of the brokers.
    topic : str
    group : str
        Consumer group (its committed offsets are where a restart resumes).
    partitions : sequence of int, optional
        Read exactly these partitions; None: let the group assign them.
    options : mapping, optional
        librdkafka options (credentials, TLS, tuning); never logged.
    timeout : float
        Seconds for metadata, commit and offset queries.
    """

    def __init__(self, bootstrap: str, topic: str, *, group: str = "triggerlab",
                 partitions: Sequence[int] | None = None,
                 options: Mapping[str, Any] | None = None, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.timeout = timeout
        self._options = _check_options(options)
        self._what = f"kafka source {bootstrap} topic {topic!r} group {group!r}"
        self._consumer: Any = None
        self._consumer = _client(Consumer, {
            "auto.offset.reset": "earliest", "enable.partition.eof": False,
            **self._options,
            "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "logger": _LIBRDKAFKA_LOG,
        }, self._options)
        self._next: Positions = {}
        self._seek: Positions = {}
        try:
            n = _partition_count(self._consumer, topic, timeout, self._what)
            self.n_partitions = n
            if partitions is None:
                self.partitions: tuple[int, ...] | None = None
                self._consumer.subscribe([topic], on_assign=self._on_assign,
                                         on_revoke=self._on_revoke, on_lost=self._on_revoke)
            else:
                owned = sorted(set(partitions))
                for p in owned:
                    if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < n:
                        raise TriggerLabValueError(
                            f"partitions: expected ints in [0, {n}), got {show(p)}")
                self.partitions = tuple(owned)
                self._assign(self._start_offsets(owned, {}))
        except BaseException:
            self.close()
            raise

    # -- offsets -----------------------------------------------------------

    def _start_offsets(self, parts: Sequence[int], seek: Mapping[int, int]) -> Positions:
        """``seek``'s offset, else the group's committed one, else the earliest held."""
        tps = [TopicPartition(self.topic, p) for p in parts if p not in seek]
        out: Positions = dict(seek)
        if tps:
            try:
                committed = self._consumer.committed(tps, timeout=self.timeout)
            except KafkaException as exc:
                raise TransportError(
                    f"{self._what}: cannot read committed offsets ({_error_text(exc)})"
                ) from None
            for tp in committed:
                if tp.offset >= 0:
                    out[tp.partition] = tp.offset
                else:
                    low, _ = self._consumer.get_watermark_offsets(tp, timeout=self.timeout)
                    out[tp.partition] = max(0, int(low))
        return out

    def _assign(self, offsets: Positions) -> None:
        self._next = dict(offsets)
        self._consumer.assign(
            [TopicPartition(self.topic, p, off) for p, off in sorted(offsets.items())])
        log.info("%s: reading partitions %s from %s", self._what, sorted(offsets), offsets)

    def _on_assign(self, consumer: Any, tps: list[Any]) -> None:
        parts = [tp.partition for tp in tps]
        seek = {p: self._seek.pop(p) for p in parts if p in self._seek}
        self._assign(self._start_offsets(parts, seek))

    def _on_revoke(self, consumer: Any, tps: list[Any]) -> None:
        for tp in tps:
            self._next.pop(tp.partition, None)
        log.info("%s: partitions %s revoked", self._what, [tp.partition for tp in tps])

    # -- the Source interface ---------------------------------------------------

    def poll(self, max_messages: int = 1000, timeout: float = 1.0) -> list[Message]:
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) \
                or max_messages < 1:
            raise TriggerLabValueError(
                f"max_messages: expected an int >= 1, got {show(max_messages)}")
        try:
            raw = self._consumer.consume(max_messages, timeout)
        except KafkaException as exc:
            raise TransportError(f"{self._what}: {_error_text(exc)}") from None
        out: list[Message] = []
        for m in raw:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise TransportError(f"{self._what}: {err.name()}: {err.str()}")
                log.warning("%s: %s: %s", self._what, err.name(), err.str())
                continue
            p, off = m.partition(), m.offset()
            if p not in self._next or off < self._next[p]:
                continue                     # revoked meanwhile, or before a seek
            self._next[p] = off + 1
            kind, ms = m.timestamp()
            out.append(Message(p, off, off + 1, m.value() or b"", key=m.key(),
                               broker_time=None if kind == TIMESTAMP_NOT_AVAILABLE
                               else ms / 1000.0))
        return out

    def positions(self) -> Positions:
        return dict(self._next)

    def committed(self) -> Positions:
        """The group's committed offsets of the current partitions (-1: none yet)."""
        tps = [TopicPartition(self.topic, p) for p in sorted(self._next)]
        try:
            return {tp.partition: max(-1, int(tp.offset))
                    for tp in self._consumer.committed(tps, timeout=self.timeout)}
        except KafkaException as exc:
            raise TransportError(f"{self._what}: {_error_text(exc)}") from None

    def commit(self, positions: Mapping[int, int]) -> None:
        checked = check_positions(positions)
        if not checked:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(self.topic, p, off) for p, off in checked.items()],
                asynchronous=False)
        except KafkaException as exc:
            raise TransportError(f"{self._what}: commit failed ({_error_text(exc)})") from None

    def seek(self, positions: Mapping[int, int]) -> None:
        checked = check_positions(positions)
        if self.partitions is None:
            # group-assigned: seek what is assigned now, the rest when it gets assigned
            current = sorted(self._next)
            self._seek = {p: off for p, off in checked.items() if p not in self._next}
            for p in current:
                off = checked.get(p, OFFSET_BEGINNING)
                try:
                    self._consumer.seek(TopicPartition(self.topic, p, off))
                except KafkaException as exc:
                    raise TransportError(
                        f"{self._what}: seek failed ({_error_text(exc)})") from None
                self._next[p] = off
            self._fix_beginning(current, checked)
            return
        for p in checked:
            if p not in self.partitions:
                raise TriggerLabValueError(
                    f"positions: partition {p} is not owned by this source "
                    f"(owns {list(self.partitions)})")
        self._assign({p: checked.get(p, OFFSET_BEGINNING) for p in self.partitions})
        self._fix_beginning(list(self.partitions), checked)

    def end_positions(self) -> Positions:
        """Each current partition's high watermark (the offset the next message gets):
        ``seek`` there reads only what is produced from now on."""
        out: Positions = {}
        for p in sorted(self._next if self.partitions is None else self.partitions):
            try:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=self.timeout)
            except KafkaException as exc:
                raise TransportError(f"{self._what}: {_error_text(exc)}") from None
            out[p] = max(0, int(high))
        return out

    def _fix_beginning(self, parts: Sequence[int], given: Mapping[int, int]) -> None:
        """Positions of partitions sought to the beginning: their low watermark."""
        for p in parts:
            if p not in given:
                low, _ = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=self.timeout)
                self._next[p] = max(0, int(low))

    def close(self) -> None:
        consumer, self._consumer = getattr(self, "_consumer", None), None
        if consumer is not None:
            consumer.close()

    def __repr__(self) -> str:
        return (f"KafkaSource(bootstrap={self.bootstrap!r}, topic={self.topic!r}, "
                f"group={self.group!r}, partitions={self.partitions}, "
                f"options={redact_options(self._options)})")


class KafkaSink(Closing):
    """Publishes :class:`OutMessage` s to a topic with an idempotent producer.

    Parameters
    ----------
    bootstrap, topic, options
        As for :class:`KafkaSource`.
    timeout : float
        Seconds :meth:`publish` waits for the brokers' acknowledgements.
    """

    def __init__(self, bootstrap: str, topic: str, *, options: Mapping[str, Any] | None = None,
                 timeout: float = 30.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout = timeout
        self._options = _check_options(options)
        self._what = f"kafka sink {bootstrap} topic {topic!r}"
        self._producer: Any = None
        self._producer = _client(Producer, {
            "enable.idempotence": True, "linger.ms": 5, **self._options,
            "bootstrap.servers": bootstrap, "logger": _LIBRDKAFKA_LOG,
        }, self._options)
        try:
            self._partitions = _partition_count(self._producer, topic, timeout, self._what)
        except BaseException:
            self.close()
            raise

    @property
    def partitions(self) -> int:
        return self._partitions

    def publish(self, messages: Sequence[OutMessage]) -> None:
        errors: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"{err.name()}: {err.str()}")

        deadline = time.monotonic() + self.timeout
        for m in messages:
            if not 0 <= m.partition < self._partitions:
                raise TriggerLabValueError(
                    f"messages: partition must be in [0, {self._partitions}), got "
                    f"{m.partition}")
            headers = [(MSG_ID_HEADER, m.msg_id.encode())] if m.msg_id else None
            while True:
                try:
                    self._producer.produce(self.topic, value=m.payload, key=m.key,
                                           partition=m.partition, headers=headers,
                                           on_delivery=delivered)
                    break
                except BufferError:                    # local queue full: let it drain
                    if time.monotonic() > deadline:
                        raise TransportError(
                            f"{self._what}: producer queue full for {self.timeout:g} s"
                        ) from None
                    self._producer.poll(0.05)
        left = self._producer.flush(max(0.0, deadline - time.monotonic()))
        if left:
            raise TransportError(f"{self._what}: {left} of {len(messages)} messages not "
                                 f"acknowledged within {self.timeout:g} s")
        if errors:
            raise TransportError(f"{self._what}: {len(errors)} of {len(messages)} messages "
                                 f"failed ({errors[0]})")

    def close(self) -> None:
        producer, self._producer = getattr(self, "_producer", None), None
        if producer is not None:
            producer.flush(self.timeout)

    def __repr__(self) -> str:
        return (f"KafkaSink(bootstrap={self.bootstrap!r}, topic={self.topic!r}, "
                f"options={redact_options(self._options)})")
