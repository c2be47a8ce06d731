"""OneAtATime: one A/B test per element, in order, each other element at its chosen
level; exact propensities; a state round trip; its known blind spot (interactions)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.errors import PolicyError
from policies.explore_commit import OneAtATime

ELEMENTS = {"subject": ["plain", "learn"], "cta": ["shop", "more", "offer"]}


def _feed(policy: OneAtATime, rates: dict[str, float], n: int, rng: np.random.Generator) -> None:
    arms, props = policy.select(None, rng, n=n)
    np.testing.assert_allclose(props, policy.arm_probabilities()[arms])  # exact
    names = np.array(policy.arm_names)[arms]
    p = np.array([rates[a] for a in names])
    policy.update(arms, (rng.random(n) < p).astype(float))


def test_tests_each_element_in_turn_and_commits() -> None:
    policy = OneAtATime(ELEMENTS, sends_per_level=200)
    rng = np.random.default_rng(1)
    assert policy.test_cells().tolist() == [0, 3]              # plain:shop vs learn:shop
    np.testing.assert_allclose(policy.arm_probabilities()[[0, 3]], 0.5)
    rates = {"plain:shop": 0.1, "learn:shop": 0.3, "plain:more": 0.1, "learn:more": 0.1,
             "plain:offer": 0.1, "learn:offer": 0.5}
    while policy.phase == 0:
        _feed(policy, rates, 100, rng)
    assert policy.phase == 1 and policy.chosen.tolist()[0] == 1
    assert policy.test_cells().tolist() == [3, 4, 5]           # learn with every cta
    for _ in range(10):
        _feed(policy, rates, 600, rng)
    assert policy.committed_arm() == 5                          # learn:offer
    arms, props = policy.select(None, rng, n=50)
    assert (arms == 5).all() and (props == 1.0).all()


def test_an_interaction_can_hide_the_best_cell() -> None:
    """The learn subject wins only with the 'more' button: tested with 'shop' it loses,
    so the sequence never reaches learn:more (the true best)."""
    policy = OneAtATime(ELEMENTS, sends_per_level=300)
    rng = np.random.default_rng(2)
    rates = {"plain:shop": 0.2, "learn:shop": 0.1, "plain:more": 0.15, "learn:more": 0.4,
             "plain:offer": 0.1, "learn:offer": 0.1}
    for _ in range(20):
        _feed(policy, rates, 500, rng)
    assert policy.arm_names[policy.committed_arm()] == "plain:shop"


def test_propensities_are_the_test_split() -> None:
    policy = OneAtATime(ELEMENTS, sends_per_level=10)
    arms, props = policy.select(None, np.random.default_rng(3), n=1000)
    assert set(arms.tolist()) == {0, 3}
    assert (props == 0.5).all()
    assert abs((arms == 0).mean() - 0.5) < 0.05


def test_state_round_trip_and_bad_states() -> None:
    policy = OneAtATime(ELEMENTS, sends_per_level=5)
    rng = np.random.default_rng(4)
    for _ in range(6):
        _feed(policy, {a: 0.5 for a in policy.arm_names}, 40, rng)
    state = policy.state_dict()
    other = OneAtATime(ELEMENTS, sends_per_level=5)
    other.load_state_dict(state)
    assert other.phase == policy.phase and other.chosen.tolist() == policy.chosen.tolist()
    a1, _ = policy.select(None, np.random.default_rng(9), n=20)
    a2, _ = other.select(None, np.random.default_rng(9), n=20)
    assert a1.tolist() == a2.tolist()
    with pytest.raises(PolicyError, match=r"state\['chosen'\]: expected a level index"):
        other.load_state_dict({**state, "state": {**state["state"], "chosen": [0, 3]}})
    with pytest.raises(PolicyError, match=r"state\['phase'\]"):
        other.load_state_dict({**state, "state": {**state["state"], "phase": 3}})


@pytest.mark.parametrize("kwargs,message", [
    ({"elements": {"a": ["x", "y"]}}, r"elements: expected at least 2 elements"),
    ({"elements": ELEMENTS, "sends_per_level": 0}, r"sends_per_level"),
    ({"elements": ELEMENTS, "sends_per_level": 2.5}, r"sends_per_level"),
])
def test_bad_parameters_are_refused(kwargs, message):  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match=message):
        OneAtATime(**kwargs)
