"""Thompson-sampling propensity estimates: documented error bounds, fast path = reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import ndtr

from policies.bandits import BetaThompson, LinearThompson, beta_max_probabilities
from policies.bandits._common import (
    gaussian_max_probability,
    gaussian_max_probability_reference,
)
from policies.bandits.thompson import (
    _beta_split,
    beta_thompson_argmax,
    beta_thompson_argmax_reference,
)


def test_beta_max_probabilities_exact_two_arm_closed_form() -> None:
    # P(Beta(1,1) > Beta(1,1)) = 1/2; P(Beta(2,1) > Beta(1,1)) = 2/3
    np.testing.assert_allclose(beta_max_probabilities(np.array([1.0, 1.0]), np.array([1.0, 1.0])),
                               [0.5, 0.5], atol=1e-8)
    np.testing.assert_allclose(beta_max_probabilities(np.array([2.0, 1.0]), np.array([1.0, 1.0])),
                               [2 / 3, 1 / 3], atol=1e-8)


def test_beta_thompson_propensity_error_within_documented_bound() -> None:
    """MC estimate vs numerical integration: |error| <= 4 * 0.5/sqrt(M) + (K + 1)/M."""
    pol = BetaThompson([f"a{i}" for i in range(5)], n_propensity_draws=1000)
    pol.update(np.repeat(np.arange(5), 400),
               np.concatenate([np.r_[np.ones(k), np.zeros(400 - k)] for k in (8, 10, 12, 14, 16)]))
    exact = beta_max_probabilities(*pol.posterior())
    assert abs(exact.sum() - 1) < 1e-6
    bound = 4 * 0.5 / np.sqrt(1000) + 6 / 1000
    errors = []
    for seed in range(20):
        for n in (1, 10, 1000, 3000):
            arms, props = pol.select(None, np.random.default_rng(seed), n=n)
            err = np.abs(props - exact[arms])
            assert err.max() <= bound, (n, err.max())
            errors.append(err.mean())
    # on average the estimate is close to the exact probability
    assert np.mean(errors) < 0.02


@given(n=st.integers(1, 30), k=st.integers(2, 6), step=st.sampled_from([0.25, 0.5, 1.0]),
       seed=st.integers(0, 10_000), spread=st.floats(0.0, 3.0),
       log_sd=st.floats(-3.0, 1.0))
def test_gaussian_max_probability_fast_equals_reference(n, k, step, seed, spread,
                                                        log_sd) -> None:
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread + 1e-3, (n, k))
    sds = np.exp(rng.uniform(log_sd, 1.0, (n, k)))
    arms = rng.integers(0, k, n)
    np.testing.assert_allclose(gaussian_max_probability(means, sds, arms, step),
                               gaussian_max_probability_reference(means, sds, arms, step),
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("ratio", [1.0, 0.3, 0.1, 0.03, 0.01, 10.0, 100.0])
@pytest.mark.parametrize("gap", [-2.0, 0.0, 0.7, 3.0])
def test_gaussian_max_probability_two_arm_closed_form(ratio: float, gap: float) -> None:
    """P(N(gap, 1) > N(0, ratio^2)) = Phi(gap / sqrt(1 + ratio^2)), to 1e-9."""
    means, sds = np.array([[gap, 0.0]]), np.array([[1.0, ratio]])
    for arm, exact in ((0, ndtr(gap / np.hypot(1, ratio))),
                       (1, ndtr(-gap / np.hypot(1, ratio)))):
        got = gaussian_max_probability(means, sds, np.array([arm]))[0]
        assert abs(got - max(exact, 1e-12)) < 1e-9


def test_gaussian_max_probability_against_monte_carlo() -> None:
    """Within 5 standard errors of a 200,000-draw Monte Carlo; sums to 1 over arms."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 8))
        m = rng.normal(0.0, 1.0, k)
        s = np.exp(rng.uniform(-3.0, 0.0, k))         # sd ratios up to e^3 = 20
        draws = m + s * rng.standard_normal((200_000, k))
        mc = np.bincount(draws.argmax(1), minlength=k) / 200_000
        quad = gaussian_max_probability(np.tile(m, (k, 1)), np.tile(s, (k, 1)), np.arange(k))
        np.testing.assert_allclose(quad, mc, atol=5 * 0.5 / np.sqrt(200_000))
        assert abs(quad.sum() - 1.0) < 1e-8


def test_linear_thompson_propensities_match_choice_frequencies() -> None:
    pol = LinearThompson(["a", "b", "c"], n_features=3, v=1.0, reward_type="real")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    pol.update(rng.integers(0, 3, 300), rng.normal(size=300), x)
    row = np.repeat(x[:1], 50_000, axis=0)
    arms, props = pol.select(row, np.random.default_rng(2))
    assert len(np.unique(arms)) >= 2
    for a in np.unique(arms):
        assert abs((arms == a).mean() - props[arms == a][0]) < 5 * 0.5 / np.sqrt(50_000)


@given(k=st.integers(2, 8), n=st.integers(1, 300), seed=st.integers(0, 10_000),
       scale=st.sampled_from([1.0, 30.0, 1000.0, 50_000.0]))
def test_fast_beta_sampler_equals_reference(k, n, seed, scale) -> None:
    """Pruned sampler (weak arms by inversion only when they might win) == full inversion."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.005, 0.2, k)
    alpha = 1.0 + means * scale * rng.uniform(0.1, 1.0, k)
    beta = 1.0 + (1 - means) * scale * rng.uniform(0.1, 1.0, k)
    fast = beta_thompson_argmax(alpha, beta, n, np.random.default_rng(seed + 1))
    ref = beta_thompson_argmax_reference(alpha, beta, n, np.random.default_rng(seed + 1))
    np.testing.assert_array_equal(fast, ref)


def test_fast_beta_sampler_has_thompson_probabilities() -> None:
    """Choice frequencies of 200,000 draws match the exact P(arm is max), including a
    posterior where most arms are pruned as weak."""
    n = np.array([200.0, 3_000.0, 20_000.0, 40_000.0, 30_000.0])
    p = np.array([0.03, 0.02, 0.0495, 0.05, 0.0497])
    alpha, beta = 1 + n * p, 1 + n * (1 - p)
    assert 0 < len(_beta_split(alpha, beta)[3]) < 5           # some arms pruned
    exact = beta_max_probabilities(alpha, beta)
    arms = beta_thompson_argmax(alpha, beta, 200_000, np.random.default_rng(3))
    freq = np.bincount(arms, minlength=5) / 200_000
    np.testing.assert_allclose(freq, exact, atol=5 * 0.5 / np.sqrt(200_000))


_PARAM = st.floats(min_value=1.0, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(_PARAM, _PARAM), min_size=2, max_size=4), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_quadrature_matches_monte_carlo_over_extreme_posteriors(arms, equal, seed) -> None:
    """The fixed quadrature is a probability vector within MC error of 40,000 draws."""
    from policies.bandits import beta_max_probabilities_quadrature
    if equal:                       # all arms share the first posterior: 1/K each
        arms = [arms[0]] * len(arms)
    alpha = np.array([a for a, _ in arms])
    beta = np.array([b for _, b in arms])
    p = beta_max_probabilities_quadrature(alpha, beta)
    assert p.shape == alpha.shape and ((p > 0) & (p <= 1)).all()
    assert abs(p.sum() - 1.0) < 1e-12
    if equal:
        np.testing.assert_allclose(p, 1.0 / len(arms), atol=1e-6)
    m = 40_000
    x = np.random.default_rng(seed).beta(alpha, beta, size=(m, len(alpha)))
    mc = np.bincount(x.argmax(axis=1), minlength=len(alpha)) / m
    assert (np.abs(p - mc) <= 5.0 * np.sqrt(np.maximum(p * (1 - p), 1e-4) / m)).all()


@pytest.mark.parametrize(("alpha", "beta"), [
    ([1, 1], [1, 1]), ([2, 1], [1, 1]), ([5, 3, 8], [10, 4, 20]),
    ([100, 101, 99], [1e5, 1e5, 1e5]), ([0.1, 0.5], [0.2, 3.0]),
    ([1e6, 1e6], [1e6, 1e6]), ([30, 31, 29, 30], [70, 69, 71, 70]),
    ([1, 1e6], [1e6, 1]),
])
def test_quadrature_matches_scipy_quad_reference(alpha, beta) -> None:
    from policies.bandits import beta_max_probabilities_quadrature
    a, b = np.array(alpha, float), np.array(beta, float)
    np.testing.assert_allclose(beta_max_probabilities_quadrature(a, b),
                               beta_max_probabilities(a, b), atol=1e-7)
