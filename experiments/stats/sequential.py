r"""Always-valid sequential testing: the mixture SPRT of Johari et al.

Reference: R. Johari, L. Pekelis, D. Walsh, "Always valid inference: bringing sequential
analysis to A/B testing" (2015; Operations Research 2022), and Johari et al., "Peeking at
A/B tests" (KDD 2017).

At a look with :math:`n_a, n_b` observations, let :math:`\hat\theta = \bar b - \bar a` and
:math:`V = \sigma_a^2 / n_a + \sigma_b^2 / n_b` its variance. Mixing the normal likelihood
ratio against :math:`H_0: \theta = \theta_0` over :math:`\theta \sim N(\theta_0, \tau^2)`
gives

.. math::

    \Lambda = \sqrt{\frac{V}{V + \tau^2}}
              \exp\!\Big(\frac{\tau^2 (\hat\theta - \theta_0)^2}{2 V (V + \tau^2)}\Big),

a nonnegative martingale under :math:`H_0`, so by Ville's inequality
:math:`P(\sup_n \Lambda_n \ge 1/\alpha) \le \alpha`. The always-valid p-value is
:math:`p_n = \min(p_{n-1}, 1/\Lambda_n)`, :math:`p_0 = 1`: stopping whenever
:math:`p_n < \alpha` keeps the type-I error at most :math:`\alpha` however often one
looks. Inverting :math:`\Lambda(\theta_0) < 1/\alpha` gives the confidence sequence
:math:`\hat\theta \pm \sqrt{\frac{2V(V+\tau^2)}{\tau^2}\big(\log\frac1\alpha +
\frac12\log\frac{V+\tau^2}{V}\big)}`, intersected over looks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.stats._validate import _short, check_alpha, sample
from experiments.stats.results import MSPRTResult
from policies.errors import StatsInputError

__all__ = ["msprt"]


def _positive(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise StatsInputError(f"{name}: expected a positive number, got {_short(value)}") from None
    if not (np.isfinite(v) and v > 0):
        raise StatsInputError(f"{name}: expected a positive number, got {_short(value)}")
    return v


def _cumulative(x: np.ndarray, n: np.ndarray, plug_in: bool) -> tuple[np.ndarray, np.ndarray]:
    """Means and (ddof=1) variances of the first ``n`` values, for each ``n``."""
    shift = x[0]
    c1 = np.concatenate([[0.0], np.cumsum(x - shift)])
    c2 = np.concatenate([[0.0], np.cumsum((x - shift) ** 2)])
    s1, s2 = c1[n], c2[n]
    mean = shift + s1 / n
    if not plug_in:
        return mean, np.empty(0)
    var = np.maximum(s2 - s1**2 / n, 0.0) / (n - 1)
    return mean, var


def msprt(a: Any, b: Any, tau2: float, sigma2_a: float | None = None,
          sigma2_b: float | None = None, looks: Any = None, theta0: float = 0.0,
          alpha: float = 0.05) -> MSPRTResult:
    r"""Mixture sequential probability ratio test for ``mean(b) - mean(a)``.

    See the module docstring for the formulas.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Control and treatment observations in arrival order (e.g. 0/1 conversions or
        revenue per recipient).
    tau2 : float > 0
        Mixing variance :math:`\tau^2` of the effect under the alternative, in squared
        units of the data. Power is best for effects of size about :math:`\tau`; a common
        choice is the square of a plausible effect (e.g. ``(0.1 * baseline)**2``).
    sigma2_a, sigma2_b : float > 0, optional
        Known per-observation variances. When omitted, the running sample variance
        (``ddof=1``) of each arm is plugged in at every look (then each look needs at least
        two observations per arm); a look whose plug-in ``V`` is 0 has
        :math:`\Lambda = 1` and an infinite interval.
    looks : array_like of int, shape (L,) or (L, 2), optional
        Observations per arm at each look, nondecreasing: shape ``(L,)`` uses the first
        ``n`` of each arm, ``(L, 2)`` gives ``(n_a, n_b)`` per look. Default: a look after
        every pair, ``n = m, ..., min(n_a, n_b)`` with ``m = 2`` (plug-in) or 1 (known).
    theta0 : float, default 0
        Effect under the null hypothesis.
    alpha : float in (0, 1)
        Level of the always-valid p-value threshold and of the confidence sequence.

    Returns
    -------
    MSPRTResult
    """
    alpha = check_alpha(alpha)
    tau2 = _positive(tau2, "tau2")
    theta0 = float(theta0)
    known = sigma2_a is not None or sigma2_b is not None
    if known and (sigma2_a is None or sigma2_b is None):
        raise StatsInputError(
            "sigma2_a, sigma2_b: expected both known variances or neither, got "
            f"{_short(sigma2_a)} and {_short(sigma2_b)}"
        )
    m = 1 if known else 2
    xa = sample(a, "a", min_size=m)
    xb = sample(b, "b", min_size=m)
    if looks is None:
        n_a = n_b = np.arange(m, min(xa.size, xb.size) + 1, dtype=np.int64)
    else:
        lk = np.asarray(looks)
        if lk.size == 0 or not np.issubdtype(lk.dtype, np.integer) or lk.ndim not in (1, 2) \
                or (lk.ndim == 2 and lk.shape[1] != 2):
            raise StatsInputError(
                f"looks: expected a non-empty integer array of shape (L,) or (L, 2), got "
                f"{_short(looks)}"
            )
        lk = lk.astype(np.int64)
        n_a, n_b = (lk, lk) if lk.ndim == 1 else (lk[:, 0], lk[:, 1])
        for arr, name, size in ((n_a, "a", xa.size), (n_b, "b", xb.size)):
            if np.any(arr < m) or np.any(arr > size) or np.any(np.diff(arr) < 0):
                raise StatsInputError(
                    f"looks: expected nondecreasing counts of {name} in [{m}, {size}], got "
                    f"{_short(arr.tolist())}"
                )
    mean_a, var_a = _cumulative(xa, n_a, not known)
    mean_b, var_b = _cumulative(xb, n_b, not known)
    if known:
        var_a = np.full(n_a.shape, _positive(sigma2_a, "sigma2_a"))
        var_b = np.full(n_b.shape, _positive(sigma2_b, "sigma2_b"))
    effect = mean_b - mean_a
    v = var_a / n_a + var_b / n_b
    ok = v > 0
    vs = np.where(ok, v, 1.0)
    log_lambda = np.where(
        ok, 0.5 * np.log(vs / (vs + tau2)) + tau2 * (effect - theta0) ** 2 / (2 * vs * (vs + tau2)),
        0.0,
    )
    stat = np.exp(log_lambda)
    p_path = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lambda)))
    half = np.where(
        ok, np.sqrt(2 * vs * (vs + tau2) / tau2
                    * (np.log(1 / alpha) + 0.5 * np.log((vs + tau2) / vs))), np.inf,
    )
    lo_path = np.maximum.accumulate(effect - half)
    hi_path = np.minimum.accumulate(effect + half)
    hits = np.flatnonzero(p_path < alpha)
    return MSPRTResult(
        statistic=float(stat[-1]), p_value=float(p_path[-1]), effect=float(effect[-1]),
        ci_low=float(lo_path[-1]), ci_high=float(hi_path[-1]), rejected=bool(hits.size),
        first_rejection=int(hits[0]) if hits.size else None,
        n_a_path=n_a, n_b_path=n_b, effect_path=effect, variance_path=v,
        statistic_path=stat, p_value_path=p_path, ci_low_path=lo_path, ci_high_path=hi_path,
        tau2=tau2, theta0=theta0, alpha=alpha,
    )
