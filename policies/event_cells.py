"""The checks of event fields, one value at a time and one column at a time.

Every batch builder (:meth:`~policies.events.EventBatch.from_records`, ``from_pandas``,
``from_arrow``) checks its cells here, so a bad value gets the same reason whichever way
it arrives. The scalar checks (:func:`subscriber_cell`, :func:`time_cell`,
:func:`type_cell`, :func:`number_cell`, :func:`category_cell`) define what is accepted
and the reason text; :func:`check_column` applies them to a pandas column: numeric
columns with numpy (the reason of a bad row is the scalar check's, on the cell's
Python value), other columns once per distinct value.

A frame's column types add two rules: a missing cell (None, NaN, NaT, NA) is missing,
as a ``None`` is in a record, and a float column of ids or codes (an int column turns
float when a value is missing) accepts integral floats up to 2**53, which a record does
not (a float id may have lost digits).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policies.errors import InvalidEventError
from policies.event_schema import (
    CATEGORY_MISSING,
    EVENT_TYPES,
    MAX_SUBSCRIBER,
    category_code,
    check_subscriber,
    parse_time,
)

__all__ = ["CheckedColumn", "category_cell", "check_column", "number_cell",
           "subscriber_cell", "time_cell", "type_cell"]

_EXACT = 2.0**53  # floats above this are not exact integers
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


# ---------------------------------------------------------------------------
# one value


def subscriber_cell(value: Any) -> int:
    """A subscriber id: an integer in ``[-2**63, 2**63)`` (floats refused)."""
    return check_subscriber(value)


def time_cell(value: Any, min_time: int, max_time: int) -> int:
    """Seconds since the epoch in ``[min_time, max_time)`` (see
    :func:`~policies.event_schema.parse_time`)."""
    return parse_time(value, min_time, max_time)


def type_cell(value: Any) -> int:
    """The code of an event-type name or code of :data:`EVENT_TYPES`."""
    try:
        if isinstance(value, bool) or not isinstance(value, str | numbers.Integral):
            raise TypeError(value)
        return EVENT_TYPES.code(value) if isinstance(value, str) else EVENT_TYPES.code(
            EVENT_TYPES.name(int(value)))
    except (InvalidEventError, TypeError, ValueError, OverflowError):
        raise InvalidEventError(f"unknown event type {value!r}") from None


def number_cell(value: Any) -> float:
    """A finite number of a float column (None: missing, NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidEventError(f"expected a number, got {value!r}")
    try:
        out = float(value)
    except OverflowError:  # an int beyond float range (10**400)
        raise InvalidEventError(f"expected a finite number, got {value!r}") from None
    if math.isnan(out):
        raise InvalidEventError("expected a number, got NaN (leave the field out or use None)")
    if math.isinf(out):
        raise InvalidEventError(f"expected a finite number, got {value!r}")
    return out


def category_cell(column: str, value: Any) -> int:
    """A code of categorical ``column``: a word of its vocabulary or an integer in
    ``[0, 2**63)``; None and -1 are missing (-1)."""
    if value is None:
        return CATEGORY_MISSING
    if (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and int(value) == CATEGORY_MISSING):
        return CATEGORY_MISSING
    try:
        return category_code(column, value)
    except InvalidEventError as exc:
        raise InvalidEventError(str(exc).removeprefix(f"{column}: ")) from None


def _reason(check: Callable[[Any], Any], value: Any) -> str:
    """The reason ``check`` refuses ``value`` (a Python scalar)."""
    try:
        check(value)
    except InvalidEventError as exc:
        return str(exc)
    raise AssertionError(f"internal: {value!r} was flagged but passes its check")


# ---------------------------------------------------------------------------
# a column


@dataclass
class CheckedColumn:
    """A column's values as int64 or float64 (missing: -1 / NaN; anything at bad rows),
    its missing cells and its bad ones (bool masks, None: none), with the reason of a
    bad row."""

    values: np.ndarray
    missing: np.ndarray | None
    bad: np.ndarray | None
    reason: Callable[[int], str]


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _distinct(series: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """``(inverse, values)``: each cell's index into its distinct values (-1 where
    missing), values of the same type counted apart (1, 1.0 and True differ)."""
    arr = series.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    except TypeError:  # unhashable cells: one at a time
        missing = series.isna().to_numpy()
        return np.where(missing, -1, np.arange(len(arr))), [_native(v) for v in arr]
    inferred = pd.api.types.infer_dtype(uniques, skipna=True)
    if inferred in ("string", "empty") or len(uniques) <= 1:
        return codes.astype(np.int64), [_native(v) for v in uniques]
    types = pd.Series(arr).map(type).to_numpy(dtype=object)
    tcodes, _ = pd.factorize(types)
    key = np.where(codes < 0, -1, codes.astype(np.int64) * (int(tcodes.max()) + 1) + tcodes)
    present = key >= 0
    _, first, inverse = np.unique(key[present], return_index=True, return_inverse=True)
    out = np.full(len(arr), -1, np.int64)
    out[present] = inverse
    idx = np.flatnonzero(present)[first]
    return out, [_native(arr[i]) for i in idx]


def _by_value(series: pd.Series, convert: Callable[[Any], Any], dtype: Any,
              fill: Any) -> CheckedColumn:
    """Check every distinct value of ``series`` with ``convert``."""
    inverse, values = _distinct(series)
    out_values = np.full(len(values) + 1, fill, dtype)  # the last one: missing
    ok = np.ones(len(values) + 1, bool)
    reasons: dict[int, str] = {}
    for j, v in enumerate(values):
        try:
            out_values[j] = convert(v)
        except InvalidEventError as exc:
            ok[j] = False
            reasons[j] = str(exc)
    missing = inverse < 0
    return CheckedColumn(out_values[inverse], missing, ~ok[inverse],
                         lambda i: reasons[int(inverse[i])])


def _numbers(series: pd.Series, dtype: Any, fill: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Values of a numeric column as ``dtype`` (``fill`` where missing) and the missing
    mask (None: nothing missing; numpy or pandas nullable dtypes)."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu":
        return series.to_numpy(dtype), None  # numpy ints cannot be missing
    missing = series.isna().to_numpy()
    if missing.any():
        return series.to_numpy(dtype, na_value=fill), missing
    return series.to_numpy(dtype), None


def _outside(values: np.ndarray, low: int, high: int) -> np.ndarray | None:
    """Where int64 ``values`` lie outside ``[low, high]`` (None: the whole int64 range)."""
    if (low <= -(2**63) and high >= 2**63 - 1) or not len(values) or (
            low <= values.min() and values.max() <= high):  # no mask needed: the usual case
        return None
    # x in [low, high] iff (x - low) mod 2**64 <= high - low: one pass, no overflow
    return (values - np.int64(low)).view(np.uint64) > np.uint64(high - low)


def _and_not(mask: np.ndarray | None, missing: np.ndarray | None) -> np.ndarray | None:
    if mask is None or missing is None:
        return mask
    return mask & ~missing


def _integers(series: pd.Series, check: Callable[[Any], Any], low: int, high: int,
              fill: int) -> CheckedColumn | None:
    """An integer-valued numeric column checked against ``[low, high]`` with numpy
    (None for other dtypes); in a float column integral values up to 2**53 count."""
    kind = series.dtype.kind
    if kind == "u":
        raw, missing = _numbers(series, np.uint64, 0)
        big = raw > np.uint64(2**63 - 1)
        values = np.where(big, 0, raw).astype(np.int64)
        outside = _outside(values, low, high)
        bad = _and_not(big if outside is None else big | outside, missing)
        if missing is not None:
            values[missing] = fill
        return CheckedColumn(values, missing, bad, lambda i: _reason(check, int(raw[i])))
    if kind == "i":
        values, missing = _numbers(series, np.int64, fill)
        return CheckedColumn(values, missing, _and_not(_outside(values, low, high), missing),
                             lambda i: _reason(check, int(values[i])))
    if kind == "f":
        raw, missing = _numbers(series, np.float64, np.nan)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(raw) & (raw == np.round(raw)) & (np.abs(raw) <= _EXACT)
        values = np.where(ok, raw, fill).astype(np.int64)
        outside = _outside(values, low, high)
        bad = ~ok if outside is None else ~ok | outside
        if missing is not None:
            bad &= ~missing
            values[missing] = fill
        return CheckedColumn(values, missing, bad, lambda i: _reason(check, float(raw[i])))
    return None


def _times(series: pd.Series, min_time: int, max_time: int) -> CheckedColumn:
    def check(v: Any) -> int:
        return time_cell(v, min_time, max_time)

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        # an aware datetime is floored to whole seconds, as time_cell floors it
        missing = series.isna().to_numpy()
        stamps = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        per = _PER_SECOND[np.datetime_data(stamps.dtype)[0]]
        seconds = np.where(missing, 0, stamps.astype(np.int64) // per)
        bad = _and_not(_outside(seconds, min_time, max_time - 1), missing)
        return CheckedColumn(seconds, missing, bad, lambda i: _reason(check, int(seconds[i])))
    numeric = _integers(series, check, min_time, max_time - 1, 0)
    return numeric if numeric is not None else _by_value(series, check, np.int64, 0)


def check_column(series: pd.Series, field: str, kind: str, min_time: int, max_time: int,
                 bad_column: str | None = None) -> CheckedColumn:
    """Check one column of a frame.

    Parameters
    ----------
    series : Series
    field : str
        The column's name.
    kind : {"subscriber", "time", "type", "float", "int"}
        A core field or a data column's kind (``"int"``: categorical codes).
    min_time, max_time : int
        The accepted time range, s.
    bad_column : str, optional
        The reason every non-missing cell of the column is refused (text in an undeclared
        column).

    Returns
    -------
    CheckedColumn
    """
    if bad_column is not None:
        missing = series.isna().to_numpy()
        return CheckedColumn(np.full(len(series), np.nan), missing, ~missing,
                             lambda i: bad_column)
    if kind == "subscriber":
        col = _integers(series, subscriber_cell, -(2**63), MAX_SUBSCRIBER, 0)
        return col if col is not None else _by_value(series, subscriber_cell, np.int64, 0)
    if kind == "time":
        return _times(series, min_time, max_time)
    if kind == "type":
        col = _integers(series, type_cell, 0, len(EVENT_TYPES) - 1, 0)
        return col if col is not None else _by_value(series, type_cell, np.int64, 0)
    if kind == "int":
        def code(v: Any) -> int:
            return category_cell(field, v)

        col = _integers(series, code, CATEGORY_MISSING, MAX_SUBSCRIBER, CATEGORY_MISSING)
        return col if col is not None else _by_value(series, code, np.int64,
                                                      CATEGORY_MISSING)
    if series.dtype.kind in "iuf":
        values, missing = _numbers(series, np.float64, np.nan)
        bad = None
        if series.dtype.kind == "f" and len(values):
            top, bottom = np.fmax.reduce(values), np.fmin.reduce(values)  # NaN skipped
            if np.isinf(top) or np.isinf(bottom):  # a mask only when needed
                bad = np.isinf(values)
        return CheckedColumn(values, missing, bad,
                             lambda i: _reason(number_cell, float(values[i])))
    return _by_value(series, number_cell, np.float64, np.nan)
