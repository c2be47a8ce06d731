"""Intervals and tests for experiment metrics: Wilson, per-block t, Poisson rates.

* :func:`wilson_interval` -- score interval of a proportion (opens per email sent,
  orders per subscriber);
* :func:`block_ttest` -- t interval and test of a run total from per-block values, e.g.
  daily revenue per subscriber over replications x days, or the paired arm-minus-control
  differences of those blocks;
* :func:`poisson_rate_diff` -- difference of two Poisson rates (e.g. orders per
  subscriber in treatment minus holdout) with a Wald interval;
* :func:`normal_diff_test` -- z-test of the difference of two independent estimates
  with known standard errors (e.g. two incremental effects).

Conventions as in :mod:`experiments.stats`: arm ``a`` is control (or the baseline), ``b``
treatment; effects are ``b - a``; tests are two-sided unless ``alternative`` says
otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as _st

from experiments.stats._validate import (
    _short,
    as_float_array,
    broadcast,
    check_alpha,
    check_alternative,
    counts,
    scalar_or_array,
    successes_trials,
)
from experiments.stats.frequentist import _p_and_ci
from experiments.stats.results import BlockTTestResult, ZTestResult
from policies.errors import StatsInputError

__all__ = ["block_ttest", "newcombe_diff_interval", "normal_diff_test", "poisson_rate_diff",
           "wilson_interval"]


def wilson_interval(x: Any, n: Any, alpha: float = 0.05) -> tuple[Any, Any]:
    r"""Wilson score interval of a proportion ``x / n``.

    Parameters
    ----------
    x : int or array_like
        Successes (e.g. opens), whole numbers ``0 <= x <= n``.
    n : int or array_like
        Trials (e.g. emails sent), positive whole numbers; broadcasts with ``x``.
    alpha : float in (0, 1), default 0.05
        The interval has coverage ``1 - alpha``.

    Returns
    -------
    (low, high) : tuple of float or numpy.ndarray
        In probability units; arrays of the broadcast shape of ``x`` and ``n`` when
        either is an array. With :math:`\hat p = x/n` and :math:`z = \Phi^{-1}(1-\alpha/2)`:
        :math:`\big(\hat p + z^2/2n \mp z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}\big)
        / (1 + z^2/n)` (statsmodels ``proportion_confint(method="wilson")``), computed
        without cancellation: ``0 <= low <= x/n <= high <= 1`` always, ``low = 0`` exactly
        at ``x = 0`` and ``high = 1`` exactly at ``x = n``.

    Examples
    --------
    >>> low, high = wilson_interval(20, 100)
    >>> round(low, 4), round(high, 4)
    (0.1334, 0.2888)
    """
    alpha = check_alpha(alpha)
    xa, na = successes_trials(x, n, "x", "n")
    z = _st.norm.ppf(1 - alpha / 2)
    p = xa / na
    # Work on the smaller of p and 1 - p, where ``centre + half`` has no cancellation;
    # the other root is ``q^2 / (den * far)`` (the roots' product), exactly 0 at q = 0.
    # The bounds of p follow by symmetry, so x = 0 gives low = 0 and x = n high = 1
    # exactly, and rounding can never put a bound outside [0, 1] or the estimate
    # outside the interval (the subtraction form gave 1.08e-19 > 0/3200).
    flip = p > 0.5
    q = np.where(flip, (na - xa) / na, p)
    den = 1 + z * z / na
    half = z * np.sqrt(q * (1 - q) / na + z * z / (4 * na * na)) / den
    far = (q + z * z / (2 * na)) / den + half
    near = q * q / (den * far)
    low = np.where(flip, 1 - far, near)
    high = np.where(flip, 1 - near, far)
    low = np.clip(low, 0.0, p)
    high = np.clip(high, p, 1.0)
    return scalar_or_array(low), scalar_or_array(high)


def newcombe_diff_interval(x_a: Any, n_a: Any, x_b: Any, n_b: Any,
                           alpha: float = 0.05) -> tuple[Any, Any]:
    r"""Newcombe's hybrid score interval of ``x_b / n_b - x_a / n_a`` (two independent
    proportions), built from the two :func:`wilson_interval` s.

    Suited to small counts: unlike the Wald interval it does not collapse when an arm has
    0 or all successes (Wald gives ``0/23`` no variance at all), and stays within
    ``[-1, 1]``. Newcombe (1998), method 10; statsmodels
    ``confint_proportions_2indep(..., method="newcomb", compare="diff")``.

    Parameters
    ----------
    x_a, n_a : int or array_like
        Successes and trials of arm ``a`` (control), ``0 <= x_a <= n_a``, ``n_a > 0``.
    x_b, n_b : int or array_like
        The same for arm ``b``; all four broadcast together.
    alpha : float in (0, 1), default 0.05

    Returns
    -------
    (low, high) : tuple of float or numpy.ndarray
        With :math:`(l_i, u_i)` the Wilson intervals of :math:`\hat p_i`:
        :math:`d - \sqrt{(\hat p_b - l_b)^2 + (u_a - \hat p_a)^2}` and
        :math:`d + \sqrt{(u_b - \hat p_b)^2 + (\hat p_a - l_a)^2}`,
        :math:`d = \hat p_b - \hat p_a`; ``low <= d <= high`` always.

    Examples
    --------
    >>> low, high = newcombe_diff_interval(0, 23, 3, 32)
    >>> round(low, 4), round(high, 4)
    (-0.062, 0.2422)
    """
    alpha = check_alpha(alpha)
    xa, na = successes_trials(x_a, n_a, "x_a", "n_a")
    xb, nb = successes_trials(x_b, n_b, "x_b", "n_b")
    xa, na, xb, nb = broadcast({"x_a": xa, "n_a": na, "x_b": xb, "n_b": nb})
    la, ua = (np.asarray(v, dtype=np.float64) for v in wilson_interval(xa, na, alpha))
    lb, ub = (np.asarray(v, dtype=np.float64) for v in wilson_interval(xb, nb, alpha))
    pa, pb = xa / na, xb / nb
    d = pb - pa
    low = d - np.hypot(pb - lb, ua - pa)
    high = d + np.hypot(ub - pb, pa - la)
    return (scalar_or_array(np.clip(low, -1.0, d)), scalar_or_array(np.clip(high, d, 1.0)))


def block_ttest(blocks: Any, alpha: float = 0.05,
                alternative: str = "two-sided") -> BlockTTestResult:
    r"""t interval and test of a run total estimated from per-block values.

    A run is cut into blocks (e.g. days) in each of several groups (e.g. replications);
    the quantity of interest is the total over a group's blocks (e.g. revenue per
    subscriber over the whole run). Blocks are treated as independent draws, so the
    total's standard error is ``blocks per group x`` the standard error of one block's
    mean. Paired comparisons pass the block differences (treatment minus control on the
    same subscribers and random numbers): the test is then the paired t-test
    (:func:`scipy.stats.ttest_rel` on the blocks gives the same statistic and p-value).

    Parameters
    ----------
    blocks : array_like, shape (r, d) or (d,)
        Value of each block, one row per group (``r`` groups of up to ``d`` blocks; 1-D:
        one group), in the metric's units per block (e.g. currency per subscriber per
        day). NaN marks a missing block, which is left out; at least 2 finite values.
    alpha : float in (0, 1), default 0.05
    alternative : {"two-sided", "larger", "smaller"}
        ``"larger"`` tests H1: total > 0.

    Returns
    -------
    BlockTTestResult
        ``effect`` is the mean over groups (with a finite block) of each group's sum of
        blocks, ``standard_error = D s / sqrt(B)`` with ``B`` finite blocks, ``D`` the most
        finite blocks in one group and ``s`` their sample standard deviation (``ddof=1``);
        ``df = B - 1``. When every block is equal (``s = 0``) the statistic is NaN, the
        interval is the point ``effect``, the p-value is 1 when the effect is consistent
        with H0 (0 for two-sided, <= 0 for ``larger``, >= 0 for ``smaller``) and 0
        otherwise, and ``prob_positive`` is 0.5 at an effect of 0, else 0 or 1.

    Notes
    -----
    The group totals are summed with pandas' group sum (compensated summation), the
    other sums with numpy, so the result equals, to the last bit, the same computation
    done on a pandas Series indexed by (group, block).

    Examples
    --------
    >>> r = block_ttest([[0.1, 0.3, 0.2], [0.2, 0.4, 0.3]])
    >>> round(r.effect, 3), r.df
    (0.75, 5)
    """
    import pandas as pd

    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    try:
        arr = np.asarray(blocks, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsInputError(f"blocks: expected numbers, got {_short(blocks)}") from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise StatsInputError(f"blocks: expected a 1-D or 2-D array, got shape {arr.shape}")
    if np.any(np.isinf(arr)):
        raise StatsInputError(f"blocks: expected finite numbers or NaN, got {_short(blocks)}")
    finite = ~np.isnan(arr)
    b = int(finite.sum())
    if b < 2:
        raise StatsInputError(f"blocks: expected at least 2 finite block values, got {b}")
    values = arr[finite]  # row-major: group by group, blocks in order
    group = np.nonzero(finite)[0]
    per_group = int(np.bincount(group).max())
    # per-group totals with pandas' (compensated) group sum, then their plain mean
    totals = pd.Series(values).groupby(group, sort=True).sum().to_numpy()
    effect = float(totals.mean())
    se = float(per_group * values.std(ddof=1) / math.sqrt(b))
    df = b - 1
    dist = _st.t(df)
    if se > 0:
        stat = effect / se
        p, lo, hi = (float(v) for v in _p_and_ci(np.asarray(stat), np.asarray(effect),
                                                np.asarray(se), alpha, alternative, dist))
        prob_pos = float(_st.t.cdf(stat, df))
        prob_neg = float(_st.t.cdf(-stat, df))
    else:
        stat = math.nan
        _, lo_a, hi_a = _p_and_ci(np.asarray(0.0), np.asarray(effect), np.asarray(0.0), alpha,
                                  alternative, dist)
        lo, hi = float(lo_a), float(hi_a)
        consistent = {"two-sided": effect == 0, "larger": effect <= 0,
                      "smaller": effect >= 0}[alternative]
        p = 1.0 if consistent else 0.0
        prob_pos = 0.5 if effect == 0 else float(effect > 0)
        prob_neg = 0.5 if effect == 0 else float(effect < 0)
    return BlockTTestResult(
        statistic=stat, p_value=p, effect=effect, ci_low=lo, ci_high=hi, df=df,
        standard_error=se, prob_positive=prob_pos, prob_negative=prob_neg, n_blocks=b,
        blocks_per_group=per_group, alpha=alpha, alternative=alternative,
    )


def _z_result(effect: np.ndarray, se: np.ndarray, alpha: float,
              alternative: str) -> ZTestResult:
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se > 0, effect / np.where(se > 0, se, 1.0), np.nan)
        p, lo, hi = _p_and_ci(stat, effect, se, alpha, alternative, _st.norm)
    return ZTestResult(
        statistic=scalar_or_array(stat), p_value=scalar_or_array(p),
        effect=scalar_or_array(effect), ci_low=scalar_or_array(lo), ci_high=scalar_or_array(hi),
        standard_error=scalar_or_array(se), prob_positive=scalar_or_array(_st.norm.cdf(stat)),
        prob_negative=scalar_or_array(_st.norm.cdf(-stat)), alpha=alpha,
        alternative=alternative,
    )


def poisson_rate_diff(x_a: Any, t_a: Any, x_b: Any, t_b: Any, alpha: float = 0.05,
                      alternative: str = "two-sided") -> ZTestResult:
    r"""Difference of two Poisson rates ``x_b / t_b - x_a / t_a`` (Wald z-test).

    Parameters
    ----------
    x_a, t_a : float or array_like
        Event count (e.g. orders of a holdout group, whole numbers >= 0) and exposure
        (e.g. its subscribers, > 0) of arm ``a``; all four inputs broadcast together.
    x_b, t_b : float or array_like
        The same for arm ``b`` (e.g. the treated group).
    alpha : float in (0, 1), default 0.05
    alternative : {"two-sided", "larger", "smaller"}
        ``"larger"`` tests H1: rate_b > rate_a.

    Returns
    -------
    ZTestResult
        ``effect`` in events per unit of exposure; standard error
        :math:`\sqrt{x_a/t_a^2 + x_b/t_b^2}` (the counts as Poisson variances), as
        statsmodels ``test_poisson_2indep(..., method="wald", compare="diff")``.

    Examples
    --------
    >>> r = poisson_rate_diff(30, 1000, 60, 1000)
    >>> round(r.effect, 3), round(r.standard_error, 5)
    (0.03, 0.00949)
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    xa, xb = counts(x_a, "x_a"), counts(x_b, "x_b")
    ta = as_float_array(t_a, "t_a", low=0.0, low_open=True, what="a positive exposure")
    tb = as_float_array(t_b, "t_b", low=0.0, low_open=True, what="a positive exposure")
    xa, ta, xb, tb = broadcast({"x_a": xa, "t_a": ta, "x_b": xb, "t_b": tb})
    effect = xb / tb - xa / ta
    se = np.sqrt(xb / tb**2 + xa / ta**2)
    return _z_result(effect, se, alpha, alternative)


_hypot = np.vectorize(math.hypot, otypes=[np.float64])


def normal_diff_test(estimate_a: Any, se_a: Any, estimate_b: Any, se_b: Any,
                     alpha: float = 0.05, alternative: str = "two-sided") -> ZTestResult:
    r"""z-test of ``estimate_b - estimate_a`` for two independent, normal estimates.

    Parameters
    ----------
    estimate_a, se_a : float or array_like
        Estimate of arm ``a`` (any units) and its standard error (>= 0, same units).
    estimate_b, se_b : float or array_like
        The same for arm ``b``; all four broadcast together.
    alpha : float in (0, 1), default 0.05
    alternative : {"two-sided", "larger", "smaller"}

    Returns
    -------
    ZTestResult
        ``standard_error = hypot(se_b, se_a)`` (:func:`math.hypot`); statistic and
        p-value are NaN when it is 0.

    Examples
    --------
    >>> r = normal_diff_test(1.0, 0.3, 2.0, 0.4)
    >>> round(r.standard_error, 3), round(r.statistic, 3)
    (0.5, 2.0)
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    ea, eb = as_float_array(estimate_a, "estimate_a"), as_float_array(estimate_b, "estimate_b")
    sa = as_float_array(se_a, "se_a", low=0.0, what="a standard error >= 0")
    sb = as_float_array(se_b, "se_b", low=0.0, what="a standard error >= 0")
    ea, sa, eb, sb = broadcast({"estimate_a": ea, "se_a": sa, "estimate_b": eb, "se_b": sb})
    return _z_result(eb - ea, _hypot(sb, sa), alpha, alternative)
