"""The full-loop benchmark runs Ray and inline on a small population and prints its
figures, including every process's CPU and the bound they put on the ratio."""

from __future__ import annotations

import json

import pytest

from experiments.bench import run as bench_run

pytestmark = pytest.mark.ray


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
