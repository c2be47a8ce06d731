"""Policy registry (names of :class:`~actors.config.PolicyConfig` -> policy classes) and
the mapping from a policy's arms to email features.

:func:`make_policy` builds the policy of a config, filling in what the runtime knows:
``n_features`` (the width of :func:`policies.features.subscriber_features`) for
contextual policies, ``reward_type="real"`` when the run feeds revenue, and for
``ab`` a salt derived from the seed. :class:`ArmVariants` turns arm indices into the
email feature codes the response model reads (subject style, send hour, content
strategy + personalization level).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.ab import ABTest
from policies.bandits import (
    EXP3,
    UCB1,
    BetaThompson,
    DiscountedThompson,
    EpsilonGreedy,
    GaussianThompson,
    LinearThompson,
    LinUCB,
    LogisticThompson,
    SlidingWindowThompson,
    Softmax,
)
from policies.base import CONTENT_STRATEGIES, SUBJECT_STYLES, Policy
from policies.errors import PolicyError, SpecError
from policies.features import FEATURE_NAMES
from policies.personalization import (
    ContentStrategyPolicy,
    FixedHourPolicy,
    LearnedSubjectPicker,
    SendTimeOptimizer,
    SubjectRulePolicy,
)

__all__ = ["POLICIES", "ArmVariants", "make_policy", "policy_class", "policy_parameters"]


def _rule_based(decides: str) -> type[Policy]:
    if decides == "subject_style":
        return SubjectRulePolicy
    if decides == "strategy":
        return ContentStrategyPolicy
    raise SpecError(f"policy.decides: 'rule_based' decides subject_style or strategy, "
                    f"got {decides!r}")


#: Registry name -> policy class, or a function of ``decides`` returning the class.
POLICIES: dict[str, type[Policy] | Callable[[str], type[Policy]]] = {
    "ab": ABTest,
    "epsilon_greedy": EpsilonGreedy,
    "ucb1": UCB1,
    "thompson": BetaThompson,
    "gaussian_thompson": GaussianThompson,
    "discounted_thompson": DiscountedThompson,
    "sliding_window_thompson": SlidingWindowThompson,
    "softmax": Softmax,
    "exp3": EXP3,
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


def policy_class(name: str, decides: str) -> type[Policy]:
    """The class registered as ``name`` (for ``rule_based``: depending on ``decides``)."""
    if name not in POLICIES:
        raise SpecError(f"policy.name: expected one of {', '.join(sorted(POLICIES))}, "
                        f"got {name!r}")
    entry = POLICIES[name]
    if isinstance(entry, type):
        return entry
    return entry(decides)


def policy_parameters(cls: type[Policy]) -> frozenset[str]:
    """Names of the constructor parameters of a policy class (its ``init`` fields)."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)  # type: ignore[arg-type]


def make_policy(name: str, params: Mapping[str, Any], *, decides: str, reward: str,
                seed: int) -> Policy:
    """Build the policy of a :class:`~actors.config.PolicyConfig`.

    Parameters not given are filled in when the class has them: ``n_features`` =
    ``len(FEATURE_NAMES)``; ``reward_type = "real"`` when ``reward == "revenue"``;
    ``salt = f"triggerlab-{seed}"`` for ``ab``.

    Raises
    ------
    SpecError
        Unknown name, bad parameters (the policy's own message; the policy's
        :class:`~policies.errors.PolicyError` or ``TypeError`` is the ``__cause__``), or
        a binary policy asked to learn from revenue.
    """
    cls = policy_class(name, decides)
    names = policy_parameters(cls)
    kw = dict(params)
    if "n_features" in names and "n_features" not in kw:
        kw["n_features"] = len(FEATURE_NAMES)
    if "reward_type" in names and "reward_type" not in kw and reward == "revenue":
        kw["reward_type"] = "real"
    if "salt" in names and "salt" not in kw:
        kw["salt"] = f"triggerlab-{seed}"
    unknown = sorted(set(kw) - names)
    if unknown:
        raise SpecError(f"policy.params: {cls.__name__} has no parameter(s) {unknown}; "
                        f"expected some of {sorted(names)}")
    try:
        policy = cls(**kw)
    except (PolicyError, TypeError) as exc:
        raise SpecError(f"policy.params: {cls.__name__}: {exc}") from exc
    if reward == "revenue" and policy.reward_type == "binary":
        raise SpecError(f"reward: {cls.__name__} learns binary rewards, got reward="
                        f"'revenue' (use 'click' or 'order', or a real-valued policy)")
    return policy


@dataclass(frozen=True)
class ArmVariants:
    """Email feature codes of each arm of a policy.

    Parameters
    ----------
    decides : {"subject_style", "send_hour", "strategy"}
    arm_names : tuple of str
        ``subject_style``: names in ``SUBJECT_STYLES``; ``send_hour``: ``h00``..``h23``
        (or ``"0"``..``"23"``); ``strategy``: names in ``CONTENT_STRATEGIES``, optionally
        suffixed ``:high`` or ``:standard`` to fix the personalization level (otherwise
        the rule-based level: high when engagement > 0.6).
    """

    decides: str
    arm_names: tuple[str, ...]

    def __post_init__(self) -> None:
        self.codes()  # validate

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(value, level)`` per arm, int64 (K,): the feature code and, for strategies,
        the personalization level (-1 = rule-based)."""
        value = np.empty(len(self.arm_names), np.int64)
        level = np.full(len(self.arm_names), -1, np.int64)
        for i, arm in enumerate(self.arm_names):
            if self.decides == "subject_style":
                if arm not in SUBJECT_STYLES:
                    raise SpecError(f"policy arm_names[{i}]: expected a subject style "
                                    f"({', '.join(SUBJECT_STYLES)}), got {arm!r}")
                value[i] = SUBJECT_STYLES.index(arm)
            elif self.decides == "send_hour":
                text = arm[1:] if arm.startswith("h") else arm
                if not text.isdigit() or not 0 <= int(text) <= 23:
                    raise SpecError(f"policy arm_names[{i}]: expected an hour h00..h23, "
                                    f"got {arm!r}")
                value[i] = int(text)
            elif self.decides == "strategy":
                base, _, lvl = arm.partition(":")
                if base not in CONTENT_STRATEGIES or lvl not in ("", "high", "standard"):
                    raise SpecError(f"policy arm_names[{i}]: expected a content strategy "
                                    f"({', '.join(CONTENT_STRATEGIES)}) optionally with "
                                    f"':high'/':standard', got {arm!r}")
                value[i] = CONTENT_STRATEGIES.index(base)
                level[i] = {"": -1, "standard": 0, "high": 1}[lvl]
            else:
                raise SpecError(f"policy.decides: expected subject_style, send_hour or "
                                f"strategy, got {self.decides!r}")
        return value, level
