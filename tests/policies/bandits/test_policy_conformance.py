"""check_policy passes for every policy, and fails for policies that break the rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from policy_zoo import POLICIES

from policies.base import Policy, check_arm_names
from policies.testing import CHECKS, check_policy


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: type(p).__name__)
def test_every_policy_conforms(policy: Policy) -> None:
    before = policy.params()
    check_policy(policy)
    assert policy.params().keys() == before.keys()


@dataclass(eq=False)
class _Broken(Policy):
    """A context-free uniform policy with a switchable defect."""

    arm_names: Any
    defect: str = "none"
    tags: list = field(default_factory=list)
    pulls: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_arm_names(self.arm_names)
        self.reset()

    def reset(self) -> None:
        self.pulls = np.zeros(len(self.arm_names))

    def _select(self, contexts, rng, subscribers, n):
        if self.defect == "nondeterministic":
            rng = np.random.default_rng()
        arms = rng.integers(0, self.n_arms, n)
        props = np.full(n, 1.0 / self.n_arms)
        if self.defect == "wrong_propensity":
            props = np.full(n, 0.9)
        if self.defect == "mutates":
            self.tags.append("seen")
        return arms.astype(np.int64), props

    def _update(self, arms, rewards, contexts, subscribers):
        self.pulls += np.bincount(arms, minlength=self.n_arms)

    def _get_state(self) -> dict[str, Any]:
        return {"pulls": self.pulls} if self.defect != "bad_state" else {"pulls": {1, 2}}

    def _set_state(self, state: Any) -> None:
        self.pulls = np.asarray(state["pulls"], dtype=np.float64)


def test_reference_broken_policy_passes() -> None:
    check_policy(_Broken(["a", "b", "c"]))


@pytest.mark.parametrize(("defect", "check"), [
    ("nondeterministic", "deterministic"),
    ("wrong_propensity", "consistency"),
    ("mutates", "params"),
    ("bad_state", "state_dict"),
])
def test_check_policy_catches_defects(defect: str, check: str) -> None:
    policy = _Broken(["a", "b", "c"], defect=defect)
    with pytest.raises((AssertionError, TypeError)):
        CHECKS[check](policy)
