"""Catalog events on the wire: what a catalog stream carries to the engine shards
(:meth:`actors.service.shard.ShardCore.catalog`).

Catalog events (``price_drop``, ``back_in_stock``) name a product, not a subscriber, so
the catalog stream is a **broadcast**: every shard reads all of it (its own consumer,
``<group>-catalog-NNN``) and fans each event out to the subscribers it owns who viewed or
carted the product (docs/journeys.md, catalog entries).

A message is one JSON object, ``{"time": 1767600000, "type": "price_drop", "product_id":
42, "old_price": 50.0, "new_price": 40.0}`` (what a commerce platform's product webhook
relays), or an Arrow IPC table with those columns (a Parquet log of catalog events replays
as such tables). ``time`` is int seconds since the epoch, ``type`` one of
:data:`~policies.triggers.journeys.CATALOG_EVENT_TYPES`, ``product_id`` an int >= 0, the
prices finite numbers >= 0 or null (``back_in_stock`` has no old price; a price drop's
new price is below its old one). The checks are :class:`~policies.triggers.CatalogBatch`'s
own. Decoding never raises: a message that is not one of the two formats, and a row that
fails a check, has another field, or lies after ``max_time`` (the wall clock plus the
service's maximum skew), is a dead letter with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from actors.service.codec import DeadLetter, encode_table, read_payload
from actors.service.transport import Message
from policies import checks
from policies.errors import InvalidEventError, TriggerLabValueError
from policies.event_schema import MAX_TIME, time_range_error
from policies.triggers import CatalogBatch

__all__ = ["CATALOG_FIELDS", "decode_catalog", "encode_catalog"]

#: The fields of a catalog event (``old_price`` and ``new_price`` may be null or absent).
CATALOG_FIELDS = ("time", "type", "product_id", "old_price", "new_price")


def encode_catalog(batch: CatalogBatch, fmt: str = "arrow", *,
                   rows_per_message: int = 1000) -> list[bytes]:
    """Payloads of catalog-stream messages for ``batch`` (what a producer publishes):
    Arrow IPC tables of up to ``rows_per_message`` rows (``fmt="arrow"``), or one JSON
    object per event (``fmt="json"``); missing prices are null (Arrow) or left out (JSON)."""
    if fmt not in ("arrow", "json"):
        raise TriggerLabValueError(f"fmt: expected 'arrow' or 'json', got {fmt!r}")
    checks.check_int("rows_per_message", rows_per_message, error=TriggerLabValueError, low=1)
    names = [batch.type_name(i) for i in range(len(batch))]
    if fmt == "json":
        out = []
        for i, name in enumerate(names):
            row: dict[str, Any] = {"time": int(batch.time[i]), "type": name,
                                   "product_id": int(batch.product_id[i])}
            for col in ("old_price", "new_price"):
                v = float(getattr(batch, col)[i])
                if v == v:
                    row[col] = v
            out.append(json.dumps(row).encode())
        return out
    table = pa.table({
        "time": pa.array(batch.time, pa.int64()),
        "type": pa.array(names, pa.string()),
        "product_id": pa.array(batch.product_id, pa.int64()),
        "old_price": pa.array(batch.old_price, pa.float64(), mask=np.isnan(batch.old_price)),
        "new_price": pa.array(batch.new_price, pa.float64(), mask=np.isnan(batch.new_price)),
    })
    return [encode_table(table.slice(lo, rows_per_message))
            for lo in range(0, len(table), rows_per_message)]


def _rows(msg: Message) -> tuple[list[dict[str, Any]], bool] | str:
    """The message's rows as dicts and whether it is one JSON object, or the reason it
    has none."""
    body = read_payload(msg.payload)
    if isinstance(body, str):
        return body
    return ([body], True) if isinstance(body, dict) else (list(body.to_pylist()), False)


def _event(row: dict[str, Any], max_time: int) -> CatalogBatch | tuple[str, str]:
    """The row as a one-event batch, or ``(field, reason)`` when it is not a good
    catalog event."""
    extra = [k for k in row if k not in CATALOG_FIELDS]
    if extra:
        return str(extra[0]), (f"unknown field {extra[0]!r}: a catalog event has "
                               f"{', '.join(CATALOG_FIELDS)}")
    try:
        one = CatalogBatch.from_records([row])
    except InvalidEventError as exc:
        text = str(exc)
        head = text.split(":", 1)[0]               # catalog[0].time / catalog.new_price
        field = head.rsplit(".", 1)[-1] if "." in head else "message"
        return field, text.split(": ", 1)[-1]
    t = int(row["time"])
    if t >= max_time:
        return "time", time_range_error(t, max_time=max_time)
    return one


def decode_catalog(messages: Sequence[Message], *, max_time: int = MAX_TIME
                   ) -> tuple[CatalogBatch, np.ndarray, list[DeadLetter]]:
    """``(events, message index, dead letters)``: the good catalog events of
    ``messages`` in message and row order, the index in ``messages`` of each one's
    message (int64, shape (n,)), and one dead letter per unreadable message and per bad
    row (module docstring); ``max_time`` (s) bounds event times from above."""
    good: list[CatalogBatch] = []
    index: list[int] = []
    dead: list[DeadLetter] = []
    for k, msg in enumerate(messages):
        read = _rows(msg)
        if isinstance(read, str):
            dead.append(DeadLetter(msg.partition, msg.offset, None, "message", read,
                                   msg.payload))
            continue
        rows, whole = read
        for i, row in enumerate(rows):
            problem = _event(row, max_time)
            if isinstance(problem, CatalogBatch):
                good.append(problem)
                index.append(k)
            else:
                dead.append(DeadLetter(msg.partition, msg.offset, None if whole else i,
                                       problem[0], problem[1],
                                       msg.payload if whole else _jsonable(row)))
    return CatalogBatch.concat(good), np.array(index, np.int64), dead


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
