"""Power analysis for two proportions: per-arm sample size and minimum detectable effect."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as _st

from experiments.stats._validate import (
    _short,
    as_float_array,
    check_alpha,
    check_choice,
    scalar_or_array,
)
from policies.errors import StatsInputError

__all__ = ["mde_for_sample_size", "sample_size_two_proportions"]

_METHODS = ("unpooled", "pooled", "cohens_h")
_SIDES = ("two-sided", "one-sided")


def _z_alpha(alpha: float, alternative: str) -> float:
    return float(_st.norm.isf(alpha / 2.0 if alternative == "two-sided" else alpha))


def _check_baseline(baseline: Any) -> np.ndarray:
    p1 = as_float_array(baseline, "baseline")
    if np.any((p1 <= 0) | (p1 >= 1)):
        raise StatsInputError(f"baseline: expected a rate in (0, 1), got {_short(baseline)}")
    return p1


def _n_continuous(p1: np.ndarray, p2: np.ndarray, za: float, zb: float, method: str,
                  two_sided: bool) -> np.ndarray:
    """Per-arm sample size before rounding up."""
    d = p2 - p1
    v = p1 * (1 - p1) + p2 * (1 - p2)
    if method == "unpooled":
        return (za + zb) ** 2 * v / d**2
    if method == "pooled":
        pbar = (p1 + p2) / 2.0
        return (za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(v)) ** 2 / d**2
    h = np.abs(2 * np.arcsin(np.sqrt(p2)) - 2 * np.arcsin(np.sqrt(p1)))
    s = _solve_s(za, zb, two_sided, np.broadcast_to(np.float64(zb), h.shape))
    return 2 * s**2 / h**2


def _solve_s(za: float, zb: float, two_sided: bool, power_z: np.ndarray) -> np.ndarray:
    """Non-centrality ``s = |h| sqrt(n/2)`` reaching the target power (NormalIndPower).

    One-sided: ``Phi(s - za) = power`` so ``s = za + zb``. Two-sided, as statsmodels, also
    counts the far tail: ``Phi(s - za) + Phi(-s - za) = power``, solved by Newton's method
    from ``za + zb`` (the function is increasing and concave there, so it converges).
    """
    target = _st.norm.cdf(power_z)
    s = np.full(np.shape(power_z), za + zb, dtype=np.float64)
    if not two_sided:
        return s
    for _ in range(50):
        g = _st.norm.cdf(s - za) + _st.norm.cdf(-s - za) - target
        dg = _st.norm.pdf(s - za) - _st.norm.pdf(s + za)
        step = g / dg
        s = s - step
        if np.all(np.abs(step) < 1e-14 * np.maximum(1.0, s)):
            break
    return s


def sample_size_two_proportions(baseline: Any, relative_mde: Any, alpha: float = 0.05,
                                power: float = 0.8, method: str = "unpooled",
                                alternative: str = "two-sided") -> Any:
    r"""Per-arm sample size to detect a relative change of a conversion rate.

    Parameters
    ----------
    baseline : float or array_like
        Control rate :math:`p_1` in (0, 1) (probability per recipient).
    relative_mde : float or array_like
        Relative change to detect, :math:`p_2 = p_1 (1 + \text{relative\_mde})`, e.g. 0.1
        for +10 %; nonzero, with :math:`p_2` in (0, 1).
    alpha : float in (0, 1)
        Significance level.
    power : float in (0, 1)
        :math:`1 - \beta`.
    method : {"unpooled", "pooled", "cohens_h"}
        With :math:`z_a = \Phi^{-1}(1-\alpha/2)` (two-sided) or :math:`\Phi^{-1}(1-\alpha)`,
        :math:`z_b = \Phi^{-1}(\text{power})`, :math:`\Delta = p_2 - p_1`, :math:`q = 1 - p`:

        - ``unpooled`` (classic): :math:`n = (z_a + z_b)^2 (p_1 q_1 + p_2 q_2) / \Delta^2`;
        - ``pooled`` (Fleiss, no continuity correction), :math:`\bar p = (p_1+p_2)/2`:
          :math:`n = (z_a\sqrt{2\bar p\bar q} + z_b\sqrt{p_1q_1 + p_2q_2})^2/\Delta^2`;
        - ``cohens_h``: effect :math:`h = 2\arcsin\sqrt{p_2} - 2\arcsin\sqrt{p_1}` and the
          normal power equation of statsmodels' ``NormalIndPower`` with equal arms
          (two-sided power counts both tails), :math:`n = 2 s^2 / h^2`.
    alternative : {"two-sided", "one-sided"}

    Returns
    -------
    int or numpy.ndarray of int64
        Per-arm sample size, rounded up.

    Examples
    --------
    >>> sample_size_two_proportions(0.05, 0.1)
    31231
    """
    alpha = check_alpha(alpha)
    power = check_alpha(power, "power")
    method = check_choice(method, "method", _METHODS)
    alternative = check_choice(alternative, "alternative", _SIDES)
    p1 = _check_baseline(baseline)
    mde = as_float_array(relative_mde, "relative_mde")
    if np.any(mde == 0):
        raise StatsInputError(
            f"relative_mde: expected a nonzero change, got {_short(relative_mde)}"
        )
    p1, mde = np.broadcast_arrays(p1, mde)
    p2 = p1 * (1 + mde)
    if np.any((p2 <= 0) | (p2 >= 1)):
        raise StatsInputError(
            f"relative_mde: expected baseline * (1 + relative_mde) in (0, 1), got "
            f"{_short(relative_mde)} (treatment rate {_short(p2.tolist())})"
        )
    za, zb = _z_alpha(alpha, alternative), float(_st.norm.ppf(power))
    n = _n_continuous(p1, p2, za, zb, method, alternative == "two-sided")
    # Round up, ignoring floating-point noise just above an integer.
    out = np.ceil(n - 1e-9 * np.maximum(1.0, n)).astype(np.int64)
    return int(out) if out.ndim == 0 else out


def mde_for_sample_size(baseline: Any, n_per_arm: Any, alpha: float = 0.05,
                        power: float = 0.8, method: str = "unpooled",
                        alternative: str = "two-sided") -> Any:
    r"""Smallest relative increase detectable with ``n_per_arm`` recipients per arm.

    The inverse of :func:`sample_size_two_proportions` (same ``method`` formulas, solved
    for :math:`p_2 > p_1` with the size kept continuous): ``cohens_h`` in closed form,
    :math:`p_2 = \sin^2(\arcsin\sqrt{p_1} + s / \sqrt{2n})`; the others by bisection
    on :math:`p_2 \in (p_1, 1)` (the size is decreasing in :math:`p_2`), to 1e-13.

    Parameters
    ----------
    baseline : float or array_like
        Control rate in (0, 1).
    n_per_arm : float or array_like
        Recipients per arm, > 0.
    alpha, power, method, alternative
        As in :func:`sample_size_two_proportions`.

    Returns
    -------
    float or numpy.ndarray
        Relative MDE :math:`p_2/p_1 - 1`; NaN where even :math:`p_2 \to 1` is not
        detectable with that many recipients.
    """
    alpha = check_alpha(alpha)
    power = check_alpha(power, "power")
    method = check_choice(method, "method", _METHODS)
    alternative = check_choice(alternative, "alternative", _SIDES)
    p1 = _check_baseline(baseline)
    n = as_float_array(n_per_arm, "n_per_arm")
    if np.any(n <= 0):
        raise StatsInputError(f"n_per_arm: expected a positive size, got {_short(n_per_arm)}")
    p1, n = np.broadcast_arrays(p1, n)
    za, zb = _z_alpha(alpha, alternative), float(_st.norm.ppf(power))
    two = alternative == "two-sided"
    if method == "cohens_h":
        s = _solve_s(za, zb, two, np.full(p1.shape, zb))
        angle = np.arcsin(np.sqrt(p1)) + s / np.sqrt(2 * n)
        p2 = np.where(angle < np.pi / 2, np.sin(np.minimum(angle, np.pi / 2)) ** 2, np.nan)
        return scalar_or_array(p2 / p1 - 1.0)
    lo = p1.astype(np.float64).copy()
    hi = np.ones_like(lo)
    reachable = _n_continuous(p1, np.nextafter(hi, 0), za, zb, method, two) <= n
    for _ in range(200):
        mid = (lo + hi) / 2
        too_small = _n_continuous(p1, mid, za, zb, method, two) > n
        lo = np.where(too_small, mid, lo)
        hi = np.where(too_small, hi, mid)
        if np.all(hi - lo < 1e-13):
            break
    p2 = np.where(reachable, hi, np.nan)
    return scalar_or_array(p2 / p1 - 1.0)
