"""Input checks shared by the statistics functions, on top of :mod:`policies.checks`.

Every check raises :class:`policies.errors.StatsInputError` with a message that names the
argument, what was expected and what was received (``{name}: expected {what}, got
{value!r}``, the value's repr cut to 60 characters). Choices are listed as a Python list
(``expected one of ['holm', 'bh', 'bonferroni']``), the statistics API's own style.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from policies.checks import check_choice as _check_choice
from policies.checks import expected, show
from policies.errors import StatsInputError

ALTERNATIVES = ("two-sided", "larger", "smaller")


#: The value's repr cut to 60 characters (:func:`policies.checks.show`).
_short = show


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Return ``alpha`` as a float strictly inside (0, 1)."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise expected(StatsInputError, name, "a probability in (0, 1)", alpha) from None
    if not 0.0 < a < 1.0:
        raise expected(StatsInputError, name, "a probability in (0, 1)", alpha)
    return a


def check_alternative(alternative: Any) -> str:
    """Return ``alternative`` if it is one of ``two-sided``, ``larger``, ``smaller``."""
    return check_choice(alternative, "alternative", ALTERNATIVES)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    _check_choice(name, value, choices, what=f"one of {list(choices)}", error=StatsInputError)
    return str(value)


def as_float_array(value: Any, name: str, *, low: float | None = None,
                   low_open: bool = False, what: str = "") -> np.ndarray:
    """Convert ``value`` to a float64 array, rejecting non-numeric and non-finite input.

    With ``low``, every element must also be ``>= low`` (``> low`` if ``low_open``);
    ``what`` names such an element in the message (``a positive exposure``).
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise expected(StatsInputError, name, "numbers", value) from None
    if not np.all(np.isfinite(arr)):
        raise expected(StatsInputError, name, "finite numbers", value)
    if low is not None and np.any(arr <= low if low_open else arr < low):
        raise StatsInputError(f"{name}: expected {what}, got {_short(arr)}")
    return arr


def sample(value: Any, name: str, min_size: int = 1) -> np.ndarray:
    """A 1-D float sample of at least ``min_size`` finite observations."""
    arr = as_float_array(value, name)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise StatsInputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size < min_size:
        raise StatsInputError(
            f"{name}: expected at least {min_size} observation(s), got {arr.size}"
        )
    return arr


def counts(value: Any, name: str) -> np.ndarray:
    """Non-negative whole-number counts (any shape), as float64."""
    arr = as_float_array(value, name)
    if np.any(arr < 0):
        raise expected(StatsInputError, name, "non-negative counts", value)
    if np.any(arr != np.round(arr)):
        raise expected(StatsInputError, name, "whole-number counts", value)
    return arr


def broadcast(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The named arrays broadcast together; StatsInputError naming them when they do not.

    The message lists the names and shapes: ``x_a, n_a: expected shapes that broadcast,
    got (2,) and (3,)``.
    """
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = [str(np.shape(a)) for a in arrays.values()]
        got = ", ".join(shapes[:-1]) + " and " + shapes[-1]
        raise StatsInputError(
            f"{', '.join(arrays)}: expected shapes that broadcast, got {got}") from None


def successes_trials(x: Any, n: Any, x_name: str, n_name: str,
                     allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (successes, trials) pair: counts, ``x <= n`` and ``n > 0``."""
    xa = counts(x, x_name)
    na = counts(n, n_name)
    xa, na = broadcast({x_name: xa, n_name: na})
    if not allow_empty and np.any(na <= 0):
        raise expected(StatsInputError, n_name, "a positive number of trials", n)
    if np.any(xa > na):
        raise StatsInputError(
            f"{x_name}: expected successes <= {n_name} ({_short(n)}), got {_short(x)}"
        )
    return xa, na


def two_arm_counts(x_a: Any, n_a: Any, x_b: Any, n_b: Any, allow_empty: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate (successes, trials) of arms ``a`` and ``b`` and broadcast all four."""
    xa, na = successes_trials(x_a, n_a, "x_a", "n_a", allow_empty=allow_empty)
    xb, nb = successes_trials(x_b, n_b, "x_b", "n_b", allow_empty=allow_empty)
    xa, na, xb, nb = broadcast({"x_a": xa, "n_a": na, "x_b": xb, "n_b": nb})
    return xa, na, xb, nb


def scalar_or_array(arr: np.ndarray) -> Any:
    """Return a Python float for 0-d input, the array otherwise."""
    arr = np.asarray(arr)
    return float(arr) if arr.ndim == 0 else arr
