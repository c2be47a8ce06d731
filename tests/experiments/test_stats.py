"""experiments.stats against independent computations (statsmodels, scipy, hand formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special
from scipy import stats as sst
from statsmodels.stats import proportion as smp
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from experiments.stats import (
    adjust_pvalues,
    bootstrap_ci,
    cuped,
    cuped_theta,
    expected_loss,
    mde_for_sample_size,
    msprt,
    prob_beat_control,
    proportions_ztest,
    sample_size_two_proportions,
    srm_test,
    welch_ttest,
)
from experiments.stats.bayes import _miller_sum, _p_greater, _quad
from policies.errors import StatsInputError, TriggerLabError

# --------------------------------------------------------------------------- z-test

Z_CASES = [  # (x_a, n_a, x_b, n_b): tiny, typical email, huge
    (1, 7, 4, 9),
    (3, 20, 0, 15),
    (200, 10_000, 250, 10_000),
    (5_123, 250_000, 5_411, 260_000),
    (1_234_567, 50_000_000, 1_250_001, 50_000_000),
]


@pytest.mark.parametrize("case", Z_CASES)
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_ztest_pooled_matches_statsmodels(case, alternative) -> None:
    xa, na, xb, nb = case
    r = proportions_ztest(xa, na, xb, nb, pooled=True, alternative=alternative)
    z, p = smp.proportions_ztest([xb, xa], [nb, na], alternative=alternative)
    assert r.statistic == pytest.approx(z, rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert r.effect == pytest.approx(xb / nb - xa / na, rel=1e-12)


@pytest.mark.parametrize("case", Z_CASES)
def test_ztest_unpooled_and_intervals_match_statsmodels(case) -> None:
    xa, na, xb, nb = case
    r = proportions_ztest(xa, na, xb, nb, pooled=False, alpha=0.1)
    sm = smp.test_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff",
                                 correction=False)
    assert r.statistic == pytest.approx(sm.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(sm.pvalue, rel=1e-9)
    lo, hi = smp.confint_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff",
                                        alpha=0.1)
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-10)
    if xa > 0 and xb > 0:
        lo, hi = smp.confint_proportions_2indep(xb, nb, xa, na, method="log", compare="ratio",
                                            alpha=0.1)
        assert (r.lift_ci_low, r.lift_ci_high) == pytest.approx((lo - 1, hi - 1), rel=1e-9)
        assert r.relative_lift == pytest.approx((xb / nb) / (xa / na) - 1, rel=1e-12)
    else:
        assert math.isnan(r.lift_ci_low) and math.isnan(r.lift_ci_high)


def test_ztest_hand_numbers_and_one_sided_interval() -> None:
    # 200/10000 vs 250/10000: pooled p = 0.0225, se = sqrt(.0225*.9775*2e-4) = 0.0020973
    r = proportions_ztest(200, 10_000, 250, 10_000, alternative="larger")
    assert r.standard_error == pytest.approx(math.sqrt(0.0225 * 0.9775 * 2e-4), rel=1e-12)
    z = 0.005 / math.sqrt(0.0225 * 0.9775 * 2e-4)
    assert r.statistic == pytest.approx(z, rel=1e-10) == pytest.approx(2.38400, abs=1e-5)
    assert r.p_value == pytest.approx(sst.norm.sf(z), rel=1e-10)
    se_w = math.sqrt(0.02 * 0.98 / 1e4 + 0.025 * 0.975 / 1e4)
    assert r.ci_low == pytest.approx(0.005 - 1.6448536269514722 * se_w, rel=1e-10)
    assert r.ci_high == math.inf
    assert r.relative_lift == pytest.approx(0.25)


def test_ztest_vectorized_equals_scalar_calls() -> None:
    xa, na, xb, nb = (np.array(c) for c in zip(*Z_CASES, strict=True))
    r = proportions_ztest(xa, na, xb, nb)
    assert isinstance(r.p_value, np.ndarray) and r.p_value.shape == (len(Z_CASES),)
    for i, c in enumerate(Z_CASES):
        s = proportions_ztest(*c)
        assert r.p_value[i] == pytest.approx(s.p_value, rel=1e-12)
        assert r.ci_low[i] == pytest.approx(s.ci_low, rel=1e-12)


def test_ztest_zero_variance_gives_nan() -> None:
    r = proportions_ztest(0, 10, 0, 12)
    assert math.isnan(r.statistic) and math.isnan(r.p_value) and r.effect == 0.0


# --------------------------------------------------------------------------- Welch


@pytest.mark.parametrize("sizes", [(2, 3), (5, 40), (1_000, 1_500), (200_000, 180_000)])
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_welch_matches_scipy(sizes, alternative) -> None:
    g = np.random.default_rng(sizes[0])
    # zero-inflated lognormal revenue per recipient
    a = g.lognormal(3, 1.2, sizes[0]) * (g.random(sizes[0]) < 0.05)
    b = g.lognormal(3.1, 1.3, sizes[1]) * (g.random(sizes[1]) < 0.055)
    a[0], b[0] = 12.0, 30.0  # never all zeros
    r = welch_ttest(a, b, alpha=0.1, alternative=alternative)
    scipy_alt = {"larger": "greater", "smaller": "less"}.get(alternative, alternative)
    ref = sst.ttest_ind(b, a, equal_var=False, alternative=scipy_alt)
    ci = ref.confidence_interval(0.9)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert r.df == pytest.approx(ref.df, rel=1e-9)
    assert r.ci_low == pytest.approx(ci.low, rel=1e-9)
    assert r.ci_high == pytest.approx(ci.high, rel=1e-9)
    assert r.effect == pytest.approx(b.mean() - a.mean(), rel=1e-12)


def test_welch_hand_formula() -> None:
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    va, vb = 1.0 / 3, (20.0 / 3) / 4
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    r = welch_ttest(a, b)
    assert r.standard_error == pytest.approx(se) and r.df == pytest.approx(df)
    assert r.statistic == pytest.approx(3.0 / se)
    assert r.p_value == pytest.approx(2 * sst.t.sf(3.0 / se, df))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_mean_diff_agrees_with_welch_on_large_sample() -> None:
    g = np.random.default_rng(5)
    a, b = g.normal(10, 2, 4000), g.normal(10.3, 2, 4000)
    r = bootstrap_ci(a, b, "mean_diff", n_resamples=2000, rng=np.random.default_rng(1))
    w = welch_ttest(a, b)
    assert r.effect == pytest.approx(w.effect, rel=1e-12)
    assert r.standard_error == pytest.approx(w.standard_error, rel=0.05)
    assert r.ci_low == pytest.approx(w.ci_low, abs=0.02)
    assert r.ci_high == pytest.approx(w.ci_high, abs=0.02)


def test_bootstrap_agrees_with_scipy_bootstrap_on_median() -> None:
    g = np.random.default_rng(9)
    a, b = g.exponential(1.0, 300), g.exponential(1.3, 250)
    r = bootstrap_ci(a, b, "median_diff", n_resamples=4000, rng=np.random.default_rng(2))
    ref = sst.bootstrap((a, b), lambda x, y, axis: np.median(y, axis) - np.median(x, axis),
                        n_resamples=4000, method="percentile", rng=np.random.default_rng(3))
    assert r.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.05)
    assert r.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.05)
    assert r.standard_error == pytest.approx(ref.standard_error, rel=0.1)


def _bootstrap_reference(a, b, fn, n_resamples, rng, chunk):
    """Loop reference: same index draws as the vectorized code, one replicate at a time."""
    reps = []
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        ia = rng.integers(0, a.size, size=(r, a.size))
        ib = rng.integers(0, b.size, size=(r, b.size))
        reps.extend(float(fn(a[ia[k]], b[ib[k]])) for k in range(r))
    return np.array(reps)


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=12),
       st.lists(st.floats(-50, 50), min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_bootstrap_vectorized_equals_loop_reference(a, b, seed) -> None:
    a, b = np.array(a), np.array(b)
    r = bootstrap_ci(a, b, "mean_diff", n_resamples=50, rng=np.random.default_rng(seed))
    ref = _bootstrap_reference(a, b, lambda x, y: y.mean() - x.mean(), 50,
                               np.random.default_rng(seed), chunk=4_000_000 // (a.size + b.size))
    np.testing.assert_allclose(r.distribution, ref, rtol=1e-12, atol=1e-12)


def test_bootstrap_basic_method_and_callable() -> None:
    a, b = np.arange(20.0), np.arange(20.0) * 1.5
    fn = lambda x, y: y.max(axis=-1) - x.max(axis=-1)  # noqa: E731
    p = bootstrap_ci(a, b, fn, n_resamples=500, rng=np.random.default_rng(0))
    q = bootstrap_ci(a, b, fn, n_resamples=500, rng=np.random.default_rng(0), method="basic")
    assert p.effect == 9.5
    assert q.ci_low == pytest.approx(2 * 9.5 - p.ci_high)
    assert q.ci_high == pytest.approx(2 * 9.5 - p.ci_low)


# --------------------------------------------------------------------------- power

POWER_CASES = [(0.01, 0.2), (0.05, 0.1), (0.2, -0.15), (0.5, 0.02), (0.02, 0.5), (0.9, 0.05)]


@pytest.mark.parametrize("case", POWER_CASES)
@pytest.mark.parametrize("alt", ["two-sided", "one-sided"])
def test_sample_size_matches_hand_formulas_and_statsmodels(case, alt) -> None:
    p1, mde = case
    p2 = p1 * (1 + mde)
    za = sst.norm.isf(0.025 if alt == "two-sided" else 0.05)
    zb = sst.norm.ppf(0.8)
    v = p1 * (1 - p1) + p2 * (1 - p2)
    unpooled = (za + zb) ** 2 * v / (p2 - p1) ** 2
    pbar = (p1 + p2) / 2
    pooled = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(v)) ** 2 / (p2 - p1) ** 2
    h = smp.proportion_effectsize(p2, p1)
    sm_alt = "two-sided" if alt == "two-sided" else ("larger" if h > 0 else "smaller")
    sm = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8, ratio=1.0,
                                      alternative=sm_alt)
    assert sample_size_two_proportions(p1, mde, alternative=alt) == math.ceil(unpooled)
    assert sample_size_two_proportions(p1, mde, method="pooled",
                                       alternative=alt) == math.ceil(pooled)
    assert sample_size_two_proportions(p1, mde, method="cohens_h",
                                       alternative=alt) == math.ceil(sm - 1e-6)


def test_sample_size_known_value_and_vectorized() -> None:
    # Classic textbook: 5 % baseline, +10 % relative, 80 % power, 5 % two-sided: 31,231.
    assert sample_size_two_proportions(0.05, 0.1) == 31231
    out = sample_size_two_proportions(np.array([0.05, 0.1]), 0.1, method="pooled")
    assert out.tolist() == [sample_size_two_proportions(0.05, 0.1, method="pooled"),
                            sample_size_two_proportions(0.1, 0.1, method="pooled")]


@pytest.mark.parametrize("method", ["unpooled", "pooled", "cohens_h"])
@pytest.mark.parametrize("p1", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("n", [500, 31_231, 5_000_000])
def test_mde_inverts_sample_size(method, p1, n) -> None:
    mde = mde_for_sample_size(p1, n, method=method)
    if np.isnan(mde):
        pytest.fail("detectable effect expected")
    # Needed size at that MDE is n (up to rounding), and slightly smaller effects need more.
    assert sample_size_two_proportions(p1, mde, method=method) in (n, n + 1)
    assert sample_size_two_proportions(p1, mde * 0.999, method=method) > n


def test_mde_undetectable_is_nan_and_cohens_h_matches_statsmodels() -> None:
    assert np.isnan(mde_for_sample_size(0.5, 3))
    mde = mde_for_sample_size(0.05, 20_000, method="cohens_h")
    h = smp.proportion_effectsize(0.05 * (1 + mde), 0.05)
    # statsmodels' power at our effect is the target; its own solver is looser (~1e-4).
    assert NormalIndPower().power(h, 20_000, 0.05, ratio=1.0) == pytest.approx(0.8, abs=1e-10)
    h_sm = NormalIndPower().solve_power(effect_size=None, nobs1=20_000, alpha=0.05, power=0.8,
                                        ratio=1.0)
    assert h == pytest.approx(h_sm, rel=1e-4)


# --------------------------------------------------------------------------- SRM


@pytest.mark.parametrize(
    ("obs", "ratios"),
    [([50, 52], None), ([5_000, 5_230], None), ([9_000, 1_060], [0.9, 0.1]),
     ([1_000_000, 1_003_000, 998_000], [1, 1, 1]), ([3, 9, 1], [2, 5, 1])],
)
def test_srm_matches_scipy(obs, ratios) -> None:
    r = srm_test(obs, ratios)
    obs_a = np.array(obs, float)
    rat = np.ones(len(obs)) if ratios is None else np.array(ratios, float)
    ref = sst.chisquare(obs_a, obs_a.sum() * rat / rat.sum())
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.df == len(obs) - 1
    assert r.mismatch == (ref.pvalue < 0.001)


def test_srm_flags_a_real_mismatch() -> None:
    r = srm_test([50_000, 49_000])  # chi2 = 1000^2/49500*... = 10.10, p = 0.0015
    assert r.statistic == pytest.approx(2 * 500**2 / 49_500)
    assert not r.mismatch
    assert srm_test([50_000, 48_000]).mismatch


# --------------------------------------------------------------------------- multiplicity


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh"),
                                       ("bonferroni", "bonferroni")])
@pytest.mark.parametrize("seed", range(4))
def test_adjust_matches_statsmodels(method, sm, seed) -> None:
    g = np.random.default_rng(seed)
    p = np.concatenate([g.uniform(0, 1, 7), g.uniform(0, 0.01, 3), [0.04, 0.04]])
    g.shuffle(p)
    np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=sm)[1],
                               rtol=1e-12)


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_many_hypotheses_matches_statsmodels(method, sm) -> None:
    g = np.random.default_rng(99)
    p = np.concatenate([g.uniform(0, 1, 20_000), g.uniform(0, 1e-5, 200)])
    g.shuffle(p)
    np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=sm)[1],
                               rtol=1e-12)


def test_adjust_hand_example_order_preserved() -> None:
    p = [0.04, 0.01, 0.03]
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.06, 0.03, 0.06])
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.12, 0.03, 0.09])
    assert adjust_pvalues([0.5], "holm").tolist() == [0.5]


# --------------------------------------------------------------------------- Bayes


def _p_quad_oracle(aa, ba, ab, bb):
    """P(p_b > p_a) = ∫ f_a(t) (1 - F_b(t)) dt, integrating the other way round."""
    lo, hi = sst.beta.ppf(1e-15, aa, ba), sst.beta.isf(1e-15, aa, ba)
    f = lambda t: sst.beta.pdf(t, aa, ba) * special.betaincc(ab, bb, t)  # noqa: E731
    return integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=500,
                          points=[aa / (aa + ba), ab / (ab + bb)])[0]


def _loss_quad_oracle(aa, ba, ab, bb):
    """E[(p_a - p_b)+] = ∫ f_a(t) E[(t - p_b)+] dt, E[(t - B)+] = t F_b(t) - m_b F_{b+1}(t)."""
    lo, hi = sst.beta.ppf(1e-15, aa, ba), sst.beta.isf(1e-15, aa, ba)
    mb = ab / (ab + bb)
    f = lambda t: sst.beta.pdf(t, aa, ba) * (  # noqa: E731
        t * special.betainc(ab, bb, t) - mb * special.betainc(ab + 1, bb, t))
    return integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=500,
                          points=[aa / (aa + ba), ab / (ab + bb)])[0]


BAYES_CASES = [(0, 0, 0, 0), (0, 0, 1, 1), (1, 3, 0, 2), (10, 100, 15, 100),
               (200, 10_000, 250, 10_000), (48_000, 1_000_000, 48_700, 1_000_000)]


@pytest.mark.parametrize("case", BAYES_CASES)
@pytest.mark.parametrize("prior", [(1, 1), (0.5, 0.5), (2.5, 40.0)])
def test_prob_beat_control_matches_quadrature(case, prior) -> None:
    xa, na, xb, nb = case
    aa, ba = prior[0] + xa, prior[1] + na - xa
    ab, bb = prior[0] + xb, prior[1] + nb - xb
    assert prob_beat_control(xa, na, xb, nb, prior) == pytest.approx(
        _p_quad_oracle(aa, ba, ab, bb), abs=1e-8)
    assert expected_loss(xa, na, xb, nb, prior) == pytest.approx(
        _loss_quad_oracle(aa, ba, ab, bb), abs=1e-8)
    assert expected_loss(xa, na, xb, nb, prior, choice="a") == pytest.approx(
        _loss_quad_oracle(ab, bb, aa, ba), abs=1e-8)


def test_bayes_hand_values() -> None:
    assert prob_beat_control(0, 0, 1, 1) == pytest.approx(2 / 3, abs=1e-12)  # U vs Beta(2,1)
    assert prob_beat_control(0, 0, 0, 0) == pytest.approx(0.5, abs=1e-12)
    assert expected_loss(0, 0, 0, 0) == pytest.approx(1 / 6, abs=1e-12)  # E[(U-V)+]
    # a ~ U, b ~ Beta(2,1): E[(a-b)+] = ∫∫_{a>b} (a-b) 2b = ∫ (a^3/3) da = 1/12
    assert expected_loss(0, 0, 1, 1) == pytest.approx(1 / 12, abs=1e-12)
    # Loss identity: E[(a-b)+] - E[(b-a)+] = E[a] - E[b]
    la, lb = expected_loss(10, 100, 15, 100, choice="a"), expected_loss(10, 100, 15, 100)
    assert la - lb == pytest.approx(16 / 102 - 11 / 102, abs=1e-12)


@given(st.floats(0.5, 60), st.floats(0.5, 60), st.integers(1, 60), st.floats(0.5, 60))
def test_miller_sum_equals_quadrature(a1, b1, a2, b2) -> None:
    assert _miller_sum(a1, b1, a2, b2) == pytest.approx(_quad(a1, b1, a2, b2), abs=1e-9)


def test_bayes_noninteger_uses_quadrature_and_vectorizes() -> None:
    v = _p_greater(10.3, 90.7, 15.2, 85.8)
    assert v == pytest.approx(_p_quad_oracle(10.3, 90.7, 15.2, 85.8), abs=1e-9)
    arr = prob_beat_control(np.array([10, 20]), 100, np.array([15, 15]), 100)
    assert arr.shape == (2,) and arr[0] > 0.5 > arr[1]


# --------------------------------------------------------------------------- mSPRT


def _lambda_by_integration(theta_hat, v, tau2, theta0=0.0):
    """∫ N(θ̂; θ, V) / N(θ̂; θ0, V) · N(θ; θ0, τ²) dθ — the mixture, integrated numerically."""
    num = lambda th: (sst.norm.pdf(theta_hat, th, math.sqrt(v))  # noqa: E731
                      * sst.norm.pdf(th, theta0, math.sqrt(tau2)))
    s = math.sqrt(v * tau2 / (v + tau2))
    centre = theta_hat * tau2 / (v + tau2) + theta0 * v / (v + tau2)
    val = integrate.quad(num, centre - 40 * s, centre + 40 * s, epsabs=0, epsrel=1e-11)[0]
    return val / sst.norm.pdf(theta_hat, theta0, math.sqrt(v))


def test_msprt_lambda_matches_numerical_mixture_known_variance() -> None:
    g = np.random.default_rng(4)
    a, b = g.normal(0, 1.5, 300), g.normal(0.2, 2.0, 250)
    looks = np.array([[1, 1], [10, 12], [50, 40], [300, 250]])
    r = msprt(a, b, tau2=0.04, sigma2_a=2.25, sigma2_b=4.0, looks=looks, theta0=0.05)
    for k, (na, nb) in enumerate(looks):
        th = b[:nb].mean() - a[:na].mean()
        v = 2.25 / na + 4.0 / nb
        assert r.variance_path[k] == pytest.approx(v)
        assert r.statistic_path[k] == pytest.approx(_lambda_by_integration(th, v, 0.04, 0.05),
                                                    rel=1e-8)
    assert r.p_value_path.tolist() == pytest.approx(
        np.minimum.accumulate(np.minimum(1, 1 / r.statistic_path)).tolist())


def test_msprt_plug_in_variance_and_paper_formula() -> None:
    g = np.random.default_rng(8)
    a, b = g.normal(1, 1, 400), g.normal(1.25, 1, 400)
    r = msprt(a, b, tau2=0.0625)
    n = 400
    s2 = (a.var(ddof=1) + b.var(ddof=1)) / 2
    # Paired form of Johari et al. with sigma^2 = average variance, V = 2 sigma^2 / n:
    th = b.mean() - a.mean()
    lam = math.sqrt(2 * s2 / (2 * s2 + n * 0.0625)) * math.exp(
        n**2 * 0.0625 * th**2 / (4 * s2 * (2 * s2 + n * 0.0625)))
    assert r.statistic == pytest.approx(lam, rel=1e-9)
    assert r.n_a_path[0] == 2 and r.n_a_path[-1] == 400 and r.rejected
    # confidence sequence: the interval at each look is exactly where Lambda(theta0) < 1/alpha
    k = 150
    v, eff = r.variance_path[k], r.effect_path[k]
    half = math.sqrt(2 * v * (v + 0.0625) / 0.0625 * (math.log(20) + 0.5 * math.log(
        (v + 0.0625) / v)))
    assert r.ci_low_path[k] >= eff - half - 1e-12 and r.ci_high_path[k] <= eff + half + 1e-12
    edge = msprt(a[: k + 2], b[: k + 2], tau2=0.0625, looks=[k + 2], theta0=eff + half)
    assert edge.statistic == pytest.approx(20.0, rel=1e-9)


def test_msprt_type_one_error_is_controlled_under_continuous_peeking() -> None:
    g = np.random.default_rng(20261128)
    rejections = naive = 0
    n_sim = 300
    looks = np.arange(20, 2001, 10)
    for _ in range(n_sim):
        a, b = g.binomial(1, 0.1, 2000).astype(float), g.binomial(1, 0.1, 2000).astype(float)
        rejections += msprt(a, b, tau2=0.02**2, looks=looks).rejected
        ca, cb = np.cumsum(a)[looks - 1], np.cumsum(b)[looks - 1]
        p = proportions_ztest(ca, looks, cb, looks).p_value
        naive += bool(np.any(p < 0.05))
    # Ville: P(ever reject) <= alpha however often one peeks; observed 1/300 with this seed
    assert rejections / n_sim <= 0.05
    # A fixed-horizon z-test peeked at the same 199 looks rejects far more often (134/300).
    assert naive / n_sim > 0.2


def test_msprt_detects_a_real_effect() -> None:
    g = np.random.default_rng(1)
    a, b = g.binomial(1, 0.10, 20_000), g.binomial(1, 0.13, 20_000)
    r = msprt(a, b, tau2=0.03**2, looks=np.arange(100, 20_001, 100))
    assert r.rejected and r.first_rejection is not None
    assert r.ci_low < 0.03 < r.ci_high and r.ci_low > 0


# --------------------------------------------------------------------------- CUPED


def test_cuped_matches_hand_adjustment_and_reduces_variance() -> None:
    g = np.random.default_rng(12)
    n = 5000
    xa, xb = g.gamma(2, 10, n), g.gamma(2, 10, n)
    ya = 0.8 * xa + g.normal(0, 8, n)
    yb = 0.8 * xb + 1.0 + g.normal(0, 8, n)
    r = cuped(ya, xa, yb, xb)
    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    theta = np.cov(x, y)[0, 1] / np.var(x, ddof=1)
    assert r.theta == pytest.approx(theta, rel=1e-12) == cuped_theta(y, x)
    adj_a, adj_b = ya - theta * (xa - x.mean()), yb - theta * (xb - x.mean())
    ref = sst.ttest_ind(adj_b, adj_a, equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    rho2 = np.corrcoef(x, y)[0, 1] ** 2
    assert r.variance_reduction == pytest.approx(rho2, abs=0.02)
    assert r.unadjusted.ci_high - r.unadjusted.effect > 1.5 * (r.ci_high - r.effect) > 0
    assert r.ci_low < 1.0 < r.ci_high


def test_cuped_tiny_sample_by_hand() -> None:
    ya, xa = [1.0, 3.0, 2.0], [0.0, 2.0, 1.0]
    yb, xb = [4.0, 3.0, 6.0], [2.0, 1.0, 3.0]
    # pooled x = [0,2,1,2,1,3], mean 1.5; y = [1,3,2,4,3,6], mean 19/6
    x, y = np.array(xa + xb), np.array(ya + yb)
    theta = np.sum((x - 1.5) * (y - 19 / 6)) / np.sum((x - 1.5) ** 2)
    assert theta == pytest.approx(8.5 / 5.5)
    r = cuped(ya, xa, yb, xb)
    assert r.theta == pytest.approx(theta)
    adj_a = np.array(ya) - theta * (np.array(xa) - 1.5)
    adj_b = np.array(yb) - theta * (np.array(xb) - 1.5)
    assert r.effect == pytest.approx(adj_b.mean() - adj_a.mean())
    assert r.statistic == pytest.approx(sst.ttest_ind(adj_b, adj_a, equal_var=False).statistic)


def test_cuped_fixed_theta_zero_is_plain_welch() -> None:
    a, b = [1.0, 2.0, 4.0], [3.0, 5.0, 4.0, 9.0]
    r = cuped(a, [0.0, 1, 2], b, [1.0, 1, 3, 2], theta=0.0)
    w = welch_ttest(a, b)
    assert (r.statistic, r.p_value, r.variance_reduction) == pytest.approx(
        (w.statistic, w.p_value, 0.0))


# --------------------------------------------------------------------------- invalid input


def _call(fn, *args, **kw):
    return lambda: fn(*args, **kw)


INVALID = [
    (_call(proportions_ztest, -1, 10, 2, 10), r"^x_a: expected non-negative counts, got -1"),
    (_call(proportions_ztest, 11, 10, 2, 10), r"^x_a: expected successes <= n_a \(10\), got 11"),
    (_call(proportions_ztest, 1, 0, 2, 10), r"^n_a: expected a positive number of trials, got 0"),
    (_call(proportions_ztest, 1, 10, 2.5, 10), r"^x_b: expected whole-number counts, got 2.5"),
    (_call(proportions_ztest, 1, 10, 2, 10, alpha=1.0), r"^alpha: expected a probability in \(0, 1\), got 1.0"),  # noqa: E501
    (_call(proportions_ztest, 1, 10, 2, 10, alpha=0), r"^alpha: expected a probability in \(0, 1\), got 0"),  # noqa: E501
    (_call(proportions_ztest, 1, 10, 2, 10, alternative="greater"), r"^alternative: expected one of \['two-sided', 'larger', 'smaller'\], got 'greater'"),  # noqa: E501
    (_call(proportions_ztest, [1, 2], [10, 10], [1, 2, 3], 10), r"^x_a, n_a, x_b, n_b: expected shapes that broadcast"),  # noqa: E501
    (_call(proportions_ztest, float("nan"), 10, 2, 10), r"^x_a: expected finite numbers"),
    (_call(welch_ttest, [], [1.0, 2.0]), r"^a: expected at least 2 observation\(s\), got 0"),
    (_call(welch_ttest, [1.0, 2.0], [3.0]), r"^b: expected at least 2 observation\(s\), got 1"),
    (_call(welch_ttest, [[1.0, 2.0]], [1.0, 3.0]), r"^a: expected a 1-D array, got shape \(1, 2\)"),
    (_call(welch_ttest, [1.0, np.inf], [1.0, 3.0]), r"^a: expected finite numbers"),
    (_call(welch_ttest, ["x", "y"], [1.0, 3.0]), r"^a: expected numbers, got \['x', 'y'\]"),
    (_call(welch_ttest, [1.0, 2.0], [1.0, 3.0], alpha=-0.1), r"^alpha: expected a probability"),
    (_call(bootstrap_ci, [1.0], [2.0], rng=None), r"^rng: expected a numpy.random.Generator, got None"),  # noqa: E501
    (_call(bootstrap_ci, [1.0], [2.0], n_resamples=5, rng=np.random.default_rng(0)), r"^n_resamples: expected an integer >= 10, got 5"),  # noqa: E501
    (_call(bootstrap_ci, [1.0], [2.0], "mode", rng=np.random.default_rng(0)), r"^statistic: expected one of \['mean_diff', 'median_diff', 'relative_lift'\] or a callable, got 'mode'"),  # noqa: E501
    (_call(bootstrap_ci, [], [2.0], rng=np.random.default_rng(0)), r"^a: expected at least 1 observation"),  # noqa: E501
    (_call(bootstrap_ci, [1.0], [2.0], lambda a, b: 1.0, rng=np.random.default_rng(0)), r"^statistic: expected the callable to reduce the last axis"),  # noqa: E501
    (_call(bootstrap_ci, [1.0], [2.0], rng=np.random.default_rng(0), method="bca"), r"^method: expected one of \['percentile', 'basic'\], got 'bca'"),  # noqa: E501
    (_call(sample_size_two_proportions, 0.0, 0.1), r"^baseline: expected a rate in \(0, 1\), got 0.0"),  # noqa: E501
    (_call(sample_size_two_proportions, 0.6, 0.8), r"^relative_mde: expected baseline \* \(1 \+ relative_mde\) in \(0, 1\)"),  # noqa: E501
    (_call(sample_size_two_proportions, 0.1, 0.0), r"^relative_mde: expected a nonzero change, got 0.0"),  # noqa: E501
    (_call(sample_size_two_proportions, 0.1, 0.1, power=1.2), r"^power: expected a probability in \(0, 1\), got 1.2"),  # noqa: E501
    (_call(sample_size_two_proportions, 0.1, 0.1, method="arcsine"), r"^method: expected one of \['unpooled', 'pooled', 'cohens_h'\], got 'arcsine'"),  # noqa: E501
    (_call(sample_size_two_proportions, 0.1, 0.1, alternative="larger"), r"^alternative: expected one of \['two-sided', 'one-sided'\]"),  # noqa: E501
    (_call(mde_for_sample_size, 0.1, 0), r"^n_per_arm: expected a positive size, got 0"),
    (_call(srm_test, [10]), r"^observed_counts: expected a 1-D array of at least 2 arm counts"),
    (_call(srm_test, [10, -1]), r"^observed_counts: expected non-negative counts"),
    (_call(srm_test, [0, 0]), r"^observed_counts: expected a positive total, got 0"),
    (_call(srm_test, [10, 12], [1, 1, 1]), r"^expected_ratios: expected shape \(2,\) like observed_counts, got \(3,\)"),  # noqa: E501
    (_call(srm_test, [10, 12], [1, 0]), r"^expected_ratios: expected positive finite ratios"),
    (_call(srm_test, [10, 12], threshold=2), r"^threshold: expected a probability in \(0, 1\)"),
    (_call(adjust_pvalues, [], "holm"), r"^p_values: expected a non-empty 1-D array"),
    (_call(adjust_pvalues, [0.1, 1.5], "bh"), r"^p_values: expected values in \[0, 1\]"),
    (_call(adjust_pvalues, [0.1], "fdr"), r"^method: expected one of \['holm', 'bh', 'bonferroni'\], got 'fdr'"),  # noqa: E501
    (_call(prob_beat_control, 5, 4, 1, 2), r"^x_a: expected successes <= n_a \(4\), got 5"),
    (_call(prob_beat_control, 1, 4, -1, 2), r"^x_b: expected non-negative counts"),
    (_call(prob_beat_control, 1, 4, 1, 2, prior=(0, 1)), r"^prior: expected a pair \(alpha, beta\) of positive numbers, got \(0, 1\)"),  # noqa: E501
    (_call(expected_loss, 1, 4, 1, 2, prior=3), r"^prior: expected a pair"),
    (_call(expected_loss, 1, 4, 1, 2, choice="c"), r"^choice: expected one of \['b', 'a'\], got 'c'"),  # noqa: E501
    (_call(msprt, [1.0, 2.0], [1.0, 2.0], tau2=0), r"^tau2: expected a positive number, got 0"),
    (_call(msprt, [1.0, 2.0], [1.0, 2.0], tau2=1, sigma2_a=1.0), r"^sigma2_a, sigma2_b: expected both known variances or neither"),  # noqa: E501
    (_call(msprt, [1.0], [1.0, 2.0], tau2=1), r"^a: expected at least 2 observation"),
    (_call(msprt, [1.0, 2.0, 3.0], [1.0, 2.0], tau2=1, looks=[2, 3]), r"^looks: expected nondecreasing counts of b in \[2, 2\], got \[2, 3\]"),  # noqa: E501
    (_call(msprt, [1.0, 2.0, 3.0], [1.0, 2.0, 4.0], tau2=1, looks=[3, 2]), r"^looks: expected nondecreasing counts of a"),  # noqa: E501
    (_call(msprt, [1.0, 2.0], [1.0, 2.0], tau2=1, looks=[2.5]), r"^looks: expected a non-empty integer array"),  # noqa: E501
    (_call(msprt, [1.0, 2.0], [1.0, 2.0], tau2=1, alpha=1), r"^alpha: expected a probability"),
    (_call(cuped, [1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 2.0]), r"^x_a: expected at least 2 observation"),  # noqa: E501
    (_call(cuped, [1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]), r"^x_a: expected shape \(3,\) like y_a, got \(2,\)"),  # noqa: E501
    (_call(cuped, [1.0, 2.0], [1.0, 1.0], [1.0, 2.0], [1.0, 1.0]), r"^x: expected a covariate that varies, got constant 1"),  # noqa: E501
    (_call(cuped, [1.0, 2.0], [1.0, 1.0], [1.0, 2.0], [1.0, 1.0], theta=np.nan), r"^theta: expected a finite number"),  # noqa: E501
]


@pytest.mark.parametrize(("call", "message"), INVALID)
def test_invalid_inputs(call, message) -> None:
    with pytest.raises(StatsInputError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, TriggerLabError)


def test_docstring_examples_run() -> None:
    import doctest

    import experiments.stats.bayes as bayes
    import experiments.stats.frequentist as freq
    import experiments.stats.power as power

    for module in (bayes, freq, power):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
