"""The bandit benchmark's reward tape (common random numbers) against its reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.bench._reward_tape import RewardTape, reward_tape_reference


@st.composite
def _pulls(draw: st.DrawFn) -> tuple[np.ndarray, int, np.ndarray, list[int], int]:
    k = draw(st.integers(1, 5))
    probs = np.array(draw(st.lists(st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.9, 1.0]),
                                   min_size=k, max_size=k)))
    seed = draw(st.integers(0, 2**32 - 1))
    arms = np.array(draw(st.lists(st.integers(0, k - 1), max_size=120)), dtype=np.int64)
    cuts = sorted(draw(st.lists(st.integers(0, len(arms)), max_size=6)))
    chunk = draw(st.integers(1, 40))
    return probs, seed, arms, cuts, chunk


@settings(max_examples=150, deadline=None)
@given(_pulls())
def test_reward_tape_matches_per_pull_reference_for_any_batching(case) -> None:
    probs, seed, arms, cuts, chunk = case
    tape = RewardTape(probs, seed, chunk=chunk)
    got = np.concatenate([tape.rewards(b) for b in np.split(arms, cuts)])
    np.testing.assert_array_equal(got, reward_tape_reference(probs, seed, arms))
    np.testing.assert_array_equal(tape.pulls, np.bincount(arms, minlength=len(probs)))


def test_reward_tape_kth_pull_of_an_arm_is_the_same_whatever_else_is_pulled() -> None:
    probs = np.array([0.5, 0.5, 0.5])
    a = RewardTape(probs, seed=7).rewards(np.array([0, 0, 0, 0, 0, 0]))
    b = RewardTape(probs, seed=7).rewards(np.array([1, 0, 2, 0, 0, 1, 0, 2, 0, 0]))
    np.testing.assert_array_equal(a, b[[1, 3, 4, 6, 8, 9]])
    # other seeds and other arms give other tapes
    assert not np.array_equal(RewardTape(probs, seed=8).rewards(np.zeros(64, np.int64)),
                              RewardTape(probs, seed=7).rewards(np.zeros(64, np.int64)))
    assert not np.array_equal(RewardTape(probs, seed=7).rewards(np.zeros(64, np.int64)),
                              RewardTape(probs, seed=7).rewards(np.ones(64, np.int64)))


def test_reward_tape_success_rates_match_probs() -> None:
    probs = np.linspace(0.01, 0.05, 10)
    tape = RewardTape(probs, seed=0, chunk=1000)
    n = 200_000
    rates = np.array([tape.rewards(np.full(n, a, np.int64)).mean() for a in range(10)])
    # 4 standard errors of a binomial proportion
    assert np.all(np.abs(rates - probs) < 4 * np.sqrt(probs * (1 - probs) / n))


@pytest.mark.parametrize(("probs", "arms", "match"), [
    ([], [0], "probs"),
    ([0.5, 1.5], [0], "probs"),
    ([[0.5]], [0], "probs"),
    ([0.5, 0.5], [2], r"arms: expected .* \[0, 2\)"),
    ([0.5, 0.5], [-1], "arms"),
    ([0.5, 0.5], [0.0, 1.0], "arms"),
    ([0.5, 0.5], [[0]], "arms"),
])
def test_reward_tape_rejects_bad_input(probs, arms, match) -> None:
    with pytest.raises(ValueError, match=match):
        RewardTape(np.array(probs), seed=0).rewards(np.array(arms))


def test_reward_tape_rejects_bad_chunk() -> None:
    with pytest.raises(ValueError, match="chunk: expected an integer >= 1, got 0"):
        RewardTape(np.array([0.5]), seed=0, chunk=0)
