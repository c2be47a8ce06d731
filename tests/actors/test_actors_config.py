"""Invalid inputs: configs, policies, executors (input, exception, message)."""

from __future__ import annotations

import pytest
from conftest import small_config

from actors import CampaignConfig, PolicyConfig, SimulationConfig, make_policy, run_simulation
from actors.variants import ArmVariants
from policies.errors import SpecError
from policies.triggers import default_rules

CONFIG_CASES = [
    (dict(seed=None), r"seed: expected an integer >= 0 \(required\), got None"),
    (dict(seed=-1), r"seed: expected an integer >= 0"),
    (dict(subscribers=0), r"subscribers: expected an integer >= 1, got 0"),
    (dict(preset="nope"), r"preset: expected one of .*retail.*, got 'nope'"),
    (dict(days=0), r"days: expected a number > 0, got 0"),
    (dict(days=1.01), r"days: expected a whole number of ticks of 900 s, got 1.01 days"),
    (dict(tick_seconds=30), r"tick_seconds: expected an integer >= 60, got 30"),
    (dict(rules={"rules": []}), r"rules: expected a policies.triggers.RuleSet or None, got dict"),
    (dict(holdout_fraction=1.0), r"holdout_fraction: expected a fraction in \[0, 1\), got 1.0"),
    (dict(reward="likes"), r"reward: expected one of click, order, revenue, got 'likes'"),
    (dict(reward_window_seconds=0), r"reward_window_seconds: expected an integer >= 1, got 0"),
    (dict(record_decisions=1), r"record_decisions: expected True or False, got 1"),
    (dict(checkpoint_every=-1), r"checkpoint_every: expected an integer >= 0 \(ticks\), got -1"),
    (dict(campaign="weekly"), r"campaign: expected a CampaignConfig or None, got str"),
    (dict(policy="thompson"), r"policy: expected a PolicyConfig or None, got str"),
]


@pytest.mark.parametrize("overrides,message", CONFIG_CASES)
def test_simulation_config_rejects(overrides, message):
    kw = dict(seed=1, subscribers=100, days=1.0, rules=default_rules())
    kw.update(overrides)
    with pytest.raises(SpecError, match=message):
        SimulationConfig(**kw)


@pytest.mark.parametrize("kwargs,message", [
    (dict(every_days=0), r"campaign.every_days: expected an integer >= 1, got 0"),
    (dict(local_hour=24), r"campaign.local_hour: expected an hour 0..23, got 24"),
    (dict(subject_style="shouty"), r"campaign.subject_style: expected one of .*got 'shouty'"),
])
def test_campaign_config_rejects(kwargs, message):
    with pytest.raises(SpecError, match=message):
        CampaignConfig(**kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="oracle"), r"policy.name: expected one of .*thompson.*, got 'oracle'"),
    (dict(decides="colour"), r"policy.decides: expected one of subject_style, send_hour, "
                             r"strategy, combination, got 'colour'"),
    (dict(scope="some"), r"policy.scope: expected one of triggers, campaign, all, got 'some'"),
    (dict(params=[1]), r"policy.params: expected a mapping, got \[1\]"),
])
def test_policy_config_rejects(kwargs, message):
    with pytest.raises(SpecError, match=message):
        PolicyConfig(**kwargs)


@pytest.mark.parametrize("name,params,decides,reward,message", [
    ("thompson", {"arm_names": ["plain"]}, "subject_style", "click",
     r"^policy\.arm_names: expected at least 2 arms, got 1$"),
    ("thompson", {"arm_names": ["a", "b"], "colour": 1}, "subject_style", "click",
     r"^policy\.colour: unknown parameter of thompson; expected one of name, decides, "
     r"scope, arm_names, "),
    ("thompson", {"arm_names": ["plain", "question"]}, "subject_style", "revenue",
     r"^policy: BetaThompson learns binary rewards, but reward is 'revenue'"),
    ("rule_based", {}, "send_hour", "click",
     r"policy.decides: 'rule_based' decides subject_style or strategy, got 'send_hour'"),
])
def test_make_policy_rejects(name, params, decides, reward, message):
    with pytest.raises(SpecError, match=message):
        make_policy(name, params, decides=decides, reward=reward, seed=1)


@pytest.mark.parametrize("decides,arms,message", [
    ("subject_style", ("plain", "shouty"), r"arm_names\[1\]: expected a subject style"),
    ("send_hour", ("h09", "h24"), r"arm_names\[1\]: expected an hour h00..h23, got 'h24'"),
    ("strategy", ("reengagement:max",), r"arm_names\[0\]: expected a content strategy"),
])
def test_arm_variants_reject(decides, arms, message):
    with pytest.raises(SpecError, match=message):
        ArmVariants(decides, arms)


def test_registry_fills_runtime_parameters():
    p = make_policy("linucb", {"arm_names": ["plain", "question"]}, decides="subject_style",
                    reward="click", seed=3)
    assert p.n_features == 15
    g = make_policy("gaussian_thompson", {"arm_names": ["a", "b"]}, decides="subject_style",
                    reward="revenue", seed=3)
    assert g.reward_type == "real"
    ab = make_policy("ab", {"arms": ["plain", "question"]}, decides="subject_style",
                     reward="click", seed=3)
    assert ab.salt == "triggerlab-3"


@pytest.mark.parametrize("kwargs,message", [
    (dict(executor="spark"), r"executor: expected one of inline, ray, got 'spark'"),
    (dict(shards=0), r"shards: expected an integer >= 1, got 0"),
    (dict(shards=101), r"shards: expected at most one shard per subscriber \(100\), got 101"),
    (dict(address="auto"), r"address: only the ray executor connects to a cluster"),
])
def test_run_simulation_rejects(kwargs, message):
    with pytest.raises(SpecError, match=message):
        run_simulation(small_config(subscribers=100), **kwargs)
