"""Every shipped spec, shrunk, gives the run folder recorded in ``tests/data/golden/``.

Each spec runs through ``triggerlab run`` (so every shipped spec also runs from the
command line). ``digests.json`` there holds the SHA-256 of every file of the run folder,
written by the code before a refactor; a refactor that changes no behavior leaves every
byte unchanged (``timing.json`` holds wall times and is not compared; ``spec.yaml`` is
compared without its package-version lines, which name the installed versions rather than
the run). The tables, ``summary.csv``, ``report.md`` and ``spec.yaml`` are kept beside the
digests to diff against when one changes; the HTML report and the PNG plots are rendered
from the same numbers and are kept as digests only.

Bytes are compared first. A table whose bytes differ may still be the same run on another
CPU: numpy's vectorized ``exp``/``log`` kernels differ by CPU feature set (AVX2 vs
AVX-512) and may round the last bit of a float differently. Such a table passes if every
column equals the golden copy's exactly, floats to a relative ``1e-12`` (a last-bit
difference is ~2e-16; a behavior change moves far more); every other file must match its
digest. On one machine the run folder is byte-identical (``tests/experiments/test_runner.py``
runs a spec twice and compares every file).

To record new golden files after an intended change of behavior::

    TRIGGERLAB_REGEN_GOLDEN=1 python -m pytest tests/experiments/test_golden_runs.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

SPECS = Path(__file__).resolve().parents[2] / "experiments" / "specs"
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
NAMES = sorted(p.stem for p in SPECS.glob("*.yaml"))
REGEN = os.environ.get("TRIGGERLAB_REGEN_GOLDEN") == "1"


def small_spec(name: str) -> dict:  # type: ignore[type-arg]
    """The shipped spec ``name`` at test size, recording its decisions."""
    spec = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    spec["population"]["subscribers"] = 800
    spec["duration"]["days"] = 3
    spec["replications"] = min(int(spec.get("replications", 1)), 2)
    spec["record"] = {"decisions": True}
    if "scoring" in spec:      # refresh within the 3 days, fit on a small prior run
        spec["scoring"].update(first_day=1, refresh=1)
        spec["scoring"]["train"] = {**spec["scoring"].get("train", {}), "subscribers": 800}
    return spec


#: Relative tolerance of the floats of a table whose bytes differ (see the module docstring).
FLOAT_RTOL = 1e-12

#: Files kept as copies beside the digests (the rest are digests only).
KEPT = (".parquet", ".csv", ".md", ".yaml")


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name == "spec.yaml":
        head, sep, _versions = data.decode().partition("\n  versions:\n")
        assert sep, "spec.yaml has no run.versions block"
        data = head.encode()
    return hashlib.sha256(data).hexdigest()


def _same_table(got: Path, want: Path) -> bool:
    """Whether two Parquet tables hold the same rows, floats to :data:`FLOAT_RTOL`."""
    a, b = pd.read_parquet(got), pd.read_parquet(want)
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=FLOAT_RTOL, atol=0.0)
    except AssertionError:
        return False
    return True


def test_a_last_bit_float_difference_passes_a_real_change_does_not(tmp_path: Path) -> None:
    """The tolerance of :func:`_same_table` admits a last-bit rounding and nothing more."""
    x = pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", "c"], "x": [0.1, 1 / 3, 0.0]})
    x.to_parquet(tmp_path / "want.parquet")
    cases = {
        "last bit": ({"x": [0.1, float(np.nextafter(1 / 3, 1.0)), 0.0]}, True),
        "1e-9 relative": ({"x": [0.1, 1 / 3 * (1 + 1e-9), 0.0]}, False),
        "an integer": ({"n": [1, 2, 4]}, False),
        "a string": ({"s": ["a", "b", "d"]}, False),
        "zero vs tiny": ({"x": [0.1, 1 / 3, 1e-300]}, False),
    }
    for label, (change, same) in cases.items():
        x.assign(**change).to_parquet(tmp_path / "got.parquet")
        assert _same_table(tmp_path / "got.parquet", tmp_path / "want.parquet") is same, label


def test_every_shipped_spec_has_golden_files() -> None:
    assert NAMES, "no shipped specs found"
    if not REGEN:
        assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_spec_run_folder_is_unchanged(name: str, tmp_path: Path) -> None:
    """``triggerlab run`` on a shrunk copy of the spec file: every shipped spec runs from
    the command line, and its run folder is the golden one (the same folder as
    ``experiments.run`` on the spec, which recorded it)."""
    from experiments.cli import main

    out = tmp_path / name
    small = tmp_path / f"{name}.yaml"
    small.write_text(yaml.safe_dump(small_spec(name), sort_keys=False))
    assert main(["run", str(small), "--out", str(out), "--no-progress"]) == 0
    got = {p.name: _digest(p) for p in sorted(out.iterdir()) if p.name != "timing.json"}
    if REGEN:
        shutil.rmtree(GOLDEN / name, ignore_errors=True)
        (GOLDEN / name).mkdir(parents=True)
        for f in got:
            if f.endswith(KEPT):
                shutil.copyfile(out / f, GOLDEN / name / f)
        (GOLDEN / name / "digests.json").write_text(json.dumps(got, indent=1) + "\n")
        pytest.skip("golden files written")
    want = json.loads((GOLDEN / name / "digests.json").read_text())
    assert sorted(got) == sorted(want)
    changed = [f for f in got if got[f] != want[f]
               and not (f.endswith(".parquet") and _same_table(out / f, GOLDEN / name / f))]
    assert not changed, (f"{name}: these files differ from the golden run: {changed} "
                         f"(copies of the tables and texts are in {GOLDEN / name})")
