"""Policy registry (names of :class:`~actors.config.PolicyConfig` -> policy classes).

:func:`make_policy` builds the policy of a config, filling in what the runtime knows:
``n_features`` (the width of :func:`policies.features.subscriber_features`) for
contextual policies, ``reward_type="real"`` when the run feeds revenue, and for
``ab`` a salt derived from the seed. What each arm sets on an email is
:mod:`actors.variants`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

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
from policies.base import Policy
from policies.errors import PolicyError, SpecError
from policies.explore_commit import AutoWinner, OneAtATime, WinningPath
from policies.features import FEATURE_NAMES
from policies.personalization import (
    ContentStrategyPolicy,
    FixedHourPolicy,
    LearnedSubjectPicker,
    SendTimeOptimizer,
    SubjectRulePolicy,
)

__all__ = ["POLICIES", "make_policy", "policy_class", "policy_parameters"]


def _rule_based(decides: str, path: str = "policy") -> type[Policy]:
    if decides == "subject_style":
        return SubjectRulePolicy
    if decides == "strategy":
        return ContentStrategyPolicy
    raise SpecError(f"{path}.decides: 'rule_based' decides subject_style or strategy, "
                    f"got {decides!r}")


#: Registry name -> policy class, or a function of ``decides`` returning the class.
POLICIES: dict[str, type[Policy] | Callable[[str, str], type[Policy]]] = {
    "ab": ABTest,
    "epsilon_greedy": EpsilonGreedy,
    "ucb1": UCB1,
    "thompson": BetaThompson,
    "gaussian_thompson": GaussianThompson,
    "discounted_thompson": DiscountedThompson,
    "sliding_window_thompson": SlidingWindowThompson,
    "softmax": Softmax,
    "exp3": EXP3,
    "auto_winner": AutoWinner,
    "winning_path": WinningPath,
    "factorized_thompson": FactorizedThompson,
    "one_at_a_time": OneAtATime,
    "linucb": LinUCB,
    "lin_thompson": LinearThompson,
    "logistic_thompson": LogisticThompson,
    "rule_based": _rule_based,
    "subject_rules": SubjectRulePolicy,
    "content_strategy": ContentStrategyPolicy,
    "learned_subject": LearnedSubjectPicker,
    "send_time": SendTimeOptimizer,
    "fixed_hour": FixedHourPolicy,
}


def policy_class(name: str, decides: str, path: str = "policy") -> type[Policy]:
    """The class registered as ``name`` (for ``rule_based``: depending on ``decides``);
    errors name fields under ``path``."""
    if name not in POLICIES:
        raise SpecError(f"{path}.name: expected one of {', '.join(sorted(POLICIES))}, "
                        f"got {name!r}")
    entry = POLICIES[name]
    if isinstance(entry, type):
        return entry
    return entry(decides, path)


def policy_parameters(cls: type[Policy]) -> frozenset[str]:
    """Names of the constructor parameters of a policy class (its ``init`` fields)."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)  # type: ignore[arg-type]


def make_policy(name: str, params: Mapping[str, Any], *, decides: str, reward: str,
                seed: int, path: str = "policy") -> Policy:
    """Build the policy of a :class:`~actors.config.PolicyConfig`.

    Parameters not given are filled in when the class has them: ``n_features`` =
    ``len(FEATURE_NAMES)``; ``reward_type = "real"`` when ``reward == "revenue"``;
    ``salt = f"triggerlab-{seed}"`` for ``ab``.

    Raises
    ------
    SpecError
        Naming the field under ``path`` (a spec passes ``arms[2].policy``): an unknown
        name or parameter, the policy's own message for a bad parameter
        (``policy.epsilon: expected a number in [0, 1], got 1.5``; the policy's
        :class:`~policies.errors.PolicyError` or ``TypeError`` is the ``__cause__``), a
        binary policy asked to learn from revenue.
    """
    cls = policy_class(name, decides, path)
    names = policy_parameters(cls)
    for key in params:
        if key not in names:
            raise SpecError(f"{path}.{key}: unknown parameter of {name}; expected one of "
                            f"name, decides, scope, {', '.join(sorted(names))}")
    kw = dict(params)
    if "n_features" in names and "n_features" not in kw:
        kw["n_features"] = len(FEATURE_NAMES)
    if "reward_type" in names and "reward_type" not in kw and reward == "revenue":
        kw["reward_type"] = "real"
    if "salt" in names and "salt" not in kw:
        kw["salt"] = f"triggerlab-{seed}"
    try:
        policy = cls(**kw)
    except PolicyError as exc:  # the policy's message starts with its field
        msg = str(exc)
        field = msg.split(":", 1)[0].split("[", 1)[0].split(".", 1)[0]
        raise SpecError(f"{path}.{msg}" if field in names else f"{path}: {msg}") from exc
    except TypeError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    if reward == "revenue" and policy.reward_type == "binary":
        raise SpecError(f"{path}: {cls.__name__} learns binary rewards, but reward is "
                        "'revenue' (use click or order, or a real-valued policy)")
    return policy
