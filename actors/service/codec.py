"""Wire formats of events: a batch per message in Arrow IPC, or one JSON event per message.

**Arrow IPC** (``"arrow"``): one message is an Arrow IPC *stream* (schema, then record
batches) holding one table of events, columns as in :class:`~policies.events.EventBatch`:

* ``subscriber`` int64; ``time`` int64 seconds since the Unix epoch, UTC;
* ``type`` dictionary<int32, string> of event-type *names* (codes are process-local);
* data columns: float64 for quantities, int64 codes for categories; a missing value is
  written as an Arrow null; ``NaN`` in a float column and ``-1`` in an integer column
  also read as missing (as ``EventBatch.from_arrow`` reads them).

Decoding also takes what other writers produce: ``type`` as plain strings, ``time`` as
a timezone-aware timestamp, categorical words (strings) in declared categorical columns,
narrower integer or float types; such tables go through the same checks.

**JSON** (``"json"``): one UTF-8 JSON object per message, what trackers emit::

    {"subscriber": 7, "time": 1700000000, "type": "add_to_cart", "cart_value": 40.0}

``time`` is int seconds or an ISO-8601 string with an offset; categorical words are
accepted; missing fields are left out (or ``null``).

**Dead letters.** Decoding never raises on bad input. A message that is not the format
(not Arrow IPC, not JSON, not an object), or an Arrow table without a core column, is
one :class:`DeadLetter` with its raw bytes; a bad row (unknown event type, naive or
out-of-range time, a time in milliseconds, a NaN time or id, NaN in a JSON value,
infinity, a category code below -1, text in an undeclared column, ...) is one dead
letter with the row and the reason, and the other rows of the message go on. The row
checks are those of ``EventBatch.from_records(..., validate="quarantine")`` (the
reasons read the same), applied to Arrow rows after their missing markers became None.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors.service.partitioning import partition_of
from actors.service.transport import Message, OutMessage
from policies.checks import show
from policies.errors import TriggerLabValueError
from policies.event_schema import (
    CORE_COLUMNS,
    EVENT_TYPES,
    MAX_SUBSCRIBER,
    MAX_TIME,
    MIN_TIME,
    category_code,
    check_time_bounds,
    column_kind,
    vocabulary,
)
from policies.events import EventBatch

__all__ = [
    "FORMATS",
    "DeadLetter",
    "Decoded",
    "decode_messages",
    "encode_arrow",
    "encode_json",
    "encode_messages",
    "encode_table",
    "events_table",
    "read_payload",
    "sniff",
]

#: Wire formats: a batch per message (Arrow IPC stream) or one event per message (JSON).
FORMATS = ("arrow", "json")
Format = Literal["arrow", "json"]

#: First bytes of an Arrow IPC stream message (the continuation marker).
_ARROW_MAGIC = b"\xff\xff\xff\xff"
#: Schema metadata that marks a table written by :func:`events_table`.
_META = {b"triggerlab": b"events/1"}
#: Default largest message, bytes (NATS' and Kafka's default limit is 1 MiB).
DEFAULT_MAX_BYTES = 512 * 1024
_REASON_CHARS = 200


@dataclass(frozen=True)
class DeadLetter:
    """A message or a row that could not become an event, and why.

    Attributes
    ----------
    partition, offset : int
        Where the message was read (:class:`~actors.service.transport.Message`).
    row : int or None
        Row within the message (0-based; for a file, row index = ``offset + row``);
        None when the whole message is rejected.
    field : str
        The field at fault (``"time"``, ``"type"``, ...) or ``"message"``.
    reason : str
        What was expected and what was received.
    payload : bytes or dict
        The raw message (whole-message rejections, and a JSON message's one event), or
        the row's values (a row of an Arrow table).
    """

    partition: int
    offset: int
    row: int | None
    field: str
    reason: str
    payload: bytes | dict[str, Any]

    def to_json(self) -> bytes:
        """One JSON object (UTF-8) for a dead-letter stream; raw bytes as base64."""
        body: dict[str, Any] = {
            "partition": self.partition, "offset": self.offset, "row": self.row,
            "field": self.field, "reason": self.reason,
        }
        if isinstance(self.payload, bytes):
            body["payload_base64"] = base64.b64encode(self.payload).decode("ascii")
        else:
            body["record"] = self.payload
        return json.dumps(body, default=str).encode()


@dataclass(frozen=True)
class Decoded:
    """The events of some messages, and what was rejected.

    Attributes
    ----------
    events : EventBatch
        Good rows, in message order and row order within a message.
    message_index : ndarray of int64, shape (len(events),)
        Index in the decoded message list of each event's message.
    dead_letters : list of DeadLetter
    """

    events: EventBatch
    message_index: np.ndarray
    dead_letters: list[DeadLetter]


# ---------------------------------------------------------------------------
# encoding


def events_table(batch: EventBatch) -> pa.Table:
    """``batch`` as an Arrow table in the wire schema (zero-copy for int columns)."""
    names = list(EVENT_TYPES.names)
    arrays: list[pa.Array] = [
        pa.array(batch.subscriber, pa.int64()),
        pa.array(batch.time, pa.int64()),
        pa.DictionaryArray.from_arrays(
            pa.array(batch.type.astype(np.int32)), pa.array(names, pa.string())),
    ]
    fields = list(CORE_COLUMNS)
    for name, col in batch.columns.items():
        if col.dtype.kind == "f":
            missing = np.isnan(col)
            arrays.append(pa.array(col, pa.float64(), mask=missing if missing.any() else None))
        else:
            missing = col == -1
            arrays.append(pa.array(col, pa.int64(), mask=missing if missing.any() else None))
        fields.append(name)
    table = pa.Table.from_arrays(arrays, names=fields)
    return table.replace_schema_metadata(_META)


def encode_table(table: pa.Table) -> bytes:
    """Any Arrow table as one Arrow IPC stream message."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def encode_arrow(batch: EventBatch) -> bytes:
    """One Arrow IPC stream message holding every row of ``batch``."""
    return encode_table(events_table(batch))


def encode_json(batch: EventBatch) -> list[bytes]:
    """One UTF-8 JSON object per event: names for types and categorical words, int
    seconds for times; missing values left out."""
    names = EVENT_TYPES.names
    cols = []
    for name, col in batch.columns.items():
        vocab = vocabulary(name)
        cols.append((name, col.tolist(), col.dtype.kind == "f", vocab))
    out = []
    subs, times, types = batch.subscriber.tolist(), batch.time.tolist(), batch.type.tolist()
    dumps = json.dumps
    for i in range(len(subs)):
        rec: dict[str, Any] = {"subscriber": subs[i], "time": times[i], "type": names[types[i]]}
        for name, values, is_float, vocab in cols:
            v = values[i]
            if is_float:
                if not math.isnan(v):
                    rec[name] = v
            elif v != -1:
                rec[name] = vocab[v] if vocab is not None and 0 <= v < len(vocab) else v
        out.append(dumps(rec, separators=(",", ":")).encode())
    return out


def encode_messages(batch: EventBatch, partitions: int, fmt: Format = "arrow", *,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> list[OutMessage]:
    """``batch`` as messages keyed by subscriber: each event goes to the partition of its
    subscriber (:func:`~actors.service.partitioning.partition_of`).

    ``"arrow"``: one message per partition and at most ~``max_bytes`` bytes (rows are
    split by the columns' width), key None; ``"json"``: one message per event, key the
    subscriber id in decimal.
    """
    if fmt not in FORMATS:
        raise TriggerLabValueError(f"fmt: expected one of {', '.join(FORMATS)}, got {show(fmt)}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
        raise TriggerLabValueError(f"max_bytes: expected an int >= 1024, got {show(max_bytes)}")
    part = partition_of(batch.subscriber, partitions)
    out: list[OutMessage] = []
    if fmt == "json":
        payloads = encode_json(batch)
        for p, sub, payload in zip(part.tolist(), batch.subscriber.tolist(), payloads,
                                   strict=True):
            out.append(OutMessage(p, payload, key=str(sub).encode()))
        return out
    row_bytes = 21 + 9 * len(batch.columns)          # 8 B per value, validity bits, type
    overhead = 1024 + 128 * len(batch.columns)        # schema, type names, batch header
    rows = max(1, (max_bytes - overhead) // row_bytes)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    for p in range(partitions):
        idx = order[bounds[p]:bounds[p + 1]]
        for lo in range(0, len(idx), rows):
            out.append(OutMessage(p, encode_arrow(batch[idx[lo:lo + rows]])))
    return out


def sniff(payload: bytes) -> Format | None:
    """The format a payload looks like: ``"arrow"``, ``"json"`` (an object) or None."""
    if payload[:4] == _ARROW_MAGIC:
        return "arrow"
    if payload.lstrip()[:1] == b"{":
        return "json"
    return None


def read_payload(payload: bytes) -> dict[str, Any] | pa.Table | str:
    """A message of a side stream (attributes, catalog) as one JSON object or one Arrow
    table, or the reason it is neither (never raises)."""
    kind = sniff(payload)
    if kind == "json":
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError) as exc:     # UnicodeDecodeError is a ValueError
            return f"not JSON: {exc}"
        if not isinstance(body, dict):
            return f"expected a JSON object, got {type(body).__name__}"
        return body
    if kind == "arrow":
        try:
            return pa.ipc.open_stream(payload).read_all()
        except (pa.ArrowException, OSError, ValueError) as exc:
            return f"not an Arrow IPC stream: {exc}"
    return "not an Arrow IPC stream nor a JSON object"


# ---------------------------------------------------------------------------
# decoding


def decode_messages(messages: Sequence[Message], fmt: Format | Literal["auto"] = "auto", *,
                    min_time: int = MIN_TIME, max_time: int = MAX_TIME) -> Decoded:
    """Events of ``messages`` plus dead letters for whatever is malformed; never raises
    on bad payloads.

    ``fmt="auto"`` tells Arrow from JSON by the first bytes (:func:`sniff`). Times must
    lie in ``[min_time, max_time)`` seconds (for live traffic: ``max_time=now + skew``).
    """
    min_time, max_time = check_time_bounds(min_time, max_time)
    if fmt not in (*FORMATS, "auto"):
        raise TriggerLabValueError(
            f"fmt: expected 'auto', 'arrow' or 'json', got {show(fmt)}")
    dead: list[DeadLetter] = []
    parts: list[tuple[int, EventBatch]] = []       # (first message index, events)
    json_msgs: list[tuple[int, Message, dict[str, Any]]] = []
    for i, msg in enumerate(messages):
        kind = sniff(msg.payload) if fmt == "auto" else fmt
        if kind == "arrow":
            batch = _decode_arrow(msg, dead, min_time, max_time)
            if batch is not None:
                parts.append((i, batch))
        elif kind == "json":
            rec = _parse_json(msg, dead)
            if rec is not None:
                json_msgs.append((i, msg, rec))
        else:
            dead.append(_whole(msg, "not an Arrow IPC stream nor a JSON object "
                                    f"(starts with {show(msg.payload[:16])})"))
    if json_msgs:
        batch, keep = _records_to_batch([r for _, _, r in json_msgs], min_time, max_time,
                                        [(m, None) for _, m, _ in json_msgs], dead)
        index = np.array([json_msgs[k][0] for k in keep], np.int64)
    else:
        batch, index = None, None
    if dead:                                   # in message order, then row order
        where: dict[tuple[int, int], int] = {}
        for i, msg in enumerate(messages):
            where.setdefault((msg.partition, msg.offset), i)
        dead.sort(key=lambda d: (where.get((d.partition, d.offset), -1),
                                 -1 if d.row is None else d.row))
    return _merge(parts, batch, index, dead)


def _merge(parts: list[tuple[int, EventBatch]], json_batch: EventBatch | None,
           json_index: np.ndarray | None, dead: list[DeadLetter]) -> Decoded:
    """All events in message order (Arrow parts are whole messages, JSON rows one each)."""
    batches = [b for _, b in parts]
    index = [np.full(len(b), i, np.int64) for i, b in parts]
    if json_batch is not None and json_index is not None and len(json_batch):
        batches.append(json_batch)
        index.append(json_index)
    if not batches:
        return Decoded(EventBatch.empty(), np.zeros(0, np.int64), dead)
    if len(batches) == 1:
        return Decoded(batches[0], index[0], dead)
    message_index = np.concatenate(index)
    events = EventBatch.concat(batches)
    order = np.argsort(message_index, kind="stable")
    if np.any(order != np.arange(len(order))):
        events, message_index = events[order], message_index[order]
    return Decoded(events, message_index, dead)


def _whole(msg: Message, reason: str) -> DeadLetter:
    return DeadLetter(msg.partition, msg.offset, None, "message", reason[:_REASON_CHARS],
                      msg.payload)


def _parse_json(msg: Message, dead: list[DeadLetter]) -> dict[str, Any] | None:
    try:
        value = json.loads(msg.payload)
    except (ValueError, RecursionError) as exc:      # JSONDecodeError, UnicodeDecodeError
        dead.append(_whole(msg, f"not JSON: {exc}"))
        return None
    if not isinstance(value, dict):
        dead.append(_whole(msg, f"expected a JSON object, got {type(value).__name__}"))
        return None
    return value


def _records_to_batch(records: list[Any], min_time: int, max_time: int,
                      origin: Sequence[tuple[Message, int | None]],
                      dead: list[DeadLetter]) -> tuple[EventBatch, list[int]]:
    """``EventBatch.from_records(records, validate="quarantine")`` with dead letters at
    ``origin[i]`` (message, row in it; None: the record is the whole message, and its
    dead letter keeps the raw bytes); returns the batch and the kept record indices.

    One record's text in an undeclared column makes ``from_records`` refuse that column
    in every record of the call; records refused only for that are decoded again
    without it, so one bad message does not take its neighbours down.
    """
    batch, rejected = EventBatch.from_records(records, validate="quarantine",
                                              min_time=min_time, max_time=max_time)
    bad = rejected["index"].tolist()
    if not bad:
        return batch, list(range(len(records)))
    rescued = []
    for i in bad:
        _, alone = EventBatch.from_records([records[i]], validate="quarantine",
                                           min_time=min_time, max_time=max_time)
        if alone.empty:
            rescued.append(i)
    bad_set = set(bad) - set(rescued)
    keep = [i for i in range(len(records)) if i not in bad_set]
    if rescued:
        batch, rejected_again = EventBatch.from_records(
            [records[i] for i in keep], validate="quarantine", min_time=min_time,
            max_time=max_time)
        if not rejected_again.empty:     # cannot happen: each kept record passes alone
            again = {keep[j] for j in rejected_again["index"].tolist()}
            rejected = rejected[~rejected["index"].isin(rescued)]
            keep = [i for i in keep if i not in again]
    for row in rejected.itertuples(index=False):
        i = int(row.index)
        if i in bad_set:
            msg, r = origin[i]
            dead.append(DeadLetter(msg.partition, msg.offset, r, str(row.field),
                                   str(row.reason)[:_REASON_CHARS],
                                   msg.payload if r is None else _jsonable(records[i])))
    return batch, keep


def _jsonable(record: Any) -> dict[str, Any]:
    return dict(record) if isinstance(record, Mapping) else {"value": record}


# -- Arrow -------------------------------------------------------------------


def _decode_arrow(msg: Message, dead: list[DeadLetter], min_time: int,
                  max_time: int) -> EventBatch | None:
    try:
        with pa.ipc.open_stream(pa.py_buffer(msg.payload)) as reader:
            table = reader.read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        dead.append(_whole(msg, f"not an Arrow IPC stream: {exc}"))
        return None
    names = table.column_names
    if len(set(names)) != len(names):
        dead.append(_whole(msg, f"wrong schema: duplicate column names {names}"))
        return None
    missing = [c for c in CORE_COLUMNS if c not in names]
    if missing:
        dead.append(_whole(msg, f"wrong schema: missing column {missing[0]!r} "
                                f"(have {names})"))
        return None
    fast = _fast_columns(table, min_time, max_time)
    if fast is not None and not fast[1].any():
        return fast[0]
    # some row is bad, or the schema needs the row-by-row checks: from_records decides
    try:
        records = table.to_pylist()
    except (pa.ArrowException, ValueError, TypeError) as exc:
        dead.append(_whole(msg, f"wrong schema: cannot read the rows: {exc}"))
        return None
    _missing_to_none(records, table.schema)
    origin = [(msg, r) for r in range(len(records))]
    batch, keep = _records_to_batch(records, min_time, max_time, origin, dead)
    if fast is None:
        ints = {f.name: np.where(np.isnan(batch.columns[f.name]), -1,
                                 batch.columns[f.name]).astype(np.int64)
                for f in table.schema if f.name in batch.columns and f.name not in CORE_COLUMNS
                and column_kind(f.name) is None and pa.types.is_integer(f.type)}
        return batch.with_columns(**ints) if ints else batch
    mask = np.zeros(table.num_rows, bool)
    mask[keep] = True
    return fast[0][mask]


def _missing_to_none(records: list[dict[str, Any]], schema: pa.Schema) -> None:
    """In data columns, NaN (float columns) and -1 (integer columns) mean missing, as
    in ``EventBatch.from_arrow``: make them None for ``from_records``."""
    floats = [f.name for f in schema
              if f.name not in CORE_COLUMNS and pa.types.is_floating(f.type)]
    ints = [f.name for f in schema
            if f.name not in CORE_COLUMNS and pa.types.is_integer(f.type)]
    for rec in records:
        for name in floats:
            v = rec[name]
            if v is not None and v != v:
                rec[name] = None
        for name in ints:
            if rec[name] == -1:
                rec[name] = None


def _fast_columns(table: pa.Table, min_time: int,
                  max_time: int) -> tuple[EventBatch, np.ndarray] | None:
    """The table as a batch plus a mask of rows that fail a check, by whole columns; None
    when a column's type needs the row-by-row path (then that path finds the reasons).

    A True in the mask only sends the message to the row-by-row path, which decides.
    """
    try:
        return _fast_columns_or_raise(table, min_time, max_time)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None          # an unusual type or value: the row-by-row path reads it


def _fast_columns_or_raise(table: pa.Table, min_time: int,
                           max_time: int) -> tuple[EventBatch, np.ndarray] | None:
    n = table.num_rows
    bad = np.zeros(n, bool)
    if any(c.num_chunks > 1 for c in table.columns):
        table = table.unify_dictionaries()
    cols = {name: (c.chunk(0) if c.num_chunks == 1 else c.combine_chunks())
            for name, c in zip(table.column_names, table.columns, strict=True)}
    sub = cols["subscriber"]
    if not pa.types.is_integer(sub.type):
        return None
    if pa.types.is_uint64(sub.type):
        bad |= _filled(sub, 0, np.uint64) > np.uint64(MAX_SUBSCRIBER)
    subscriber = _filled(sub, 0, np.int64)
    bad |= _nulls(sub)
    t = cols["time"]
    if pa.types.is_timestamp(t.type):
        if t.type.tz is None:
            return None
        t = pc.cast(pc.cast(pc.floor_temporal(t, unit="second"), pa.timestamp("s", t.type.tz)),
                    pa.int64())
    if not pa.types.is_integer(t.type) or pa.types.is_uint64(t.type):
        return None
    time = _filled(t, min_time, np.int64)
    bad |= _nulls(t) | (time < min_time) | (time >= max_time)
    codes = _names_to_codes(cols["type"], EVENT_TYPES.code, ("type", len(EVENT_TYPES)))
    if codes is None:
        return None
    bad |= codes < 0
    columns: dict[str, np.ndarray] = {}
    for name, col in cols.items():
        if name in CORE_COLUMNS:
            continue
        out = _fast_data_column(name, col)
        if out is None:
            return None
        columns[name], col_bad = out
        bad |= col_bad
    return EventBatch(subscriber, time, np.where(codes < 0, 0, codes), columns), bad


def _fast_data_column(name: str, col: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    kind = column_kind(name)
    typ = col.type
    if pa.types.is_null(typ):
        if kind == "int":
            return np.full(len(col), -1, np.int64), np.zeros(len(col), bool)
        return np.full(len(col), np.nan), np.zeros(len(col), bool)
    if kind == "float" or (kind is None and pa.types.is_floating(typ)):
        if not (pa.types.is_floating(typ) or pa.types.is_integer(typ)):
            return None
        values = _filled(col, np.nan, np.float64)
        return values, np.isinf(values)
    if pa.types.is_integer(typ) and not pa.types.is_uint64(typ):
        values = _filled(col, -1, np.int64)
        if kind is None:            # an undeclared integer column: kept as it is
            return values, np.zeros(len(col), bool)
        return values, values < -1
    if kind == "int" and vocabulary(name) is not None:
        codes = _names_to_codes(col, lambda word: category_code(name, word),
                                (name, len(vocabulary(name) or ())))
        if codes is None:
            return None
        return np.where(codes == -2, -1, codes), codes == -2
    return None


#: Lookup tables of recent dictionaries: (column, registry size, words) -> codes. A
#: registry only grows and never recodes, so its size tells whether a table is current.
_LUTS: dict[tuple[Any, ...], np.ndarray] = {}


def _names_to_codes(col: pa.Array, code: Any, registry: tuple[str, int]) -> np.ndarray | None:
    """Codes of a string or dictionary<string> column through ``code(name)``: -2 for a
    name ``code`` refuses (and for nulls); None if the column holds no strings.
    ``registry`` is (column, size of its registry), the key of the cached tables."""
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.dictionary_encode(col)
    if not pa.types.is_dictionary(col.type) or not (
            pa.types.is_string(col.type.value_type)
            or pa.types.is_large_string(col.type.value_type)):
        return None
    words = tuple(col.dictionary.to_pylist())
    key = (*registry, words)
    lut = _LUTS.get(key)
    if lut is None:
        codes = []
        for word in words:
            try:
                codes.append(code(word))
            except ValueError:
                codes.append(-2)
        codes.append(-2)                            # null index -> refused
        lut = np.asarray(codes, np.int64)
        if len(_LUTS) > 256:
            _LUTS.clear()
        _LUTS[key] = lut
    idx = _filled(col.indices, len(lut) - 1, np.int64)
    return lut[idx]


_NUMPY_TO_ARROW = {np.int64: pa.int64(), np.uint64: pa.uint64(), np.float64: pa.float64()}


def _filled(col: pa.Array, fill: Any, dtype: Any) -> np.ndarray:
    """``col`` as a numpy array of ``dtype`` (int64, uint64 or float64), nulls set to
    ``fill``; integers that do not fit wrap (callers flag such rows beforehand)."""
    target = _NUMPY_TO_ARROW[dtype]
    if col.type != target:
        col = pc.cast(col, target, safe=False)
    data = col.buffers()[1]
    if data is None or len(col) == 0:
        return np.full(len(col), fill, dtype)
    values = np.frombuffer(data, dtype, len(col) + col.offset)[col.offset:]
    if col.null_count:
        values = np.where(_nulls(col), fill, values).astype(dtype)
    return values


def _nulls(col: pa.Array) -> np.ndarray:
    """Null mask of ``col`` (bool array), from its validity bitmap."""
    n = len(col)
    if not col.null_count:
        return np.zeros(n, bool)
    bits = np.unpackbits(np.frombuffer(col.buffers()[0], np.uint8), bitorder="little")
    return ~bits[col.offset:col.offset + n].astype(bool)
