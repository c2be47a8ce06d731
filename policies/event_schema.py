"""The event schema: event-type codes, data-column kinds, categorical vocabularies, times.

:class:`~policies.events.EventBatch` stores events as numbers; this module says what the
numbers mean. Event types are small integer codes (:data:`EVENT_TYPES`, built-in types of
docs/domain.md first, in their fixed order); a data column is ``"float"`` (float64, NaN
missing) or ``"int"`` (int64 codes >= 0, ``-1`` missing, :func:`column_kind`); word
values of categorical columns (``link_type``, ``currency``) map to codes through their
vocabulary (:func:`category_code`, :func:`register_categories`); a rule's ``where`` may
only test declared columns (:func:`check_data_column`; declare more with
:func:`register_event_column`), so that a misspelled column is an error rather than a
test no event passes; times are int64
seconds since the Unix epoch, UTC (:func:`parse_time`), within ``[MIN_TIME, MAX_TIME)``
(2000-01-01 to 2100-01-01 by default; :func:`check_time`). Subscriber ids are int64
integers, ``[-2**63, 2**63)`` (:func:`check_subscriber`). The registries are process-wide and only
grow by explicit calls.

Why a time range: one event in milliseconds (``1_700_000_000_000``, the year ~55,800)
would move the trigger engine's clock so far ahead that every later event is "late".
The bounds are configurable per call (``min_time=`` / ``max_time=`` of the batch
builders); for live traffic pass ``max_time=now + skew`` (the core never reads the wall
clock, so *now* must come from the caller).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from policies.checks import did_you_mean
from policies.errors import InvalidEventError

__all__ = [
    "BUILTIN_EVENT_TYPES",
    "CATEGORY_MISSING",
    "CORE_COLUMNS",
    "EVENT_TYPES",
    "MAX_SUBSCRIBER",
    "MAX_TIME",
    "MIN_SUBSCRIBER",
    "MIN_TIME",
    "EventTypeRegistry",
    "category_code",
    "check_data_column",
    "check_subscriber",
    "check_time",
    "check_time_bounds",
    "column_kind",
    "data_columns",
    "event_columns",
    "parse_time",
    "register_categories",
    "register_event_column",
    "register_event_type",
    "time_range_error",
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

#: Default lower bound of event times (inclusive): 2000-01-01T00:00:00Z, seconds.
MIN_TIME = 946_684_800
#: Default upper bound of event times (exclusive): 2100-01-01T00:00:00Z, seconds. For
#: live traffic pass a tighter ``max_time`` (now + a bounded clock skew).
MAX_TIME = 4_102_444_800
#: Subscriber ids (and category codes) are int64: ``[MIN_SUBSCRIBER, MAX_SUBSCRIBER]``
#: (category codes ``>= 0``).
MIN_SUBSCRIBER = -(2**63)
MAX_SUBSCRIBER = 2**63 - 1


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

#: The built-in data columns; columns declared later (:func:`register_event_column`,
#: :func:`register_categories`) may be carried by events of any type.
_BUILTIN_COLUMNS = frozenset(_COLUMN_KINDS)


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


def data_columns() -> tuple[str, ...]:
    """Names of the declared data columns (built-in ones first, then registered ones)."""
    return tuple(_COLUMN_KINDS)


def register_event_column(name: str, kind: str = "float") -> None:
    """Declare a data column that events may carry, so that rules may test it.

    ``kind`` is ``"float"`` (float64, NaN missing) or ``"int"`` (int64 codes >= 0, -1
    missing; use :func:`register_categories` for words). Idempotent; a column keeps its
    kind. Batches may carry undeclared numeric columns (stored as float), but a rule's
    ``where`` may not test them (:func:`check_data_column`).
    """
    if not isinstance(name, str) or not name.isidentifier() or name in CORE_COLUMNS:
        raise InvalidEventError(f"column: expected a data column name, got {name!r}")
    if kind not in ("float", "int"):
        raise InvalidEventError(f"kind: expected 'float' or 'int', got {kind!r}")
    if _COLUMN_KINDS.setdefault(name, kind) != kind:
        raise InvalidEventError(f"{name}: already declared as {_COLUMN_KINDS[name]!r}, not "
                                f"{kind!r}")


def check_data_column(name: str) -> str:
    """``name`` if it is a declared data column, else :class:`InvalidEventError` naming
    the closest declared one and how to declare it."""
    if name in _COLUMN_KINDS:
        return name
    raise InvalidEventError(
        f"unknown event data column {name!r}{did_you_mean(name, data_columns())}; known: "
        f"{', '.join(data_columns())} (declare yours with register_event_column({name!r}, "
        "'float') or register_categories)"
    )


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
    """Code of ``value`` in categorical ``column`` (ints in ``[0, 2**63)`` pass through)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 0 <= int(value) <= MAX_SUBSCRIBER:
            raise InvalidEventError(f"{column}: expected a code in [0, 2**63), got {value!r}")
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


def parse_time(value: Any, min_time: int = MIN_TIME, max_time: int = MAX_TIME) -> int:
    """Seconds since the Unix epoch (UTC) of an int, an aware datetime or ISO-8601 string.

    Naive datetimes and strings without an offset are rejected: a time without a zone
    is ambiguous. The result must lie in ``[min_time, max_time)`` (default 2000-01-01 to
    2100-01-01, :func:`check_time`); integral floats (``1.7e9``) are accepted, other
    floats, NaN and infinities are not.
    """
    if isinstance(value, bool):
        raise InvalidEventError(f"expected seconds since the epoch, got {value!r}")
    if isinstance(value, numbers.Integral):
        return check_time(int(value), min_time, max_time)
    if isinstance(value, numbers.Real):
        if math.isfinite(float(value)) and float(value).is_integer():
            return check_time(int(float(value)), min_time, max_time)
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
        try:
            seconds = math.floor(value.timestamp())
        except (OverflowError, ValueError):  # year 1 or 9999 shifted past the calendar
            raise InvalidEventError(
                f"expected a time in [{_iso(min_time)}, {_iso(max_time)}), "
                f"got {value.isoformat()!r}"
            ) from None
        return check_time(seconds, min_time, max_time)
    if isinstance(value, np.datetime64):
        raise InvalidEventError(
            f"expected a timezone-aware time, got numpy datetime64 {value!r} (no zone)"
        )
    raise InvalidEventError(f"expected seconds since the epoch or an aware time, got {value!r}")

def _iso(t: int) -> str:
    fmt = "%Y-%m-%d" if t % 86400 == 0 else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def check_time_bounds(min_time: Any, max_time: Any) -> tuple[int, int]:
    """Validate a configured time range ``[min_time, max_time)`` (ints, min < max, both
    within the default range's hard limits 1970-01-01 .. 9999-12-31)."""
    for name, value in (("min_time", min_time), ("max_time", max_time)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                or not 0 <= int(value) <= _HARD_MAX):
            raise InvalidEventError(
                f"{name}: expected int seconds since the epoch in [0, {_HARD_MAX}], "
                f"got {value!r}"
            )
    if int(min_time) >= int(max_time):
        raise InvalidEventError(
            f"max_time: expected > min_time ({int(min_time)}), got {int(max_time)}"
        )
    return int(min_time), int(max_time)


#: 9999-12-31T23:59:59Z: no configured bound may go beyond it (datetime's own limit).
_HARD_MAX = 253_402_300_799


def time_range_error(t: int, min_time: int = MIN_TIME, max_time: int = MAX_TIME) -> str:
    """The reason why ``t`` (int seconds) is outside ``[min_time, max_time)``.

    Suggests milliseconds (or micro-/nanoseconds) when ``t`` divided by 1000 (10**6,
    10**9) lands inside the range.
    """
    what = (f"seconds since the epoch in [{min_time}, {max_time}) "
            f"({_iso(min_time)} to {_iso(max_time)})")
    text = f"expected {what}, got {t}"
    for unit, factor in (("milliseconds", 10**3), ("microseconds", 10**6),
                         ("nanoseconds", 10**9)):
        if min_time <= t // factor < max_time:
            return f"{text} (looks like {unit}: {t // factor} s is {_iso(t // factor)})"
    return text


def check_time(t: int, min_time: int = MIN_TIME, max_time: int = MAX_TIME) -> int:
    """``t`` if ``min_time <= t < max_time``, else :class:`InvalidEventError` with the
    reason of :func:`time_range_error`."""
    if not min_time <= t < max_time:
        raise InvalidEventError(time_range_error(t, min_time, max_time))
    return t


def check_subscriber(value: Any) -> int:
    """A subscriber id: an integer (Python or numpy, bool excluded) in int64 range.

    Integral floats (``7.0``) are rejected too: an id that went through a float column may
    have lost digits above 2**53.
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not MIN_SUBSCRIBER <= int(value) <= MAX_SUBSCRIBER):
        raise InvalidEventError(
            f"expected an integer id in [-2**63, 2**63), got {value!r}"
        )
    return int(value)


# ---------------------------------------------------------------------------
# data columns per event type

#: Data columns an event of each built-in type may carry (docs/domain.md, "Event
#: types"). Rules do not require them; journeys' static checks use them: a branch on an
#: entry property, an exit ``match`` key or a ``where`` on a column that none of the
#: event types in question carries could never pass.
_EVENT_COLUMNS: dict[str, frozenset[str]] = {
    "product_view": frozenset({"product_id", "category", "price", "currency", "time_on_page",
                               "session_id", "campaign_id"}),
    "product_click": frozenset({"product_id", "category", "price", "currency", "session_id",
                                "campaign_id"}),
    "add_to_cart": frozenset({"product_id", "category", "price", "currency", "quantity",
                              "items", "cart_value", "session_id", "campaign_id"}),
    "cart_cleared": frozenset({"cart_value", "items", "currency", "session_id"}),
    "checkout_started": frozenset({"cart_value", "items", "currency", "session_id",
                                   "campaign_id"}),
    "price_check": frozenset({"product_id", "category", "price", "currency", "session_id"}),
    "purchase_completed": frozenset({"product_id", "category", "price", "quantity", "items",
                                     "cart_value", "revenue", "currency", "session_id",
                                     "campaign_id"}),
    "email_sent": frozenset({"campaign_id", "variant"}),
    "email_open": frozenset({"campaign_id", "variant"}),
    "email_click": frozenset({"campaign_id", "variant", "link_type", "product_id",
                              "category"}),
    "unsubscribe": frozenset({"campaign_id", "variant"}),
    "page_view": frozenset({"category", "time_on_page", "session_id", "campaign_id"}),
}


def event_columns(event_type: str) -> frozenset[str] | None:
    """Data columns events of ``event_type`` may carry: the built-in ones of that type plus
    every column declared by the user; None for a registered (non-built-in) type, whose
    columns are not declared.

    >>> sorted(event_columns("email_open"))
    ['campaign_id', 'variant']
    """
    carried = _EVENT_COLUMNS.get(event_type)
    if carried is None:
        return None
    return carried | (_COLUMN_KINDS.keys() - _BUILTIN_COLUMNS)
