"""Context-free bandits: exact propensities, reference agreement, learning, delayed feedback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.bandits import (
    EXP3,
    UCB1,
    BetaThompson,
    DiscountedThompson,
    EpsilonGreedy,
    GaussianThompson,
    SlidingWindowThompson,
    Softmax,
)
from policies.bandits.epsilon_greedy import epsilon_greedy_reference
from policies.bandits.exp3 import sample_categorical
from policies.bandits.ucb import ucb1_reference
from policies.base import Policy

ARMS = [f"arm{i}" for i in range(5)]
PROBS = np.array([0.02, 0.03, 0.04, 0.05, 0.10])


def _play(policy: Policy, probs: np.ndarray, rounds: int, batch: int, seed: int) -> float:
    """Cumulative pseudo-regret of ``policy`` on a Bernoulli problem."""
    rng, env = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    regret = 0.0
    for _ in range(rounds // batch):
        arms, _ = policy.select(None, rng, n=batch)
        policy.update(arms, (env.random(batch) < probs[arms]).astype(float))
        regret += float((probs.max() - probs[arms]).sum())
    return regret


counts_st = st.lists(st.integers(0, 5), min_size=2, max_size=6)


@given(counts=counts_st, eps=st.sampled_from([0.0, 0.1, 0.5, 1.0]), seed=st.integers(0, 99))
def test_epsilon_greedy_matches_reference(counts: list[int], eps: float, seed: int) -> None:
    names = [f"a{i}" for i in range(len(counts))]
    p = EpsilonGreedy(names, epsilon=eps)
    rng = np.random.default_rng(seed)
    for a, c in enumerate(counts):   # rewards 0/1 so that exact ties happen
        if c:
            p.update(np.full(c, a), rng.integers(0, 2, c))
    arms, props = p.select(None, np.random.default_rng(seed), n=30)
    r = np.random.default_rng(seed)
    u, v = r.random(30), r.random(30)
    ref_arms, ref_props = epsilon_greedy_reference(p.means(default=np.inf), eps, u, v)
    np.testing.assert_array_equal(arms, ref_arms)
    np.testing.assert_allclose(props, ref_props, rtol=0, atol=1e-15)


@given(counts=counts_st, seed=st.integers(0, 99))
def test_ucb1_matches_reference(counts: list[int], seed: int) -> None:
    names = [f"a{i}" for i in range(len(counts))]
    p = UCB1(names)
    rng = np.random.default_rng(seed)
    for a, c in enumerate(counts):
        if c:
            p.update(np.full(c, a), rng.integers(0, 2, c))
    arms, props = p.select(None, np.random.default_rng(seed), n=20)
    u = np.random.default_rng(seed).random(20)
    ref_arms, ref_props = ucb1_reference(p.counts, p.reward_sums, p.c, u)
    np.testing.assert_array_equal(arms, ref_arms)
    np.testing.assert_allclose(props, ref_props)


@given(p=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8), seed=st.integers(0, 99))
def test_sample_categorical_matches_searchsorted(p: list[float], seed: int) -> None:
    probs = np.asarray(p) / np.sum(p)
    got = sample_categorical(probs, 50, np.random.default_rng(seed))
    u = np.random.default_rng(seed).random(50) * np.cumsum(probs)[-1]
    ref = [min(int(np.searchsorted(np.cumsum(probs), x, side="right")), len(p) - 1) for x in u]
    np.testing.assert_array_equal(got, ref)


def test_epsilon_greedy_propensity_formula() -> None:
    p = EpsilonGreedy(["a", "b", "c", "d"], epsilon=0.2)
    p.update([0, 1, 2, 3, 3], [0, 1, 1, 0, 0])     # b and c tie at mean 1
    np.testing.assert_allclose(p.arm_probabilities(), [0.05, 0.45, 0.45, 0.05])
    arms, props = p.select(None, np.random.default_rng(0), n=20_000)
    freq = np.bincount(arms, minlength=4) / 20_000
    np.testing.assert_allclose(freq, [0.05, 0.45, 0.45, 0.05], atol=0.015)
    np.testing.assert_allclose(props, p.arm_probabilities()[arms])


def test_ucb1_tries_unplayed_arms_first_and_index_value() -> None:
    p = UCB1(["a", "b", "c"], c=1.0)
    p.update([0, 0, 1], [1, 0, 1])
    arms, props = p.select(None, np.random.default_rng(0), n=100)
    assert set(arms.tolist()) == {2} and np.all(props == 1.0)
    p.update([2], [0])
    # N = 4: a = 0.5 + sqrt(ln4/2), b = 1 + sqrt(ln4), c = 0 + sqrt(ln4)
    np.testing.assert_allclose(p.index(), [0.5 + np.sqrt(np.log(4) / 2), 1 + np.sqrt(np.log(4)),
                                           np.sqrt(np.log(4))])


def test_softmax_and_exp3_probabilities() -> None:
    s = Softmax(["a", "b"], temperature=0.5)
    s.update([0, 1, 1], [1, 0, 1])                          # means 1.0 and 0.5
    e = np.exp([2.0, 1.0])
    np.testing.assert_allclose(s.arm_probabilities(), e / e.sum())
    x = EXP3(["a", "b"], gamma=0.2)
    x.update([0], [1.0], propensities=[0.5])                # log w_a += 0.2 * 2 / 2
    w = np.exp([0.2, 0.0])
    np.testing.assert_allclose(x.arm_probabilities(), 0.8 * w / w.sum() + 0.1)


def test_gaussian_thompson_posterior_and_revenue_learning() -> None:
    g = GaussianThompson(["a", "b"], prior_mean=0.0, prior_variance=4.0, prior_strength=1.0)
    g.update([0, 0, 0, 1], [2.0, 4.0, 6.0, 1.0])
    m, s = g.posterior()
    np.testing.assert_allclose(m, [12.0 / 4, 1.0 / 2])
    # arm a: var = (4 + 8 + 3/4 * 16) / 4 = 6, sd of mean = sqrt(6 / 4)
    np.testing.assert_allclose(s[0], np.sqrt(6.0 / 4.0))
    revenue = np.array([1.0, 1.5, 3.0])
    pol = GaussianThompson(["a", "b", "c"], prior_variance=25.0)
    rng, env = np.random.default_rng(1), np.random.default_rng(2)
    for _ in range(60):
        arms, _ = pol.select(None, rng, n=200)
        pol.update(arms, env.exponential(revenue[arms]))    # mean revenue per send
    arms, _ = pol.select(None, rng, n=1000)
    assert (arms == 2).mean() > 0.9


@pytest.mark.parametrize("make", [
    lambda: BetaThompson(ARMS),
    lambda: EpsilonGreedy(ARMS, epsilon=0.05),
    lambda: UCB1(ARMS, c=0.5),
    lambda: Softmax(ARMS, temperature=0.01),
    lambda: EXP3(ARMS, gamma=0.05),
    lambda: DiscountedThompson(ARMS, discount=0.9999),
    lambda: SlidingWindowThompson(ARMS, window=20_000),
], ids=["beta_ts", "eps_greedy", "ucb1", "softmax", "exp3", "discounted", "sliding"])
def test_learns_better_than_uniform(make) -> None:
    rounds = 60_000
    uniform = rounds * (PROBS.max() - PROBS.mean())                # 2,640
    regret = np.mean([_play(make(), PROBS, rounds, 500, s) for s in range(2)])
    assert regret < 0.5 * uniform


def test_thompson_delayed_out_of_order_feedback_reaches_low_regret() -> None:
    """Choices in batches of 1,000; each reward arrives after a random delay of 0-5 batches,
    shuffled; regret stays close to prompt feedback and far below uniform."""
    probs = np.linspace(0.01, 0.05, 10)
    names = [f"a{i}" for i in range(10)]
    n_batches, batch = 300, 1000
    delayed, prompt = BetaThompson(names), BetaThompson(names)
    rng, env = np.random.default_rng(5), np.random.default_rng(6)
    rng2, env2 = np.random.default_rng(5), np.random.default_rng(6)
    queue: list[tuple[int, np.ndarray, np.ndarray]] = []
    regret_delayed = regret_prompt = 0.0
    for t in range(n_batches):
        arms, _ = delayed.select(None, rng, n=batch)
        rewards = (env.random(batch) < probs[arms]).astype(float)
        delay = env.integers(0, 6, batch)
        for d in range(6):
            sel = delay == d
            queue.append((t + d, arms[sel], rewards[sel]))
        due = [q for q in queue if q[0] <= t]
        queue = [q for q in queue if q[0] > t]
        if due:
            a = np.concatenate([q[1] for q in due])
            r = np.concatenate([q[2] for q in due])
            order = env.permutation(len(a))
            delayed.update(a[order], r[order])
        regret_delayed += float((probs.max() - probs[arms]).sum())
        arms2, _ = prompt.select(None, rng2, n=batch)
        prompt.update(arms2, (env2.random(batch) < probs[arms2]).astype(float))
        regret_prompt += float((probs.max() - probs[arms2]).sum())
    uniform = n_batches * batch * (probs.max() - probs.mean())      # 6,000
    assert regret_delayed < 0.1 * uniform
    assert regret_delayed < 2.0 * regret_prompt + 100


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1)), min_size=1, max_size=60),
       st.integers(1, 10), st.randoms(use_true_random=False))
def test_thompson_updates_commute(obs, n_chunks, rnd) -> None:
    """Any batching and order of the same feedback gives the same Beta posterior."""
    arms = np.array([a for a, _ in obs])
    rewards = np.array([r for _, r in obs], dtype=float)
    one = BetaThompson(["a", "b", "c", "d"])
    one.update(arms, rewards)
    idx = list(range(len(obs)))
    rnd.shuffle(idx)
    many = BetaThompson(["a", "b", "c", "d"])
    for chunk in np.array_split(np.array(idx), n_chunks):
        many.update(arms[chunk], rewards[chunk])
    np.testing.assert_allclose(one.posterior(), many.posterior())


@given(st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1)), max_size=15),
                min_size=1, max_size=8),
       st.integers(1, 12))
def test_sliding_window_equals_recount_of_last_observations(batches, window) -> None:
    sw = SlidingWindowThompson(["a", "b", "c"], window=window)
    seen: list[tuple[int, int]] = []
    for b in batches:
        if b:
            sw.update(np.array([a for a, _ in b]), np.array([r for _, r in b], dtype=float))
        seen += b
        last = seen[-window:] if seen else []
        succ = np.bincount([a for a, r in last if r], minlength=3)
        trials = np.bincount([a for a, _ in last], minlength=3)
        np.testing.assert_allclose(sw.successes, succ)
        np.testing.assert_allclose(sw.trials, trials)


def test_nonstationary_variants_track_a_switch() -> None:
    """100 batches with arm a best, then 12 with arm b best: discounted and sliding-window
    TS switch to b, plain TS (50,000 observations of history) still plays a."""
    names = ["a", "b"]
    before, after = np.array([0.08, 0.02]), np.array([0.02, 0.08])
    share = {}
    for name, pol in {"plain": BetaThompson(names),
                      "discounted": DiscountedThompson(names, discount=0.9995),
                      "sliding": SlidingWindowThompson(names, window=3_000)}.items():
        rng, env = np.random.default_rng(3), np.random.default_rng(4)
        for probs, n_batches in ((before, 100), (after, 12)):
            for _ in range(n_batches):
                arms, _ = pol.select(None, rng, n=500)
                pol.update(arms, (env.random(500) < probs[arms]).astype(float))
        arms, _ = pol.select(None, rng, n=2000)
        share[name] = (arms == 1).mean()
    assert share["discounted"] > 0.9 and share["sliding"] > 0.9
    assert share["plain"] < 0.1
