"""The command line: run, validate, report, ope, --help; bad input exits 2 with one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiments import Results
from experiments.cli import COMMANDS, main

SPECS = Path(__file__).parents[2] / "experiments" / "specs"

SMALL = {
    "name": "cli_small",
    "seed": 9,
    "population": {"subscribers": 2000},
    "duration": {"days": 4, "tick": "1h"},
    "rules": "none",
    "campaign": {"every_days": 1, "local_hour": 10},
    "reward": "click",
    "reward_window": "12h",
    "arms": [
        {"name": "uniform", "policy": {"name": "ab", "scope": "campaign",
                                       "arms": ["plain", "first_name", "dont_miss"]}},
        {"name": "ts", "policy": {"name": "thompson", "scope": "campaign",
                                  "arm_names": ["plain", "first_name", "dont_miss"]}},
    ],
    "metrics": ["clicks", "opens"],
    "record": {"decisions": True},
}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("cli")
    spec = d / "small.yaml"
    spec.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    out = d / "run"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    return out


def test_help_lists_the_commands() -> None:
    res = subprocess.run([sys.executable, "-m", "experiments.cli", "--help"],
                         capture_output=True, text=True, check=True)
    for name in ("run", "validate", "demo", "calibrate", "ope", "report"):
        assert name in COMMANDS
        assert re.search(rf"^\s+{name}\s", res.stdout, re.M), name


def test_validate_builtin_specs(capsys) -> None:  # type: ignore[no-untyped-def]
    paths = [str(p) for p in sorted(SPECS.glob("*.yaml"))]
    assert main(["validate", *paths]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(paths) == 14 and all(line.startswith("ok: ") for line in out)
    assert "'trigger_timing', 3 arms (reminder_24h, reminder_1h, no_reminder)" in out[-4]
    assert "'tune_cart_series', 2 arms (series, one_reminder)" in out[-3]
    assert "'uplift_targeting', 3 arms (everyone, top30_propensity, top30_uplift)" in out[-2]
    assert "'winback', 4 arms (after_30d, after_60d, after_30d_discount, after_60d_discount)" \
        in out[-1]


def test_run_prints_the_outcome_and_writes_the_folder(cli_run: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    res = Results.load(cli_run)
    s = pd.read_csv(cli_run / "summary.csv")
    ts = s[(s["metric"] == "clicks") & (s["arm"] == "ts")].iloc[0]
    assert ts["estimate"] > 0 and res.spec.name == "cli_small"
    # re-render: identical summary and report, and the outcome is printed
    before = {n: (cli_run / n).read_bytes() for n in ("summary.csv", "report.md", "lift.png")}
    capsys.readouterr()
    assert main(["report", str(cli_run)]) == 0
    out = capsys.readouterr().out
    assert {n: (cli_run / n).read_bytes() for n in before} == before
    assert "cli_small: 2 arms x 1 replication(s), 2,000 subscribers, 4 days" in out
    assert f"report: {cli_run / 'report.md'}" in out
    assert re.search(r"ts\s+" + re.escape(f"{100 * ts['estimate']:.2f}%"), out)


def test_ope_estimates_next_to_the_truth(cli_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    pol = tmp_path / "always_first_name.yaml"
    pol.write_text("name: ab\narms: [first_name, plain]\nweights: [0.9, 0.1]\n")
    capsys.readouterr()
    assert main(["ope", "--logs", str(cli_run), "--policy", str(pol), "--arm", "uniform"]) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(ips|snips|dm|dr)\s+([\d.]+)\s+\[", out, re.M))
    assert set(rows) == {"ips", "snips", "dm", "dr"}
    truth_logged = float(re.search(r"truth on the logged emails .*: ([\d.]+)", out).group(1))
    m = re.search(r"truth by running the new policy .*expected ([\d.]+), observed ([\d.]+)", out)
    truth_run = float(m.group(1))
    # estimates land near the truth (clicks per email ~ 3 %): within 25 % relative
    for method, value in rows.items():
        assert float(value) == pytest.approx(truth_logged, rel=0.25), method
    assert truth_run == pytest.approx(truth_logged, rel=0.15)
    # the uniform log's own value is what it observed
    log = pd.read_parquet(cli_run / "decisions.parquet")
    logged = log[log["arm"] == "uniform"]["reward"].mean()
    assert f"observed value: {logged:.5f}" in out


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


BAD = [
    (["validate", "{dir}/missing.yaml"], r"spec: file not found: .*missing\.yaml"),
    (["validate", "{malformed}"], r"spec: malformed YAML in .*malformed\.yaml at line 4"),
    (["validate", "{unknown}"], r"arms\[1\]\.colour: unknown key; expected one of name"),
    (["validate", "{range}"], r"arms\[1\]\.policy\.epsilon: expected a number in \[0, 1\], "
                              r"got 1\.5"),
    (["run", "{range}", "--out", "{dir}/out"], r"arms\[1\]\.policy\.epsilon"),
    (["run", "{ok}", "--shards", "0"], r"--shards: expected an integer >= 1, got 0"),
    (["report", "{dir}"], r"run_dir: .* is not a run folder: spec\.yaml is missing"),
    (["ope", "--logs", "{dir}/none", "--policy", "{ok}"],
     r"--logs: expected a run folder or a service decision log, got .*/none' \(does not exist\)"),
    (["demo", "--scale", "0"], r"--scale: expected a number > 0, got 0\.0"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_input_prints_one_line_and_exits_2(tmp_path: Path, capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    files = {
        "dir": str(tmp_path),
        "malformed": _write(tmp_path, "malformed.yaml", "name: x\nseed: 1\narms: [\n"),
        "unknown": _write(tmp_path, "unknown.yaml",
                          "name: x\nseed: 1\narms: [{name: a}, {name: b, colour: red}]\n"),
        "range": _write(tmp_path, "range.yaml",
                        "name: x\nseed: 1\narms: [{name: a}, {name: b, policy: {name: "
                        "epsilon_greedy, arm_names: [plain, learn], epsilon: 1.5}}]\n"),
        "ok": _write(tmp_path, "ok.yaml", "name: x\nseed: 1\narms: [{name: a}, {name: b}]\n"),
    }
    args = [a.format(**files) for a in argv]
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, captured.err
    assert re.match(rf"^triggerlab {args[0]}: error: .*{message}", err[0]), err[0]
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "name: x\nseed: -1\narms: [{name: a}, {name: b}]\n")
    res = subprocess.run([sys.executable, "-m", "experiments.cli", "validate", "--debug", path],
                         capture_output=True, text=True)
    assert res.returncode != 0 and res.returncode != 2
    assert "Traceback" in res.stderr and "SpecError: " in res.stderr
    assert "seed: expected an integer >= 0, got -1" in res.stderr


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    import policies

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"triggerlab {version('triggerlab')}"
    assert policies.__version__ == version("triggerlab")


@pytest.mark.parametrize("bug", [KeyError("internal"), "InternalError", "ShardError"])
def test_a_bug_is_not_reported_as_bad_input(monkeypatch: pytest.MonkeyPatch,
                                            bug: object) -> None:
    """Only bad input (ValueError/OSError) becomes a one-line error; a KeyError or the
    runtime's internal and shard errors are bugs and keep their traceback."""
    import actors.errors
    import experiments.commands.validate as validate

    error = bug if isinstance(bug, Exception) else getattr(actors.errors, str(bug))("boom")

    def broken(args: object) -> int:
        raise error

    monkeypatch.setattr(validate, "run", broken)
    with pytest.raises(type(error)):
        main(["validate", str(SPECS / "ab_vs_bandit.yaml")])
