"""The subscriber table's documented columns (docs/domain.md, "The subscriber table").

The table is indexed by int64 subscriber id. Its column set is open -- a production
table may carry more columns, and a rule's ``segment`` may test them -- but the columns
of :data:`SUBSCRIBER_COLUMNS` have a declared kind and domain (a number in [0, 1], whole
minutes in [-1440, 1440], a lifecycle stage, ...). Two uses:

* :func:`segment_problem`: why a segment test on a documented column can never pass
  (``lifecycle_stage: {in: [vip]}``, ``engagement_score: {min: 1.5}``); rule loading
  rejects such rules;
* :func:`check_subscriber_table`: the one check of a table handed to the trigger engine
  (the index, and every column the engine reads), naming the column, the row and the
  value of the first bad cell.

Missing cells (None, NaN) are allowed everywhere: a missing attribute never matches a
segment, a missing ``utc_offset_minutes`` means UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from policies.checks import check_column, did_you_mean, is_real, one_of, show
from policies.errors import TriggerLabValueError
from policies.event_schema import MAX_SUBSCRIBER

__all__ = [
    "LIFECYCLE_STAGES",
    "MAX_UTC_OFFSET_MINUTES",
    "SUBSCRIBER_COLUMNS",
    "SubscriberColumn",
    "check_subscriber_table",
    "segment_problem",
]

#: Lifecycle stages (docs/domain.md), in code order.
LIFECYCLE_STAGES: tuple[str, ...] = (
    "new_subscriber", "prospect", "new_customer", "customer", "lapsed",
)

#: Largest ``utc_offset_minutes`` magnitude a subscriber may have (a day), minutes.
MAX_UTC_OFFSET_MINUTES = 1440


@dataclass(frozen=True)
class SubscriberColumn:
    """Kind and domain of a documented column.

    Parameters
    ----------
    kind : {"number", "integer", "bool", "category"}
        As :func:`policies.checks.check_column` checks it.
    low, high : float, optional
        Inclusive bounds of numbers.
    vocabulary : tuple of str
        The values of a category.
    what : str, optional
        How messages describe a valid cell (default from kind and bounds).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    vocabulary: tuple[str, ...] = ()
    what: str | None = None

    def domain(self) -> str:
        """The values a cell may hold, in words (``"a number in [0, 1]"``)."""
        if self.kind == "category":
            return one_of(self.vocabulary)
        if self.kind == "bool":
            return "true or false"
        noun = "a number" if self.kind == "number" else "a whole number"
        if self.low is not None and self.high is not None:
            return f"{noun} in [{_num(self.low)}, {_num(self.high)}]"
        if self.low is not None:
            return f"{noun} >= {_num(self.low)}"
        return noun


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


#: The documented columns of the subscriber table (docs/domain.md) and their domains.
SUBSCRIBER_COLUMNS: Mapping[str, SubscriberColumn] = MappingProxyType({
    "lifecycle_stage": SubscriberColumn("category", vocabulary=LIFECYCLE_STAGES),
    "engagement_score": SubscriberColumn("number", 0.0, 1.0),
    "conversion_readiness": SubscriberColumn("number", 0.0, 1.0),
    "educational_seeker": SubscriberColumn("bool"),
    "price_sensitivity": SubscriberColumn("number", 0.0, 1.0),
    "days_since_engagement": SubscriberColumn("number", 0.0),
    "preferred_hour": SubscriberColumn("integer", 0, 23),
    "utc_offset_minutes": SubscriberColumn(
        "integer", -MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES,
        what=f"whole minutes in [-{MAX_UTC_OFFSET_MINUTES}, {MAX_UTC_OFFSET_MINUTES}] or "
             "missing"),
    "subscribed": SubscriberColumn("bool"),
    "top_category": SubscriberColumn("integer", 0),
    "second_category": SubscriberColumn("integer", 0),
    "signup_time": SubscriberColumn("integer", what="int seconds since the epoch or missing"),
    "n_purchases": SubscriberColumn("integer", 0),
    "cart_value": SubscriberColumn("number", 0.0),
    "last_engaged_at": SubscriberColumn("integer",
                                        what="int seconds since the epoch or missing"),
})


# ---------------------------------------------------------------------------
# segment tests that can never pass


def segment_problem(column: str, op: str, value: Any) -> tuple[str, str] | None:
    """Why the segment test ``column op value`` can never pass, or None.

    Only documented columns are judged (any other column may exist in some table).
    Returns ``(where, message)``: ``where`` is the op, with the position in an ``in``
    list (``"in[1]"``); the message says what was expected and what was received.

    >>> segment_problem("lifecycle_stage", "in", ("customer", "vip"))[0]
    'in[1]'
    >>> segment_problem("engagement_score", "min", 0.3) is None
    True
    """
    col = SUBSCRIBER_COLUMNS.get(column)
    if col is None:
        return None
    if op in ("min", "max"):
        if col.kind == "category":
            return op, (f"{column} is a category: test it with equals or in, got {op} "
                        f"{show(value)}")
        low, high = (0, 1) if col.kind == "bool" else (col.low, col.high)
        if op == "min" and high is not None and value > high:
            return op, (f"no subscriber can pass: {column} is {col.domain()}, got min "
                        f"{show(value)}")
        if op == "max" and low is not None and value < low:
            return op, (f"no subscriber can pass: {column} is {col.domain()}, got max "
                        f"{show(value)}")
        return None
    values = value if op == "in" else (value,)
    for i, v in enumerate(values):
        if not _possible(col, v):
            where = f"in[{i}]" if op == "in" else op
            hint = did_you_mean(v, col.vocabulary) if col.kind == "category" else ""
            return where, (f"expected {col.domain()}, got {show(v)}{hint}; no subscriber can "
                           "have it")
    return None


def _possible(col: SubscriberColumn, v: Any) -> bool:
    if col.kind == "category":
        return isinstance(v, str) and v in col.vocabulary
    if col.kind == "bool":
        return isinstance(v, bool) or (is_real(v) and v in (0, 1))
    if isinstance(v, bool) or not is_real(v):
        return False
    if col.kind == "integer" and not float(v).is_integer():
        return False
    return not ((col.low is not None and v < col.low) or (col.high is not None and v > col.high))


# ---------------------------------------------------------------------------
# the table


def check_subscriber_table(df: Any, columns: Iterable[str] | None = None,
                           numeric: Iterable[str] = ()) -> None:
    """Check a subscriber table (raises :class:`~policies.errors.TriggerLabValueError`).

    Parameters
    ----------
    df : pandas.DataFrame
        Indexed by unique int64 subscriber ids.
    columns : iterable of str, optional
        The columns to check where present: documented ones against their domain
        (:data:`SUBSCRIBER_COLUMNS`). Default: every documented column of ``df``.
    numeric : iterable of str
        Other columns that must hold numbers (or be missing): those a segment tests with
        ``min``/``max``, which no string or bool can pass.

    Messages name the column, the row (position, then subscriber id) and the value:
    ``subscribers.engagement_score[2]: expected a number in [0, 1] or missing, got
    'high' (subscriber 17)``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TriggerLabValueError(
            f"subscribers: expected a pandas DataFrame indexed by subscriber id, got "
            f"{type(df).__name__}"
        )
    if not len(df):
        return
    _check_index(df.index)
    numeric = set(numeric)
    names = [c for c in SUBSCRIBER_COLUMNS if c in df.columns] if columns is None \
        else [c for c in dict.fromkeys(columns) if c in df.columns]
    for name in names:
        if not isinstance(name, str):
            continue
        col = df[name]
        if isinstance(col, pd.DataFrame):
            raise TriggerLabValueError(f"subscribers.{name}: duplicate column name")
        spec = SUBSCRIBER_COLUMNS.get(name)
        if spec is not None:
            check_column(f"subscribers.{name}", col, spec.kind, error=TriggerLabValueError,
                         low=spec.low, high=spec.high, vocabulary=spec.vocabulary,
                         label="subscriber", what=spec.what)
        elif name in numeric:
            check_column(f"subscribers.{name}", col, "number", error=TriggerLabValueError,
                         finite=False, label="subscriber",
                         what="a number or missing (a segment tests it with min/max)")


def _check_index(index: pd.Index) -> None:
    if index.dtype.kind not in "iu":
        raise TriggerLabValueError(
            f"subscribers: expected an integer index of subscriber ids, got {index.dtype}"
        )
    ids = index.to_numpy()
    if ids.dtype.kind == "u" and (ids > np.uint64(MAX_SUBSCRIBER)).any():
        bad = ids > np.uint64(MAX_SUBSCRIBER)
        raise TriggerLabValueError(
            f"subscribers.index[{int(np.flatnonzero(bad)[0])}]: expected an int64 subscriber "
            f"id, got {int(ids[bad][0])}"
        )
    dup = index.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise TriggerLabValueError(
            f"subscribers.index[{i}]: duplicate subscriber id {int(ids[i])}"
        )
