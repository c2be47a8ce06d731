"""``policy.draws: keyed``: a run draws each email's arm as the trigger service does,
from a generator keyed by (seed, trigger id)."""

from __future__ import annotations

import numpy as np
import pandas.testing as pdt
import pytest
from conftest import small_config

from actors import PolicyConfig, run_simulation
from actors.registry import make_policy
from experiments.design import policy_dict
from experiments.spec import parse_policy
from policies.errors import SpecError
from policies.keyed import select_keyed
from policies.triggers import default_rules, example_journeys, parse_journey_trigger_id

ARMS = ["plain", "question", "dont_miss"]


@pytest.mark.parametrize("rules", ["reference", "journeys"])
def test_each_arm_is_the_keyed_draw_of_its_trigger_id(rules: str) -> None:
    """With a policy whose choice ignores its state (epsilon 1: uniform), every logged
    arm and propensity is the service's keyed draw for the email's trigger id, fresh
    policy and all: the key alone decides. Campaign emails are keyed by recipient and
    due time; journey sends by their node."""
    pc = PolicyConfig("epsilon_greedy", {"arm_names": ARMS, "epsilon": 1.0}, draws="keyed")
    ruleset = default_rules() if rules == "reference" else example_journeys()
    cfg = small_config(policy=pc, rules=ruleset, days=2.0)
    log = run_simulation(cfg, executor="inline", shards=1).decisions
    chosen = log[log["arm_index"] >= 0]
    assert len(chosen) > 200
    keys = chosen["trigger_id"].tolist()
    assert len(set(keys)) == len(keys)                      # one draw per email
    fresh = make_policy(pc.name, pc.params, decides=pc.decides, reward=cfg.reward,
                        seed=cfg.seed)
    arms, props = select_keyed(fresh, keys, cfg.seed)
    assert arms.tolist() == chosen["arm_index"].tolist()
    np.testing.assert_array_equal(props, chosen["propensity"].to_numpy())
    rule_rows = chosen[chosen["source"] != "campaign"]
    assert chosen["trigger_id"].str.startswith("campaign:").sum() > 50
    for key, source, sub in zip(rule_rows["trigger_id"], rule_rows["source"],
                                rule_rows["subscriber"], strict=True):
        rule, s, _entered, node = parse_journey_trigger_id(key)
        assert (rule, s) == (source, sub)
        assert (node >= 0) == (rules == "journeys")


def test_keyed_draws_are_used_and_do_not_depend_on_shards() -> None:
    """A learning policy (Thompson) with keyed draws: the same log on 1 and 3 shards;
    not the log of the tick-batch draws."""
    pc = PolicyConfig("thompson", {"arm_names": ARMS}, draws="keyed")
    cfg = small_config(policy=pc, days=2.0)
    one = run_simulation(cfg, executor="inline", shards=1).decisions
    three = run_simulation(cfg, executor="inline", shards=3).decisions
    pdt.assert_frame_equal(one, three)
    batch = run_simulation(small_config(policy=PolicyConfig("thompson", {"arm_names": ARMS}),
                                        days=2.0), executor="inline", shards=1).decisions
    assert "trigger_id" not in batch.columns
    both = one.merge(batch, on="email_id", suffixes=("", "_batch"))  # responses differ later
    assert len(both) > 0.9 * len(one)
    assert (both["arm_index"] != both["arm_index_batch"]).mean() > 0.3   # other draws


def test_specs_say_draws_keyed() -> None:
    pc = parse_policy({"name": "thompson", "arm_names": ARMS, "draws": "keyed"})
    assert pc is not None and pc.draws == "keyed" and "draws" not in pc.params
    assert policy_dict(pc)["draws"] == "keyed"
    plain = parse_policy({"name": "thompson", "arm_names": ARMS})
    assert plain is not None and plain.draws == "batch" and "draws" not in policy_dict(plain)
    with pytest.raises(SpecError, match=r"arms\[0\]\.policy\.draws: expected one of "
                                        r"\['batch', 'keyed'\]|arms\[0\]\.policy\.draws"):
        parse_policy({"name": "thompson", "draws": "sometimes"}, "arms[0].policy")
    with pytest.raises(SpecError, match=r"policy\.draws"):
        PolicyConfig("thompson", draws="per_row")
