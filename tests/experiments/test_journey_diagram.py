"""Journey flowcharts: the layout of the shipped journeys, deterministic PNGs, and
``triggerlab validate --diagrams``."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

from experiments.cli import main
from experiments.journey_diagram import (
    entry_text,
    journey_layout,
    node_text,
    write_journey_diagrams,
)
from policies.triggers import compile_journey, load_rules

matplotlib.use("Agg")
EXAMPLES = Path(__file__).parents[2] / "policies" / "triggers" / "example_journeys.yaml"


def test_cart_series_layout_rows_edges_and_texts() -> None:
    rule = load_rules(EXAMPLES)["cart_series"]
    prog = compile_journey(rule)
    row, col, edges = journey_layout(prog)
    # wait, send, wait_until, [nudge], wait, branch, [discount]: the nudge sits on its own
    # row below the wait-until, and "happened" skips it to the 48 h wait
    assert row.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert (col == 0).all()
    assert (2, 4, "happened") in edges and (2, 3, "timed out") in edges
    assert (5, 6, "price_sensitivity >= 0.6\n& entry cart_value >= 50") in edges
    assert (5, -1, "else") in edges and (6, -1, "") in edges
    assert [node_text(prog, i) for i in range(len(prog))] == [
        "wait 1h", "send cart_reminder", "wait until email_open\nwithin 1d (since last send)",
        "send cart_nudge", "wait 2d", "branch", "send cart_discount\nexpire 12h"]
    assert entry_text(rule) == ("entry: add_to_cart (cart_value >= 25)\n"
                                "if lifecycle_stage in ['prospect', 'customer']")


def test_winback_split_paths_side_by_side() -> None:
    rules = load_rules(EXAMPLES)
    prog = compile_journey(rules["winback"])
    row, col, edges = journey_layout(prog)
    assert row.tolist() == [0, 1, 2, 2, 3, 3]
    assert col[2] < col[3] and col[4] < col[5]
    assert (3, 4, "offer 50%") in edges and (3, 5, "reminder 50%") in edges
    assert not any(a == 2 for a, _, _ in edges)   # an exit step ends the journey there
    assert entry_text(rules["welcome_series"]) == "entry: becomes lifecycle_stage in " \
                                                  "['new_customer']"
    assert entry_text(rules["price_drop_alert"]).startswith(
        "entry: price_drop (viewed within 14d or carted within 14d)\ndrop_fraction >= 0.1")


def test_diagrams_are_written_per_journey_and_byte_identical(tmp_path: Path) -> None:
    rules = load_rules(EXAMPLES)
    a = write_journey_diagrams(rules, tmp_path / "a")
    b = write_journey_diagrams(rules, tmp_path / "b")
    assert [p.name for p in a] == ["journey_cart_series.png", "journey_winback.png",
                                   "journey_price_drop_alert.png", "journey_welcome_series.png"]
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes()[:4] == b"\x89PNG" and x.read_bytes() == y.read_bytes()
    plain = load_rules({"rules": [{"id": "p", "type": "cart_abandonment", "delay": "1h",
                                   "expire": "1d", "when": [{"event": "add_to_cart",
                                                             "within": "1h"}]}]})
    assert write_journey_diagrams(plain, tmp_path / "c") == []
    assert not (tmp_path / "c").exists()


def test_validate_draws_diagrams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    assert main(["validate", str(EXAMPLES), "--diagrams", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("  wrote ") == 4 and (out / "journey_winback.png").exists()
    spec = Path(__file__).parents[2] / "experiments" / "specs" / "esp_auto_winner.yaml"
    assert main(["validate", str(spec), "--diagrams", str(out / "spec")]) == 0
    assert sorted(p.name for p in (out / "spec").iterdir()) == ["journey_cart_series.png"]
    capsys.readouterr()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["validate", str(EXAMPLES), "--diagrams", str(blocker)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"triggerlab validate: error: --diagrams: {blocker} exists "
                                    "and is not a directory")
    assert "ok:" not in captured.out
