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
from policies.errors import SpecError
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
    assert main(["calibrate", "--subscribers", "20000", "--no-flows"]) == 0
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


# Issue 19: too few days used to print a table of nan and exit 1 without saying why.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--days", "3"], r"days: expected an integer in \[8, 365\] \(carts are followed for 7 "
                          r"days: a shorter run measures no cart abandonment\), got 3"),
        (["--days", "7"], r"days: expected an integer in \[8, 365\] .*got 7"),
        (["--days", "0"], r"days: expected an integer in \[8, 365\] .*got 0"),
        (["--days", "-1"], r"days: expected an integer in \[8, 365\] .*got -1"),
        (["--days", "1000"], r"days: expected an integer in \[8, 365\] .*got 1000"),
        (["--days", "nan"], r"days: expected an integer, got 'nan'"),
        (["--days", "2.5"], r"days: expected an integer, got '2.5'"),
        (["--subscribers", "0"], r"subscribers: expected an integer in \[1, 10000000\], got 0"),
        (["--subscribers", "-5"], r"subscribers: expected an integer in \[1, 10000000\], got -5"),
        (["--subscribers", "1e12"], r"subscribers: expected an integer, got '1e12'"),
        (["--subscribers", "20000000"], r"subscribers: expected an integer in \[1, 10000000\]"),
        (["--seed", "x"], r"seed: expected an integer, got 'x'"),
    ],
)
def test_calibrate_refuses_bad_sizes_up_front(argv, message, monkeypatch, capsys) -> None:
    def never(*args, **kwargs):
        raise AssertionError("simulated anyway")

    monkeypatch.setattr(calibration, "run_calibration", never)
    assert main(["calibrate", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("triggerlab calibrate: error: ")
    assert captured.err.count("\n") == 1 and re.search(message, captured.err), captured.err


def test_run_calibration_checks_its_arguments() -> None:
    with pytest.raises(SpecError, match=r"days: expected an integer in \[8, 365\]"):
        run_calibration(100, days=5)
    with pytest.raises(SpecError, match=r"tick: expected an integer in \[1, 86400\], got 0"):
        run_calibration(100, days=8, tick=0)


def test_calibrate_names_the_rates_without_data(capsys) -> None:
    """A tiny population measures no cart in its one followed day: the row says 'no data'
    and a line says which rate and why; never a row of nan."""
    assert main(["calibrate", "--subscribers", "50", "--days", "8"]) == 1
    out = capsys.readouterr().out
    assert "nan" not in out
    row = next(line for line in out.splitlines() if line.startswith("cart abandonment"))
    assert re.match(r"cart abandonment \(carts not purchased\) +no data +70.19 %", row)
    assert "✘" in row
    assert ("no data: cart abandonment (carts not purchased): no add_to_cart in the first "
            "1 day(s) of 8 (carts are followed for 7 days)") in out
    # the journeys' run: 8 days hold no win-back recipient's 14-day window
    assert ("no data: win-back recipients ordering within 14 d: no win-back recipient "
            "whose 14-day window fits in the run") in out
    assert re.search(r"^\d+/12 rows inside the published ranges \(2 without data\)$",
                     out.splitlines()[-1])


def test_no_data_reasons() -> None:
    from experiments.calibration import CalibrationRun
    from sim.response import EmailBatch

    ev = EventBatch.from_records([{"subscriber": 1, "time": START + 10, "type": "page_view"}])
    empty = CalibrationRun(ev, EmailBatch.concat([]), ("r",), days=8, subscribers=1,
                           start=START)
    table = calibration_table(empty).set_index("key")
    assert table.loc["campaign_open", "no_data"] == "no campaign email was sent"
    assert table.loc["triggered_click", "no_data"] == "no triggered email was sent"
    assert table["simulated"].isna().all() and not table["ok"].any()


@pytest.fixture(scope="module")
def flows():
    from experiments.flow_calibration import run_flows

    return run_flows(20_000, seed=2024)


def test_every_flow_range_is_met(run, flows) -> None:
    """The shipped journeys land in the published flow ranges (seeds 2025 and 2026 too:
    docs/calibration.md)."""
    from experiments.flow_calibration import FLOW_ROWS, flow_metrics

    with_flows = calibration.CalibrationRun(**{**run.__dict__, "flows": flows})
    table = calibration_table(with_flows)
    assert list(table.key) == [r[0] for r in CALIBRATION_ROWS + FLOW_ROWS]
    bad = table[~table.ok][["key", "simulated", "low", "high"]]
    assert table.ok.all(), bad.to_string()
    m = flow_metrics(flows)
    for rule in ("cart_series", "winback", "price_drop_alert", "welcome_series"):
        assert m[f"{rule}_sends"] > 1000, rule
    assert m["winback_recipients"] > 500


def test_calibrate_prints_the_flow_rows(run, flows, monkeypatch, capsys) -> None:
    from experiments import flow_calibration

    monkeypatch.setattr(calibration, "run_calibration", lambda *a, **k: run)
    monkeypatch.setattr(flow_calibration, "run_flows", lambda *a, **k: flows)
    assert main(["calibrate", "--subscribers", "20000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("calibration: the reference rules' run done")
    assert "flow rows: weekly campaign + the shipped journeys" in lines[1]
    body = lines[3:15]
    for (_, label, figure, _, _, source), line in zip(
            CALIBRATION_ROWS + flow_calibration.FLOW_ROWS, body, strict=True):
        assert line.startswith(label) and figure in line and source in line and "✔" in line
    assert lines[-1] == "12/12 rows inside the published ranges"


def test_flow_rows_without_data_say_why() -> None:
    import pandas as pd

    from experiments.flow_calibration import FlowRun, flow_metrics

    empty = FlowRun(pd.Series(dtype=float), pd.Series(dtype="int64"),
                    pd.DataFrame({"subscriber": [], "time": []}), end=START + 30 * 86400)
    m = flow_metrics(empty)
    assert all(np.isnan(m[k]) for k in ("cart_series_placed_order", "winback_click",
                                         "price_drop_click", "winback_reactivation"))
    assert calibration._no_data(None, m, "winback_click", m["winback_click"]) == \
        "the winback journey sent no email"
    assert calibration._no_data(None, m, "winback_reactivation", float("nan")) == \
        "no win-back email was sent"
