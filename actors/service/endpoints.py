"""Where the service reads events and writes its outputs, from one address.

* ``nats://[user:password@]HOST:PORT/STREAM`` -- a JetStream event stream; decisions go
  to stream ``STREAM_decisions``, dead letters to ``STREAM_dead`` (same partition count);
* ``kafka://HOST:PORT[,HOST:PORT]/TOPIC`` -- a topic; decisions to ``TOPIC_decisions``,
  dead letters to ``TOPIC_dead`` (which must exist, or be auto-created);
* a path to a Parquet event log (``.parquet``), or a directory of them (read in name
  order) -- replayed; dead letters go to JSON-lines files (:class:`DirectorySink`).

:class:`Endpoint` is picklable, so an engine shard (a Ray actor) opens its own
connections from it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from actors.service.storage import Location
from actors.service.transport import Closing, OutMessage, Sink, Source, redact_url
from policies.checks import show
from policies.errors import TriggerLabValueError

__all__ = ["KINDS", "DirectorySink", "Endpoint"]

#: Kinds of endpoint.
KINDS = ("nats", "kafka", "file")


@dataclass(frozen=True)
class Endpoint:
    """A parsed source address (see the module docstring).

    Attributes
    ----------
    kind : {"nats", "kafka", "file"}
    address : str
        Server URL (``nats://host:port``, credentials included), Kafka bootstrap list,
        or the log's path.
    name : str
        Stream or topic name (the file's path for ``file``).
    options : mapping
        Client options (credentials, TLS): never logged.
    timeout : float
        Seconds to connect (NATS) or for metadata and commits (Kafka).
    """

    kind: str
    address: str
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 10.0

    @classmethod
    def parse(cls, text: str, options: Mapping[str, Any] | None = None, *,
              option: str = "--source") -> Endpoint:
        """Read an address; :class:`TriggerLabValueError` naming ``option`` if bad."""
        if not isinstance(text, str) or not text:
            raise TriggerLabValueError(f"{option}: expected nats://HOST:PORT/STREAM, "
                                       f"kafka://HOST:PORT/TOPIC or a .parquet path, got "
                                       f"{show(text)}")
        opts = dict(options or {})
        if "://" in text:
            parts = urlsplit(text)
            name = parts.path.strip("/")
            if parts.scheme not in ("nats", "kafka") or not parts.netloc or not name \
                    or "/" in name:
                raise TriggerLabValueError(
                    f"{option}: expected nats://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC, "
                    f"got {redact_url(text)!r}")
            if parts.scheme == "nats":
                return cls("nats", f"nats://{parts.netloc}", name, opts)
            return cls("kafka", parts.netloc, name, opts)
        path = Path(text)
        if path.is_dir():
            if not sorted(path.glob("*.parquet")):
                raise TriggerLabValueError(f"{option}: directory {text!r} holds no .parquet files")
        elif not path.is_file():
            raise TriggerLabValueError(f"{option}: {text!r} does not exist (expected a Parquet "
                                       "event log, nats://HOST:PORT/STREAM or "
                                       "kafka://HOST:PORT/TOPIC)")
        return cls("file", str(path.resolve()), str(path.resolve()), opts)

    def __repr__(self) -> str:
        return f"Endpoint({self.kind}, {redact_url(self.address)!r}, {self.name!r})"

    def files(self) -> list[str]:
        """The Parquet files of a ``file`` endpoint, in order."""
        p = Path(self.address)
        return [str(f) for f in sorted(p.glob("*.parquet"))] if p.is_dir() else [str(p)]

    def partitions(self) -> int:
        """Partition count of the event stream (1 for a file)."""
        if self.kind == "file":
            return 1
        with self._sink(self.name) as sink:
            return int(sink.partitions)

    def source(self, partitions: Sequence[int], group: str) -> Source:
        """A source over ``partitions`` (``file``: the whole log, partition 0)."""
        if self.kind == "nats":
            from actors.service.jetstream import NatsSource

            durable = f"{group}-p{'-'.join(map(str, partitions))}"
            return NatsSource(self.address, self.name, partitions=list(partitions),
                              durable=durable, options=self.options,
                              connect_timeout=self.timeout)
        if self.kind == "kafka":
            from actors.service.kafka import KafkaSource

            return KafkaSource(self.address, self.name, group=group,
                               partitions=list(partitions), options=self.options,
                               timeout=self.timeout)
        from actors.service.files import ParquetSource

        return ParquetSource(self.files())

    def output(self, suffix: str, n_partitions: int, directory: str | None) -> Sink:
        """The sink of an output stream ``<name>_<suffix>`` (``file``: JSON-lines files
        under ``directory/<suffix>``)."""
        if self.kind == "file":
            if directory is None:
                raise TriggerLabValueError("directory: a file source writes its outputs to "
                                           "a directory; got None")
            return DirectorySink(os.path.join(directory, suffix))
        return self._sink(f"{self.name}_{suffix}", n_partitions)

    def sink(self, n_partitions: int | None = None) -> Sink:
        """A sink on the event stream itself (a producer's; NATS creates the stream with
        ``n_partitions`` when it does not exist). Broker endpoints only."""
        if self.kind == "file":
            raise TriggerLabValueError("endpoint: a Parquet log is read, not published to")
        return self._sink(self.name, n_partitions)

    def reader(self, suffix: str, n_partitions: int, group: str) -> Source:
        """A source over every partition of the output stream ``<name>_<suffix>`` (what a
        consumer of the decisions or progress markers reads; NATS creates the stream
        with ``n_partitions`` when the service has not yet). Broker endpoints only."""
        name = f"{self.name}_{suffix}"
        if self.kind == "nats":
            from actors.service.jetstream import NatsSource

            return NatsSource(self.address, name, durable=group, n_partitions=n_partitions,
                              options=self.options, connect_timeout=self.timeout)
        if self.kind == "kafka":
            from actors.service.kafka import KafkaSource

            with self._sink(name) as sink:
                n = sink.partitions
            return KafkaSource(self.address, name, group=group, partitions=list(range(n)),
                               options=self.options, timeout=self.timeout)
        raise TriggerLabValueError("endpoint: a Parquet log has no output streams to read")

    def _sink(self, name: str, n_partitions: int | None = None) -> Any:
        if self.kind == "nats":
            from actors.service.jetstream import NatsSink

            return NatsSink(self.address, name, n_partitions=n_partitions,
                            options=self.options, connect_timeout=self.timeout)
        from actors.service.kafka import KafkaSink

        return KafkaSink(self.address, name, options=self.options, timeout=self.timeout)


def _body(payload: bytes) -> dict[str, str]:
    """``{"payload": text}`` for UTF-8 (JSON dead letters), else ``{"payload_base64":
    ...}`` (Arrow IPC decision batches)."""
    try:
        return {"payload": payload.decode("utf-8")}
    except UnicodeDecodeError:
        return {"payload_base64": base64.b64encode(payload).decode("ascii")}


class DirectorySink(Closing):
    """A :class:`~actors.service.transport.Sink` writing each :meth:`publish` call as one
    JSON-lines file (one object per message: partition, key, msg_id, and the payload as
    text, or as base64 when it is not UTF-8) to a directory, atomically (``pyarrow.fs``
    paths and URIs work)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._dir = Location.of(where)
        self._n = len(self._dir.names(".jsonl"))

    @property
    def partitions(self) -> int:
        return 1

    def publish(self, messages: Sequence[OutMessage]) -> None:
        if not messages:
            return
        lines = [json.dumps({"partition": m.partition, "msg_id": m.msg_id,
                             "key": None if m.key is None else m.key.decode("utf-8", "replace"),
                             **_body(m.payload)})
                 for m in messages]
        while True:     # another writer may have taken the number: never overwrite
            name = f"part-{self._n:09d}.jsonl"
            self._n += 1
            if self._dir.read(name) is None:
                break
        self._dir.write_atomic(name, ("\n".join(lines) + "\n").encode())

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"DirectorySink({self.where!r})"
