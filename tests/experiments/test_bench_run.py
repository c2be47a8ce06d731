"""The full-loop benchmark runs Ray and inline on a small population and prints its
figures, including every process's CPU and the bound they put on the ratio."""

from __future__ import annotations

import json

import pytest

from experiments.bench import run as bench_run


@pytest.mark.ray
def test_small_run_prints_consistent_figures(ray_session, capsys):
    assert bench_run.main(["--subscribers", "3000", "--days", "0.25", "--shards", "2",
                           "--checkpoint-every", "8", "--decision-lag-ticks", "2",
                           "--ticks-per-call", "2", "--scaling", "", "--json"]) == 0
    f = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert f["ticks"] == 24 and f["events"] > 0 and f["emails"] > 0
    assert f["ray_learner_cpu_s"] > 0 and f["ray_driver_cpu_s"] > 0
    assert f["ray_total_cpu_s"] >= f["ray_max_shard_cpu_s"] + f["ray_learner_cpu_s"]
    assert f["ray_speedup_vs_inline"] == pytest.approx(f["inline_wall_s"] / f["ray_wall_s"])
    assert 0 < f["ratio_cpu_bound_on_this_machine"] <= f["cpu_bound_speedup"] + 1e-9


@pytest.mark.parametrize("argv", [["--skip-ray", "--skip-inline"]])
def test_nothing_to_run_is_refused(argv):
    with pytest.raises(SystemExit, match="nothing to run"):
        bench_run.main(["--subscribers", "100", "--days", "0.1", *argv])


def test_journey_run_inline_beside_the_reference_rules(capsys):
    assert bench_run.main(["--rules", "journeys", "--subscribers", "3000", "--days", "1",
                           "--skip-ray", "--json"]) == 0
    f = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert f["rules"] == "journeys" and f["emails"] > 0 and f["reference_emails"] > 0
    assert f["journeys_vs_reference_wall_ratio"] == pytest.approx(
        f["inline_wall_s"] / f["reference_inline_wall_s"])
    assert 50 < f["journeys_world_bytes_per_subscriber"] < 200
    assert 100 < f["journeys_engine_bytes_per_subscriber"] < 400
    assert "ray_wall_s" not in f
