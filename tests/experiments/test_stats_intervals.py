"""experiments.stats.intervals against independent computations (statsmodels, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst
from statsmodels.stats import proportion as smp
from statsmodels.stats import rates as smr

from experiments.stats import (
    block_ttest,
    newcombe_diff_interval,
    normal_diff_test,
    poisson_rate_diff,
    wilson_interval,
)
from policies.errors import StatsInputError, TriggerLabError

# --------------------------------------------------------------------------- Wilson

WILSON_CASES = [(0, 7), (1, 7), (7, 7), (20, 100), (5_123, 250_000), (1_234_567, 50_000_000)]


@pytest.mark.parametrize(("x", "n"), WILSON_CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_wilson_matches_statsmodels(x: int, n: int, alpha: float) -> None:
    low, high = wilson_interval(x, n, alpha)
    lo, hi = smp.proportion_confint(x, n, alpha=alpha, method="wilson")
    assert (low, high) == pytest.approx((lo, hi), rel=1e-9, abs=1e-15)
    assert isinstance(low, float) and 0.0 <= low <= x / n <= high <= 1.0


# Every size: no count, all counts, one trial, huge n, tiny and near-1 rates. The old
# closed form gave 0/3200 a lower bound of 1.08e-19 (above the estimate) and bounds like
# -5.4e-20 in summary.csv.
WILSON_EDGES = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 7), (7, 7), (0, 3200), (3200, 3200),
                (1, 3200), (3199, 3200), (0, 10**6), (10**6, 10**6), (0, 10**12),
                (10**12, 10**12), (1, 10**15), (10**15 - 1, 10**15), (0, 2**53),
                (2**53, 2**53)]


@pytest.mark.parametrize(("x", "n"), WILSON_EDGES)
@pytest.mark.parametrize("alpha", [0.05, 0.5, 1e-6])
def test_wilson_bounds_in_unit_interval_around_estimate(x: int, n: int, alpha: float) -> None:
    low, high = wilson_interval(x, n, alpha)
    assert 0.0 <= low <= x / n <= high <= 1.0
    if x == 0:
        assert low == 0.0
    if x == n:
        assert high == 1.0
    # statsmodels has the same rounding at the ends (1.7e-21 for 0/10**6 at alpha 1e-6)
    lo, hi = smp.proportion_confint(x, n, alpha=alpha, method="wilson")
    lo, hi = (0.0 if x == 0 else lo), (1.0 if x == n else hi)
    assert (low, high) == pytest.approx((lo, hi), rel=1e-9, abs=1e-300)


def test_wilson_arrays_of_edge_cases() -> None:
    x = np.array([c[0] for c in WILSON_EDGES], dtype=np.int64)
    n = np.array([c[1] for c in WILSON_EDGES], dtype=np.int64)
    low, high = wilson_interval(x, n)
    p = x / n
    assert np.all((low >= 0) & (low <= p) & (p <= high) & (high <= 1))
    assert np.all(low[x == 0] == 0.0) and np.all(high[x == n] == 1.0)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 2**53), frac=st.floats(0.0, 1.0),
       alpha=st.floats(1e-9, 0.999, exclude_min=False))
def test_wilson_property_bounds(n: int, frac: float, alpha: float) -> None:
    x = min(n, round(frac * n))
    low, high = wilson_interval(x, n, alpha)
    assert 0.0 <= low <= x / n <= high <= 1.0
    assert (low == 0.0) == (x == 0) or x / n < 1e-300
    assert (high == 1.0) == (x == n) or (n - x) / n < 1e-15
    # symmetry: the interval of n - x is the mirror image
    low2, high2 = wilson_interval(n - x, n, alpha)
    assert low2 == pytest.approx(1 - high, abs=1e-15) and high2 == pytest.approx(1 - low, abs=1e-15)


def test_wilson_vectorized_equals_scalar_calls() -> None:
    x, n = np.array([0, 1, 20, 5_123]), np.array([7, 7, 100, 250_000])
    low, high = wilson_interval(x, n, 0.1)
    assert low.shape == high.shape == (4,)
    for i in range(4):
        assert (low[i], high[i]) == wilson_interval(int(x[i]), int(n[i]), 0.1)


NEWCOMBE_CASES = [(0, 23, 3, 32), (0, 7, 0, 9), (7, 7, 0, 7), (1, 1, 0, 1), (20, 100, 35, 120),
                  (5_123, 250_000, 5_400, 250_000), (0, 10**9, 1, 10**9)]


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), NEWCOMBE_CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_newcombe_matches_statsmodels(xa: int, na: int, xb: int, nb: int, alpha: float) -> None:
    low, high = newcombe_diff_interval(xa, na, xb, nb, alpha)
    lo, hi = smp.confint_proportions_2indep(xb, nb, xa, na, method="newcomb", compare="diff",
                                            alpha=alpha)
    assert (low, high) == pytest.approx((float(lo), float(hi)), rel=1e-9, abs=1e-12)
    d = xb / nb - xa / na
    assert -1.0 <= low <= d <= high <= 1.0
    # never a point, even with no successes in either arm (Wald's interval is 0 to 0)
    assert high > low


def test_newcombe_arrays_equal_scalar_calls() -> None:
    c = np.array(NEWCOMBE_CASES)
    low, high = newcombe_diff_interval(c[:, 0], c[:, 1], c[:, 2], c[:, 3])
    for i, case in enumerate(NEWCOMBE_CASES):
        assert (low[i], high[i]) == newcombe_diff_interval(*case)


# --------------------------------------------------------------------------- block t


def test_block_ttest_paired_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(3)
    control = rng.gamma(2.0, 0.5, size=(3, 14))
    treated = control + rng.normal(0.05, 0.2, size=(3, 14))
    r = block_ttest(treated - control, alpha=0.1)
    ref = sst.ttest_rel(treated.ravel(), control.ravel())
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.df == 41 and r.n_blocks == 42 and r.blocks_per_group == 14
    d = (treated - control).ravel()
    # the total over a replication's 14 days: 14 x the mean block difference
    assert r.effect == pytest.approx(14 * d.mean(), rel=1e-12)
    se = 14 * d.std(ddof=1) / math.sqrt(42)
    q = sst.t.ppf(0.95, 41)
    assert r.standard_error == pytest.approx(se, rel=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((r.effect - q * se, r.effect + q * se),
                                                  rel=1e-12)
    ci = sst.ttest_rel(treated.ravel(), control.ravel()).confidence_interval(0.9)
    assert (r.ci_low, r.ci_high) == pytest.approx((14 * ci.low, 14 * ci.high), rel=1e-9)
    assert r.prob_positive == pytest.approx(sst.t.cdf(r.statistic, 41), rel=1e-12)
    assert r.prob_positive + r.prob_negative == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("alternative", ["larger", "smaller"])
def test_block_ttest_one_sided_matches_scipy(alternative: str) -> None:
    d = np.array([[0.3, -0.1, 0.4, 0.2], [0.1, 0.5, -0.2, 0.3]])
    r = block_ttest(d, alternative=alternative)
    ref = sst.ttest_1samp(d.ravel(), 0.0,
                          alternative="greater" if alternative == "larger" else "less")
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert math.isinf(r.ci_high if alternative == "larger" else r.ci_low)


def test_block_ttest_missing_blocks_and_one_group() -> None:
    d = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan]])
    r = block_ttest(d)
    # totals per group 3 and 3 -> mean 3; 3 blocks, at most 2 per group
    assert r.effect == 3.0 and r.n_blocks == 3 and r.blocks_per_group == 2
    assert r.standard_error == pytest.approx(2 * np.std([1.0, 2.0, 3.0], ddof=1) / math.sqrt(3))
    one = block_ttest([1.0, 2.0, 4.0])
    assert one.effect == 7.0 and one.blocks_per_group == 3 and one.df == 2


def test_block_ttest_constant_blocks() -> None:
    r = block_ttest([[0.5, 0.5], [0.5, 0.5]])
    assert math.isnan(r.statistic) and r.p_value == 0.0 and r.prob_positive == 1.0
    assert r.ci_low == r.ci_high == 1.0
    z = block_ttest([[0.0, 0.0]])
    assert z.p_value == 1.0 and z.prob_positive == z.prob_negative == 0.5


# --------------------------------------------------------------------------- Poisson


POISSON_CASES = [(30, 1000.0, 60, 1000.0), (3, 50.0, 0, 70.0), (1_234, 80_000.0, 1_400, 79_000.0)]


@pytest.mark.parametrize("case", POISSON_CASES)
def test_poisson_rate_diff_matches_statsmodels(case: tuple) -> None:  # type: ignore[type-arg]
    xa, ta, xb, tb = case
    r = poisson_rate_diff(xa, ta, xb, tb, alpha=0.1)
    sm = smr.test_poisson_2indep(xb, tb, xa, ta, method="wald", compare="diff")
    assert r.statistic == pytest.approx(sm.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(sm.pvalue, rel=1e-9)
    lo, hi = smr.confint_poisson_2indep(xb, tb, xa, ta, method="wald", compare="diff",
                                        alpha=0.1)
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-10)
    assert r.effect == pytest.approx(xb / tb - xa / ta, rel=1e-12)
    assert r.prob_positive == pytest.approx(sst.norm.cdf(r.statistic), rel=1e-12)


def test_poisson_rate_diff_vectorized() -> None:
    r = poisson_rate_diff([30, 3], [1000.0, 50.0], [60, 0], [1000.0, 70.0])
    assert r.effect.shape == (2,)
    one = poisson_rate_diff(3, 50.0, 0, 70.0)
    assert r.p_value[1] == one.p_value and r.ci_low[1] == one.ci_low


# --------------------------------------------------------------------------- normal diff


def test_normal_diff_test_by_hand_and_against_poisson() -> None:
    r = normal_diff_test(1.0, 0.3, 2.0, 0.4, alpha=0.1)
    assert r.standard_error == pytest.approx(0.5, rel=1e-15) and r.statistic == 2.0
    assert r.p_value == pytest.approx(2 * sst.norm.sf(2.0), rel=1e-12)
    q = sst.norm.ppf(0.95)
    assert (r.ci_low, r.ci_high) == pytest.approx((1.0 - q * 0.5, 1.0 + q * 0.5), rel=1e-12)
    assert r.prob_negative == pytest.approx(sst.norm.cdf(-2.0), rel=1e-12)
    # one Poisson rate minus another is the same test on the two rates
    a, b = poisson_rate_diff(0, 1.0, 30, 1000.0), poisson_rate_diff(0, 1.0, 60, 1000.0)
    both = normal_diff_test(a.effect, a.standard_error, b.effect, b.standard_error)
    ref = poisson_rate_diff(30, 1000.0, 60, 1000.0)
    assert both.statistic == pytest.approx(ref.statistic, rel=1e-12)
    zero = normal_diff_test(1.0, 0.0, 1.0, 0.0)
    assert math.isnan(zero.statistic) and math.isnan(zero.p_value)


# --------------------------------------------------------------------------- input errors


def _call(f, *a, **k):  # type: ignore[no-untyped-def]
    return lambda: f(*a, **k)


INVALID = [
    (_call(wilson_interval, 8, 7), r"^x: expected successes <= n \(7\), got 8"),
    (_call(wilson_interval, 1, 0), r"^n: expected a positive number of trials, got 0"),
    (_call(wilson_interval, 1.5, 7), r"^x: expected whole-number counts, got 1.5"),
    (_call(wilson_interval, 1, 7, alpha=1.0), r"^alpha: expected a probability in \(0, 1\)"),
    (_call(block_ttest, [[1.0]]), r"^blocks: expected at least 2 finite block values, got 1"),
    (_call(block_ttest, [1.0, np.nan]), r"^blocks: expected at least 2 finite block values"),
    (_call(block_ttest, np.ones((2, 2, 2))), r"^blocks: expected a 1-D or 2-D array, got shape"),
    (_call(block_ttest, [1.0, np.inf]), r"^blocks: expected finite numbers or NaN"),
    (_call(block_ttest, ["a", "b"]), r"^blocks: expected numbers, got \['a', 'b'\]"),
    (_call(block_ttest, [1.0, 2.0], alternative="less"), r"^alternative: expected one of"),
    (_call(poisson_rate_diff, -1, 10.0, 2, 10.0), r"^x_a: expected non-negative counts"),
    (_call(poisson_rate_diff, 1, 0.0, 2, 10.0), r"^t_a: expected a positive exposure, got"),
    (_call(poisson_rate_diff, [1, 2], 10.0, [1, 2, 3], 10.0),
     r"^x_a, t_a, x_b, t_b: expected shapes that broadcast"),
    (_call(normal_diff_test, 1.0, -0.1, 2.0, 0.1), r"^se_a: expected a standard error >= 0"),
    (_call(normal_diff_test, np.nan, 0.1, 2.0, 0.1), r"^estimate_a: expected finite numbers"),
]


@pytest.mark.parametrize(("call", "message"), INVALID)
def test_invalid_inputs(call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StatsInputError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, TriggerLabError)


def test_docstring_examples_run() -> None:
    import doctest

    import experiments.stats.intervals as intervals

    result = doctest.testmod(intervals)
    assert result.attempted > 0 and result.failed == 0
