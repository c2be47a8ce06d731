"""triggerlab tune (experiments.tuning, experiments.tuning_spec): the spec's tune section
is checked field by field; values go where their paths say and an arm's overrides carry
them; a small search writes its folder, resumes where it stopped, repeats exactly with
the same seed, and its best rules load as a rules file; the guardrail excludes trials."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.spec import load_spec
from experiments.tuning_spec import apply_values, current_values, parse_tune, path_tokens
from policies.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]

TUNE = {"arm": "series", "metric": "attributed_margin",
        "guardrail": {"metric": "unsubscribes", "max_worse": 0.01},
        "trials": 3, "parallel": 3,
        "parameters": {
            "first_wait": {"path": "cart_series.steps[0].wait", "low": "30m", "high": "6h"},
            "last_wait": {"path": "cart_series.steps[4].wait", "low": "12h", "high": "72h"},
            "cap": {"path": "settings.frequency_cap.max", "low": 1, "high": 4}}}


def _data(tune: Any = TUNE) -> dict[str, Any]:
    """The shipped cart_series spec, small (200 subscribers, 3 days), with ``tune``."""
    data = yaml.safe_load((ROOT / "experiments/specs/cart_series.yaml").read_text())
    data.update(name="tune_small", replications=1)
    data["population"]["subscribers"] = 200
    data["duration"]["days"] = 3
    data["tune"] = copy.deepcopy(tune)
    return data


# -- the section ------------------------------------------------------------------------


def test_the_section_loads_and_writes_back() -> None:
    spec = load_spec(_data())
    t = spec.tune
    assert [p.name for p in t.parameters] == ["first_wait", "last_wait", "cap"]
    assert [p.kind for p in t.parameters] == ["duration", "duration", "int"]
    assert (t.parameters[0].low, t.parameters[0].high) == (1800, 21600)
    again = load_spec(spec.to_dict())
    assert again.tune == t
    assert spec.to_dict()["tune"]["parameters"]["first_wait"] == {
        "path": "cart_series.steps[0].wait", "low": "30m", "high": "6h"}
    assert "tune" not in load_spec(_data(None)).to_dict()


def _bad(**change: Any) -> dict[str, Any]:
    t = copy.deepcopy(TUNE)
    for key, value in change.items():
        if key.startswith("p_"):
            t["parameters"]["first_wait"][key[2:]] = value
        else:
            t[key] = value
    return t


BAD_SECTIONS = [
    (_bad(arm="nope"), r"tune.arm: expected one of the spec's arms"),
    (_bad(metric="opens"), r"tune.metric: expected one of the spec's metrics"),
    (_bad(guardrail={"metric": "clicks", "max_worse": -1}), r"tune.guardrail.max_worse"),
    (_bad(guardrail={"metric": "bounces"}), r"tune.guardrail.metric: expected one of"),
    (_bad(trials=0), r"tune.trials"),
    (_bad(parallel=1.5), r"tune.parallel"),
    (_bad(parameters={}), r"tune.parameters: expected a mapping"),
    (_bad(extra=1), r"tune.extra: unknown key; expected one of arm, metric"),
    (_bad(p_low="6h"), r"tune.parameters.first_wait: expected low < high"),
    (_bad(p_low=1), r"low and high must both be durations or both numbers"),
    (_bad(p_low="90s"), r"durations are searched in whole minutes"),
    (_bad(p_low="soon"), r"tune.parameters.first_wait.low: "),
    (_bad(p_log=True, p_low=0, p_high=1), r"a log scale needs low > 0"),
    (_bad(p_path="cart_series.steps[9].wait"), r"no item \[9\]"),
    (_bad(p_path="cart_series.steps[0].delay"), r"no key 'delay'"),
    (_bad(p_path="browse.steps[0].wait"), r"the tuned arm has no rule 'browse'"),
    (_bad(p_path="cart_series.colour"), r"expected '<rule id>\.<delay\|expire"),
    (_bad(p_path="settings.colour.max"), r"after 'settings' expected one of"),
    (_bad(p_path="cart_series..steps"), r"is not a path like"),
    (_bad(p_path="cart_series.steps[x]"), r"is not a path like"),
    (_bad(p_unit="h"), r"tune.parameters.first_wait.unit: unknown key"),
]


@pytest.mark.parametrize(("tune", "message"), BAD_SECTIONS)
def test_bad_sections_are_refused_with_the_field(tune, message) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_data(tune))


def test_a_path_twice_is_refused() -> None:
    t = copy.deepcopy(TUNE)
    t["parameters"]["again"] = dict(t["parameters"]["first_wait"])
    with pytest.raises(SpecError, match="a path is searched twice"):
        parse_tune(t, ["series"], ["attributed_margin", "unsubscribes"])


def test_values_go_where_their_paths_say() -> None:
    spec = load_spec(_data())
    from experiments.design import arm_rules

    rules = arm_rules(spec.rules, spec.arm("series"))
    assert current_values(rules, spec.tune) == {"first_wait": "1h", "last_wait": "48h",
                                                "cap": 2}
    data, over = apply_values(rules, spec.tune, {"first_wait": "90m", "last_wait": "30h",
                                                 "cap": 3})
    steps = data["rules"][0]["steps"]
    assert steps[0] == {"wait": "90m"} and steps[4] == {"wait": "30h"}
    assert data["settings"]["frequency_cap"] == {"max": 3, "per": "24h"}
    assert over["rules"] == {"cart_series": {"steps": steps}}  # the whole steps list
    assert over["settings"] == {"frequency_cap": {"max": 3, "per": "24h"}}
    assert rules["rules"][0]["steps"][0] == {"wait": "1h"}  # not changed in place
    assert path_tokens("a.b[2][0].c", "x") == ["a", "b", 2, 0, "c"]


# -- searching --------------------------------------------------------------------------


def test_a_search_writes_its_folder_resumes_and_its_best_rules_load(tmp_path) -> None:
    from experiments.tuning import tune
    from policies.triggers import load_rules

    spec = load_spec(_data())
    first = tune(spec, trials=2, parallel=2, out=tmp_path)
    assert len(first.trials) == 2
    more = tune(spec, trials=3, parallel=2, out=tmp_path)  # one more trial, resumed
    assert len(more.trials) == 3
    pd.testing.assert_frame_equal(more.trials.iloc[:2], first.trials)
    for name in ("study.db", "trials.csv", "best.yaml", "best_rules.yaml", "history.png",
                 "partial_dependence.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    table = pd.read_csv(tmp_path / "trials.csv")
    assert list(table.columns) == ["trial", "first_wait", "last_wait", "cap", "metric",
                                   "metric_truth", "guardrail_worse", "guardrail_true_worse",
                                   "feasible"]
    assert np.isfinite(table["metric_truth"]).all()
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best["best"]["trial"] in table["trial"].tolist()
    rules = load_rules(yaml.safe_load((tmp_path / "best_rules.yaml").read_text()))
    steps = rules.rules[0].journey.steps  # type: ignore[union-attr]
    from policies.triggers import parse_duration

    assert steps[0].duration == parse_duration(best["best"]["values"]["first_wait"])
    assert rules.settings.frequency_cap.max == best["best"]["values"]["cap"]  # type: ignore[union-attr]
    assert more.baseline["values"] == {"first_wait": "1h", "last_wait": "48h", "cap": 2}


def test_the_same_spec_searches_the_same_way() -> None:
    from experiments.tuning import tune

    spec = load_spec(_data())
    a, b = tune(spec, trials=2, parallel=2), tune(spec, trials=2, parallel=2)
    pd.testing.assert_frame_equal(a.trials, b.trials)


def test_trials_that_break_the_guardrail_are_not_the_best() -> None:
    import dataclasses

    from experiments.tuning import _best, _feasible

    t = load_spec(_data()).tune
    assert t.objective == "truth"  # judged by the simulator's expected values
    obs = dataclasses.replace(t, objective="observed")
    fig = {"metric": 0.2, "metric_truth": 0.1, "guardrail_worse": 0.02,
           "guardrail_true_worse": 0.01}
    assert _feasible(t, fig) and not _feasible(obs, fig)
    assert not _feasible(t, {**fig, "guardrail_true_worse": float("nan")})
    table = pd.DataFrame({"trial": [0, 1, 2], "first_wait": ["1h"] * 3, "last_wait": ["2d"] * 3,
                          "cap": [1, 2, 3], "metric": [0.3, 0.9, 0.5],
                          "metric_truth": [0.3, 0.8, 0.5], "guardrail_worse": [0, 0.5, 0],
                          "guardrail_true_worse": [0, 0.4, 0],
                          "feasible": [True, False, True]})
    assert _best(t, table, "maximize")["trial"] == 2
    assert _best(obs, table.assign(metric=[0.3, 0.9, 0.2]), "maximize")["trial"] == 0
    assert _best(t, table.assign(metric_truth=[0.6, 0.8, 0.5]), "maximize")["trial"] == 0
    assert _best(t, table.assign(feasible=False), "maximize") == {}


def test_the_command_line(tmp_path, capsys) -> None:
    from experiments.cli import main

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_data()))
    assert main(["tune", str(path), "--trials", "2", "--parallel", "2",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.count("trial ") >= 2 and "best: trial" in out
    assert "the arm as declared (series): attributed_margin" in out
    assert (tmp_path / "out" / "best_rules.yaml").exists()
    assert main(["tune", str(ROOT / "experiments/specs/cart_series.yaml")]) == 2
    assert "no 'tune' section" in capsys.readouterr().err


def test_the_docs_section_fits_the_shipped_cart_series_spec() -> None:
    import re

    page = (ROOT / "docs" / "tuning.md").read_text()
    block = re.findall(r"```yaml\n(.*?)```", page, re.S)[0]
    data = _data(yaml.safe_load(block)["tune"])
    spec = load_spec(data)
    from experiments.design import arm_rules

    rules = arm_rules(spec.rules, spec.arm(spec.tune.arm))
    assert current_values(rules, spec.tune) == {"first_wait": "1h", "last_wait": "48h",
                                                "discount": 0.15, "cap": 2}


def test_a_folder_of_another_study_is_refused(tmp_path) -> None:
    from experiments.tuning import tune

    tune(load_spec(_data()), trials=2, parallel=2, out=tmp_path)
    changed = copy.deepcopy(TUNE)
    changed["parameters"]["cap"]["high"] = 3
    with pytest.raises(SpecError, match="holds a study of another spec or tune section"):
        tune(load_spec(_data(changed)), trials=3, out=tmp_path)
    data = _data()
    data["population"]["subscribers"] = 300
    with pytest.raises(SpecError, match="holds a study of another spec"):
        tune(load_spec(data), trials=3, out=tmp_path)
    assert len(tune(load_spec(_data()), trials=2, parallel=1, out=tmp_path).trials) == 2


def test_a_trial_with_nothing_to_judge_fails_and_uses_up_its_trial(monkeypatch,
                                                                   tmp_path) -> None:
    import experiments.tuning as tuning

    calls = []

    def fake(spec, tune, candidates, executor):
        calls.append(len(candidates))
        figs = [{"metric": 0.1, "metric_truth": float("nan"), "guardrail_worse": 0.0,
                 "guardrail_true_worse": 0.0} for _ in candidates]
        return figs, {"metric": 0.1, "metric_truth": 0.1}

    monkeypatch.setattr(tuning, "evaluate", fake)
    result = tuning.tune(load_spec(_data()), trials=3, parallel=2, out=tmp_path)
    assert calls == [2, 1] and len(result.trials) == 0 and result.best == {}
    assert not (tmp_path / "best_rules.yaml").exists()
    assert (tmp_path / "history.png").exists() and (tmp_path / "trials.csv").exists()
