"""The runner: common random numbers, the run folder, reproducibility, atomic writes."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import experiments.runner as runner_mod
from experiments import Results, load_spec, run
from experiments.runner import Progress, simulation_config
from policies.errors import SpecError

TINY = {
    "name": "tiny",
    "seed": 21,
    "population": {"subscribers": 600},
    "duration": {"days": 3, "tick": "1h"},
    "rules": "default",
    "campaign": {"every_days": 1, "local_hour": 10},
    "reward": "click",
    "reward_window": "12h",
    "arms": [
        {"name": "base"},
        {"name": "same_as_base"},
        {"name": "ts", "policy": {"name": "thompson", "arm_names": ["plain", "question"]}},
        {"name": "reminder_1h", "rules": {"cart_abandonment_24h": {"delay": "1h"}},
         "holdout": 0.2},
    ],
    "metrics": ["orders", "clicks", "revenue_per_recipient", "unsubscribes"],
    "replications": 2,
    "record": {"decisions": True},
}
FILES = {"spec.yaml", "metrics.parquet", "truth.parquet", "decisions.parquet", "summary.csv",
         "report.md", "report.html", "metric_over_time.png", "lift.png", "allocation.png",
         "regret.png", "funnel.png", "timing.json"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Results:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return run(TINY, out=out, progress=False)


def test_run_folder_contents(tiny_run: Results) -> None:
    d = tiny_run.run_dir
    assert d is not None and {p.name for p in d.iterdir()} == FILES
    m = pd.read_parquet(d / "metrics.parquet")
    assert list(m.columns) == ["replication", "arm", "day", "source", "variant", "group",
                               "metric", "value"]
    assert sorted(m["replication"].unique()) == [0, 1]
    assert sorted(m["arm"].unique()) == sorted(a["name"] for a in TINY["arms"])
    assert sorted(m["day"].unique()) == [0, 1, 2]
    assert set(m.loc[m["arm"] == "ts", "variant"]) >= {"plain", "question"}
    assert set(m.loc[m["arm"] == "reminder_1h", "group"]) == {"treatment", "holdout"}
    dec = pd.read_parquet(d / "decisions.parquet")
    assert {"replication", "arm", "variant", "propensity", "reward", "expected_reward"} <= set(
        dec.columns)
    assert ((dec["propensity"] > 0) & (dec["propensity"] <= 1)).all()
    text = (d / "spec.yaml").read_text()
    assert "seeds:\n    base:\n    - 21\n    - 22\n    same_as_base:\n    - 21\n    - 22\n" in text
    assert "versions:" in text and "numpy:" in text
    # the spec as run reloads to the same spec
    assert Results.load(d).spec == tiny_run.spec


def test_arms_share_random_numbers_per_replication(tiny_run: Results) -> None:
    m = tiny_run.metrics
    base = m[m["arm"] == "base"].drop(columns="arm").reset_index(drop=True)
    same = m[m["arm"] == "same_as_base"].drop(columns="arm").reset_index(drop=True)
    pd.testing.assert_frame_equal(base, same)
    # replications differ (seed + r)
    r0 = base[base["replication"] == 0]["value"].to_numpy()
    r1 = base[base["replication"] == 1]["value"].to_numpy()
    assert len(r0) == len(r1) and not np.array_equal(r0, r1)
    # every arm of a replication simulated the same subscribers
    subs = m[(m["metric"] == "subscribers") & (m["day"] == 0)].groupby(
        ["replication", "arm"])["value"].sum()
    assert subs.nunique() == 1 and subs.iloc[0] == 600


def test_common_random_numbers_can_be_turned_off() -> None:
    spec = load_spec({**TINY, "common_random_numbers": False})
    seeds = [[simulation_config(spec, a.name, r).seed for a in spec.arms] for r in (0, 1)]
    assert seeds[0][0] == 21 and seeds[1][0] == 22
    assert len({s for row in seeds for s in row}) == 8  # all distinct
    assert seeds == [[simulation_config(spec, a.name, r).seed for a in spec.arms]
                     for r in (0, 1)]  # deterministic
    small = {**TINY, "common_random_numbers": False, "replications": 1,
             "arms": TINY["arms"][:2], "population": {"subscribers": 300},
             "record": {"decisions": False}}
    m = run(small, progress=False).metrics
    a = m[m["arm"] == "base"]["value"].to_numpy()
    b = m[m["arm"] == "same_as_base"]["value"].to_numpy()
    assert len(a) == len(b) and not np.array_equal(a, b)


def test_simulation_config_per_arm() -> None:
    spec = load_spec(TINY)
    c0 = simulation_config(spec, "reminder_1h", 1)
    assert c0.seed == 22 and c0.holdout_fraction == 0.2 and c0.subscribers == 600
    assert c0.rules["cart_abandonment_24h"].delay == 3600
    assert c0.campaign.every_days == 1 and c0.policy is None and c0.record_decisions
    c1 = simulation_config(spec, "ts", 0, record_decisions=False)
    assert c1.seed == 21 and c1.policy.name == "thompson" and not c1.record_decisions
    assert c1.rules["cart_abandonment_24h"].delay == 86400


def test_identical_spec_reproduces_identical_files(tiny_run: Results, tmp_path: Path) -> None:
    again = run(TINY, out=tmp_path / "again", progress=False)
    for name in sorted(FILES - {"timing.json"}):
        a = (tiny_run.run_dir / name).read_bytes()
        b = (again.run_dir / name).read_bytes()
        assert a == b, name


def test_results_load_round_trips_tables(tiny_run: Results) -> None:
    loaded = Results.load(tiny_run.run_dir)
    pd.testing.assert_frame_equal(loaded.metrics, tiny_run.metrics)
    pd.testing.assert_frame_equal(loaded.truth, tiny_run.truth)
    pd.testing.assert_frame_equal(loaded.decisions, tiny_run.decisions)
    pd.testing.assert_frame_equal(loaded.summary(), tiny_run.summary())
    assert loaded.events is None and "tiny" in repr(loaded)


def _failing_simulate(fail_on: int):  # type: ignore[no-untyped-def]
    from actors import run_simulation

    calls = {"n": 0}

    def simulate(config, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise RuntimeError("shard died")
        return run_simulation(config, **kw)

    return lambda: simulate


def test_failure_leaves_nothing_half_written(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(TINY)
    spec.update(replications=1, arms=TINY["arms"][:2], duration={"days": 1, "tick": "1h"},
                record={"decisions": False})
    spec["population"]["subscribers"] = 200
    out = tmp_path / "out"
    monkeypatch.setattr(runner_mod, "_simulate", _failing_simulate(2))
    with pytest.raises(RuntimeError, match="shard died"):
        run(spec, out=out, progress=False)
    assert list(tmp_path.iterdir()) == []
    # a failure while writing (after the runs) leaves nothing either ...
    monkeypatch.setattr(runner_mod, "_simulate", _failing_simulate(0))

    def broken_report(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    import experiments.report as report_mod

    monkeypatch.setattr(report_mod, "write_report", broken_report)
    with pytest.raises(OSError, match="disk full"):
        run(spec, out=out, progress=False)
    assert list(tmp_path.iterdir()) == []
    # ... and keeps a previous run folder intact
    monkeypatch.undo()
    first = run(spec, out=out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(report_mod, "write_report", broken_report)
    with pytest.raises(OSError):
        run(spec, out=out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and first.run_dir == out


def test_out_must_be_a_run_folder_or_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SpecError, match=r"^--out: .* is a non-empty directory that is not a "
                                        r"run folder"):
        run(TINY, out=tmp_path, progress=False)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SpecError, match=r"^--out: expected a directory, got the file"):
        run(TINY, out=f, progress=False)


def test_progress_bar_draws_on_request() -> None:
    import io

    buf = io.StringIO()
    bar = Progress(2, enabled=True, stream=buf)
    bar.start("replication 0 arm a")
    bar.update("replication 0 arm a")
    bar.update("replication 0 arm b")
    text = buf.getvalue()
    assert "[" + "-" * 28 + "] 0/2" in text and "[" + "#" * 28 + "] 2/2" in text
    assert text.endswith("\n")
    quiet = io.StringIO()
    Progress(2, stream=quiet).update("x")  # not a terminal: silent by default
    assert quiet.getvalue() == ""


@pytest.mark.ray
def test_ray_fan_out_gives_the_inline_files(ray_session, tiny_run: Results,  # type: ignore[no-untyped-def]
                                            tmp_path: Path) -> None:
    """executor ray: every (replication, arm) is a Ray task; the run folder is identical
    to the inline one except the executor line of spec.yaml and the wall times."""
    on_ray = run(TINY, out=tmp_path / "ray", executor="ray", progress=False)
    for name in sorted(FILES - {"timing.json", "spec.yaml"}):
        assert (on_ray.run_dir / name).read_bytes() == (tiny_run.run_dir / name).read_bytes()
    spec_text = (on_ray.run_dir / "spec.yaml").read_text()
    assert "executor: ray" in spec_text
    assert spec_text.replace("executor: ray", "executor: inline") == (
        tiny_run.run_dir / "spec.yaml").read_text()
