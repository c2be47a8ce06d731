"""Combination arms in specs and their report numbers (experiments.combinations): a
``factorial:`` design as an A/B split's arms, and the picks, sends to find and regret
computed from decision logs made by hand."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from actors.config import DEFAULT_START
from experiments import load_spec
from experiments.combinations import ACTS_ON_SHARE, combination_table
from experiments.factorial import cell_names, design_from_mapping
from policies.errors import SpecError
from sim.clock import DAY

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "specs" / "multivariate.yaml"
ELEMENTS = {"subject_style": ["plain", "learn"], "cta": ["shop_now", "learn_more"]}


def _spec_dict() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(SPEC.read_text())


def test_a_factorial_policy_splits_over_the_design_cells_and_round_trips() -> None:
    d = _spec_dict()
    d["arms"][0]["policy"]["factorial"]["generators"] = ["C=AB"]
    spec = load_spec(d)
    arm = spec.arms[0]
    design = design_from_mapping(arm.factorial)
    assert design.resolution == 3 and len(design.cells) == 4
    assert arm.policy.params["arms"] == cell_names(design)
    assert load_spec(spec.to_yaml()) == spec
    assert "arms" not in spec.to_dict()["arms"][0]["policy"]


@pytest.mark.parametrize("policy,message", [
    ({"name": "thompson", "decides": "combination", "factorial": {"elements": ELEMENTS}},
     r"arms\[0\].policy.factorial: a factorial design is split by 'ab' deciding "
     r"'combination', got name 'thompson'"),
    ({"name": "ab", "decides": "subject_style", "factorial": {"elements": ELEMENTS}},
     r"got name 'ab', decides 'subject_style'"),
    ({"name": "ab", "decides": "combination", "arms": ["plain:shop_now", "learn:shop_now"],
      "factorial": {"elements": ELEMENTS}}, r"the design's cells are the arms"),
    ({"name": "ab", "decides": "combination", "factorial": {"elements": {"a": ["plain"]}}},
     r"factorial.elements: expected a mapping of at least two element names"),
    ({"name": "ab", "decides": "combination",
      "factorial": {"elements": ELEMENTS, "generators": ["B=A"]}},
     r"arms\[0\].policy.factorial: generators"),
    ({"name": "ab", "decides": "combination", "factorial": {"elements": ELEMENTS, "x": 1}},
     r"factorial: expected a mapping with elements"),
    ({"name": "ab", "decides": "combination",
      "factorial": {"elements": {"subject_style": ["plain", "shouty"], "cta": ["shop_now",
                                                                              "learn_more"]}}},
     r"got 'shouty'"),
])
def test_bad_factorial_policies_are_refused(policy, message):  # type: ignore[no-untyped-def]
    d = _spec_dict()
    d["arms"][0]["policy"] = {"scope": "campaign", **policy}
    with pytest.raises(SpecError, match=message):
        load_spec(d)


CELLS = ["plain:shop_now", "plain:learn_more", "learn:shop_now", "learn:learn_more"]
TRUE = np.array([0.04, 0.03, 0.035, 0.06])           # learn:learn_more is the best


def _log(arm: str, days: list[np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    """A decision log: ``days[k]`` are the cells (indices) sent on day k."""
    rows = []
    for k, cells in enumerate(days):
        for c in cells:
            rows.append({"replication": 0, "arm": arm, "arm_index": int(c),
                         "time": DEFAULT_START + k * DAY + 36_000, "variant": CELLS[c],
                         "reward": float(rng.random() < TRUE[c]),
                         "expected_reward": TRUE[c],
                         **{f"expected_reward__{v}": TRUE[j] for j, v in enumerate(CELLS)}})
    return pd.DataFrame(rows)


def _results(logs: list[pd.DataFrame]) -> types.SimpleNamespace:
    d = _spec_dict()
    d["arms"] = [
        {"name": "split", "policy": {"name": "ab", "decides": "combination",
                                     "scope": "campaign", "arms": CELLS}},
        {"name": "bandit", "policy": {"name": "factorized_thompson", "decides": "combination",
                                      "scope": "campaign", "elements": ELEMENTS}},
    ]
    d["control"] = "split"
    return types.SimpleNamespace(spec=load_spec(d), decisions=pd.concat(logs))


def test_picks_sends_to_find_and_regret() -> None:
    rng = np.random.default_rng(0)
    split = _log("split", [np.tile(np.arange(4), 5000)] * 3, rng)
    # the bandit: uniform on day 0, 60 % on the best on day 1, then 90 %
    bandit_days = [np.tile(np.arange(4), 250), np.r_[np.full(600, 3), np.arange(400) % 3],
                   np.r_[np.full(900, 3), np.arange(100) % 3]]
    bandit = _log("bandit", bandit_days, rng)
    t = combination_table(_results([split, bandit])).set_index("arm")
    assert (t["true_best"] == "learn:learn_more").all()
    assert t.loc["split", "pick"] == "learn:learn_more"        # 0.06 vs 0.04: significant
    assert t.loc["split", "sends_to_find"] == 20_000            # from the first day on
    assert t.loc["bandit", "found"] and t.loc["bandit", "sends_to_find"] == 3_000
    assert 0.6 < ACTS_ON_SHARE <= 0.9                            # day 1 did not count
    regret = (TRUE.max() - TRUE[np.concatenate(bandit_days)]).sum()
    assert t.loc["bandit", "expected_regret"] == pytest.approx(regret)
    assert t.loc["split", "expected_regret"] == pytest.approx(3 * 5000 * (0.06 * 4 - TRUE.sum()))


def test_a_split_that_cannot_tell_the_cells_apart_picks_nothing() -> None:
    rng = np.random.default_rng(1)
    split = _log("split", [np.tile(np.arange(4), 50)] * 2, rng)
    t = combination_table(_results([split])).set_index("arm")
    assert t.loc["split", "pick"] is None and not t.loc["split", "found"]
    assert pd.isna(t.loc["split", "sends_to_find"])


def test_the_docs_factorial_arm_loads_as_printed() -> None:
    import re

    page = (SPEC.parents[2] / "docs" / "multivariate.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "factorial:" in b)
    d = _spec_dict()
    d["arms"][0] = yaml.safe_load(block)["arms"][0]
    spec = load_spec(d)
    design = design_from_mapping(spec.arms[0].factorial)
    assert len(spec.arms[0].policy.params["arms"]) == 4 and design.resolution == 3
    assert design.aliases((1,)) == [(0, 2)]      # strategy ~ subject_style:cta
