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
