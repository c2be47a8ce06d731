"""The segments benchmark reports every figure it promises, from a small run."""

from __future__ import annotations

import json

import sklearn.ensemble
from threadpoolctl import threadpool_limits

from experiments.bench import segments


def test_main_prints_one_json_object_last(capsys) -> None:
    assert sklearn.ensemble.HistGradientBoostingClassifier   # loaded, so limited below
    with threadpool_limits(limits=1):
        assert segments.main(["--subscribers", "3000", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["subscribers"] == 3000 and figures["cluster_criterion"] == "bic_elbow"
    for target in ("purchase_7d", "churn", "open"):
        assert 0.5 < figures[f"{target}_auc_truth"] <= 1 and figures[f"{target}_fit_s"] > 0
    assert figures["ari_supervised"] > figures["ari_null"]
    if "bgnbd_r" in figures:
        assert round(figures["bgnbd_r"], 3) == 0.243


def test_refresh_reports_each_part_of_a_refresh(capsys) -> None:
    """``--refresh``: the first refresh writes the rows whose segments moved (from no
    score), targeting picks exactly ceil(0.3 n), the parts add up to about the whole."""
    argv = ["--refresh", "--subscribers", "500", "--train-subscribers", "200",
            "--model", "logistic", "--json"]
    with threadpool_limits(limits=1):
        assert segments.main(argv) == 0
    f = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert f["subscribers"] == 500 and f["events"] == 5000
    for day in (28, 35):
        assert f[f"day{day}_targeted"] == 150
        assert 0 < f[f"day{day}_rows_written"] <= 500
        parts = sum(f[f"day{day}_{k}_s"] for k in ("features", "scoring", "engine_update"))
        assert 0 < parts < 3 * f[f"day{day}_refresh_s"] + 0.05
