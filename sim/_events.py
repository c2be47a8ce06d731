"""Internal columnar event arrays with a fixed schema (cheap to concatenate).

The world keeps future events in this form; :func:`to_batch` turns them into a public
:class:`~policies.events.EventBatch`, dropping the internal ``token`` column (the cart
sequence number a cart-resolving event was generated for; -1 = unconditional).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch

__all__ = ["COLUMNS", "SIMULATED_EVENT_COLUMNS", "Events", "Part", "T", "build",
           "build_reference", "concat", "empty", "make", "part", "size", "take", "to_batch"]

#: column -> (dtype, missing value)
COLUMNS: dict[str, tuple[Any, Any]] = {
    "subscriber": (np.int64, 0),
    "time": (np.int64, 0),
    "type": (np.int64, 0),
    "product_id": (np.int64, -1),
    "category": (np.int64, -1),
    "price": (np.float64, np.nan),
    "time_on_page": (np.float64, np.nan),
    "cart_value": (np.float64, np.nan),
    "items": (np.float64, np.nan),
    "revenue": (np.float64, np.nan),
    "link_type": (np.int64, -1),
    "campaign_id": (np.int64, -1),
    "machine": (np.int64, -1),
    "token": (np.int64, -1),
}
#: Event type -> the public data columns the simulator fills for it (behavior and
#: response models); types absent here are never emitted (``product_click``,
#: ``price_check``, ``email_sent``). A rule of an experiment that waits for one of them,
#: or tests another column of a type in ``where``, can never fire in a simulation.
SIMULATED_EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "page_view": ("category", "time_on_page"),
    "product_view": ("campaign_id", "category", "price", "product_id", "time_on_page"),
    "add_to_cart": ("campaign_id", "cart_value", "category", "items", "product_id"),
    "checkout_started": ("campaign_id", "cart_value"),
    "purchase_completed": ("campaign_id", "cart_value", "items", "product_id", "revenue"),
    "cart_cleared": ("cart_value",),
    "email_open": ("campaign_id", "machine"),
    "email_click": ("campaign_id", "link_type"),
    "unsubscribe": ("campaign_id",),
}
_DATA = {k: v for k, v in COLUMNS.items() if k not in ("subscriber", "time", "type")}
_PUBLIC = [c for c in COLUMNS if c not in ("subscriber", "time", "type", "token")]


class _Types:
    product_view = EVENT_TYPES.code("product_view")
    page_view = EVENT_TYPES.code("page_view")
    add_to_cart = EVENT_TYPES.code("add_to_cart")
    cart_cleared = EVENT_TYPES.code("cart_cleared")
    checkout_started = EVENT_TYPES.code("checkout_started")
    purchase_completed = EVENT_TYPES.code("purchase_completed")
    email_open = EVENT_TYPES.code("email_open")
    email_click = EVENT_TYPES.code("email_click")
    unsubscribe = EVENT_TYPES.code("unsubscribe")


#: Event-type codes used by the simulator.
T = _Types

Events = dict[str, np.ndarray]


def make(subscriber: np.ndarray, time: np.ndarray, type_code: int, **cols: Any) -> Events:
    """Events of one type; unspecified columns are missing, scalars are broadcast."""
    n = len(subscriber)
    out: Events = {
        "subscriber": np.asarray(subscriber, np.int64),
        "time": np.asarray(time, np.int64),
        "type": np.full(n, type_code, np.int64),
    }
    for name, (dtype, missing) in _DATA.items():
        value = cols.get(name)
        if value is None:
            out[name] = np.full(n, missing, dtype)
        elif np.ndim(value) == 0:
            out[name] = np.full(n, value, dtype)
        else:
            out[name] = np.asarray(value, dtype)
    return out


#: The arguments of one :func:`make` call: ``(subscriber, time, type_code, columns)``.
Part = tuple[np.ndarray, np.ndarray, int, dict[str, Any]]


def part(subscriber: np.ndarray, time: np.ndarray, type_code: int, **cols: Any) -> Part:
    """One part of :func:`build` (the arguments of :func:`make`)."""
    return (subscriber, time, type_code, cols)


def build(parts: Sequence[Part]) -> Events:
    """``concat([make(s, t, type, **cols) for s, t, type, cols in parts])`` with one
    allocation per column (no per-part arrays): each column starts as its missing value
    and every part writes its rows of the columns it gives, scalars broadcast.
    :func:`build_reference` is its specification."""
    sizes = [len(p[0]) for p in parts]
    total = sum(sizes)
    if total == 0:
        return empty()
    sub = np.empty(total, np.int64)
    time = np.empty(total, np.int64)
    typ = np.empty(total, np.int64)
    out: Events = {"subscriber": sub, "time": time, "type": typ}
    for name, (dtype, missing) in _DATA.items():
        out[name] = np.full(total, missing, dtype)
    lo = 0
    for n, p in zip(sizes, parts, strict=True):
        if n == 0:
            continue
        hi = lo + n
        sub[lo:hi] = p[0]
        time[lo:hi] = p[1]
        typ[lo:hi] = p[2]
        for name, value in p[3].items():
            if value is not None and name in _DATA:
                out[name][lo:hi] = value
        lo = hi
    return out


def build_reference(parts: Sequence[Part]) -> Events:
    """:func:`build` as the concatenation of :func:`make` of every part."""
    return concat([make(s, t, k, **cols) for s, t, k, cols in parts])


def empty() -> Events:
    """No events."""
    return make(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)


def concat(parts: Sequence[Events]) -> Events:
    """Concatenate in order."""
    parts = [p for p in parts if len(p["time"])]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in COLUMNS}


def take(ev: Events, idx: np.ndarray) -> Events:
    """Rows selected by an index array or boolean mask."""
    return {name: col[idx] for name, col in ev.items()}


def size(ev: Events) -> int:
    """Number of events."""
    return len(ev["time"])


def to_batch(ev: Events) -> EventBatch:
    """A public EventBatch (without the internal token column)."""
    return EventBatch(
        ev["subscriber"], ev["time"], ev["type"], {name: ev[name] for name in _PUBLIC}
    )
