"""CUPED: variance reduction with a pre-experiment covariate (Deng et al., WSDM 2013)."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.stats._validate import _short, sample
from experiments.stats.frequentist import welch_ttest
from experiments.stats.results import CupedResult
from policies.errors import StatsInputError

__all__ = ["cuped", "cuped_theta"]


def cuped_theta(y: Any, x: Any) -> float:
    r"""Adjustment coefficient :math:`\theta = \mathrm{cov}(x, y) / \mathrm{var}(x)`.

    Parameters
    ----------
    y, x : array_like, shape (n,)
        Outcome and pre-period covariate of the same units.
    """
    yy = sample(y, "y", min_size=2)
    xx = sample(x, "x", min_size=2)
    if xx.shape != yy.shape:
        raise StatsInputError(f"x: expected shape {yy.shape} like y, got {xx.shape}")
    vx = xx.var(ddof=1)
    if vx <= 0:
        raise StatsInputError(f"x: expected a covariate that varies, got constant {xx[0]:g}")
    return float(np.cov(xx, yy, ddof=1)[0, 1] / vx)


def cuped(y_a: Any, x_a: Any, y_b: Any, x_b: Any, alpha: float = 0.05,
          alternative: str = "two-sided", theta: float | None = None) -> CupedResult:
    r"""Compare arms on CUPED-adjusted outcomes.

    :math:`y^{adj}_i = y_i - \theta (x_i - \bar x)`, with :math:`\bar x` the mean of the
    covariate over both arms and :math:`\theta = \mathrm{cov}(x, y)/\mathrm{var}(x)`
    estimated on both arms pooled (randomization makes :math:`E[x]` equal in the arms, so
    the adjusted difference of means stays unbiased for ``mean(b) - mean(a)``). The
    variance of the effect estimate shrinks by about :math:`\rho^2 = \mathrm{corr}(x, y)^2`.

    Parameters
    ----------
    y_a, x_a : array_like, shape (n_a,)
        Control outcomes (e.g. revenue in the experiment period) and the same units'
        pre-period covariate (e.g. revenue in the 4 weeks before).
    y_b, x_b : array_like, shape (n_b,)
        The same for treatment.
    alpha, alternative
        As in :func:`welch_ttest`.
    theta : float, optional
        Use this coefficient instead of estimating it.

    Returns
    -------
    CupedResult
        Welch test on the adjusted outcomes; ``variance_reduction`` is
        :math:`1 - se_{adj}^2 / se_{raw}^2` (share of the effect estimate's variance removed).
    """
    ya, xa = sample(y_a, "y_a", 2), sample(x_a, "x_a", 2)
    yb, xb = sample(y_b, "y_b", 2), sample(x_b, "x_b", 2)
    if xa.shape != ya.shape:
        raise StatsInputError(f"x_a: expected shape {ya.shape} like y_a, got {xa.shape}")
    if xb.shape != yb.shape:
        raise StatsInputError(f"x_b: expected shape {yb.shape} like y_b, got {xb.shape}")
    y_all, x_all = np.concatenate([ya, yb]), np.concatenate([xa, xb])
    if theta is None:
        th = cuped_theta(y_all, x_all)
    else:
        th = float(theta)
        if not np.isfinite(th):
            raise StatsInputError(f"theta: expected a finite number, got {_short(theta)}")
    xbar = x_all.mean()
    raw = welch_ttest(ya, yb, alpha=alpha, alternative=alternative)
    adj = welch_ttest(ya - th * (xa - xbar), yb - th * (xb - xbar), alpha=alpha,
                      alternative=alternative)
    reduction = 1.0 - adj.standard_error**2 / raw.standard_error**2 \
        if raw.standard_error > 0 else float("nan")
    return CupedResult(
        statistic=adj.statistic, p_value=adj.p_value, effect=adj.effect, ci_low=adj.ci_low,
        ci_high=adj.ci_high, df=adj.df, theta=th, variance_reduction=float(reduction),
        unadjusted=raw, alpha=adj.alpha, alternative=adj.alternative,
    )
