"""Bad input raises PolicyError (a ValueError) naming the argument, expected and received."""

from __future__ import annotations

import numpy as np
import pytest

from policies.ab import ABTest
from policies.bandits import (
    EXP3,
    UCB1,
    BetaThompson,
    EpsilonGreedy,
    GaussianThompson,
    LinUCB,
    LogisticThompson,
    SlidingWindowThompson,
)
from policies.errors import PolicyError
from policies.explore_commit import WinningPath
from policies.personalization import LearnedSubjectPicker, SendTimeOptimizer

ARMS = ["a", "b", "c"]
RNG = np.random.default_rng(0)


def _ts() -> BetaThompson:
    return BetaThompson(ARMS)


def _lin() -> LinUCB:
    return LinUCB(ARMS, n_features=4)


CALLS = [
    # (description, call, exception, message regex)
    ("unknown arm name", lambda: _ts().update(["a", "zz"], [1, 0]), PolicyError,
     r"arms\[1\]: expected one of \['a', 'b', 'c'\], got 'zz'"),
    ("arm index too large", lambda: _ts().update([0, 3], [1, 0]), PolicyError,
     r"arms: expected indices in \[0, 2\], got \[3\]"),
    ("negative arm index", lambda: _ts().update([-1], [1]), PolicyError,
     r"arms: expected indices in \[0, 2\], got \[-1\]"),
    ("fractional arm index", lambda: _ts().update([0.5], [1]), PolicyError,
     r"arms: expected integer indices"),
    ("2-d arms", lambda: _ts().update([[0, 1]], [1, 0]), PolicyError,
     r"arms: expected a 1-d array, got shape \(1, 2\)"),
    ("binary reward 2", lambda: _ts().update([0, 1], [1, 2]), PolicyError,
     r"rewards: expected binary rewards 0 or 1, got \[2.0\]"),
    ("binary reward 0.5", lambda: UCB1(ARMS).update([0], [0.5]), PolicyError,
     r"rewards: expected binary rewards 0 or 1, got \[0.5\]"),
    ("NaN reward", lambda: GaussianThompson(ARMS).update([0], [np.nan]), PolicyError,
     r"rewards: expected finite values, got NaN or inf"),
    ("inf reward", lambda: GaussianThompson(ARMS).update([0], [np.inf]), PolicyError,
     r"rewards: expected finite values"),
    ("rewards length", lambda: _ts().update([0, 1], [1]), PolicyError,
     r"rewards: expected shape \(2,\) like arms, got \(1,\)"),
    ("non-numeric reward", lambda: _ts().update([0], ["x"]), PolicyError,
     r"rewards: expected numbers"),
    ("EXP3 reward above 1", lambda: EXP3(ARMS, reward_type="real").update([0], [1.5]),
     PolicyError, r"rewards: expected values in \[0, 1\] for EXP3, got \[1.5\]"),
    ("EXP3 propensity 0", lambda: EXP3(ARMS).update([0], [1], propensities=[0.0]),
     PolicyError, r"propensities: expected 1 probabilities in \(0, 1\]"),
    ("contexts wrong width", lambda: _lin().select(np.zeros((2, 3)), RNG), PolicyError,
     r"contexts: expected shape \(n, 4\), got \(2, 3\)"),
    ("contexts 1-d", lambda: _lin().select(np.zeros(4), RNG), PolicyError,
     r"contexts: expected a 2-d array \(n, 4\), got shape \(4,\)"),
    ("contexts NaN", lambda: _lin().select(np.full((1, 4), np.nan), RNG), PolicyError,
     r"contexts: expected finite values, got NaN or inf"),
    ("contexts missing", lambda: _lin().select(None, RNG, n=3), PolicyError,
     r"contexts: expected an array of shape \(n, 4\), got None"),
    ("update contexts rows", lambda: _lin().update([0, 1], [1, 0], np.zeros((3, 4))),
     PolicyError, r"contexts: expected 2 rows, got 3"),
    ("rng is a seed", lambda: _ts().select(None, 42, n=3), PolicyError,  # type: ignore[arg-type]
     r"rng: expected a numpy.random.Generator, got int"),
    ("n negative", lambda: _ts().select(None, RNG, n=-2), PolicyError,
     r"n: expected a non-negative integer, got -2"),
    ("n missing", lambda: _ts().select(None, RNG), PolicyError,
     r"n: expected the number of rows"),
    ("subscribers missing", lambda: SendTimeOptimizer().select(None, RNG, n=2), PolicyError,
     r"subscribers: SendTimeOptimizer.select needs subscriber ids, got None"),
    ("decision times fractional", lambda: _ts().select(None, RNG, n=2, now=[1.5, 2.5]),
     PolicyError, r"now: expected int seconds or a 1-d integer array of 2 times, got "
                  r"\[1\.5, 2\.5\]"),
    ("decision time a string", lambda: _ts().select(None, RNG, n=2, now="2026-01-01"),
     PolicyError, r"now: expected int seconds or a 1-d integer array of 2 times"),
    ("decision time a bool", lambda: _ts().select(None, RNG, n=2, now=True),
     PolicyError, r"now: expected int seconds or a 1-d integer array of 2 times, got True"),
    ("decision times 2-d", lambda: _ts().select(None, RNG, n=2, now=[[1, 2]]),
     PolicyError, r"now: expected int seconds or a 1-d integer array of 2 times"),
    ("decision times length", lambda: _ts().select(None, RNG, n=2, now=[1, 2, 3]),
     PolicyError, r"now: expected 2 times, got 3"),
    ("decision times missing", lambda: WinningPath(ARMS, experiment_window="1d").select(
        None, RNG, n=2), PolicyError,
     r"now: WinningPath\.select needs the decision time \(int seconds since the epoch\), "
     r"got None"),
    ("subscribers float", lambda: ABTest(ARMS, salt="s").select(None, RNG,
                                                               subscribers=np.array([1.5])),
     PolicyError, r"subscribers: expected a 1-d integer array, got dtype float64"),
    ("negative counts in state",
     lambda: _ts().load_state_dict({"policy": "BetaThompson", "version": 1,
                                    "state": {"successes": [1, -2, 0], "failures": [0, 0, 0]}}),
     PolicyError, r"state\['successes'\]: expected non-negative counts, got \[-2.0\]"),
    ("state of another policy",
     lambda: _ts().load_state_dict(UCB1(ARMS).state_dict()), PolicyError,
     r"state\['policy'\]: expected 'BetaThompson', got 'UCB1'"),
    ("state wrong shape",
     lambda: _ts().load_state_dict({"policy": "BetaThompson", "version": 1,
                                    "state": {"successes": [1], "failures": [0, 0, 0]}}),
     PolicyError, r"state\['successes'\]: expected shape \(3,\), got \(1,\)"),
    ("state not PD", lambda: _lin().load_state_dict(
        {"policy": "LinUCB", "version": 1,
         "state": {"A": np.zeros((3, 4, 4)).tolist(), "b": np.zeros((3, 4)).tolist()}}),
     PolicyError, r"state\['A'\]\[0\]: expected a symmetric positive-definite matrix"),
    ("subject successes above trials", lambda: LearnedSubjectPicker(n_bins=1).load_state_dict(
        {"policy": "LearnedSubjectPicker", "version": 1,
         "state": {"trials": [[1]] * 6, "successes": [[2]] * 6}}),
     PolicyError, r"state\['successes'\]: expected at most state\['trials'\]"),
]


@pytest.mark.parametrize(("what", "call", "exc", "match"), CALLS, ids=[c[0] for c in CALLS])
def test_bad_input_raises(what, call, exc, match) -> None:
    with pytest.raises(exc, match=match) as info:
        call()
    assert isinstance(info.value, ValueError)


PARAMS = [
    (lambda: EpsilonGreedy(ARMS, epsilon=1.5), r"epsilon: expected a number in \[0, 1\], got 1.5"),
    (lambda: EpsilonGreedy(["a"]), r"arm_names: expected at least 2 arms, got 1"),
    (lambda: EpsilonGreedy(["a", "a"]), r"arm_names: expected distinct names"),
    (lambda: EpsilonGreedy("ab"), r"arm_names: expected a sequence of arm names, got 'ab'"),
    (lambda: EpsilonGreedy(["a", ""]), r"arm_names\[1\]: expected a non-empty string"),
    (lambda: EpsilonGreedy(ARMS, reward_type="count"),
     r"reward_type: expected 'binary' or 'real', got 'count'"),
    (lambda: UCB1(ARMS, c=0.0), r"c: expected a number > 0, got 0.0"),
    (lambda: BetaThompson(ARMS, prior_alpha=-1), r"prior_alpha: expected a number > 0, got -1"),
    (lambda: BetaThompson(ARMS, n_propensity_draws=0),
     r"n_propensity_draws: expected an integer >= 1, got 0"),
    (lambda: BetaThompson(ARMS, n_propensity_draws=1.5),
     r"n_propensity_draws: expected an integer >= 1, got 1.5"),
    (lambda: SlidingWindowThompson(ARMS, window=0), r"window: expected an integer >= 1, got 0"),
    (lambda: EXP3(ARMS, gamma=0.0), r"gamma: expected a number in \(0, 1\], got 0.0"),
    (lambda: LinUCB(ARMS, n_features=0), r"n_features: expected an integer >= 1, got 0"),
    (lambda: LogisticThompson(ARMS, n_features=3, v=float("nan")),
     r"v: expected a number > 0, got nan"),
    (lambda: ABTest(ARMS, salt=""), r"salt: expected a non-empty string"),
    (lambda: ABTest(ARMS, salt="s", holdout=1.0),
     r"holdout: expected a number in \[0, 1\), got 1.0"),
    (lambda: ABTest(ARMS, salt="s", weights=[1, 2]), r"weights: expected 3 numbers"),
    (lambda: ABTest(ARMS, salt="s", weights=[1, 0, 2]),
     r"weights\[1\]: expected a number > 0, got 0"),
    (lambda: LearnedSubjectPicker(arm_names=["plain", "shouting"]),
     r"arm_names: expected styles in"),
    (lambda: SendTimeOptimizer(epsilon=0.0), r"epsilon: expected a number in \(0, 1\], got 0.0"),
]


@pytest.mark.parametrize(("make", "match"), PARAMS)
def test_bad_hyperparameters_raise(make, match) -> None:
    with pytest.raises(PolicyError, match=match):
        make()
