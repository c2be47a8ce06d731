"""Rule-based personalization of docs/domain.md: content strategy, level and subject style.

All functions take the standard context matrix of :func:`policies.features.subscriber_features`
(n, d) and return one code per row. The rules (docs/domain.md, "Personalization strategies"):

* content strategy, first match wins: ``onboarding_education`` for new subscribers;
  ``reengagement`` when engagement < 0.3; ``conversion_focused`` when conversion
  readiness > 0.7; ``educational_nurturing`` for educational seekers; else
  ``general_engagement``;
* personalization level 1 (high) when engagement > 0.6, else 0;
* subject style: ``dont_miss`` for re-engagement (low engagement), ``limited_time`` for
  conversion focus, ``learn`` for nurturing; otherwise ``first_name`` when engagement
  > 0.7, else ``plain``. (The strategy prefix wins over the first-name prefix: one
  style per email.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import (
    CONTENT_STRATEGIES,
    SUBJECT_STYLES,
    ArmTallyPolicy,
    check_reward_type,
)
from policies.features import FEATURE_NAMES, feature_index

__all__ = [
    "ContentStrategyPolicy",
    "SubjectRulePolicy",
    "content_strategy",
    "content_strategy_reference",
    "personalization_level",
    "subject_style",
    "subject_style_reference",
]

_ENG = feature_index("engagement_score")
_READY = feature_index("conversion_readiness")
_EDU = feature_index("educational_seeker")
_NEW = feature_index("lifecycle_new_subscriber")


def _codes(names: tuple[str, ...], *wanted: str) -> list[int]:
    return [names.index(w) for w in wanted]


def content_strategy(contexts: np.ndarray) -> np.ndarray:
    """Index into CONTENT_STRATEGIES of each row's strategy, int64 (n,)."""
    x = np.asarray(contexts, dtype=np.float64)
    onboard, reeng, conv, nurt, gen = _codes(CONTENT_STRATEGIES, *CONTENT_STRATEGIES)
    return np.select(
        [x[:, _NEW] > 0.5, x[:, _ENG] < 0.3, x[:, _READY] > 0.7, x[:, _EDU] > 0.5],
        [onboard, reeng, conv, nurt], default=gen).astype(np.int64)


def content_strategy_reference(subscriber: Mapping[str, Any]) -> str:
    """The content-strategy rule for one subscriber-table row (plain Python)."""
    if subscriber["lifecycle_stage"] == "new_subscriber":
        return "onboarding_education"
    if subscriber["engagement_score"] < 0.3:
        return "reengagement"
    if subscriber["conversion_readiness"] > 0.7:
        return "conversion_focused"
    if subscriber["educational_seeker"]:
        return "educational_nurturing"
    return "general_engagement"


def personalization_level(contexts: np.ndarray) -> np.ndarray:
    """1 (high) where engagement > 0.6, else 0 (standard); int64 (n,)."""
    return (np.asarray(contexts, dtype=np.float64)[:, _ENG] > 0.6).astype(np.int64)


def subject_style(contexts: np.ndarray) -> np.ndarray:
    """Index into SUBJECT_STYLES of each row's rule-based subject style, int64 (n,)."""
    x = np.asarray(contexts, dtype=np.float64)
    strategy = np.asarray(CONTENT_STRATEGIES)[content_strategy(x)]
    plain, first, dont, limited, learn = _codes(
        SUBJECT_STYLES, "plain", "first_name", "dont_miss", "limited_time", "learn")
    return np.select(
        [strategy == "reengagement", strategy == "conversion_focused",
         strategy == "educational_nurturing", x[:, _ENG] > 0.7],
        [dont, limited, learn, first], default=plain).astype(np.int64)


def subject_style_reference(subscriber: Mapping[str, Any]) -> str:
    """The subject-style rule for one subscriber-table row (plain Python)."""
    strategy = content_strategy_reference(subscriber)
    prefix = {"reengagement": "dont_miss", "conversion_focused": "limited_time",
              "educational_nurturing": "learn"}
    if strategy in prefix:
        return prefix[strategy]
    return "first_name" if subscriber["engagement_score"] > 0.7 else "plain"


@dataclass(eq=False)
class _RulePolicy(ArmTallyPolicy):
    """A deterministic rule over the standard context matrix; propensity 1."""

    reward_type: str = "binary"
    counts: np.ndarray = field(init=False, repr=False)
    reward_sums: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_reward_type(self.reward_type)
        self.reset()

    @property
    def n_features(self) -> int:
        """Width of the standard context matrix (len(FEATURE_NAMES))."""
        return len(FEATURE_NAMES)

    def _rule(self, contexts: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _select(self, contexts, rng, subscribers, n):
        arms = self._rule(contexts)
        return arms, np.ones(n)


@dataclass(eq=False)
class ContentStrategyPolicy(_RulePolicy):
    """The rule-based content strategy as a policy (arms: CONTENT_STRATEGIES).

    Contexts are :func:`~policies.features.subscriber_features` rows. Deterministic,
    so every propensity is 1; ``update`` keeps per-strategy counts and reward sums.
    """

    @property
    def arm_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return CONTENT_STRATEGIES

    def _rule(self, contexts: np.ndarray) -> np.ndarray:
        return content_strategy(contexts)


@dataclass(eq=False)
class SubjectRulePolicy(_RulePolicy):
    """The rule-based subject-line variant as a policy (arms: SUBJECT_STYLES)."""

    @property
    def arm_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return SUBJECT_STYLES

    def _rule(self, contexts: np.ndarray) -> np.ndarray:
        return subject_style(contexts)
