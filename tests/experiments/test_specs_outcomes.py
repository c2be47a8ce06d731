"""Each built-in spec's expected qualitative outcome, asserted on the simulator's ground
truth at small scale (the specs' own seeds, fewer subscribers).

The truth columns are expected values over the emails actually sent (no response
noise), so these assertions test the simulator's causal structure as seen through the
runner and the report, not luck.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from experiments import Results, load_spec, run

SPECS = Path(__file__).parents[2] / "experiments" / "specs"


def _run(name: str, subscribers: int, days: float = 14.0, replications: int = 1) -> Results:
    spec = load_spec(SPECS / f"{name}.yaml")
    spec = dataclasses.replace(spec, subscribers=subscribers, days=days,
                               replications=replications)
    return run(spec, progress=False)


def _truth(res: Results, metric: str) -> pd.Series:
    s = res.summary()
    return s[s["metric"] == metric].set_index("arm")["true_value"]


def _triggered(res: Results) -> pd.DataFrame:
    t = res.truth
    t = t[(t["group"] == "treatment") & (t["source"] != "campaign")]
    return t.groupby("arm")[["sends", "expected_incremental_orders"]].sum()


def test_trigger_timing_1h_beats_24h_beats_none() -> None:
    res = _run("trigger_timing", 5000)
    inc = _truth(res, "orders")  # expected email-caused orders per subscriber (cart rule)
    assert inc["reminder_1h"] > 1.5 * inc["reminder_24h"] > 0
    assert inc["no_reminder"] == 0
    # the late reminder converts worse per email in truth
    per_email = _truth(res, "attributed_orders")
    assert per_email["reminder_1h"] > per_email["reminder_24h"]
    t = res.truth
    assert not ((t["arm"] == "no_reminder") & (t["source"] == "cart_abandonment_24h")).any()


def test_thompson_sampling_loses_less_than_a_fixed_split() -> None:
    res = _run("ab_vs_bandit", 5000)
    s = res.summary().set_index(["metric", "arm"])
    assert s.loc[("clicks", "thompson"), "regret"] < 0.85 * s.loc[("clicks", "ab_split"),
                                                                  "regret"]
    clicks = _truth(res, "clicks")
    assert clicks["thompson"] > clicks["ab_split"]
    # it moved sends to the style that is best in truth
    t = res.truth[res.truth["arm"] == "thompson"]
    best = t.groupby("best_arm")["sends"].sum().idxmax()
    m = res.metrics
    sends = m[(m["arm"] == "thompson") & (m["metric"] == "sends") & (m["source"] == "campaign")]
    share = sends.groupby("variant")["value"].sum()
    assert share.idxmax() == best == "first_name"
    assert share[best] / share.sum() > 0.5


def test_rule_based_personalization_beats_the_global_winner() -> None:
    res = _run("personalization", 5000)
    clicks = _truth(res, "clicks")
    assert clicks["rule_based"] > 1.08 * clicks["global_winner"]
    assert clicks["rule_based"] > clicks["linucb"]
    s = res.summary().set_index(["metric", "arm"])
    assert s.loc[("clicks", "rule_based"), "regret"] < 0.2 * s.loc[("clicks", "global_winner"),
                                                                   "regret"]


def test_send_time_evening_beats_morning_and_click_fed_optimizer() -> None:
    res = _run("send_time", 4000)
    opens = _truth(res, "opens")
    assert opens["fixed_20h"] > opens["fixed_10h"]
    assert opens["fixed_20h"] > opens["optimized"]


def test_looser_frequency_caps_send_more_and_cause_more_orders() -> None:
    res = _run("frequency_cap", 4000)
    trig = _triggered(res)
    order = ["cap_1_per_3_days", "cap_1_per_day", "cap_3_per_day", "no_cap"]
    sends = trig.loc[order, "sends"].to_numpy()
    inc = trig.loc[order, "expected_incremental_orders"].to_numpy()
    assert sends[0] < sends[1] < sends[2] <= sends[3]
    assert inc[0] < inc[1] < inc[2] <= inc[3]
    orders = _truth(res, "orders")
    assert orders["cap_1_per_3_days"] < orders["cap_1_per_day"] < orders["no_cap"]


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_builtin_spec_runs_from_the_command_line(path: Path, tmp_path: Path,
                                                       monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``triggerlab run`` on each shipped spec (shrunk through a copy of the file)."""
    import yaml

    from experiments.cli import main

    data = yaml.safe_load(path.read_text())
    data["population"]["subscribers"] = 300
    data["duration"]["days"] = 2
    data["replications"] = 1
    small = tmp_path / path.name
    small.write_text(yaml.safe_dump(data))
    assert main(["run", str(small), "--out", str(tmp_path / "out"), "--no-plots",
                 "--no-progress"]) == 0
    assert (tmp_path / "out" / "report.md").exists()
