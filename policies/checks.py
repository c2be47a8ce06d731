"""Field-path-aware input checks shared by every layer (one message style).

Each check takes the *path* of the field (``"arms[2].policy.epsilon"``, ``""`` for the
top level), the value, and the exception class to raise (``error=``:
:class:`~policies.errors.RuleError`, :class:`~policies.errors.SpecError`,
:class:`~policies.errors.StatsInputError`, ...), so each layer keeps raising its own
error type. It returns the value (converted where said) or raises with the message::

    {path}: expected {what}, got {value!r}

where the received value's ``repr`` is cut to 60 characters (:func:`show`). Other
messages: ``{path}.{key}: unknown key; expected one of a, b`` and ``{path}.{key}:
missing`` (mappings).

Missing values (:func:`is_missing`) are ``None``, ``pandas.NA``, ``pandas.NaT`` and
any number or numpy time scalar that is not equal to itself: NaN of Python, numpy
(``float16``..``float64``, complex) and ``decimal`` types, ``numpy.datetime64("NaT")``
and ``numpy.timedelta64("NaT")``. Everything else is a value: an empty string is a
(possibly invalid) value, not a missing one, and so are containers such as lists and
arrays. This is the union of the two earlier helpers' *scalar* cases (the event
loader's missed numpy ``float32`` NaN and NaT; the rule matcher also called any object
whose comparison with itself raised "missing", arrays included, as a side effect of a
``try``): a predicate on a column or an event category must skip exactly the cells a
table marks as empty.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "check_bool",
    "check_choice",
    "check_column",
    "check_duration",
    "check_int",
    "check_mapping",
    "check_number",
    "check_string",
    "check_vector",
    "did_you_mean",
    "expected",
    "fail",
    "is_int",
    "is_missing",
    "is_real",
    "one_of",
    "show",
]

_SHOW_CHARS = 60


def show(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (``...`` marks a cut)."""
    text = repr(value)
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS - 3] + "..."


def did_you_mean(value: Any, choices: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to string ``value``
    (difflib ratio >= 0.75), else ``""``: a hint to append to a message."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fail(error: type[Exception], path: str, message: str) -> Exception:
    """``error("{path}: {message}")`` (just ``message`` at the top level); raise it."""
    return error(f"{path}: {message}" if path else message)


def expected(error: type[Exception], path: str, what: str, value: Any) -> Exception:
    """``error("{path}: expected {what}, got {show(value)}")``; raise it."""
    return fail(error, path, f"expected {what}, got {show(value)}")


def one_of(choices: Sequence[Any]) -> str:
    """``"one of a, b, c"``: how messages list allowed names."""
    return f"one of {', '.join(str(c) for c in choices)}"


def is_missing(value: Any) -> bool:
    """Whether a scalar cell is missing (see the module docstring for the exact set)."""
    kind = type(value)
    if kind is float:  # fast paths for the common cells (the reference engine calls this
        return value != value  # once per predicate and event)
    if kind is int or kind is str:
        return False
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, numbers.Number | np.datetime64 | np.timedelta64):
        return bool(value != value)
    return False


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), bool excluded."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any, *, finite: bool = True) -> bool:
    """A real number (Python or numpy), bool excluded; finite unless ``finite=False``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return not finite or math.isfinite(float(value))


def check_mapping(path: str, value: Any, allowed: Sequence[str], required: Sequence[str] = (),
                  *, error: type[Exception]) -> dict[str, Any]:
    """A mapping whose keys are among ``allowed`` and include ``required``; a dict copy."""
    if not isinstance(value, Mapping):
        raise expected(error, path, "a mapping", value)
    for key in value:
        if key not in allowed:
            raise fail(error, f"{path}.{key}" if path else str(key),
                       f"unknown key; expected {one_of(allowed)}")
    for key in required:
        if key not in value:
            raise fail(error, f"{path}.{key}" if path else str(key), "missing")
    return dict(value)


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return (f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}"
                f"{')' if high_open else ']'}")
    if low is not None:
        return f"{'>' if low_open else '>='} {_num(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_num(high)}"
    return "finite"


def check_number(path: str, value: Any, *, error: type[Exception], low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 what: str | None = None) -> float:
    """A finite real number (bool, NaN and infinities rejected) within the bounds; a float.

    The message says ``a number in [low, high]`` (``(`` / ``)`` for open ends), ``a number
    >= low``, ``a number <= high`` or ``a number finite``, unless ``what`` is given.
    """
    ok = is_real(value)
    if ok:
        v = float(value)
        ok = not ((low is not None and (v <= low if low_open else v < low))
                  or (high is not None and (v >= high if high_open else v > high)))
    if not ok:
        raise expected(error, path, what or f"a number {_range(low, high, low_open, high_open)}",
                       value)
    return float(value)


def check_int(path: str, value: Any, *, error: type[Exception], low: int | None = None,
              high: int | None = None, what: str | None = None) -> int:
    """An integer (bool rejected) in ``[low, high]``; an ``int``.

    The message says ``an integer >= low``, ``an integer in [low, high]``, ``an integer
    <= high`` or ``an integer``, unless ``what`` is given.
    """
    ok = is_int(value) and not ((low is not None and value < low)
                                or (high is not None and value > high))
    if not ok:
        rng = "" if low is None and high is None else " " + _range(low, high, False, False)
        raise expected(error, path, what or f"an integer{rng}", value)
    return int(value)


def check_string(path: str, value: Any, *, error: type[Exception]) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise expected(error, path, "a non-empty string", value)
    return value


def check_choice(path: str, value: Any, choices: Sequence[Any], *,
                 error: type[Exception], what: str | None = None) -> Any:
    """One of ``choices`` (``expected one of a, b, got ...`` unless ``what`` is given)."""
    if value not in choices:
        raise expected(error, path, what or one_of(choices), value)
    return value


def check_bool(path: str, value: Any, *, error: type[Exception],
               what: str = "true or false") -> bool:
    """``True`` or ``False`` (no truthy stand-ins: ``1``, ``"yes"``)."""
    if not isinstance(value, bool):
        raise expected(error, path, what, value)
    return value


def check_duration(path: str, value: Any, *, error: type[Exception]) -> int:
    """Whole seconds of a duration like ``"30m"`` (:func:`~policies.triggers.durations.
    parse_duration`): ``{path}: expected a duration like '30m', got ...``."""
    from policies.triggers.durations import parse_duration  # the package imports this one

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise fail(error, path, str(exc)) from None


#: Kinds of cell :func:`check_column` knows.
COLUMN_KINDS: tuple[str, ...] = ("number", "integer", "bool", "category")


def check_vector(path: str, value: Any, kind: str, *, error: type[Exception],
                 n: int | None = None, index: pd.Index | None = None,
                 per: str = "row of features") -> np.ndarray:
    """A one-dimensional array of values, none missing; a numpy copy.

    Kinds: ``"number"`` (finite reals; float64; a boolean *array* counts as 0/1, e.g. a
    purchase indicator, but single bool cells of a mixed array do not) and ``"bool"``
    (True/False or the numbers 0/1; bool). ``n`` is the required length (``expected {n} values (one
    per {per}), got {m}``); ``index``, if given, must equal the index of a
    Series ``value`` (a Series indexed otherwise would be matched to the wrong rows).
    The first bad cell raises ``{path}[{i}]: expected {what}, got {value!r}`` (with
    ``; {k} bad rows`` when there are several).
    """
    if kind not in ("number", "bool"):
        raise ValueError(f"kind: expected one of number, bool, got {kind!r}")
    if isinstance(value, pd.Series) and index is not None and not value.index.equals(index):
        raise fail(error, path, "expected a Series indexed like features (or an array), "
                                "got another index")
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__len__"):
        raise expected(error, path, "an array of values", value)
    arr = np.asarray(value.to_numpy() if isinstance(value, pd.Series) else value)
    if arr.ndim != 1:
        raise fail(error, path, f"expected a one-dimensional array, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise fail(error, path, f"expected {n} values (one per {per}), got {len(arr)}")
    if arr.dtype.kind == "b":                   # a boolean array is 0/1 for numbers too
        ok = np.ones(len(arr), bool)
    elif arr.dtype.kind in "iuf":
        x = arr.astype(np.float64)
        ok = np.isfinite(x) & ((x == 0) | (x == 1)) if kind == "bool" else np.isfinite(x)
    else:
        ok = np.zeros(len(arr), bool)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        i = int(bad[0])
        cell = arr[i].item() if isinstance(arr[i], np.generic) else arr[i]
        what = "true or false (or 0/1)" if kind == "bool" else "a finite number"
        more = f" ({len(bad)} bad rows)" if len(bad) > 1 else ""
        raise fail(error, f"{path}[{i}]", f"expected {what}, got {show(cell)}{more}")
    return arr.astype(bool if kind == "bool" else np.float64)


def check_column(path: str, column: pd.Series, kind: str, *, error: type[Exception],
                 low: float | None = None, high: float | None = None,
                 vocabulary: Sequence[str] = (), finite: bool = True, label: str = "row",
                 what: str | None = None) -> None:
    """Every cell of a table column is missing (:func:`is_missing`) or a value of ``kind``.

    Kinds: ``"number"`` (a real number, bool excluded, in ``[low, high]``; finite unless
    ``finite=False``), ``"integer"`` (a whole number in ``[low, high]``, ``3.0`` included:
    a column with missing cells is float), ``"bool"`` (True/False, or the numbers 0/1)
    and ``"category"`` (a string among ``vocabulary``). The first bad cell raises::

        {path}[{i}]: expected {what}, got {value!r} ({label} {index}; {n} bad rows)

    where ``i`` is the row's position, ``index`` its index label (the ``; n bad rows``
    part only when there are several). Numeric columns are checked vectorized; cells of
    object columns one by one.
    """
    if kind not in COLUMN_KINDS:
        raise ValueError(f"kind: expected {one_of(COLUMN_KINDS)}, got {kind!r}")
    if what is None:
        what = _column_what(kind, low, high, vocabulary, finite)
    ok = _column_ok(column, kind, low, high, vocabulary, finite)
    if ok.all():
        return
    bad = np.flatnonzero(~ok)
    i = int(bad[0])
    value, key = (v.item() if isinstance(v, np.generic) else v
                  for v in (column.iloc[i], column.index[i]))
    where = f"{label} {key!r}" if label else f"row {i}"
    more = f"; {len(bad)} bad rows" if len(bad) > 1 else ""
    raise fail(error, f"{path}[{i}]", f"expected {what}, got {show(value)} ({where}{more})")


def _column_what(kind: str, low: float | None, high: float | None,
                 vocabulary: Sequence[str], finite: bool) -> str:
    if kind == "category":
        return f"{one_of(vocabulary)} or missing"
    if kind == "bool":
        return "true, false or missing"
    rng = "" if low is None and high is None else " " + _range(low, high, False, False)
    noun = "a number" if kind == "number" else "a whole number"
    if kind == "number" and not finite and not rng:
        rng = " (infinities allowed)"
    return f"{noun}{rng} or missing"


def _column_ok(column: pd.Series, kind: str, low: float | None, high: float | None,
               vocabulary: Sequence[str], finite: bool) -> np.ndarray:
    dk = column.dtype.kind
    n = len(column)
    if dk in "iuf" and not isinstance(column.dtype, pd.CategoricalDtype):
        values = column.to_numpy(np.float64, na_value=np.nan)
        missing = np.isnan(values)
        if kind == "category":
            return missing
        if kind == "bool":
            return missing | (values == 0) | (values == 1)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values) if finite or kind == "integer" else ~missing
            if kind == "integer":
                ok &= np.where(ok, values, 0) == np.floor(np.where(ok, values, 0))
            if low is not None:
                ok &= values >= low
            if high is not None:
                ok &= values <= high
        return missing | ok
    if dk == "b" and not isinstance(column.dtype, pd.CategoricalDtype):
        return np.full(n, kind == "bool")
    if kind == "category":
        return (column.isin(list(vocabulary)) | column.isna()).to_numpy(bool)
    cells = column.tolist()
    return np.fromiter((_cell_ok(v, kind, low, high, finite) for v in cells), bool, n)


def _cell_ok(value: Any, kind: str, low: float | None, high: float | None,
             finite: bool) -> bool:
    if is_missing(value):
        return True
    if kind == "bool":
        return isinstance(value, bool | np.bool_) or (is_real(value) and value in (0, 1))
    if not is_real(value, finite=finite or kind == "integer"):
        return False
    if kind == "integer" and not float(value).is_integer():
        return False
    return not ((low is not None and value < low) or (high is not None and value > high))
