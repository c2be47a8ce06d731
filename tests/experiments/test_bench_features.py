"""The features benchmark builds the log it claims and prints its JSON line."""

from __future__ import annotations

import json

import numpy as np

from experiments.bench import features
from policies.event_schema import EVENT_TYPES


def test_synthetic_log_has_the_stated_shape() -> None:
    log = features.synthetic_log(20_000, 500, days=10, seed=1)
    assert len(log) == 20_000 and log.subscriber.min() >= 0 and log.subscriber.max() < 500
    assert log.time.min() >= features.T0 and log.time.max() < features.T0 + 10 * 86_400
    buy = log.type == EVENT_TYPES.code("purchase_completed")
    assert np.all(np.isnan(log.columns["revenue"]) == ~buy)
    assert 0.01 < buy.mean() < 0.02


def test_main_prints_one_json_object_last(capsys) -> None:
    argv = ["--events", "5000", "--subscribers", "300", "--repeat", "1", "--json"]
    assert features.main(argv) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["events"] == 5000 and figures["subscribers"] == 300
    assert figures["features"] == 19 and figures["wall_s"] > 0
