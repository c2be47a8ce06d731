"""Input checks shared by the statistics functions.

Every check raises :class:`policies.errors.StatsInputError` with a message that names the
argument, what was expected and what was received.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from policies.errors import StatsInputError

ALTERNATIVES = ("two-sided", "larger", "smaller")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Return ``alpha`` as a float strictly inside (0, 1)."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise StatsInputError(
            f"{name}: expected a probability in (0, 1), got {_short(alpha)}"
        ) from None
    if not 0.0 < a < 1.0:
        raise StatsInputError(f"{name}: expected a probability in (0, 1), got {_short(alpha)}")
    return a


def check_alternative(alternative: Any) -> str:
    """Return ``alternative`` if it is one of ``two-sided``, ``larger``, ``smaller``."""
    if alternative not in ALTERNATIVES:
        raise StatsInputError(
            f"alternative: expected one of {list(ALTERNATIVES)}, got {_short(alternative)}"
        )
    return str(alternative)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise StatsInputError(f"{name}: expected one of {list(choices)}, got {_short(value)}")
    return str(value)


def as_float_array(value: Any, name: str) -> np.ndarray:
    """Convert ``value`` to a float64 array, rejecting non-numeric and non-finite input."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsInputError(f"{name}: expected numbers, got {_short(value)}") from None
    if not np.all(np.isfinite(arr)):
        raise StatsInputError(f"{name}: expected finite numbers, got {_short(value)}")
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
        raise StatsInputError(f"{name}: expected non-negative counts, got {_short(value)}")
    if np.any(arr != np.round(arr)):
        raise StatsInputError(f"{name}: expected whole-number counts, got {_short(value)}")
    return arr


def successes_trials(x: Any, n: Any, x_name: str, n_name: str,
                     allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (successes, trials) pair: counts, ``x <= n`` and ``n > 0``."""
    xa = counts(x, x_name)
    na = counts(n, n_name)
    try:
        xa, na = np.broadcast_arrays(xa, na)
    except ValueError:
        raise StatsInputError(
            f"{x_name}, {n_name}: expected shapes that broadcast, got {np.shape(xa)} "
            f"and {np.shape(na)}"
        ) from None
    if not allow_empty and np.any(na <= 0):
        raise StatsInputError(f"{n_name}: expected a positive number of trials, got {_short(n)}")
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
    try:
        xa, na, xb, nb = np.broadcast_arrays(xa, na, xb, nb)
    except ValueError:
        raise StatsInputError(
            f"x_a, n_a, x_b, n_b: expected shapes that broadcast, got {np.shape(xa)} and "
            f"{np.shape(xb)}"
        ) from None
    return xa, na, xb, nb


def scalar_or_array(arr: np.ndarray) -> Any:
    """Return a Python float for 0-d input, the array otherwise."""
    arr = np.asarray(arr)
    return float(arr) if arr.ndim == 0 else arr
