"""Reopening a run folder: a table without one of its columns, or a malformed timing file,
is a one-line SpecError naming the file (it used to surface as a raw KeyError later)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from experiments import Results
from experiments.cli import main
from experiments.results import RUN_TABLE_COLUMNS
from policies.errors import SpecError

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "ab_vs_bandit"
#: the per-subscriber tables are written only with analysis.segments, the commitments
#: only with an automatic-winner arm
GOLDEN_SEGMENTS = GOLDEN.parent / "segment_effects"
GOLDEN_COMMITS = GOLDEN.parent / "esp_auto_winner"
CASES = [(name, col) for name, cols in RUN_TABLE_COLUMNS.items() if name != "events.parquet"
         for col in cols]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(GOLDEN, d)
    return d


def test_golden_folder_loads_and_has_every_column(run_dir: Path) -> None:
    res = Results.load(run_dir)
    assert res.decisions is not None and len(res.metrics) and len(res.truth)


@pytest.mark.parametrize(("table", "column"), CASES, ids=[f"{t}-{c}" for t, c in CASES])
def test_a_missing_column_names_the_file_and_column(run_dir: Path, table: str,
                                                   column: str) -> None:
    other = {"subscribers.parquet": GOLDEN_SEGMENTS,
             "subscriber_metrics.parquet": GOLDEN_SEGMENTS, "commits.parquet": GOLDEN_COMMITS,
             "journeys.parquet": GOLDEN_COMMITS}
    if table in other:
        shutil.rmtree(run_dir)
        shutil.copytree(other[table], run_dir)
    df = pd.read_parquet(run_dir / table)
    df.drop(columns=column).to_parquet(run_dir / table)
    with pytest.raises(SpecError, match=rf"^run_dir: .*{table} lacks the columns "
                                        rf"\['{column}'\]; expected a table written by "):
        Results.load(run_dir)


def test_missing_event_columns(run_dir: Path) -> None:
    pd.DataFrame({"replication": [0], "arm": ["a"], "subscriber": [1]}).to_parquet(
        run_dir / "events.parquet")
    with pytest.raises(SpecError, match=r"events\.parquet lacks the columns \['time', 'type'\]"):
        Results.load(run_dir)


@pytest.mark.parametrize("text", ['{"total_wall_s": 1}', "[1, 2]", '{"runs": 3}'])
def test_malformed_timing_file(run_dir: Path, text: str) -> None:
    (run_dir / "timing.json").write_text(text)
    with pytest.raises(SpecError, match=r"timing\.json: expected a mapping with a 'runs' list"):
        Results.load(run_dir)


@pytest.mark.parametrize("command", ["report", "ope"])
def test_commands_report_a_damaged_folder_in_one_line(
        run_dir: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.read_parquet(run_dir / "decisions.parquet")
    df.drop(columns="propensity").to_parquet(run_dir / "decisions.parquet")
    policy = run_dir.parent / "policy.yaml"
    policy.write_text("name: thompson\ndecides: subject_style\n"
                      "arm_names: [plain, first_name, dont_miss]\n")
    argv = (["report", str(run_dir)] if command == "report"
            else ["ope", "--logs", str(run_dir), "--policy", str(policy), "--no-truth"])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"triggerlab {command}: error: run_dir: {run_dir}/decisions.parquet lacks "
                   "the columns ['propensity']; expected a table written by triggerlab run"]
