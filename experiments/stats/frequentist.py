"""Frequentist tests: two proportions, Welch's t, sample-ratio mismatch, multiplicity.

Conventions: arm ``a`` is control, ``b`` treatment; effects are ``b - a``; tests are
two-sided unless ``alternative`` is ``"larger"`` (H1: b > a) or ``"smaller"`` (H1: b < a).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as _st

from experiments.stats._validate import (
    _short,
    check_alpha,
    check_alternative,
    check_choice,
    counts,
    sample,
    scalar_or_array,
    two_arm_counts,
)
from experiments.stats.results import ProportionsTestResult, SRMResult, TTestResult
from policies.errors import StatsInputError

__all__ = ["ADJUST_METHODS", "adjust_pvalues", "proportions_ztest", "srm_test", "welch_ttest"]


def _p_and_ci(stat: np.ndarray, effect: np.ndarray, se: np.ndarray, alpha: float,
              alternative: str, dist: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p-value for ``stat`` and the matching interval ``effect -/+ q * se`` under ``dist``."""
    if alternative == "two-sided":
        p = 2.0 * dist.sf(np.abs(stat))
        q = dist.ppf(1.0 - alpha / 2.0)
        return np.minimum(p, 1.0), effect - q * se, effect + q * se
    q = dist.ppf(1.0 - alpha)
    if alternative == "larger":
        return dist.sf(stat), effect - q * se, np.full_like(effect, np.inf)
    return dist.cdf(stat), np.full_like(effect, -np.inf), effect + q * se


def proportions_ztest(x_a: Any, n_a: Any, x_b: Any, n_b: Any, pooled: bool = True,
                      alternative: str = "two-sided",
                      alpha: float = 0.05) -> ProportionsTestResult:
    r"""Two-proportion z-test with intervals on the difference and the relative lift.

    Parameters
    ----------
    x_a, n_a : int or array_like
        Successes (e.g. conversions) and trials (recipients) in control. Scalars or arrays
        that broadcast together (one test per element).
    x_b, n_b : int or array_like
        The same for treatment.
    pooled : bool, default True
        Standard error of the test statistic. Pooled, under H0 ``p_a = p_b``:
        :math:`\sqrt{\bar p (1-\bar p)(1/n_a + 1/n_b)}` with
        :math:`\bar p = (x_a + x_b)/(n_a + n_b)` (statsmodels ``proportions_ztest``);
        unpooled (Wald): :math:`\sqrt{p_a(1-p_a)/n_a + p_b(1-p_b)/n_b}`.
    alternative : {"two-sided", "larger", "smaller"}
        ``"larger"`` tests H1: :math:`p_b > p_a`.
    alpha : float in (0, 1)
        The interval has coverage ``1 - alpha``.

    Returns
    -------
    ProportionsTestResult
        ``statistic = (p_b - p_a) / se``; the interval on the difference always uses the
        unpooled (Wald) standard error; the relative-lift interval is
        :math:`\exp(\log(p_b/p_a) \pm z\,s) - 1` with the Katz log-ratio standard error
        :math:`s = \sqrt{1/x_a - 1/n_a + 1/x_b - 1/n_b}`. When the standard error is zero
        (both arms all-0 or all-1) the statistic and p-value are NaN.

    Examples
    --------
    >>> r = proportions_ztest(200, 10_000, 250, 10_000)
    >>> round(r.effect, 4), round(r.p_value, 4)
    (0.005, 0.0171)
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    xa, na, xb, nb = two_arm_counts(x_a, n_a, x_b, n_b)
    pa, pb = xa / na, xb / nb
    effect = pb - pa
    se_wald = np.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    if pooled:
        pbar = (xa + xb) / (na + nb)
        se = np.sqrt(pbar * (1 - pbar) * (1 / na + 1 / nb))
    else:
        se = se_wald
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se > 0, effect / np.where(se > 0, se, 1.0), np.nan)
        p, _, _ = _p_and_ci(stat, effect, se, alpha, alternative, _st.norm)
        _, lo, hi = _p_and_ci(stat, effect, se_wald, alpha, alternative, _st.norm)
        ok = (xa > 0) & (xb > 0)
        log_ratio = np.where(ok, np.log(np.where(ok, pb / np.where(pa > 0, pa, 1), 1.0)), np.nan)
        s_log = np.sqrt(np.where(ok, 1 / np.where(ok, xa, 1) - 1 / na
                                 + 1 / np.where(ok, xb, 1) - 1 / nb, np.nan))
        _, llo, lhi = _p_and_ci(stat, log_ratio, s_log, alpha, alternative, _st.norm)
        lift = np.where(pa > 0, pb / np.where(pa > 0, pa, 1.0) - 1.0, np.nan)
    return ProportionsTestResult(
        statistic=scalar_or_array(stat), p_value=scalar_or_array(p),
        effect=scalar_or_array(effect), ci_low=scalar_or_array(lo), ci_high=scalar_or_array(hi),
        rate_a=scalar_or_array(pa), rate_b=scalar_or_array(pb),
        relative_lift=scalar_or_array(lift),
        lift_ci_low=scalar_or_array(np.expm1(llo)), lift_ci_high=scalar_or_array(np.expm1(lhi)),
        standard_error=scalar_or_array(se), alpha=alpha, alternative=alternative,
        pooled=bool(pooled),
    )


def welch_ttest(a: Any, b: Any, alpha: float = 0.05,
                alternative: str = "two-sided") -> TTestResult:
    r"""Welch's unequal-variance t-test for ``mean(b) - mean(a)``.

    Suited to revenue per recipient (heavy-tailed, zero-inflated) at the sample sizes
    of email experiments, where the mean's sampling distribution is close to normal.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Per-unit outcomes (e.g. revenue per recipient, currency units), each with at least
        two finite values.
    alpha : float in (0, 1)
    alternative : {"two-sided", "larger", "smaller"}

    Returns
    -------
    TTestResult
        :math:`t = (\bar b - \bar a) / se`, :math:`se = \sqrt{s_a^2/n_a + s_b^2/n_b}`
        (sample variances, ``ddof=1``) and Welch-Satterthwaite
        :math:`df = se^4 / \big((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)\big)`.
        Both samples constant gives NaN statistic, p-value and df.
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    xa = sample(a, "a", min_size=2)
    xb = sample(b, "b", min_size=2)
    na, nb = xa.size, xb.size
    ma, mb = float(xa.mean()), float(xb.mean())
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    se = float(np.sqrt(va + vb))
    effect = mb - ma
    if se > 0:
        df = float((va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)))
        stat = effect / se
        pa, loa, hia = _p_and_ci(np.asarray(stat), np.asarray(effect), np.asarray(se), alpha,
                                 alternative, _st.t(df))
        p, lo, hi = float(pa), float(loa), float(hia)
    else:
        df = stat = float("nan")
        p, lo, hi = float("nan"), effect, effect
    return TTestResult(
        statistic=float(stat), p_value=float(p), effect=effect, ci_low=float(lo),
        ci_high=float(hi), df=df, mean_a=ma, mean_b=mb, standard_error=se,
        relative_lift=mb / ma - 1.0 if ma != 0 else float("nan"), n_a=na, n_b=nb,
        alpha=alpha, alternative=alternative,
    )


def srm_test(observed_counts: Any, expected_ratios: Any = None,
             threshold: float = 0.001) -> SRMResult:
    r"""Sample-ratio-mismatch check: chi-square goodness of fit of the arm counts.

    Parameters
    ----------
    observed_counts : array_like of int, shape (k,)
        Units assigned to each of ``k >= 2`` arms.
    expected_ratios : array_like, shape (k,), optional
        Intended allocation, any positive scale (``[1, 1]``, ``[0.9, 0.1]``);
        default equal split.
    threshold : float in (0, 1), default 0.001
        Flag a mismatch when ``p_value < threshold`` (the customary strict level: SRM
        checks run on every experiment, so false alarms must be rare).

    Returns
    -------
    SRMResult
        :math:`\chi^2 = \sum_i (O_i - E_i)^2 / E_i`, :math:`E_i = N r_i / \sum r`,
        ``df = k - 1``.
    """
    threshold = check_alpha(threshold, "threshold")
    obs = counts(observed_counts, "observed_counts")
    if obs.ndim != 1 or obs.size < 2:
        raise StatsInputError(
            f"observed_counts: expected a 1-D array of at least 2 arm counts, got "
            f"{_short(observed_counts)}"
        )
    if obs.sum() <= 0:
        raise StatsInputError(f"observed_counts: expected a positive total, got {obs.sum():g}")
    if expected_ratios is None:
        ratios = np.ones_like(obs)
    else:
        ratios = np.asarray(expected_ratios, dtype=np.float64)
        if ratios.shape != obs.shape:
            raise StatsInputError(
                f"expected_ratios: expected shape {obs.shape} like observed_counts, got "
                f"{ratios.shape}"
            )
        if not np.all(np.isfinite(ratios)) or np.any(ratios <= 0):
            raise StatsInputError(
                f"expected_ratios: expected positive finite ratios, got {_short(expected_ratios)}"
            )
    expected = obs.sum() * ratios / ratios.sum()
    stat = float(np.sum((obs - expected) ** 2 / expected))
    df = obs.size - 1
    p = float(_st.chi2.sf(stat, df))
    return SRMResult(statistic=stat, p_value=p, df=df, expected=expected,
                     mismatch=bool(p < threshold), threshold=threshold)


#: Multiple-testing corrections of :func:`adjust_pvalues` (an experiment's
#: ``analysis.correction``).
ADJUST_METHODS: tuple[str, ...] = ("holm", "bh", "bonferroni")


def adjust_pvalues(p_values: Any, method: str = "holm") -> np.ndarray:
    r"""Multiplicity-adjusted p-values, in the input order.

    Parameters
    ----------
    p_values : array_like, shape (m,)
        Raw p-values in [0, 1].
    method : {"holm", "bh", "bonferroni"}
        ``bonferroni``: :math:`\min(1, m p_i)` (family-wise error).
        ``holm``: step-down, with sorted :math:`p_{(1)} \le \dots \le p_{(m)}`,
        :math:`\tilde p_{(i)} = \max_{j \le i} \min(1, (m - j + 1) p_{(j)})` (family-wise
        error, uniformly more powerful than Bonferroni).
        ``bh`` (Benjamini-Hochberg): step-up,
        :math:`\tilde p_{(i)} = \min_{j \ge i} \min(1, m p_{(j)} / j)` (false discovery rate).

    Returns
    -------
    numpy.ndarray, shape (m,)
        Adjusted p-values; reject hypothesis ``i`` at level ``q`` when ``adjusted[i] <= q``.
    """
    method = check_choice(method, "method", ADJUST_METHODS)
    p = np.asarray(p_values, dtype=np.float64) if not isinstance(p_values, str) else None
    if p is None or p.ndim != 1 or p.size == 0:
        raise StatsInputError(
            f"p_values: expected a non-empty 1-D array of p-values, got {_short(p_values)}"
        )
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise StatsInputError(f"p_values: expected values in [0, 1], got {_short(p_values)}")
    m = p.size
    if method == "bonferroni":
        return np.minimum(1.0, m * p)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    rank = np.arange(1, m + 1)
    if method == "holm":
        adj_sorted = np.maximum.accumulate(np.minimum(1.0, (m - rank + 1) * ps))
    else:
        adj_sorted = np.minimum.accumulate(np.minimum(1.0, m * ps / rank)[::-1])[::-1]
    out = np.empty(m)
    out[order] = adj_sorted
    return out
