"""The tune benchmark reports every figure it promises, from a small run: both searches
spend the same budget and their best true values are among those seen."""

from __future__ import annotations

import json

from experiments.bench import tune


def test_main_prints_one_json_object_last(capsys) -> None:
    assert tune.main(["--subscribers", "200", "--days", "3", "--trials", "4", "--parallel",
                      "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["trials"] == 4
    gaps = []
    for search in ("tpe", "grid"):
        for objective in ("truth", "observed"):
            name = f"{search}_{objective}"
            assert 0 <= figures[f"{name}_gap_to_best_true_seen_pct"] <= 100
            assert figures[f"{name}_best_truth"] <= figures["best_true_seen"]
            gaps.append(figures[f"{name}_gap_to_best_true_seen_pct"])
    assert min(gaps) == 0.0  # the best true value seen is some search's pick
    assert figures["grid_truth_gap_to_best_true_seen_pct"] <= figures[
        "grid_observed_gap_to_best_true_seen_pct"]  # the same points, judged by the truth
    assert figures["tpe_truth_wall_s"] > 0 and figures["grid_wall_s"] > 0
    assert figures["grid_truth_best_values"].startswith("first_wait=")


def test_the_grid_spends_the_budget_evenly() -> None:
    spec = tune._spec(200, 3, 12, 3)
    points = tune._grid(spec, 12)
    assert len(points) == 12
    assert sorted({p["first_wait"] for p in points}) == ["195m", "30m", "6h"]  # 3 x 4
    assert sorted({p["last_wait"] for p in points}) == ["12h", "32h", "3d", "52h"]
    assert points[0] == {"first_wait": "30m", "last_wait": "12h"}
    assert points[-1] == {"first_wait": "6h", "last_wait": "3d"}
