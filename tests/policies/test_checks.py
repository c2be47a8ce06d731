"""policies.checks: one kit of field-path-aware checks (input, exception, message)."""

from __future__ import annotations

import decimal
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from policies.checks import (
    check_bool,
    check_choice,
    check_column,
    check_duration,
    check_int,
    check_mapping,
    check_number,
    check_string,
    did_you_mean,
    expected,
    is_int,
    is_missing,
    is_real,
    show,
)
from policies.errors import (
    InvalidEventError,
    PolicyError,
    RuleError,
    SpecError,
    StatsInputError,
    TriggerLabError,
)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return lambda error: fn(*args, error=error, **kwargs)


INVALID = [
    # mapping
    (_call(check_mapping, "arms[0]", [1], ("name",)),
     r"^arms\[0\]: expected a mapping, got \[1\]$"),
    (_call(check_mapping, "", "x", ("name",)), r"^expected a mapping, got 'x'$"),
    (_call(check_mapping, "campaign", {"hour": 1}, ("every_days", "local_hour")),
     r"^campaign\.hour: unknown key; expected one of every_days, local_hour$"),
    (_call(check_mapping, "", {"colour": 1}, ("name", "seed")),
     r"^colour: unknown key; expected one of name, seed$"),
    (_call(check_mapping, "rules[0]", {}, ("id", "type"), ("id",)), r"^rules\[0\]\.id: missing$"),
    (_call(check_mapping, "", {}, ("seed",), ("seed",)), r"^seed: missing$"),
    # numbers: bool, NaN, infinities, strings rejected; bounds
    (_call(check_number, "p", True), r"^p: expected a number finite, got True$"),
    (_call(check_number, "p", float("nan")), r"^p: expected a number finite, got nan$"),
    (_call(check_number, "p", np.float32("inf")), r"^p: expected a number finite, got "),
    (_call(check_number, "p", "0.5", low=0, high=1),
     r"^p: expected a number in \[0, 1\], got '0\.5'$"),
    (_call(check_number, "p", 1.5, low=0, high=1), r"^p: expected a number in \[0, 1\], got 1\.5$"),
    (_call(check_number, "p", 1.0, low=0, high=1, high_open=True),
     r"^p: expected a number in \[0, 1\), got 1\.0$"),
    (_call(check_number, "a", 0, low=0, high=0.5, low_open=True),
     r"^a: expected a number in \(0, 0\.5\], got 0$"),
    (_call(check_number, "d", 0, low=0, low_open=True), r"^d: expected a number > 0, got 0$"),
    (_call(check_number, "d", -1, low=0), r"^d: expected a number >= 0, got -1$"),
    (_call(check_number, "d", 3, high=2), r"^d: expected a number <= 2, got 3$"),
    (_call(check_number, "d", 2, high=2, high_open=True), r"^d: expected a number < 2, got 2$"),
    (_call(check_number, "h", 1.5, low=0, high=1, what="a fraction"),
     r"^h: expected a fraction, got 1\.5$"),
    # integers: bool and floats rejected, numpy ints accepted (below)
    (_call(check_int, "n", True, low=0), r"^n: expected an integer >= 0, got True$"),
    (_call(check_int, "n", 2.0, low=0), r"^n: expected an integer >= 0, got 2\.0$"),
    (_call(check_int, "n", 5, low=10), r"^n: expected an integer >= 10, got 5$"),
    (_call(check_int, "n", 2_000_000, high=1_000_000), r"^n: expected an integer <= 1000000, "),
    (_call(check_int, "h", 24, low=0, high=23), r"^h: expected an integer in \[0, 23\], got 24$"),
    (_call(check_int, "h", 24, low=0, high=23, what="an hour 0..23"),
     r"^h: expected an hour 0\.\.23, got 24$"),
    (_call(check_int, "n", "3"), r"^n: expected an integer, got '3'$"),
    # strings and choices
    (_call(check_string, "name", ""), r"^name: expected a non-empty string, got ''$"),
    (_call(check_string, "name", 3), r"^name: expected a non-empty string, got 3$"),
    (_call(check_choice, "reward", "opens", ("click", "order")),
     r"^reward: expected one of click, order, got 'opens'$"),
    (_call(check_choice, "method", "x", ("a", "b"), what="one of ['a', 'b']"),
     r"^method: expected one of \['a', 'b'\], got 'x'$"),
    # bool: no truthy stand-ins
    (_call(check_bool, "record.events", "yes"),
     r"^record\.events: expected true or false, got 'yes'$"),
    (_call(check_bool, "flag", 1, what="True or False"), r"^flag: expected True or False, got 1$"),
    # durations (policies.triggers.durations)
    (_call(check_duration, "delay", "soon"),
     r"^delay: expected a duration like '30m', got 'soon'$"),
    (_call(check_duration, "delay", 30), r"^delay: expected a duration like '30m', got 30$"),
    # long values are cut
    (_call(check_choice, "x", "y" * 100, ("a",)), r"^x: expected one of a, got 'y{56}\.\.\.$"),
]


@pytest.mark.parametrize("error", [RuleError, SpecError, InvalidEventError, StatsInputError])
@pytest.mark.parametrize(("check", "message"), INVALID,
                         ids=[f"{i}:{m[:30]}" for i, (_, m) in enumerate(INVALID)])
def test_checks_raise_the_callers_error_with_path_expected_got(check, message, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message) as info:
        check(error)
    assert type(info.value) is error
    assert isinstance(info.value, TriggerLabError) and isinstance(info.value, ValueError)


VALID = [
    (_call(check_mapping, "p", {"a": 1}, ("a", "b"), ("a",)), {"a": 1}),
    (_call(check_number, "p", np.float32(0.5), low=0, high=1), 0.5),
    (_call(check_number, "p", 1, low=0, high=1), 1.0),
    (_call(check_number, "p", 0, low=0, high=1, high_open=True), 0.0),
    (_call(check_int, "n", np.int64(7), low=0), 7),
    (_call(check_int, "n", -3), -3),
    (_call(check_string, "s", "x"), "x"),
    (_call(check_choice, "s", "b", ("a", "b")), "b"),
    (_call(check_bool, "b", False), False),
    (_call(check_duration, "d", "2h"), 7200),
]


@pytest.mark.parametrize(("check", "result"), VALID)
def test_checks_return_the_value(check, result) -> None:  # type: ignore[no-untyped-def]
    out = check(PolicyError)
    assert out == result and type(out) is type(result)


@pytest.mark.parametrize(("value", "missing"), [
    (None, True),
    (float("nan"), True),
    (np.nan, True),
    (np.float32("nan"), True),
    (np.float16("nan"), True),
    (complex(math.nan, 0), True),
    (decimal.Decimal("nan"), True),
    (pd.NA, True),
    (pd.NaT, True),
    (np.datetime64("NaT"), True),
    (np.timedelta64("NaT"), True),
    (0, False),
    (0.0, False),
    (False, False),
    (np.int64(-1), False),
    (float("inf"), False),
    ("", False),
    ("nan", False),
    ("none", False),
    ([], False),
    ([None], False),
    (np.array([np.nan]), False),
    (np.datetime64("2024-01-01"), False),
    (pd.Timestamp("2024-01-01"), False),
    (object(), False),
])
def test_is_missing(value, missing) -> None:  # type: ignore[no-untyped-def]
    assert is_missing(value) is missing


@pytest.mark.parametrize(("value", "integer", "real"), [
    (3, True, True),
    (np.int32(3), True, True),
    (True, False, False),
    (np.bool_(True), False, False),
    (2.5, False, True),
    (np.float32(2.5), False, True),
    (float("nan"), False, False),
    (float("inf"), False, False),
    ("3", False, False),
    (None, False, False),
])
def test_is_int_and_is_real(value, integer, real) -> None:  # type: ignore[no-untyped-def]
    assert is_int(value) is integer
    assert is_real(value) is real


def test_is_real_may_allow_infinities() -> None:
    assert is_real(float("inf"), finite=False) and not is_real(float("nan"))
    assert is_real(float("nan"), finite=False)


def test_show_and_expected() -> None:
    assert show("abc") == "'abc'"
    assert len(show(list(range(100)))) == 60 and show(list(range(100))).endswith("...")
    exc = expected(RuleError, "", "a rule", 1)
    assert isinstance(exc, RuleError) and str(exc) == "expected a rule, got 1"


def _col(values: Any, index: Any = None) -> pd.Series:
    return pd.Series(values, index=index)


COLUMN_BAD = [
    # (column, kind, options, message)
    (_col([0.5, "x"]), "number", {}, r"^t\.c\[1\]: expected a number or missing, got 'x' "
                                      r"\(row 1\)$"),
    (_col([0.5, 2.0, 3.0]), "number", {"low": 0, "high": 1},
     r"^t\.c\[1\]: expected a number in \[0, 1\] or missing, got 2\.0 \(row 1; 2 bad rows\)$"),
    (_col([np.inf]), "number", {}, r"got inf"),
    (_col([True, False]), "number", {}, r"\[0\]: .*got True \(row 0; 2 bad rows\)"),
    (_col([1, "2"], index=["a", "b"]), "number", {"label": "key"}, r"got '2' \(key 'b'\)$"),
    (_col([1.5]), "integer", {}, r"expected a whole number or missing, got 1\.5"),
    (_col([np.inf]), "integer", {"low": 0}, r"expected a whole number >= 0 or missing, got inf"),
    (_col([5, -1]), "integer", {"low": 0}, r"\[1\]: expected a whole number >= 0"),
    (_col(["yes"]), "bool", {}, r"expected true, false or missing, got 'yes'"),
    (_col([0, 2]), "bool", {}, r"\[1\]: .*got 2"),
    (_col(["a", "z"]), "category", {"vocabulary": ("a", "b")},
     r"\[1\]: expected one of a, b or missing, got 'z'"),
    (_col([1.0]), "category", {"vocabulary": ("a",)}, r"got 1\.0"),
    (_col(pd.to_datetime(["2024-01-01"])), "number", {}, r"got Timestamp"),
    (_col([1, 2]), "number", {"high": 1, "what": "a share"},
     r"^t\.c\[1\]: expected a share, got 2 \(row 1\)$"),
]


@pytest.mark.parametrize(("column", "kind", "options", "message"), COLUMN_BAD)
def test_check_column_names_the_first_bad_cell(column, kind, options, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=message):
        check_column("t.c", column, kind, error=SpecError, **options)


COLUMN_OK = [
    (_col([0.5, np.nan, None]), "number", {"low": 0, "high": 1}),
    (_col([np.inf, -np.inf]), "number", {"finite": False}),
    (_col([1.0, 2.0, np.nan]), "integer", {}),
    (_col(pd.array([1, pd.NA], dtype="Int64")), "integer", {"low": 0}),
    (_col([True, None]), "bool", {}),
    (_col([0, 1, 1.0]), "bool", {}),
    (_col(["a", None, np.nan]), "category", {"vocabulary": ("a",)}),
    (_col(pd.Categorical(["a", "b"])), "category", {"vocabulary": ("a", "b")}),
    (pd.Series([], dtype=float), "number", {}),
]


@pytest.mark.parametrize(("column", "kind", "options"), COLUMN_OK)
def test_check_column_accepts(column, kind, options) -> None:  # type: ignore[no-untyped-def]
    check_column("t.c", column, kind, error=SpecError, **options)


@pytest.mark.parametrize(("value", "choices", "hint"), [
    ("cart_vlaue", ["cart_value", "items"], " (did you mean 'cart_value'?)"),
    ("prospects", ["prospect", "customer"], " (did you mean 'prospect'?)"),
    ("vip", ["prospect", "customer"], ""),
    (3, ["3"], ""),
])
def test_did_you_mean(value, choices, hint) -> None:  # type: ignore[no-untyped-def]
    assert did_you_mean(value, choices) == hint
