"""``triggerlab demo``: the built-in trigger-timing and A/B-vs-bandit experiments at demo
scale; what it prints agrees with the run folders it writes."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd

from experiments import load_spec
from experiments.cli import main
from experiments.commands.demo import DEMO_RUNS, demo_specs

SPECS = Path(__file__).parents[2] / "experiments" / "specs"


def test_demo_specs_are_the_builtin_specs_at_demo_scale() -> None:
    specs = demo_specs()
    assert [s.name for s in specs] == ["trigger_timing", "ab_vs_bandit"]
    for spec, (name, subscribers, days, reps) in zip(specs, DEMO_RUNS, strict=True):
        shipped = load_spec(SPECS / f"{name}.yaml")
        assert spec == dataclasses.replace(shipped, subscribers=subscribers, days=days,
                                           replications=reps)
    assert demo_specs(scale=0.5, seed=3)[0].subscribers == DEMO_RUNS[0][1] // 2
    assert demo_specs(seed=3)[1].seed == 3


def test_demo_prints_recommendations_that_match_the_reports(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["demo", "--scale", "0.05", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    sections = out.split("\n\n")
    assert len(sections) == 3
    for (name, subscribers, _days, _reps), section in zip(DEMO_RUNS, sections, strict=False):
        d = tmp_path / name
        assert (d / "report.md").exists() and (d / "report.html").exists()
        assert f"report: {d / 'report.md'}" in out
        assert f"{name}: " in out and f"{round(subscribers * 0.05):,} subscribers" in out
        summary = pd.read_csv(d / "summary.csv")
        primary = {"trigger_timing": "orders", "ab_vs_bandit": "clicks"}[name]
        for _, r in summary[summary["metric"] == primary].iterrows():
            value = (f"{100 * r['estimate']:.2f}%" if primary == "clicks"
                     else f"{r['estimate']:.4f}")
            assert re.search(rf"^  {r['arm']}\s+{re.escape(value)} ", out, re.M), (r["arm"], out)
        report = (d / "report.md").read_text()
        assert section.startswith(f"{name}: ")
        first = next(line for line in section.splitlines() if line.startswith("Recommendation:"))
        assert first.split(".")[0].replace("Recommendation: ", "") in report.replace("**", "")
    assert re.search(r"^demo finished in \d+\.\d s; reports: ", out, re.M)
    assert out.count("Ground truth: in the simulator the best arm") == 2
