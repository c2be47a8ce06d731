"""Frozen result records returned by the statistics functions.

Fields holding numbers are Python floats when every input was a scalar and numpy arrays
(broadcast shape of the inputs) otherwise. Differences are always treatment ``b`` minus
control ``a``. Records that can hold arrays compare by identity (``eq=False``): compare
their fields instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FloatOrArray = Any  # float, or np.ndarray of float64 when the inputs were arrays


@dataclass(frozen=True, eq=False)
class ProportionsTestResult:
    """Two-proportion z-test (see :func:`experiments.stats.proportions_ztest`).

    Attributes
    ----------
    statistic : z statistic, ``effect / standard_error``.
    p_value : p-value for ``alternative``.
    effect : absolute difference of rates ``p_b - p_a`` (probability units).
    ci_low, ci_high : confidence interval on ``effect`` (unpooled Wald standard error);
        one-sided alternatives give a one-sided interval with an infinite end.
    rate_a, rate_b : observed rates ``x / n``.
    relative_lift : ``p_b / p_a - 1`` (NaN when ``x_a == 0``).
    lift_ci_low, lift_ci_high : interval on the relative lift from the log-ratio (Katz)
        interval, ``exp(bounds) - 1``; NaN when either arm has no successes.
    standard_error : standard error used by the test (pooled or unpooled).
    alpha, alternative, pooled : the settings used.
    """

    statistic: FloatOrArray
    p_value: FloatOrArray
    effect: FloatOrArray
    ci_low: FloatOrArray
    ci_high: FloatOrArray
    rate_a: FloatOrArray
    rate_b: FloatOrArray
    relative_lift: FloatOrArray
    lift_ci_low: FloatOrArray
    lift_ci_high: FloatOrArray
    standard_error: FloatOrArray
    alpha: float
    alternative: str
    pooled: bool


@dataclass(frozen=True)
class TTestResult:
    """Welch two-sample t-test (see :func:`experiments.stats.welch_ttest`).

    Attributes
    ----------
    statistic : t statistic, ``effect / standard_error``.
    p_value : p-value for ``alternative`` from Student's t with ``df`` degrees of freedom.
    effect : ``mean_b - mean_a`` in the units of the data (e.g. currency per recipient).
    ci_low, ci_high : confidence interval on ``effect`` (one-sided for one-sided tests).
    df : Welch-Satterthwaite degrees of freedom.
    mean_a, mean_b : sample means.
    standard_error : ``sqrt(s_a^2 / n_a + s_b^2 / n_b)``.
    relative_lift : ``mean_b / mean_a - 1`` (NaN when ``mean_a == 0``).
    n_a, n_b : sample sizes.
    alpha, alternative : the settings used.
    """

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    df: float
    mean_a: float
    mean_b: float
    standard_error: float
    relative_lift: float
    n_a: int
    n_b: int
    alpha: float
    alternative: str


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Bootstrap interval (see :func:`experiments.stats.bootstrap_ci`).

    Attributes
    ----------
    effect : the statistic on the original samples.
    ci_low, ci_high : ``1 - alpha`` interval (``percentile`` or ``basic`` method).
    standard_error : standard deviation of the bootstrap distribution.
    distribution : the ``n_resamples`` bootstrap replicates, shape ``(n_resamples,)``.
    alpha, method : the settings used.
    """

    effect: float
    ci_low: float
    ci_high: float
    standard_error: float
    distribution: np.ndarray
    alpha: float
    method: str


@dataclass(frozen=True, eq=False)
class SRMResult:
    """Sample-ratio-mismatch check (see :func:`experiments.stats.srm_test`).

    Attributes
    ----------
    statistic : Pearson chi-square statistic ``sum((O - E)^2 / E)``.
    p_value : upper tail of chi-square with ``df = k - 1``.
    df : degrees of freedom.
    expected : expected counts ``E``, shape ``(k,)``.
    mismatch : ``p_value < threshold``.
    threshold : the p-value below which a mismatch is flagged.
    """

    statistic: float
    p_value: float
    df: int
    expected: np.ndarray
    mismatch: bool
    threshold: float


@dataclass(frozen=True, eq=False)
class MSPRTResult:
    """Mixture sequential probability ratio test (see :func:`experiments.stats.msprt`).

    Scalar fields describe the last look; ``*_path`` arrays have one entry per look.

    Attributes
    ----------
    statistic : mixture likelihood ratio ``Lambda`` at the last look.
    p_value : always-valid p-value at the last look (running minimum of ``1 / Lambda``).
    effect : ``mean_b - mean_a`` at the last look.
    ci_low, ci_high : always-valid ``1 - alpha`` confidence sequence at the last look
        (running intersection of the per-look intervals).
    rejected : whether ``p_value < alpha`` at any look (then forever after).
    first_rejection : index of the first look with ``p_value < alpha``, or ``None``.
    n_a_path, n_b_path : observations per arm at each look.
    effect_path, variance_path : ``mean_b - mean_a`` and its variance ``V`` at each look.
    statistic_path, p_value_path, ci_low_path, ci_high_path : per-look values.
    tau2, theta0, alpha : the settings used.
    """

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    rejected: bool
    first_rejection: int | None
    n_a_path: np.ndarray
    n_b_path: np.ndarray
    effect_path: np.ndarray
    variance_path: np.ndarray
    statistic_path: np.ndarray
    p_value_path: np.ndarray
    ci_low_path: np.ndarray
    ci_high_path: np.ndarray
    tau2: float
    theta0: float
    alpha: float


@dataclass(frozen=True)
class CupedResult:
    """CUPED-adjusted comparison (see :func:`experiments.stats.cuped`).

    Attributes
    ----------
    statistic, p_value, effect, ci_low, ci_high, df : Welch t-test on the adjusted
        outcomes ``y - theta * (x - mean(x))``; ``effect`` is in the units of ``y``.
    theta : adjustment coefficient ``cov(x, y) / var(x)`` over both arms pooled.
    variance_reduction : ``1 - var(y_adj) / var(y)`` over both arms (pooled), in [0, 1].
    unadjusted : the Welch test on the raw outcomes, for comparison.
    alpha, alternative : the settings used.
    """

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    df: float
    theta: float
    variance_reduction: float
    unadjusted: TTestResult
    alpha: float
    alternative: str


@dataclass(frozen=True, eq=False)
class ZTestResult:
    """z-test of a difference with a normal approximation (see
    :func:`experiments.stats.poisson_rate_diff` and
    :func:`experiments.stats.normal_diff_test`).

    Attributes
    ----------
    statistic : z statistic, ``effect / standard_error`` (NaN when the standard error is
        zero).
    p_value : p-value for ``alternative``.
    effect : the difference ``b - a``, in the units of the estimates.
    ci_low, ci_high : confidence interval on ``effect`` (one-sided for one-sided tests).
    standard_error : standard error of ``effect``.
    prob_positive, prob_negative : ``Phi(statistic)`` and ``Phi(-statistic)``: the
        posterior probability that the true difference is above (below) zero under a
        flat prior and a normal likelihood.
    alpha, alternative : the settings used.
    """

    statistic: FloatOrArray
    p_value: FloatOrArray
    effect: FloatOrArray
    ci_low: FloatOrArray
    ci_high: FloatOrArray
    standard_error: FloatOrArray
    prob_positive: FloatOrArray
    prob_negative: FloatOrArray
    alpha: float
    alternative: str


@dataclass(frozen=True)
class BlockTTestResult:
    """t-test of a run total from per-block values (see
    :func:`experiments.stats.block_ttest`).

    Attributes
    ----------
    statistic : t statistic, ``effect / standard_error`` (NaN when every block is equal).
    p_value : p-value for ``alternative`` from Student's t with ``df`` degrees of freedom.
    effect : mean over groups of the sum of each group's blocks (e.g. revenue per
        subscriber over the whole run, currency units).
    ci_low, ci_high : confidence interval on ``effect`` (one-sided for one-sided tests).
    df : ``n_blocks - 1``.
    standard_error : ``blocks_per_group * s / sqrt(n_blocks)``, ``s`` the sample standard
        deviation of the blocks.
    prob_positive, prob_negative : posterior probability that the true total is above
        (below) zero: the Student-t posterior of a flat prior, ``T_df(statistic)`` and
        ``T_df(-statistic)``.
    n_blocks : number of finite blocks used.
    blocks_per_group : the most finite blocks in one group (e.g. days of the run).
    alpha, alternative : the settings used.
    """

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    df: int
    standard_error: float
    prob_positive: float
    prob_negative: float
    n_blocks: int
    blocks_per_group: int
    alpha: float
    alternative: str
