"""One instance of every policy, for the conformance check (imported by tests)."""

from __future__ import annotations

from policies.ab import ABTest
from policies.bandits import (
    EXP3,
    UCB1,
    BetaThompson,
    DiscountedThompson,
    EpsilonGreedy,
    FactorizedThompson,
    GaussianThompson,
    LinearThompson,
    LinUCB,
    LogisticThompson,
    SlidingWindowThompson,
    Softmax,
)
from policies.explore_commit import AutoWinner, OneAtATime, WinningPath
from policies.personalization import (
    ContentStrategyPolicy,
    FixedHourPolicy,
    LearnedSubjectPicker,
    SendTimeOptimizer,
    SubjectRulePolicy,
)

ARMS = ("a", "b", "c")

POLICIES = [
    EpsilonGreedy(ARMS, epsilon=0.2),
    EpsilonGreedy(["x", "y"], epsilon=0.0, reward_type="real"),
    UCB1(ARMS),
    BetaThompson(ARMS),
    GaussianThompson(ARMS),
    Softmax(ARMS, temperature=0.5),
    EXP3(ARMS, gamma=0.2),
    DiscountedThompson(ARMS, discount=0.99),
    SlidingWindowThompson(ARMS, window=50),
    LinUCB(ARMS, n_features=5),
    LinearThompson(ARMS, n_features=5),
    LogisticThompson(ARMS, n_features=5),
    ABTest(["control", "treatment"], salt="exp-1"),
    ABTest(["c", "t", "u"], salt="exp-2", weights=[1, 2, 3], holdout=0.1),
    ContentStrategyPolicy(),
    SubjectRulePolicy(),
    LearnedSubjectPicker(),
    SendTimeOptimizer(),
    FixedHourPolicy(),
    AutoWinner(ARMS),
    AutoWinner(ARMS, min_recipients=5, win_probability=0.6, end_after="3h"),
    WinningPath(ARMS, experiment_window="2h"),
    WinningPath(["x", "y"], experiment_window=3600, fallback="mix", weights=[1, 3]),
    FactorizedThompson({"subject": ["plain", "urgency"], "cta": ["shop", "save", "see"]}),
    OneAtATime({"subject": ["plain", "urgency"], "cta": ["shop", "save", "see"]},
               sends_per_level=3),
    OneAtATime([("a", ["x", "y"]), ("b", ["u", "v"])], sends_per_level=1),
    FactorizedThompson([("a", ["x", "y"]), ("b", ["u", "v"]), ("c", ["p", "q"])],
                       prior_alpha=0.5, prior_beta=2.0),
]
