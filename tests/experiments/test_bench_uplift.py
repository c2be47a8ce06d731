"""The uplift benchmark reports every figure it promises, from a small run."""

from __future__ import annotations

import json

from experiments.bench import uplift


def test_main_prints_one_json_object_last(capsys, tmp_path) -> None:
    png = tmp_path / "q.png"
    assert uplift.main(["--subscribers", "1500", "--propensity", "logistic", "--json",
                        "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])
    assert "uplift by decile" in out and "mean_treated" in out
    assert figures["world"] == "persuadable" and figures["n_train"] + figures["n_test"] > 1450
    for r in uplift.RANKINGS:
        assert f"qini_{r}" in figures and 0 <= figures[f"captured30_{r}"] <= 1
    assert figures["captured30_truth"] >= max(figures[f"captured30_{r}"] for r in uplift.RANKINGS)
    assert figures["fit_s"] > 0 and png.stat().st_size > 1000
    assert abs(figures["predicted_uplift_mean"] - figures["true_uplift_mean"]) < 0.05
