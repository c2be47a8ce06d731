"""The 30-day calibration run lands inside every range of docs/calibration.md."""

from __future__ import annotations

import re

import numpy as np
import pytest

from experiments import calibration
from experiments.calibration import (
    CALIBRATION_ROWS,
    _cart_abandonment,
    calibration_table,
    run_calibration,
)
from experiments.cli import main
from policies.events import EventBatch

START = 1_704_067_200


@pytest.fixture(scope="module")
def run() -> calibration.CalibrationRun:
    return run_calibration(20_000, seed=2024)


def test_every_calibration_range_is_met(run) -> None:
    table = calibration_table(run)
    assert list(table.key) == [r[0] for r in CALIBRATION_ROWS]
    assert len(table) == 8
    bad = table[~table.ok][["key", "simulated", "low", "high"]]
    assert table.ok.all(), bad.to_string()
    for row in table.itertuples():
        assert row.low <= row.simulated <= row.high
        assert row.source


def test_the_run_exercises_all_three_reference_rules(run) -> None:
    m = run.metrics()
    assert m["campaign_sends"] > 4 * 19_000  # five weekly campaigns to the subscribed
    for kind in ("cart_abandonment", "browse_abandonment", "engagement_momentum"):
        assert m[f"{kind}_sends"] > 200, kind
    # revenue per recipient: campaign ~ $0.1, triggered mail ~ dollars (Klaviyo 2024)
    assert 0.03 < m["campaign_revenue_per_recipient"] < 0.5
    assert 0.5 < m["triggered_revenue_per_recipient"] < 6.0
    assert m["triggered_open"] > m["campaign_open"]


def test_cart_abandonment_measure() -> None:
    day = 86400
    ev = EventBatch.from_records([
        {"subscriber": 1, "time": START + 10, "type": "add_to_cart", "cart_value": 30.0},
        {"subscriber": 1, "time": START + 2 * day, "type": "purchase_completed"},
        {"subscriber": 2, "time": START + 20, "type": "add_to_cart", "cart_value": 30.0},
        {"subscriber": 2, "time": START + 9 * day, "type": "purchase_completed"},
        {"subscriber": 3, "time": START + 30, "type": "add_to_cart", "cart_value": 30.0},
        {"subscriber": 4, "time": START + 25 * day, "type": "add_to_cart", "cart_value": 9.0},
        {"subscriber": 3, "time": START + 5, "type": "purchase_completed"},
    ])
    assert _cart_abandonment(ev, START, 30) == pytest.approx(2 / 3)


def test_triggerlab_calibrate_prints_an_all_green_table(run, monkeypatch, capsys) -> None:
    monkeypatch.setattr(calibration, "run_calibration", lambda *a, **k: run)
    assert main(["calibrate", "--subscribers", "20000"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["metric", "simulated", "published"]
    body = lines[2:10]
    assert len(body) == 8 and all("✔" in line for line in body)
    assert "✘" not in out
    for (_, label, figure, _, _, source), line in zip(CALIBRATION_ROWS, body, strict=True):
        assert line.startswith(label) and figure in line and source in line
        assert re.search(r"\d+\.\d\d %", line)
    assert lines[-1] == "8/8 rows inside the published ranges"
    assert np.isfinite(run.metrics()["cart_abandonment"])
