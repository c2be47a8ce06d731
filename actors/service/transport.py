"""The transport interface: a :class:`Source` of messages with positions, a :class:`Sink`.

Every broker adapter (NATS JetStream, Kafka, a Parquet log) speaks this one small
interface, synchronously (callers are Ray actors and threads; the adapters run their own
I/O threads where the client library is asynchronous).

Positions
---------
A stream is split into **partitions** (ints ``0 .. n-1``); a subscriber always lands on
the same partition (:func:`~actors.service.partitioning.partition_of`). Inside a partition
a message has an **offset**, an int whose unit depends on the transport:

* NATS JetStream: the stream sequence (1-based, counts every message of the stream, so
  the offsets of one partition have gaps);
* Kafka: the partition offset (0-based, consecutive);
* Parquet log: the row index of the message's first row (0-based; one partition, 0).

A :data:`Positions` dict maps a partition to its **next** offset: the first message not
yet handled (Kafka's committed-offset convention). It is a plain ``dict[int, int]``, so a
checkpoint stores it as it is (:func:`check_positions` reads it back from JSON, where
the keys became strings). ``seek(positions)`` replays from those offsets; partitions not
named start from the earliest message the broker still holds.

Delivery is at least once: after a crash or a broker restart a message may be delivered
again, never lost, provided the caller commits only what it has durably handled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

from policies.checks import show
from policies.errors import TriggerLabError, TriggerLabValueError

__all__ = [
    "Message",
    "OutMessage",
    "Positions",
    "Sink",
    "Source",
    "TransportError",
    "advance",
    "check_positions",
    "redact_options",
    "redact_url",
]

#: Next offset to read per partition (see the module docstring for units).
Positions = dict[int, int]


class TransportError(TriggerLabError, RuntimeError):
    """A broker could not be reached or refused an operation within its time limit."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message read from a :class:`Source`.

    Attributes
    ----------
    partition : int
        Partition it was read from.
    offset : int
        Its offset in the partition (stream sequence, Kafka offset or first row index).
    next_offset : int
        Offset just after it: ``offset + 1`` on brokers, ``offset + rows`` in a file.
    payload : bytes
        The message body (an event-format payload, :mod:`actors.service.codec`).
    key : bytes or None
        The key it was published with (Kafka key; a NATS header), if any.
    broker_time : float or None
        When the broker stored it, seconds since the Unix epoch (None for files).
    """

    partition: int
    offset: int
    next_offset: int
    payload: bytes
    key: bytes | None = None
    broker_time: float | None = None

    def __repr__(self) -> str:  # payloads can be large: show their size only
        return (f"Message(partition={self.partition}, offset={self.offset}, "
                f"next_offset={self.next_offset}, payload=<{len(self.payload)} bytes>, "
                f"key={self.key!r})")


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to publish on a :class:`Sink`.

    Attributes
    ----------
    partition : int
        Target partition, ``0 <= partition < sink.partitions``; for events, the
        :func:`~actors.service.partitioning.partition_of` of their subscriber.
    payload : bytes
        The message body.
    key : bytes or None
        Kept with the message (Kafka key; a NATS header); it does not choose the
        partition (``partition`` does).
    msg_id : str or None
        Deduplication id: the broker stores a message once per id (NATS
        ``Nats-Msg-Id`` within the stream's duplicate window; Kafka's idempotent producer
        dedupes its own retries whatever this is). None: the sink makes a unique one, so
        its own retries are still deduplicated.
    """

    partition: int
    payload: bytes
    key: bytes | None = None
    msg_id: str | None = None

    def __repr__(self) -> str:
        return (f"OutMessage(partition={self.partition}, payload=<{len(self.payload)} "
                f"bytes>, key={self.key!r}, msg_id={self.msg_id!r})")


class Closing:
    """``with`` support for transports: the block's end calls ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Source(Protocol):
    """Messages in batches, with positions that can be committed and replayed.

    Methods block for at most their ``timeout`` (seconds).
    """

    def poll(self, max_messages: int = 1000, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` next messages, in offset order within each partition;
        an empty list when none arrived within ``timeout`` seconds (or the broker is
        briefly unreachable: the adapter reconnects and re-reads from its positions)."""
        ...

    def positions(self) -> Positions:
        """Next offset to deliver per owned partition (what ``seek`` would resume)."""
        ...

    def commit(self, positions: Mapping[int, int]) -> None:
        """Tell the broker that every message before ``positions`` is handled (Kafka
        offset commit, NATS acks); a restart without ``seek`` resumes from there."""
        ...

    def seek(self, positions: Mapping[int, int]) -> None:
        """Replay from ``positions`` (partitions not named: from the earliest message)."""
        ...

    def close(self) -> None:
        """Release the connection (idempotent)."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Publishes messages to partitions; ``partitions`` is their count."""

    @property
    def partitions(self) -> int:
        """Number of partitions of the stream or topic."""
        ...

    def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish ``messages`` and return once the broker stored every one (retrying
        through a broker restart until the sink's timeout); raise
        :class:`TransportError` otherwise."""
        ...

    def close(self) -> None:
        """Release the connection (idempotent)."""
        ...


def check_positions(positions: Any, path: str = "positions") -> Positions:
    """``positions`` as a :data:`Positions` dict: partitions ints >= 0 (or their decimal
    strings, as JSON stores keys), offsets ints >= 0."""
    if not isinstance(positions, Mapping):
        raise TriggerLabValueError(
            f"{path}: expected a mapping partition -> offset, got {show(positions)}")
    out: Positions = {}
    for key, value in positions.items():
        part = key
        if isinstance(key, str) and key.isdigit():
            part = int(key)
        if isinstance(part, bool) or not isinstance(part, int) or part < 0:
            raise TriggerLabValueError(
                f"{path}: expected partitions as ints >= 0, got {show(key)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TriggerLabValueError(
                f"{path}[{part}]: expected an offset as an int >= 0, got {show(value)}")
        out[part] = value
    return out


def advance(positions: Mapping[int, int], messages: Iterable[Message]) -> Positions:
    """``positions`` moved past ``messages`` (the positions to commit after handling them)."""
    out = dict(positions)
    for m in messages:
        if m.next_offset > out.get(m.partition, -1):
            out[m.partition] = m.next_offset
    return out


#: Option names whose values are secrets (matched case-insensitively anywhere in the
#: name): passwords, tokens, keys, credentials, nkey seeds, TLS contexts.
_SECRET = re.compile(r"pass|secret|token|cred|key|seed|jaas|tls|ssl|sig", re.IGNORECASE)


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of client ``options`` fit for a log or a repr: values of secret-looking
    names (:data:`_SECRET`) are replaced by ``'***'``."""
    return {k: ("***" if _SECRET.search(str(k)) else v) for k, v in options.items()}


_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def redact_url(url: str) -> str:
    """``url`` without credentials (``nats://u:p@host`` -> ``nats://***@host``)."""
    return _USERINFO.sub("***@", url)
