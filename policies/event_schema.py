"""The event schema: event-type codes, data-column kinds, categorical vocabularies, times.

:class:`~policies.events.EventBatch` stores events as numbers; this module says what the
numbers mean. Event types are small integer codes (:data:`EVENT_TYPES`, built-in types of
docs/domain.md first, in their fixed order); a data column is ``"float"`` (float64, NaN
missing) or ``"int"`` (int64 codes >= 0, ``-1`` missing, :func:`column_kind`); word
values of categorical columns (``link_type``, ``currency``) map to codes through their
vocabulary (:func:`category_code`, :func:`register_categories`); times are int64
seconds since the Unix epoch, UTC (:func:`parse_time`). The registries are process-wide
and only grow by explicit calls.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from policies.errors import InvalidEventError

__all__ = [
    "BUILTIN_EVENT_TYPES",
    "CATEGORY_MISSING",
    "CORE_COLUMNS",
    "EVENT_TYPES",
    "EventTypeRegistry",
    "category_code",
    "column_kind",
    "parse_time",
    "register_categories",
    "register_event_type",
    "vocabulary",
]

#: Event types (docs/domain.md), in code order (code = position).
BUILTIN_EVENT_TYPES: tuple[str, ...] = (
    "product_view",
    "product_click",
    "add_to_cart",
    "cart_cleared",
    "checkout_started",
    "price_check",
    "purchase_completed",
    "email_sent",
    "email_open",
    "email_click",
    "unsubscribe",
    "page_view",
)

#: Missing value of an integer (categorical) column.
CATEGORY_MISSING = -1

#: Columns every event has; all others are data columns.
CORE_COLUMNS: tuple[str, ...] = ("subscriber", "time", "type")


class EventTypeRegistry:
    """Maps event-type names to small integer codes and back.

    Codes of the built-in types are fixed (their position in
    :data:`BUILTIN_EVENT_TYPES`); registered types get the next free code.
    """

    def __init__(self, names: Iterable[str] = BUILTIN_EVENT_TYPES) -> None:
        self._names: list[str] = []
        self._codes: dict[str, int] = {}
        for name in names:
            self.register(name)

    def register(self, name: str) -> int:
        """Add ``name`` (idempotent) and return its code."""
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidEventError(
                f"event type: expected an identifier like 'wishlist_add', got {name!r}"
            )
        if name not in self._codes:
            self._codes[name] = len(self._names)
            self._names.append(name)
        return self._codes[name]

    def code(self, name: str) -> int:
        """Code of ``name``; raises :class:`InvalidEventError` for unknown names."""
        try:
            return self._codes[name]
        except (KeyError, TypeError):
            raise InvalidEventError(
                f"type: unknown event type {name!r}; known: {', '.join(self._names)} "
                "(add yours with register_event_type)"
            ) from None

    def name(self, code: int) -> str:
        """Name of ``code``."""
        if not 0 <= int(code) < len(self._names):
            raise InvalidEventError(f"type: unknown event type code {code!r}")
        return self._names[int(code)]

    @property
    def names(self) -> tuple[str, ...]:
        """All registered names in code order."""
        return tuple(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._codes

    def __len__(self) -> int:
        return len(self._names)


#: The process-wide registry used by :class:`EventBatch` and the trigger engine.
EVENT_TYPES = EventTypeRegistry()


def register_event_type(name: str) -> int:
    """Register a custom event type in :data:`EVENT_TYPES` and return its code."""
    return EVENT_TYPES.register(name)


# ---------------------------------------------------------------------------
# column schema

#: Known data columns and their kind: "float" (float64, NaN missing) or "int"
#: (int64 codes >= 0, -1 missing). Unknown numeric columns are float.
_COLUMN_KINDS: dict[str, str] = {
    "cart_value": "float",
    "time_on_page": "float",
    "price": "float",
    "quantity": "float",
    "items": "float",
    "revenue": "float",
    "product_id": "int",
    "category": "int",
    "link_type": "int",
    "currency": "int",
    "campaign_id": "int",
    "session_id": "int",
    "variant": "int",
}

#: Vocabularies of categorical columns that carry words.
_VOCABULARIES: dict[str, list[str]] = {
    "link_type": ["product", "category", "content", "cart", "unsubscribe", "other"],
    "currency": ["USD", "EUR", "GBP", "CAD", "AUD", "JPY"],
}


def column_kind(name: str) -> str | None:
    """Kind of a known data column: ``"float"``, ``"int"`` or None if not declared."""
    return _COLUMN_KINDS.get(name)


def vocabulary(column: str) -> tuple[str, ...] | None:
    """Words of categorical ``column`` in code order, or None if it has no vocabulary."""
    vocab = _VOCABULARIES.get(column)
    return None if vocab is None else tuple(vocab)


def register_categories(column: str, values: Sequence[str]) -> dict[str, int]:
    """Declare ``column`` categorical and add word ``values`` to its vocabulary.

    Returns the column's full mapping value -> code. Idempotent; call it with the same
    values in every process so that codes agree.
    """
    if not column.isidentifier() or column in CORE_COLUMNS:
        raise InvalidEventError(f"column: expected a data column name, got {column!r}")
    if _COLUMN_KINDS.get(column, "int") != "int":
        raise InvalidEventError(f"{column}: is a numeric column, cannot hold categories")
    _COLUMN_KINDS[column] = "int"
    vocab = _VOCABULARIES.setdefault(column, [])
    for value in values:
        if not isinstance(value, str):
            raise InvalidEventError(f"{column}: category values must be strings, got {value!r}")
        if value not in vocab:
            vocab.append(value)
    return {v: i for i, v in enumerate(vocab)}


def category_code(column: str, value: Any) -> int:
    """Code of ``value`` in categorical ``column`` (ints pass through unchanged)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if int(value) < 0:
            raise InvalidEventError(f"{column}: expected a code >= 0, got {value!r}")
        return int(value)
    vocab = _VOCABULARIES.get(column)
    if isinstance(value, str) and vocab is not None:
        try:
            return vocab.index(value)
        except ValueError:
            pass
        raise InvalidEventError(
            f"{column}: unknown category {value!r}; known: {', '.join(vocab)} "
            "(add yours with register_categories)"
        )
    if isinstance(value, str):
        raise InvalidEventError(
            f"{column}: expected an integer code, got {value!r} "
            f"(declare words with register_categories({column!r}, [...]))"
        )
    raise InvalidEventError(f"{column}: expected an integer code, got {value!r}")


def parse_time(value: Any) -> int:
    """Seconds since the Unix epoch (UTC) of an int, an aware datetime or ISO-8601 string.

    Naive datetimes and strings without an offset are rejected: a time without a zone
    is ambiguous.
    """
    if isinstance(value, bool):
        raise InvalidEventError(f"expected seconds since the epoch, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if math.isfinite(float(value)) and float(value).is_integer():
            return int(float(value))
        raise InvalidEventError(f"expected whole seconds since the epoch, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidEventError(
                f"expected an ISO-8601 time with offset like '2024-05-01T12:00:00+00:00', "
                f"got {value!r}"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEventError(
                f"expected a timezone-aware time, got naive {value.isoformat()!r}"
            )
        return math.floor(value.timestamp())
    if isinstance(value, np.datetime64):
        raise InvalidEventError(
            f"expected a timezone-aware time, got numpy datetime64 {value!r} (no zone)"
        )
    raise InvalidEventError(f"expected seconds since the epoch or an aware time, got {value!r}")
