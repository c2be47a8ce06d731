"""Columnar event batches (the event-type registry and the column schema they use are in
:mod:`policies.event_schema`).

An :class:`EventBatch` is a struct of numpy arrays, one row per event:

* ``subscriber`` -- int64 subscriber id;
* ``time`` -- int64 seconds since the Unix epoch, UTC;
* ``type`` -- int64 code from the event-type registry (:data:`EVENT_TYPES`);
* named data columns -- float64 for quantities (``cart_value``, ``time_on_page``,
  ``price``; missing is ``NaN``) or int64 codes for categories (``category``,
  ``product_id``, ``link_type``; missing is ``-1``).

Categorical columns that carry words (``link_type``, ``currency``) have a vocabulary:
``"product"`` is stored as its code and decoded again by :meth:`EventBatch.to_pandas`.
Vocabularies and event types are process-wide registries that only grow by explicit
calls (:func:`register_event_type`, :func:`register_categories`); register your own in
every process (for Ray, at import time of the module that defines them).

Example
-------
>>> batch = EventBatch.from_records([
...     {"subscriber": 7, "time": 1700000000, "type": "add_to_cart", "cart_value": 40.0},
...     {"subscriber": 7, "time": "2023-11-14T22:20:00+00:00", "type": "purchase_completed"},
... ])
>>> len(batch), batch.type_names()
(2, ['add_to_cart', 'purchase_completed'])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import pandas as pd

from policies.checks import show
from policies.errors import InvalidEventError
from policies.event_cells import (
    CheckedColumn,
    category_cell,
    check_column,
    number_cell,
    subscriber_cell,
    time_cell,
    type_cell,
)
from policies.event_schema import (
    CATEGORY_MISSING,
    CORE_COLUMNS,
    EVENT_TYPES,
    MAX_SUBSCRIBER,
    MAX_TIME,
    MIN_SUBSCRIBER,
    MIN_TIME,
    check_time_bounds,
    column_kind,
    vocabulary,
)

__all__ = ["EventBatch"]

#: Columns of the rejected table of ``validate="quarantine"``.
REJECTED_COLUMNS = ("index", "field", "reason", "record")


def _undeclared_text(name: str, text: Any) -> str:
    """The reason a cell of undeclared column ``name`` holding text (``text``, the first
    one) is refused."""
    return (f"text in an undeclared column ({text!r}); declare it with "
            f"register_categories({name!r}, [...]) or send a number")


def _infer_kind(name: str, values: Iterable[Any]) -> str:
    known = column_kind(name)
    if known is not None:
        return known
    for v in values:
        if isinstance(v, str):
            raise InvalidEventError(f"{name}: {_undeclared_text(name, v)}")
    return "float"


def _check_validate(validate: Any) -> None:
    if validate not in ("raise", "quarantine"):
        raise InvalidEventError(
            f"validate: expected 'raise' or 'quarantine', got {validate!r}"
        )


# ---------------------------------------------------------------------------
# the batch


@dataclass(frozen=True, eq=False)
class EventBatch:
    """A batch of events as a struct of equally long numpy arrays.

    Parameters
    ----------
    subscriber : ndarray of int64, shape (n,)
    time : ndarray of int64, shape (n,)
        Seconds since the Unix epoch, UTC.
    type : ndarray of int64, shape (n,)
        Codes from :data:`EVENT_TYPES`.
    columns : dict of str to ndarray, shape (n,)
        Data columns: float64 (NaN missing) or int64 (-1 missing).
    """

    subscriber: np.ndarray
    time: np.ndarray
    type: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.subscriber)
        for name in CORE_COLUMNS:
            object.__setattr__(self, name, _int64(name, getattr(self, name)))
        if len(self.time) != n or len(self.type) != n:
            raise InvalidEventError(
                f"EventBatch: columns must have equal length, got subscriber={n}, "
                f"time={len(self.time)}, type={len(self.type)}"
            )
        cols: dict[str, np.ndarray] = {}
        for name, col in self.columns.items():
            if name in CORE_COLUMNS:
                raise InvalidEventError(f"columns: {name!r} is a core column, not a data column")
            arr = np.asarray(col)
            kind = column_kind(name) or ("int" if arr.dtype.kind in "iu" else "float")
            if kind == "int":
                arr = _int64(f"columns[{name!r}]", arr)
            else:
                try:
                    arr = np.ascontiguousarray(arr, np.float64)
                except (TypeError, ValueError, OverflowError):
                    raise InvalidEventError(f"columns[{name!r}]: expected numbers, got "
                                            f"{show(col)}") from None
            if len(arr) != n:
                raise InvalidEventError(
                    f"columns[{name!r}]: expected length {n}, got {len(arr)}"
                )
            cols[name] = arr
        object.__setattr__(self, "columns", cols)

    # -- construction ------------------------------------------------------

    @classmethod
    def empty(cls) -> EventBatch:
        """A batch with no rows."""
        z = np.zeros(0, np.int64)
        return cls(z, z, z)

    @overload
    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], validate: Literal["raise"] = ..., *,
        min_time: int = ..., max_time: int = ...,
    ) -> EventBatch: ...

    @overload
    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], validate: Literal["quarantine"], *,
        min_time: int = ..., max_time: int = ...,
    ) -> tuple[EventBatch, pd.DataFrame]: ...

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], validate: str = "raise", *,
        min_time: int = MIN_TIME, max_time: int = MAX_TIME,
    ) -> EventBatch | tuple[EventBatch, pd.DataFrame]:
        """Build a batch from dicts like ``{"subscriber": 7, "time": ..., "type": ...}``.

        ``time`` is seconds since the epoch, an aware ``datetime`` or an ISO-8601
        string with offset. With ``validate="raise"`` (default) the first bad record
        raises :class:`InvalidEventError` naming its index and field; with
        ``validate="quarantine"`` the result is ``(good_batch, rejected)`` where
        ``rejected`` has columns ``index``, ``field``, ``reason``, ``record``.

        Accepted ranges: ``subscriber`` an integer in ``[0, 2**63)``; ``time`` in
        ``[min_time, max_time)``, by default 2000-01-01 to 2100-01-01 (for live traffic
        pass ``max_time=now + skew``); a time that looks like milliseconds says so.
        """
        min_time, max_time = check_time_bounds(min_time, max_time)
        _check_validate(validate)
        if isinstance(records, Mapping) or isinstance(records, str | bytes):
            raise InvalidEventError("records: expected a list of dicts, got a single value")
        data_names: list[str] = []
        seen: set[str] = set()
        for rec in records:
            if isinstance(rec, Mapping):
                for key in rec:
                    if key not in CORE_COLUMNS and key not in seen:
                        seen.add(key)
                        data_names.append(key)
        kinds: dict[str, str] = {}
        bad_columns: dict[str, str] = {}
        for name in data_names:
            values = [r.get(name) for r in records if isinstance(r, Mapping)]
            try:
                kinds[name] = _infer_kind(name, values)
            except InvalidEventError as exc:
                kinds[name] = "float"  # its kept rows hold no value: missing
                bad_columns[name] = str(exc)

        subs: list[int] = []
        times: list[int] = []
        types: list[int] = []
        cols: dict[str, list[Any]] = {name: [] for name in data_names}
        rejected: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            try:
                row = cls._parse_record(rec, kinds, bad_columns, min_time, max_time)
            except _RecordError as err:
                if validate == "raise":
                    raise InvalidEventError(f"records[{i}].{err.field}: {err.reason}") from None
                rejected.append(
                    {"index": i, "field": err.field, "reason": err.reason, "record": rec}
                )
                continue
            sub, t, ty, row_values = row
            subs.append(sub)
            times.append(t)
            types.append(ty)
            for name in data_names:
                missing = math.nan if kinds[name] == "float" else -1
                cols[name].append(row_values.get(name, missing))
        batch = cls(
            np.array(subs, np.int64),
            np.array(times, np.int64),
            np.array(types, np.int64),
            {
                name: np.array(v, np.float64 if kinds[name] == "float" else np.int64)
                for name, v in cols.items()
            },
        )
        if validate == "raise":
            return batch
        table = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
        return batch, table

    @staticmethod
    def _parse_record(
        rec: Any, kinds: Mapping[str, str], bad_columns: Mapping[str, str],
        min_time: int = MIN_TIME, max_time: int = MAX_TIME,
    ) -> tuple[int, int, int, dict[str, Any]]:
        if not isinstance(rec, Mapping):
            raise _RecordError("record", f"expected a dict, got {type(rec).__name__}")
        for key in CORE_COLUMNS:
            if key not in rec or rec[key] is None:
                raise _RecordError(key, "missing")
        try:
            sub = subscriber_cell(rec["subscriber"])
        except InvalidEventError as exc:
            raise _RecordError("subscriber", str(exc)) from None
        try:
            t = time_cell(rec["time"], min_time, max_time)
        except InvalidEventError as exc:
            raise _RecordError("time", str(exc)) from None
        try:
            code = type_cell(rec["type"])
        except InvalidEventError as exc:
            raise _RecordError("type", str(exc)) from None
        values: dict[str, Any] = {}
        for key, value in rec.items():
            if key in CORE_COLUMNS:
                continue
            if key in bad_columns and value is not None:
                raise _RecordError(key, bad_columns[key].split(": ", 1)[-1])
            try:
                if kinds[key] == "float":
                    values[key] = number_cell(value)
                else:
                    values[key] = category_cell(key, value)
            except InvalidEventError as exc:
                raise _RecordError(key, str(exc)) from None
        return sub, t, code, values

    @overload
    @classmethod
    def from_pandas(
        cls, df: pd.DataFrame, validate: Literal["raise"] = ..., *,
        min_time: int = ..., max_time: int = ...,
    ) -> EventBatch: ...

    @overload
    @classmethod
    def from_pandas(
        cls, df: pd.DataFrame, validate: Literal["quarantine"], *,
        min_time: int = ..., max_time: int = ...,
    ) -> tuple[EventBatch, pd.DataFrame]: ...

    @classmethod
    def from_pandas(
        cls, df: pd.DataFrame, validate: str = "raise", *,
        min_time: int = MIN_TIME, max_time: int = MAX_TIME,
    ) -> EventBatch | tuple[EventBatch, pd.DataFrame]:
        """Build a batch from a DataFrame with ``subscriber``, ``time``, ``type`` columns.

        ``time`` may be integer seconds, a timezone-aware datetime column or (in an
        object column) anything :meth:`from_records` accepts; ``type`` may hold names or
        codes; word-valued categorical columns are encoded. Every cell is checked as
        :meth:`from_records` checks it, with the same ranges and the same reasons
        (:mod:`policies.event_cells`; numeric columns vectorized), and ``validate`` works
        the same: ``"raise"`` raises :class:`InvalidEventError` for the first bad row,
        naming its position: ``records[3].time: ...``; ``"quarantine"`` returns
        ``(good_batch, rejected)`` with the rejected rows' ``index`` (position),
        ``field``, ``reason`` and ``record`` (the row as a dict). A missing cell (None,
        NaN, NaT) is missing, like ``None`` in a record; a float column of ids or codes
        accepts integral floats up to 2**53 (an int column with a missing value turns
        float). A frame without one of the three core columns raises in both modes.
        """
        min_time, max_time = check_time_bounds(min_time, max_time)
        _check_validate(validate)
        if not isinstance(df, pd.DataFrame):
            raise InvalidEventError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
        for key in CORE_COLUMNS:
            if key not in df.columns:
                raise InvalidEventError(f"{key}: missing column (have {list(df.columns)})")
        if not df.columns.is_unique:
            dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
            raise InvalidEventError(f"columns: each name once, got {dup} twice")
        core = {key: check_column(df[key], key, key, min_time, max_time)
                for key in CORE_COLUMNS}
        data: dict[str, CheckedColumn] = {}
        for name in df.columns:
            if name not in CORE_COLUMNS:
                kind, bad = _frame_kind(name, df[name])
                data[name] = check_column(df[name], name, kind, min_time, max_time, bad)
        # a row's first problem is the one from_records would name first
        problems: list[tuple[str, np.ndarray, Any]] = [
            (field, mask, reason) for field, mask, reason in (
                *[(key, core[key].missing, _missing) for key in CORE_COLUMNS],
                *[(key, core[key].bad, core[key].reason) for key in CORE_COLUMNS],
                *[(name, col.bad, col.reason) for name, col in data.items()])
            if mask is not None]
        bad_rows = problems[0][1].copy() if problems else np.zeros(0, bool)
        for _, mask, _ in problems[1:]:
            bad_rows |= mask
        rejected: list[dict[str, Any]] = []
        if problems and bad_rows.any():
            rows = np.flatnonzero(bad_rows)
            if validate == "raise":
                rows = rows[:1]
            field = np.full(len(rows), -1)
            for j, (_, mask, _) in enumerate(problems):
                field[(field < 0) & mask[rows]] = j
            if validate == "raise":
                name, _, reason = problems[int(field[0])]
                i = int(rows[0])
                raise InvalidEventError(f"records[{i}].{name}: {reason(i)}")
            records = df.iloc[rows].to_dict("records")
            for i, j, rec in zip(rows.tolist(), field.tolist(), records, strict=True):
                name, _, reason = problems[j]
                rejected.append({"index": i, "field": name, "reason": reason(i),
                                 "record": rec})
        keep = ~bad_rows if rejected else slice(None)
        batch = cls(core["subscriber"].values[keep], core["time"].values[keep],
                    core["type"].values[keep],
                    {name: col.values[keep] for name, col in data.items()})
        if validate == "raise":
            return batch
        return batch, pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))

    @overload
    @classmethod
    def from_arrow(
        cls, table: Any, validate: Literal["raise"] = ..., *,
        min_time: int = ..., max_time: int = ...,
    ) -> EventBatch: ...

    @overload
    @classmethod
    def from_arrow(
        cls, table: Any, validate: Literal["quarantine"], *,
        min_time: int = ..., max_time: int = ...,
    ) -> tuple[EventBatch, pd.DataFrame]: ...

    @classmethod
    def from_arrow(
        cls, table: Any, validate: str = "raise", *,
        min_time: int = MIN_TIME, max_time: int = MAX_TIME,
    ) -> EventBatch | tuple[EventBatch, pd.DataFrame]:
        """Build a batch from a :class:`pyarrow.Table` with the batch's columns (the
        checks, ranges, reasons and ``validate`` modes of :meth:`from_pandas`; integer
        columns with nulls stay exact)."""
        import pyarrow as pa

        if not isinstance(table, pa.Table):
            raise InvalidEventError(f"table: expected a pyarrow Table, got "
                                    f"{type(table).__name__}")
        df = table.to_pandas()
        for f in table.schema:  # an int column with nulls: nullable ints, not floats
            if pa.types.is_integer(f.type) and table.column(f.name).null_count:
                df[f.name] = table.column(f.name).to_pandas(
                    types_mapper=lambda t: pd.ArrowDtype(t))
        return cls.from_pandas(df, validate, min_time=min_time,  # type: ignore[call-overload]
                               max_time=max_time)

    @classmethod
    def concat(cls, batches: Iterable[EventBatch]) -> EventBatch:
        """Concatenate batches; a column missing from some batch is filled as missing."""
        parts = list(batches)
        if not parts:
            return cls.empty()
        names: list[str] = []
        for b in parts:
            names.extend(n for n in b.columns if n not in names)
        cols: dict[str, np.ndarray] = {}
        for name in names:
            pieces = []
            for b in parts:
                if name in b.columns:
                    pieces.append(b.columns[name])
                else:
                    pieces.append(b.column(name, like=_kind_of(parts, name)))
            cols[name] = np.concatenate(pieces)
        return cls(
            np.concatenate([b.subscriber for b in parts]),
            np.concatenate([b.time for b in parts]),
            np.concatenate([b.type for b in parts]),
            cols,
        )

    # -- access ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.subscriber)

    def __getitem__(self, key: slice | np.ndarray | Sequence[int]) -> EventBatch:
        """Rows selected by a slice, an index array or a boolean mask."""
        if isinstance(key, numbers.Integral):
            key = slice(int(key), int(key) + 1 if int(key) != -1 else None)
        return EventBatch(
            self.subscriber[key],
            self.time[key],
            self.type[key],
            {name: col[key] for name, col in self.columns.items()},
        )

    def column(self, name: str, like: str | None = None) -> np.ndarray:
        """Data column ``name``; all-missing if the batch does not have it."""
        if name in self.columns:
            return self.columns[name]
        kind = like or column_kind(name) or "float"
        if kind == "int":
            return np.full(len(self), CATEGORY_MISSING, np.int64)
        return np.full(len(self), np.nan)

    def sort_by_time(self) -> EventBatch:
        """Rows in time order; ties keep their order (stable sort)."""
        if len(self) < 2 or bool(np.all(self.time[1:] >= self.time[:-1])):
            return self
        return self[np.argsort(self.time, kind="stable")]

    def type_names(self) -> list[str]:
        """Event-type names of the rows."""
        names = EVENT_TYPES.names
        return [names[c] for c in self.type]

    def with_columns(self, **columns: np.ndarray) -> EventBatch:
        """A copy with data columns added or replaced."""
        return EventBatch(self.subscriber, self.time, self.type, {**self.columns, **columns})

    def to_pandas(self, decode: bool = True) -> pd.DataFrame:
        """The batch as a DataFrame.

        With ``decode`` (default), ``type`` holds names, ``time`` stays int seconds and
        word-valued categorical columns hold their words (None when missing).
        """
        out: dict[str, Any] = {
            "subscriber": self.subscriber,
            "time": self.time,
            "type": (
                pd.Categorical.from_codes(self.type, categories=list(EVENT_TYPES.names))
                if decode
                else self.type
            ),
        }
        for name, col in self.columns.items():
            vocab = vocabulary(name)
            if decode and vocab is not None:
                words = np.array([*vocab, None], dtype=object)
                idx = np.where((col >= 0) & (col < len(vocab)), col, len(vocab))
                out[name] = words[idx]
            else:
                out[name] = col
        df = pd.DataFrame(out)
        if decode:
            df["type"] = df["type"].astype(str)
        return df

    def to_arrow(self) -> Any:
        """The batch as a :class:`pyarrow.Table` (decoded like :meth:`to_pandas`)."""
        import pyarrow as pa

        return pa.Table.from_pandas(self.to_pandas(), preserve_index=False)

    def equals(self, other: EventBatch) -> bool:
        """True when both batches hold the same rows and columns (NaN equal to NaN)."""
        if len(self) != len(other) or set(self.columns) != set(other.columns):
            return False
        if not (
            np.array_equal(self.subscriber, other.subscriber)
            and np.array_equal(self.time, other.time)
            and np.array_equal(self.type, other.type)
        ):
            return False
        return all(
            np.array_equal(col, other.columns[name], equal_nan=col.dtype.kind == "f")
            for name, col in self.columns.items()
        )

    def __repr__(self) -> str:
        return f"EventBatch(n={len(self)}, columns={sorted(self.columns)})"


def _int64(name: str, values: Any) -> np.ndarray:
    """``values`` as a contiguous int64 array; values that do not fit (Python ints beyond
    int64, uint64 above 2**63, fractional / non-finite / huge floats) raise
    :class:`InvalidEventError` instead of wrapping around or raising ``OverflowError``."""
    if isinstance(values, np.ndarray) and values.dtype == np.int64:
        return np.ascontiguousarray(values)
    try:
        arr = np.asarray(values)
        if arr.dtype.kind == "u":
            ok = not len(arr) or int(arr.max()) <= MAX_SUBSCRIBER
        elif arr.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                ok = bool(np.all(np.isfinite(arr) & (arr == np.round(arr))
                                 & (np.abs(arr) < 2.0**63)))
        else:
            ok = arr.dtype.kind in "ib" or (arr.dtype.kind == "O" and all(
                isinstance(v, numbers.Integral) and MIN_SUBSCRIBER <= int(v) <= MAX_SUBSCRIBER
                for v in arr.ravel()))
        if ok:
            return np.ascontiguousarray(arr, np.int64)
    except (TypeError, ValueError, OverflowError):
        pass
    raise InvalidEventError(f"{name}: expected int64 values, got {show(values)}")


def _missing(i: int) -> str:
    return "missing"


def _frame_kind(name: str, series: pd.Series) -> tuple[str, str | None]:
    """A frame column's kind (declared, else float) and, for an undeclared column holding
    text, the reason its cells are refused (as :meth:`EventBatch.from_records` gives it)."""
    known = column_kind(name)
    if known is not None:
        return known, None
    if series.dtype.kind in "iufb" or isinstance(series.dtype, pd.DatetimeTZDtype):
        return "float", None
    text = series.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False)
    flags = text.to_numpy(bool)
    if flags.any():
        return "float", _undeclared_text(name, series.iloc[int(np.flatnonzero(flags)[0])])
    return "float", None


class _RecordError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _kind_of(parts: Sequence[EventBatch], name: str) -> str:
    for b in parts:
        if name in b.columns:
            return "int" if b.columns[name].dtype.kind in "iu" else "float"
    return "float"
