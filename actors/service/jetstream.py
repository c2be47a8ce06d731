"""NATS JetStream adapter: :class:`NatsSource` (a durable pull consumer) and
:class:`NatsSink`.

A stream ``STREAM`` holds subjects ``SUBJECT.0`` .. ``SUBJECT.{n-1}``, one per partition
(``SUBJECT`` is the stream name unless given: subjects of two streams must not overlap;
the partition count is stored in the stream's metadata, ``triggerlab.partitions``);
files on the server's disk (file storage), so it survives a server restart. Offsets are
stream sequences (1-based, shared by all partitions).

The API is synchronous: each object runs the asyncio client (``nats-py``) on its own
event-loop thread, so Ray actors and plain threads call it directly; every call blocks
for at most its timeout.

**Source.** A durable pull consumer with explicit acks, filtered on the owned
partitions. The source knows its position per partition and (re)creates the consumer to
start at the lowest committed one: on open (from the consumer's acknowledged floor, or
the stream's start), on :meth:`NatsSource.seek`, and after every reconnection (a server
restart), so nothing in flight is lost; messages below a partition's position that the
server sends again are dropped, so nothing is delivered twice either. Acks are sent by
:meth:`NatsSource.commit`; the consumer stops delivering when ``max_ack_pending``
messages await their ack (backpressure: bounded memory for a slow consumer).

**Sink.** Publishes with a ``Nats-Msg-Id`` per message (JetStream stores a message once
per id within the stream's duplicate window, 2 min), waits for the stream's ack, and
retries what was not acked (a server restart) until its timeout.

Client options (``user``, ``password``, ``token``, ``tls`` (an ``ssl.SSLContext``),
``tls_hostname``, ``user_credentials``, ``nkeys_seed``, ``name``, ...) pass through to
``nats.connect`` unchanged; they never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
import nats.nuid
from nats.js import api

from actors.service._aio import LoopThread
from actors.service.transport import (
    Closing,
    Message,
    OutMessage,
    Positions,
    TransportError,
    check_positions,
    redact_options,
    redact_url,
)
from policies.checks import show
from policies.errors import TriggerLabValueError

__all__ = ["KEY_HEADER", "NatsSink", "NatsSource"]

log = logging.getLogger(__name__)

#: Header that carries an :class:`OutMessage` key.
KEY_HEADER = "TriggerLab-Key"
_PARTITIONS_META = "triggerlab.partitions"
#: Options the adapter sets itself (callbacks drive its reconnection logic).
_RESERVED = ("servers", "error_cb", "disconnected_cb", "reconnected_cb", "closed_cb")
_NATS_ERRORS = (nats.errors.Error, OSError)


class _Connection:
    """The client, its loop thread and the stream; shared code of source and sink."""

    def __init__(self, kind: str, url: str | Sequence[str], stream: str, subject: str | None,
                 n_partitions: int | None, options: Mapping[str, Any] | None,
                 connect_timeout: float) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        self.stream = stream
        self.subject = subject = stream if subject is None else subject
        self.options = dict(options or {})
        for key in self.options:
            if key in _RESERVED:
                raise TriggerLabValueError(
                    f"options[{key!r}]: set by the adapter, expected client options such "
                    "as user, password, token, tls")
        for name, value in (("stream", stream), ("subject", subject)):
            if not isinstance(value, str) or not value or any(c in value for c in " .*>"):
                raise TriggerLabValueError(
                    f"{name}: expected a name without spaces, dots or wildcards, got "
                    f"{show(value)}")
        self.what = f"nats {kind} {self.safe_urls} stream {stream!r}"
        self.reconnects = 0
        self.loop = LoopThread(f"triggerlab-nats-{kind}")
        self.nc: Any = None
        try:
            self.nc = self.loop.run(self._connect(connect_timeout), connect_timeout + 5,
                                    self.what)
            self.js = self.nc.jetstream()
            self.n_partitions = self.loop.run(self._ensure_stream(n_partitions),
                                              connect_timeout + 5, self.what)
        except BaseException:
            self.close()
            raise

    @property
    def safe_urls(self) -> str:
        return ",".join(redact_url(u) for u in self.urls)

    async def _connect(self, timeout: float) -> Any:
        last: list[str] = []

        async def on_error(exc: Exception) -> None:
            last.append(type(exc).__name__)
            log.warning("%s: %s", self.what, type(exc).__name__)

        async def on_disconnect() -> None:
            log.info("%s: disconnected", self.what)

        async def on_reconnect() -> None:
            self.reconnects += 1
            log.info("%s: reconnected", self.what)
            self.on_reconnect()

        kwargs: dict[str, Any] = {"connect_timeout": timeout, "max_reconnect_attempts": -1,
                                  "reconnect_time_wait": 0.25, "allow_reconnect": True}
        kwargs.update(self.options)
        try:
            # the client retries the first connection forever too: bound it here
            return await asyncio.wait_for(nats.connect(
                servers=self.urls, error_cb=on_error, disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect, **kwargs), timeout)
        except (TimeoutError, *_NATS_ERRORS) as exc:
            why = last[-1] if last else type(exc).__name__
            raise TransportError(
                f"{self.what}: cannot connect within {timeout:g} s ({why})") from None

    def on_reconnect(self) -> None:
        """Called on the loop thread after a reconnection."""

    async def _ensure_stream(self, n_partitions: int | None) -> int:
        if n_partitions is not None and (isinstance(n_partitions, bool) or not isinstance(
                n_partitions, int) or n_partitions < 1):
            raise TriggerLabValueError(
                f"n_partitions: expected an int >= 1, got {show(n_partitions)}")
        try:
            info = await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            if n_partitions is None:
                raise TriggerLabValueError(
                    f"n_partitions: stream {self.stream!r} does not exist; give its "
                    "partition count to create it") from None
            await self.js.add_stream(api.StreamConfig(
                name=self.stream, subjects=[f"{self.subject}.*"],
                storage=api.StorageType.FILE, duplicate_window=120.0,
                metadata={_PARTITIONS_META: str(n_partitions)}))
            log.info("%s: created with %d partitions", self.what, n_partitions)
            return n_partitions
        stored = (info.config.metadata or {}).get(_PARTITIONS_META)
        if stored is None or f"{self.subject}.*" not in (info.config.subjects or []):
            raise TriggerLabValueError(
                f"stream: {self.stream!r} exists but is not a partitioned event stream "
                f"on '{self.subject}.*' (subjects {info.config.subjects})")
        if n_partitions is not None and int(stored) != n_partitions:
            raise TriggerLabValueError(
                f"n_partitions: stream {self.stream!r} has {stored} partitions, got "
                f"{n_partitions}")
        return int(stored)

    def close(self) -> None:
        if self.nc is not None:
            nc, self.nc = self.nc, None
            try:
                self.loop.run(nc.close(), 10, self.what)
            except (TransportError, *_NATS_ERRORS) as exc:   # the server is gone already
                log.info("%s: closed without a goodbye (%s)", self.what, type(exc).__name__)
        self.loop.close()


class NatsSource(Closing):
    """A durable pull consumer over the owned partitions of a JetStream event stream.

    Parameters
    ----------
    url : str or list of str
        Server URL(s), ``nats://host:4222``.
    stream : str
        Stream name (created if missing, with ``n_partitions``).
    subject : str, optional
        Subject prefix: partition ``p`` is subject ``SUBJECT.p``; the stream name by
        default.
    partitions : sequence of int, optional
        Partitions this source owns; all by default.
    durable : str
        Consumer name; one per source (two sources sharing one would steal each other's
        messages). The server keeps its acknowledged floor across restarts.
    n_partitions : int, optional
        Partition count, needed only to create the stream.
    options : mapping, optional
        Passed to ``nats.connect`` (credentials, TLS, ...); never logged.
    ack_wait : float
        Seconds the server waits for an ack before sending a message again.
    max_ack_pending : int
        Messages delivered and not yet acked before the consumer pauses delivery.
    unavailable_timeout : float
        Seconds the server may stay unreachable before :meth:`poll` raises
        :class:`TransportError` (until then it returns ``[]`` and reconnects).
    """

    def __init__(self, url: str | Sequence[str], stream: str, *, subject: str | None = None,
                 partitions: Sequence[int] | None = None, durable: str = "triggerlab",
                 n_partitions: int | None = None, options: Mapping[str, Any] | None = None,
                 ack_wait: float = 60.0, max_ack_pending: int = 20_000,
                 connect_timeout: float = 10.0, unavailable_timeout: float = 60.0) -> None:
        self.url = url
        self.stream = stream
        self.durable = durable
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.unavailable_timeout = unavailable_timeout
        self._conn = _Connection("source", url, stream, subject, n_partitions, options,
                                 connect_timeout)
        self.subject = self._conn.subject
        self._conn.on_reconnect = self._on_reconnect  # type: ignore[method-assign]
        n = self._conn.n_partitions
        owned = list(range(n)) if partitions is None else list(partitions)
        for p in owned:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < n:
                self.close()
                raise TriggerLabValueError(
                    f"partitions: expected ints in [0, {n}), got {show(p)}")
        self.partitions = tuple(sorted(set(owned)))
        self._next: Positions = {}
        self._committed: Positions = {}
        self._pending: dict[int, tuple[int, str]] = {}   # stream seq -> (partition, reply)
        self._sub: Any = None
        self._backlog: int | None = None
        self._stale = True
        self._unavailable_since: float | None = None
        try:
            self._conn.loop.run(self._open(), connect_timeout + 5, self._conn.what)
        except BaseException:
            self.close()
            raise

    # -- asyncio side --------------------------------------------------------

    def _on_reconnect(self) -> None:
        self._stale = True

    async def _open(self) -> None:
        try:
            info = await self._conn.js.consumer_info(self.stream, self.durable)
            start = int(info.ack_floor.stream_seq) + 1
        except nats.js.errors.NotFoundError:
            start = 1
        self._next = dict.fromkeys(self.partitions, start)
        self._committed = dict(self._next)
        await self._bind()

    async def _bind(self) -> None:
        """(Re)create the consumer at the lowest committed position; messages between a
        partition's committed and next position come again and are dropped as duplicates
        (their new ack handles kept, so :meth:`commit` acks them)."""
        js = self._conn.js
        start = max(1, min(self._committed.values()))
        try:
            await js.delete_consumer(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            pass
        subjects = [f"{self.subject}.{p}" for p in self.partitions]
        config = api.ConsumerConfig(
            durable_name=self.durable, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending, replay_policy=api.ReplayPolicy.INSTANT,
            **({"filter_subject": subjects[0]} if len(subjects) == 1
               else {"filter_subjects": subjects}))
        await js.add_consumer(self.stream, config)
        if self._sub is not None:
            old, self._sub = self._sub, None
            try:
                await old.unsubscribe()
            except _NATS_ERRORS:
                pass
        self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._pending.clear()
        self._stale = False
        log.info("%s: consumer %r from stream sequence %d", self._conn.what, self.durable,
                 start)

    async def _poll(self, max_messages: int, timeout: float) -> list[Message]:
        nc = self._conn.nc
        if self._stale:
            try:
                await self._bind()
            except (TimeoutError, *_NATS_ERRORS) as exc:
                self._unavailable(exc)
                await asyncio.sleep(min(timeout, 0.25))
                return []
        try:
            raw = await self._sub.fetch(max_messages, timeout=timeout)
        except TimeoutError as exc:
            if nc.is_connected:
                self._unavailable_since = None
                self._backlog = 0
            else:
                self._unavailable(exc)
            return []
        except _NATS_ERRORS as exc:
            self._stale = True
            self._unavailable(exc)
            return []
        self._unavailable_since = None
        if raw:
            self._backlog = int(raw[-1].metadata.num_pending)
        out: list[Message] = []
        acks: list[str] = []
        for m in raw:
            seq = int(m.metadata.sequence.stream)
            p = int(m.subject.rsplit(".", 1)[1])
            if seq < self._next[p]:                       # sent again: drop
                if seq < self._committed[p]:
                    acks.append(m.reply)
                else:
                    self._pending[seq] = (p, m.reply)
                continue
            self._next[p] = seq + 1
            self._pending[seq] = (p, m.reply)
            key = m.headers.get(KEY_HEADER) if m.headers else None
            out.append(Message(p, seq, seq + 1, m.data,
                               key=key.encode() if key is not None else None,
                               broker_time=m.metadata.timestamp.timestamp()))
        for reply in acks:
            await nc.publish(reply, b"+ACK")
        return out

    def _unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._unavailable_since is None:
            self._unavailable_since = now
            log.info("%s: server unavailable (%s), reconnecting", self._conn.what,
                     type(exc).__name__)
        elif now - self._unavailable_since > self.unavailable_timeout:
            raise TransportError(
                f"{self._conn.what}: server unavailable for more than "
                f"{self.unavailable_timeout:g} s ({type(exc).__name__})")

    async def _commit(self, positions: Positions) -> None:
        for p, off in positions.items():
            self._committed[p] = max(self._committed[p], off)
        nc = self._conn.nc
        done = [s for s, (p, _) in self._pending.items() if s < self._committed[p]]
        for s in done:
            _, reply = self._pending.pop(s)
            await nc.publish(reply, b"+ACK")
        try:
            await nc.flush(timeout=2)
        except (TimeoutError, *_NATS_ERRORS):
            # a lost ack is harmless: the message comes again and is dropped and acked
            log.info("%s: acks not flushed (server unavailable)", self._conn.what)

    # -- the Source interface --------------------------------------------------

    def poll(self, max_messages: int = 1000, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` new messages within ``timeout`` seconds (``[]`` while
        the server is unreachable, up to ``unavailable_timeout``)."""
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) \
                or max_messages < 1:
            raise TriggerLabValueError(
                f"max_messages: expected an int >= 1, got {show(max_messages)}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not timeout > 0:
            raise TriggerLabValueError(f"timeout: expected seconds > 0, got {show(timeout)}")
        return self._conn.loop.run(self._poll(max_messages, timeout), timeout + 30,
                                   self._conn.what)

    def positions(self) -> Positions:
        return dict(self._next)

    def committed(self) -> Positions:
        """Positions acked so far (by :meth:`commit`, or the consumer's floor at open)."""
        return dict(self._committed)

    def _owned(self, positions: Mapping[int, int]) -> Positions:
        checked = check_positions(positions)
        for p in checked:
            if p not in self._next:
                raise TriggerLabValueError(
                    f"positions: partition {p} is not owned by this source "
                    f"(owns {list(self.partitions)})")
        return checked

    def commit(self, positions: Mapping[int, int]) -> None:
        checked = self._owned(positions)
        self._conn.loop.run(self._commit(checked), 30, self._conn.what)

    def seek(self, positions: Mapping[int, int]) -> None:
        checked = self._owned(positions)
        self._next = {p: checked.get(p, 1) for p in self.partitions}
        self._committed = dict(self._next)
        self._stale = True
        self._conn.loop.run(self._bind(), 30, self._conn.what)

    def end_positions(self) -> Positions:
        """Positions just after the last message the stream holds now (every owned
        partition at the stream's last sequence + 1): ``seek`` there reads only what is
        published from now on."""
        async def last() -> int:
            info = await self._conn.js.stream_info(self.stream)
            return int(info.state.last_seq)

        end = self._conn.loop.run(last(), 30, self._conn.what) + 1
        return dict.fromkeys(self.partitions, end)

    def backlog(self) -> int | None:
        """Messages of the owned partitions not yet delivered, as the server counted at
        the last :meth:`poll` (None before one)."""
        return self._backlog

    @property
    def reconnects(self) -> int:
        """Reconnections to the server so far."""
        return self._conn.reconnects

    def close(self) -> None:
        if hasattr(self, "_conn"):
            self._conn.close()

    def __repr__(self) -> str:
        return (f"NatsSource(url={self._conn.safe_urls!r}, stream={self.stream!r}, "
                f"subject={self.subject!r}, partitions={list(self.partitions)}, "
                f"durable={self.durable!r}, options={redact_options(self._conn.options)})")


class NatsSink(Closing):
    """Publishes :class:`OutMessage` s to ``SUBJECT.{partition}`` of a JetStream stream.

    Parameters
    ----------
    url, stream, subject, n_partitions, options
        As for :class:`NatsSource` (``n_partitions`` is needed to create the stream).
    timeout : float
        Seconds :meth:`publish` keeps retrying before it raises :class:`TransportError`.
    ack_timeout : float
        Seconds to wait for the stream's acks of one attempt.
    """

    def __init__(self, url: str | Sequence[str], stream: str, *, subject: str | None = None,
                 n_partitions: int | None = None, options: Mapping[str, Any] | None = None,
                 timeout: float = 30.0, ack_timeout: float = 5.0,
                 connect_timeout: float = 10.0) -> None:
        self.url = url
        self.stream = stream
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self._conn = _Connection("sink", url, stream, subject, n_partitions, options,
                                 connect_timeout)
        self.subject = self._conn.subject
        self._nuid = nats.nuid.NUID()

    @property
    def partitions(self) -> int:
        return self._conn.n_partitions

    async def _publish(self, messages: Sequence[OutMessage]) -> None:
        js = self._conn.js
        n = self._conn.n_partitions
        todo = []
        for m in messages:
            if not 0 <= m.partition < n:
                raise TriggerLabValueError(
                    f"messages: partition must be in [0, {n}), got {m.partition}")
            headers = {"Nats-Msg-Id": m.msg_id or self._nuid.next().decode()}
            if m.key is not None:
                headers[KEY_HEADER] = m.key.decode("utf-8", "replace")
            todo.append((f"{self.subject}.{m.partition}", m.payload, headers))
        deadline = time.monotonic() + self.timeout
        last = ""
        while todo:
            sent: list[tuple[Any, asyncio.Future[Any]]] = []
            failed = []
            for item in todo:
                try:
                    fut = await js.publish_async(item[0], item[1], wait_stall=self.ack_timeout,
                                                 headers=dict(item[2]))
                    sent.append((item, fut))
                except (TimeoutError, *_NATS_ERRORS) as exc:
                    failed.append(item)
                    last = type(exc).__name__
            if sent:
                remaining = max(0.05, min(self.ack_timeout, deadline - time.monotonic()))
                await asyncio.wait([f for _, f in sent], timeout=remaining)
            for item, fut in sent:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    continue
                if fut.done() and not fut.cancelled():
                    last = f"{type(fut.exception()).__name__}: {fut.exception()}"
                else:
                    fut.cancel()
                    last = "no ack"
                failed.append(item)
            order = {id(item): i for i, item in enumerate(todo)}
            todo = sorted(failed, key=lambda item: order[id(item)])
            if todo:
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"{self._conn.what}: {len(todo)} of {len(messages)} messages not "
                        f"stored within {self.timeout:g} s (last: {last})")
                await asyncio.sleep(0.1)

    def publish(self, messages: Sequence[OutMessage]) -> None:
        if not messages:
            return
        self._conn.loop.run(self._publish(list(messages)), self.timeout + 30, self._conn.what)

    def close(self) -> None:
        if hasattr(self, "_conn"):
            self._conn.close()

    def __repr__(self) -> str:
        return (f"NatsSink(url={self._conn.safe_urls!r}, stream={self.stream!r}, "
                f"subject={self.subject!r}, partitions={self.partitions}, "
                f"options={redact_options(self._conn.options)})")
