"""auto_winner and winning_path in specs: parameters checked with paths, runs commit on time."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from actors import CampaignConfig, PolicyConfig, SimulationConfig, run_simulation
from experiments.cli import main
from experiments.spec import load_spec
from policies.errors import SpecError
from policies.explore_commit import AutoWinner, WinningPath

STYLES = ["plain", "first_name", "dont_miss"]


def _spec(policy: dict) -> dict:
    return {
        "name": "t", "seed": 1, "population": {"subscribers": 1000},
        "duration": {"days": 2, "tick": "1h"}, "rules": "none",
        "campaign": {"every_days": 1, "local_hour": 10},
        "arms": [{"name": "a"}, {"name": "b", "policy": {"scope": "campaign", **policy}}],
    }


def test_spec_vocabulary_builds_both_policies() -> None:
    klaviyo = {"name": "auto_winner", "arm_names": STYLES, "min_recipients": 500,
               "win_probability": 0.9, "end_after": "7d"}
    braze = {"name": "winning_path", "arm_names": STYLES, "experiment_window": "2d",
             "fallback": "mix"}
    for policy, cls in ((klaviyo, AutoWinner), (braze, WinningPath)):
        spec = load_spec(_spec(policy))
        from experiments.spec import build_policy

        built = build_policy(spec.arm("b").policy, reward="click")
        assert type(built) is cls
        assert built.params() == {**built.params(),
                                  **{k: v for k, v in policy.items() if k != "name"}}


BAD = [
    ({"name": "auto_winner", "arm_names": STYLES, "min_recipients": 0},
     r"^arms\[1\]\.policy\.min_recipients: expected an integer >= 1, got 0$"),
    ({"name": "auto_winner", "arm_names": STYLES, "win_probability": 0.3},
     r"^arms\[1\]\.policy\.win_probability: expected a number in \(0\.5, 1\), got 0\.3$"),
    ({"name": "auto_winner", "arm_names": STYLES, "win_probability": "high"},
     r"^arms\[1\]\.policy\.win_probability: expected a number in \(0\.5, 1\), got 'high'$"),
    ({"name": "auto_winner", "arm_names": STYLES, "end_after": "a week"},
     r"^arms\[1\]\.policy\.end_after: expected a duration like '2d' or whole seconds > 0, "
     r"got 'a week'$"),
    ({"name": "auto_winner", "arm_names": STYLES, "weights": [1, 1]},
     r"^arms\[1\]\.policy\.weights: expected 3 numbers, got \[1, 1\]$"),
    ({"name": "auto_winner", "arm_names": STYLES, "min_recipient": 5},
     r"^arms\[1\]\.policy\.min_recipient: unknown parameter of auto_winner; expected one of "
     r"name, decides, scope, arm_names, end_after, min_recipients, weights, win_probability$"),
    ({"name": "auto_winner", "arm_names": ["plain", "shouting"]},
     r"^arms\[1\]\.policy\.arm_names\[1\]: expected a subject style"),
    ({"name": "winning_path", "arm_names": STYLES},
     r"^arms\[1\]\.policy: .*missing 1 required positional argument: 'experiment_window'"),
    ({"name": "winning_path", "arm_names": STYLES, "experiment_window": "0h"},
     r"^arms\[1\]\.policy\.experiment_window: expected a duration like '2d' or whole "
     r"seconds > 0, got '0h'$"),
    ({"name": "winning_path", "arm_names": STYLES, "experiment_window": "1d",
      "fallback": "control"},
     r"^arms\[1\]\.policy\.fallback: expected one of best, mix, got 'control'$"),
    ({"name": "winning_path", "arm_names": STYLES, "experiment_window": "1d", "alpha": 1.5},
     r"^arms\[1\]\.policy\.alpha: expected a number in \(0, 1\), got 1\.5$"),
]


@pytest.mark.parametrize(("policy", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_bad_parameters_name_the_field(policy: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(policy))


def test_revenue_reward_is_refused() -> None:
    spec = {**_spec({"name": "auto_winner", "arm_names": STYLES}), "reward": "revenue"}
    with pytest.raises(SpecError, match=r"^arms\[1\]\.policy: AutoWinner learns binary rewards"):
        load_spec(spec)


def test_validate_prints_one_line_and_exits_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_spec({"name": "winning_path", "arm_names": STYLES,
                                          "experiment_window": "soon"})), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.match(r"^triggerlab validate: error: .*arms\[1\]\.policy\.experiment_window: "
                    r"expected a duration like '2d' or whole seconds > 0, got 'soon'$", err[0])


def test_a_run_decides_on_due_times_and_logs_exact_propensities() -> None:
    """The learner passes each email's due time as ``now``: campaign emails of the first
    two days are split (propensity 1/3), every later one goes to the winner (1.0)."""
    config = SimulationConfig(
        seed=3, subscribers=3000, days=5.0, tick_seconds=3600, rules=None,
        campaign=CampaignConfig(every_days=1, local_hour=10),
        policy=PolicyConfig(name="winning_path", decides="subject_style", scope="campaign",
                            params={"arm_names": STYLES, "experiment_window": "2d"}),
        reward="click", reward_window_seconds=12 * 3600, record_decisions=True)
    d = run_simulation(config, progress=False).decisions
    assert d is not None and len(d)
    first = int(d["time"].min())
    test = d[d["time"] < first + 2 * 86400]
    after = d[d["time"] >= first + 2 * 86400]
    assert len(test) and len(after)
    np.testing.assert_allclose(test["propensity"], 1 / 3)
    assert set(test["arm"]) == set(STYLES)
    assert (after["propensity"] == 1.0).all() and after["arm"].nunique() == 1


@pytest.mark.parametrize("policy", [
    WinningPath(STYLES, experiment_window="1d", weights=[1, 1, 2]),
    AutoWinner(STYLES, weights=[1, 1, 2], end_after="1d"),
], ids=["winning_path", "auto_winner"])
def test_ope_action_distribution_is_the_test_split(policy) -> None:  # type: ignore[no-untyped-def]
    """``triggerlab ope`` evaluates a fresh policy: its test split, with no decision times."""
    from experiments.commands.ope import action_distribution

    x = np.zeros((4, 15))
    dist = action_distribution(policy, x, np.arange(4), STYLES, np.random.default_rng(0))
    np.testing.assert_allclose(dist, np.tile([0.25, 0.25, 0.5], (4, 1)))
