"""Experiment specs: loading, round trips, per-arm rules, and path-named errors."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from actors.config import PolicyConfig
from experiments.spec import (
    ArmSpec,
    ExperimentSpec,
    arm_rules,
    build_policy,
    load_spec,
)
from policies.errors import SpecError
from policies.triggers import load_rules

SPECS = sorted((Path(__file__).parents[2] / "experiments" / "specs").glob("*.yaml"))

BASE = {
    "name": "t",
    "seed": 1,
    "population": {"subscribers": 1000},
    "duration": {"days": 2, "tick": "1h"},
    "rules": "default",
    "arms": [
        {"name": "a"},
        {"name": "b", "rules": {"cart_abandonment_24h": {"delay": "1h"}}},
        {"name": "c", "policy": {"name": "epsilon_greedy", "arm_names": ["plain", "question"],
                                 "epsilon": 0.1}},
    ],
}


def test_builtin_specs_are_the_issue_experiments() -> None:
    assert [p.stem for p in SPECS] == ["ab_vs_bandit", "cart_series", "esp_auto_winner",
                                       "esp_auto_winner_equal", "frequency_cap",
                                       "multivariate", "personalization", "price_drop",
                                       "segment_effects", "send_time", "trigger_timing",
                                       "tune_cart_series", "uplift_targeting", "winback"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_builtin_spec_loads_and_round_trips(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert len(spec.arms) >= 2 and spec.control_arm == spec.arms[0].name
    again = load_spec(spec.to_yaml())
    assert again == spec
    assert load_spec(spec.to_dict()) == spec


def test_defaults_and_resolution() -> None:
    spec = load_spec(BASE)
    assert spec.control_arm == "a" and spec.primary == "orders"
    assert spec.tick_seconds == 3600 and spec.days == 2.0
    assert spec.replication_seed(0) == 1 and spec.replication_seed(3) == 4
    assert spec.rules is not None and len(spec.rules["rules"]) == 3
    assert spec.arm("c").policy == PolicyConfig("epsilon_greedy",
                                                {"arm_names": ["plain", "question"],
                                                 "epsilon": 0.1}, "subject_style", "all")


def test_arm_rules_apply_overrides_disable_and_settings() -> None:
    spec = load_spec({**BASE, "arms": [
        {"name": "a"},
        {"name": "b", "rules": {"cart_abandonment_24h": {"delay": "1h", "priority": 3}},
         "settings": {"quiet_hours": None, "frequency_cap": {"max": 2, "per": "12h"}}},
        {"name": "c", "disable": ["cart_abandonment_24h", "engagement_momentum"]},
    ]})
    a = load_rules(arm_rules(spec.rules, spec.arm("a")))
    b = load_rules(arm_rules(spec.rules, spec.arm("b")))
    c = load_rules(arm_rules(spec.rules, spec.arm("c")))
    assert a["cart_abandonment_24h"].delay == 86400
    assert b["cart_abandonment_24h"].delay == 3600 and b["cart_abandonment_24h"].priority == 3
    assert b["browse_abandonment_2h"] == a["browse_abandonment_2h"]
    assert b.settings.quiet_hours is None and a.settings.quiet_hours is not None
    assert (b.settings.frequency_cap.max, b.settings.frequency_cap.per) == (2, 43200)
    assert c.ids == ("browse_abandonment_2h",)
    # the experiment's rules themselves are untouched
    assert spec.rules["rules"][0]["delay"] == "24h"
    assert arm_rules(None, spec.arm("a")) is None


def test_rules_file_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "my_rules.yaml").write_text(
        "rules:\n  - id: only\n    type: cart_abandonment\n    when: [{event: add_to_cart, "
        "within: 1h}]\n    delay: 2h\n    expire: 1d\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text(
        "name: s\nseed: 2\nrules: my_rules.yaml\narms: [{name: a}, {name: b, rules: "
        "{only: {delay: 30m}}}]\n", encoding="utf-8")
    spec = load_spec(tmp_path / "s.yaml")
    assert [r["id"] for r in spec.rules["rules"]] == ["only"]
    assert load_rules(arm_rules(spec.rules, spec.arm("b")))["only"].delay == 1800


def test_python_built_specs_are_validated_too() -> None:
    with pytest.raises(SpecError, match=r"^arms: expected at least 2 arms"):
        ExperimentSpec(name="x", seed=1, arms=(ArmSpec("a"),))
    with pytest.raises(SpecError, match=r"^arms\[1\]\.policy\.epsilon: expected a number in "
                                        r"\[0, 1\], got 1\.5$"):
        ExperimentSpec(name="x", seed=1, arms=(ArmSpec("a"), ArmSpec("b", policy=PolicyConfig(
            "epsilon_greedy", params={"arm_names": ["plain", "learn"], "epsilon": 1.5}))))
    spec = ExperimentSpec(name="x", seed=1, arms=(ArmSpec("a"), ArmSpec("b")))
    with pytest.raises(SpecError, match=r"^metrics\[0\]: expected one of"):
        dataclasses.replace(spec, metrics=("bogus",))
    pol = build_policy(PolicyConfig("linucb", params={"arm_names": ["plain", "learn"]}))
    assert pol.n_features == 15


def _with(path: str, value, base=BASE):  # type: ignore[no-untyped-def]
    data = copy.deepcopy(base)
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


class _Deleted:
    """Marks a key to remove; a fixed repr keeps test ids the same in every process."""

    def __repr__(self) -> str:
        return "<deleted>"


_DELETE = _Deleted()

INVALID = [
    ("arms.2.policy.epsilon", 1.5,
     r"^arms\[2\]\.policy\.epsilon: expected a number in \[0, 1\], got 1\.5$"),
    ("arms.2.policy.arm_names", ["plain", "bogus"],
     r"^arms\[2\]\.policy\.arm_names\[1\]: expected a subject style .* got 'bogus'$"),
    ("arms.2.policy.name", "nope", r"^arms\[2\]\.policy\.name: expected one of ab, "),
    ("arms.2.policy.colour", 1,
     r"^arms\[2\]\.policy\.colour: unknown parameter of epsilon_greedy"),
    ("arms.2.policy.decides", "font", r"^arms\[2\]\.policy\.decides: expected one of"),
    ("arms.1.rules.cart_abandonment_24h.delay", "soon",
     r"^arms\[1\]\.rules\.cart_abandonment_24h\.delay: expected a duration like '30m', "
     r"got 'soon'$"),
    ("arms.1.rules.cart_abandonment_24h.colour", 1,
     r"^arms\[1\]\.rules\.cart_abandonment_24h\.colour: unknown key; expected one of delay"),
    ("arms.1.rules.nope", {"delay": "1h"},
     r"^arms\[1\]\.rules\.nope: unknown key; expected one of cart_abandonment_24h"),
    ("arms.1.rules.cart_abandonment_24h.when", [{"event": "nope", "within": "1h"}],
     r"^arms\[1\]: after the arm's changes, rules\[0\]\.when\[0\]\.event: unknown event "
     r"type 'nope'"),
    ("arms.1.disable", ["nope"], r"^arms\[1\]\.disable\[0\]: expected one of the rule ids"),
    ("arms.1.holdout", 1.5, r"^arms\[1\]\.holdout: expected a number in \[0, 1\), got 1\.5$"),
    ("arms.1.settings", {"frequency": 1}, r"^arms\[1\]\.settings\.frequency: unknown key"),
    ("arms.0.colour", "red", r"^arms\[0\]\.colour: unknown key; expected one of name"),
    ("arms.0.name", _DELETE, r"^arms\[0\]\.name: missing$"),
    ("arms.0.name", "b", r"^arms\[1\]\.name: duplicate arm name 'b'$"),
    ("arms", [{"name": "a"}], r"^arms: expected a list of at least 2 arms"),
    ("arm", [], r"^arm: unknown key; expected one of name, description, seed"),
    ("seed", -1, r"^seed: expected an integer >= 0, got -1$"),
    ("seed", "x", r"^seed: expected an integer >= 0, got 'x'$"),
    ("seed", _DELETE, r"^seed: missing$"),
    ("population.subscribers", 5, r"^population\.subscribers: expected an integer >= 10, got 5$"),
    ("population.preset", "nope", r"^population\.preset: expected one of low_engagement, retail"),
    ("population.overrides", {"cart_probability": 1.5},
     r"^population\.overrides\.cart_probability: expected a probability in \[0, 1\], got 1\.5"),
    ("population.overrides", {"bogus": 1}, r"^population\.overrides\.bogus: unknown key"),
    ("duration.tick", "7m", r"^duration\.tick: expected a positive duration dividing a day"),
    ("duration.days", 1.3, r"^duration\.days: expected a whole number of ticks of 1h, got 1\.3$"),
    ("duration.days", 0, r"^duration\.days: expected a number > 0, got 0$"),
    ("campaign", {"local_hour": 25},
     r"^campaign\.local_hour: expected an integer in \[0, 23\], got 25$"),
    ("campaign", {"subject_style": "shout"}, r"^campaign\.subject_style: expected one of plain"),
    ("metrics", ["bogus"], r"^metrics\[0\]: expected one of opens, clicks"),
    ("primary_metric", "opens", r"^primary_metric: expected one of metrics"),
    ("control", "z", r"^control: expected one of the arm names \['a', 'b', 'c'\], got 'z'$"),
    ("reward", "opens", r"^reward: expected one of click, order, revenue, got 'opens'$"),
    ("replications", 0, r"^replications: expected an integer >= 1, got 0$"),
    ("executor", "spark", r"^executor: expected one of inline, ray, got 'spark'$"),
    ("analysis.alpha", 0.7, r"^analysis\.alpha: expected a number in \(0, 0\.5\], got 0\.7$"),
    ("analysis.correction", "sidak", r"^analysis\.correction: expected one of holm, bh"),
    ("record.decisions", "yes", r"^record\.decisions: expected true or false, got 'yes'$"),
    ("sources", ["nope"], r"^sources\[0\]: expected one of \['campaign', 'cart_abandonment_24h'"),
    ("rules", "missing_rules.yaml", r"^rules: file not found: missing_rules\.yaml$"),
    ("rules", {"rules": [{"id": "x"}]}, r"^rules: rules\[0\]"),
    ("metrics", ["incremental_orders"],
     r"^arms\[0\]\.holdout: metric incremental_orders needs a holdout > 0"),
    ("metrics", ["orders", "incremental_orders_per_email"],
     r"^arms\[0\]\.holdout: metric incremental_orders_per_email needs a holdout > 0"),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID,
                         ids=[f"{p}={v!r}"[:40] for p, v, _ in INVALID])
def test_invalid_specs_name_the_path(path: str, value, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=message):
        load_spec(_with(path, value))


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nseed: [1\n", r"^spec: malformed YAML at line 3, column 1: "),
    ("- just\n- a list\n", r"^expected a mapping, got \['just', 'a list'\]$"),
])
def test_malformed_yaml_text(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(text)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^spec: file not found: .*nope\.yaml$"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narms: {a: [\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"^spec: malformed YAML in .*bad\.yaml at line \d+"):
        load_spec(bad)


def test_readme_spec_example_is_valid() -> None:
    import re

    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Experiment spec", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```yaml\n(.+?)\n```", section, re.S).group(1)
    spec = load_spec(example)
    assert [a.name for a in spec.arms] == ["reminder_24h", "reminder_1h", "no_reminder",
                                           "capped", "bandit", "top30"]
    assert spec.arm("capped").holdout == 0.1 and spec.sources == ("cart_abandonment_24h",)
    assert spec.scoring.scorers == ("propensity", "clusters")
    assert spec.arm("top30").target.by == "p_purchase_7d"


def test_spec_holds_the_runtime_configs_and_names() -> None:
    import actors
    from actors.config import CampaignConfig
    from experiments import spec as spec_module
    from policies.base import SUBJECT_STYLES

    spec = load_spec({**BASE, "campaign": {"every_days": 3, "subject_style": "question"}})
    assert spec.campaign == CampaignConfig(every_days=3, local_hour=10, subject_style="question")
    assert isinstance(spec.arm("c").policy, PolicyConfig)
    assert spec_module.REWARDS is actors.REWARDS
    assert spec_module.POLICY_DECIDES is actors.DECIDES
    assert spec_module.POLICY_SCOPES is actors.SCOPES
    assert spec_module.policy_names() == tuple(actors.POLICIES)
    with pytest.raises(SpecError, match=r"^campaign\.subject_style: expected one of "
                                        + ", ".join(SUBJECT_STYLES) + ", got 'shout'$"):
        load_spec({**BASE, "campaign": {"subject_style": "shout"}})


def test_simulation_config_passes_the_configs_through() -> None:
    from experiments.runner import simulation_config

    spec = load_spec({**BASE, "campaign": {"every_days": 3}})
    config = simulation_config(spec, "c", 0)
    assert config.policy is spec.arm("c").policy
    assert config.campaign is spec.campaign
    assert simulation_config(spec, "a", 0).policy is None


@pytest.mark.parametrize(("name", "params", "reward", "field", "value"), [
    ("ab", {"arms": ["plain", "question"]}, "click", "salt", "triggerlab-3"),
    ("linucb", {"arm_names": ["plain", "learn"]}, "click", "n_features", 15),
    ("gaussian_thompson", {"arm_names": ["plain", "learn"]}, "revenue", "reward_type", "real"),
])
def test_build_policy_is_the_runtime_factory(name, params, reward, field, value) -> None:  # type: ignore[no-untyped-def]
    from actors import make_policy

    built = build_policy(PolicyConfig(name, params), reward=reward, seed=3)
    made = make_policy(name, params, decides="subject_style", reward=reward, seed=3)
    assert type(built) is type(made)
    assert getattr(built, field) == getattr(made, field) == value


@pytest.mark.parametrize(("value", "expected"), [
    ("none", None),
    ({"name": "thompson", "arm_names": ["plain", "learn"]},
     PolicyConfig("thompson", {"arm_names": ["plain", "learn"]})),
    ({"name": "thompson", "scope": "campaign", "params": {"arm_names": ["a", "b"]}, "x": 1},
     PolicyConfig("thompson", {"arm_names": ["a", "b"], "x": 1}, scope="campaign")),
])
def test_parse_policy(value, expected) -> None:  # type: ignore[no-untyped-def]
    from experiments.spec import parse_policy

    assert parse_policy(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    (["thompson"], r"^policy: expected a mapping with a name, got \['thompson'\]$"),
    ({"decides": "send_hour"}, r"^policy\.name: missing$"),
    ({"name": "oracle"}, r"^policy\.name: expected one of ab, epsilon_greedy, "),
    ({"name": "ab", "scope": "some"}, r"^policy\.scope: expected one of triggers, campaign, all"),
])
def test_parse_policy_rejects(value, message) -> None:  # type: ignore[no-untyped-def]
    from experiments.spec import parse_policy

    with pytest.raises(SpecError, match=message):
        parse_policy(value)


def test_read_yaml(tmp_path: Path) -> None:
    from experiments.spec import read_yaml

    (tmp_path / "p.yaml").write_text("name: ab\n", encoding="utf-8")
    assert read_yaml(tmp_path / "p.yaml", "policy") == {"name": "ab"}
    with pytest.raises(SpecError, match=r"^policy: file not found: .*q\.yaml$"):
        read_yaml(tmp_path / "q.yaml", "policy")
