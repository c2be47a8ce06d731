"""LinUCB, linear and logistic Thompson sampling: reference agreement and learning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.bandits import LinearThompson, LinUCB, LogisticThompson
from policies.bandits.linucb import linucb_scores_reference

NAMES = ["a", "b", "c", "d"]


@given(d=st.integers(1, 6), n=st.integers(1, 20), m=st.integers(0, 40),
       alpha=st.floats(0.0, 3.0), seed=st.integers(0, 10_000))
def test_linucb_scores_match_reference(d, n, m, alpha, seed) -> None:
    rng = np.random.default_rng(seed)
    pol = LinUCB(NAMES, n_features=d, alpha=alpha, ridge=0.5, reward_type="real")
    if m:
        pol.update(rng.integers(0, 4, m), rng.normal(size=m), rng.normal(size=(m, d)))
    x = rng.normal(size=(n, d))
    np.testing.assert_allclose(pol.scores(x), linucb_scores_reference(pol.A, pol.b, alpha, x),
                               rtol=1e-9, atol=1e-9)


def test_linucb_update_equals_normal_equations() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 500)
    pol = LinUCB(["a", "b"], n_features=3, ridge=1e-6, reward_type="real")
    for chunk in np.array_split(np.arange(500), 7):           # batched == all at once
        pol.update(np.zeros(len(chunk), dtype=int), y[chunk], x[chunk])
    np.testing.assert_allclose(pol.theta[0], [1.0, -2.0, 0.5], atol=0.02)
    np.testing.assert_allclose(pol.A[0], 1e-6 * np.eye(3) + x.T @ x)


def _contextual_regret(pol, rounds: int, batch: int, seed: int, d: int = 6):
    rng, env = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    theta = env.normal(0, 1.0, (4, d))
    regret = random = 0.0
    for _ in range(rounds // batch):
        x = env.normal(size=(batch, d))
        x[:, 0] = 1.0
        p = 1 / (1 + np.exp(-(x @ theta.T - 2.0)))
        arms, props = pol.select(x, rng)
        assert ((props > 0) & (props <= 1)).all()
        rows = np.arange(batch)
        pol.update(arms, (env.random(batch) < p[rows, arms]).astype(float), x)
        regret += (p.max(1) - p[rows, arms]).sum()
        random += (p.max(1) - p.mean(1)).sum()
    return regret, random


@pytest.mark.parametrize("make", [
    lambda: LinUCB(NAMES, n_features=6, alpha=0.5),
    lambda: LinearThompson(NAMES, n_features=6, v=0.2),
    lambda: LogisticThompson(NAMES, n_features=6),
], ids=["linucb", "linear_ts", "logistic_ts"])
def test_contextual_policies_learn(make) -> None:
    regret, random = _contextual_regret(make(), 20_000, 500, seed=0)
    assert regret < 0.35 * random, (regret, random)


def test_logistic_thompson_recovers_weights() -> None:
    rng = np.random.default_rng(3)
    w = np.array([-1.0, 2.0, -0.5])
    pol = LogisticThompson(["a", "b"], n_features=3, prior_precision=0.01)
    for _ in range(20):
        x = rng.normal(size=(1000, 3))
        y = (rng.random(1000) < 1 / (1 + np.exp(-x @ w))).astype(float)
        pol.update(np.zeros(1000, dtype=int), y, x)
    np.testing.assert_allclose(pol.mean[0], w, atol=0.12)
    # posterior covariance shrinks like 1/n
    assert np.sqrt(np.diag(pol.cov[0])).max() < 0.05
