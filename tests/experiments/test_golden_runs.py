"""Every shipped spec, shrunk, gives the run folder recorded in ``tests/data/golden/``.

``digests.json`` there holds the SHA-256 of every file of the run folder, written by the
code before a refactor; a refactor that changes no behavior leaves every byte unchanged
(``timing.json`` holds wall times and is not compared; ``spec.yaml`` is compared without
its package-version lines, which name the installed versions rather than the run). The
tables, ``summary.csv``, ``report.md`` and ``spec.yaml`` are kept beside the digests to
diff against when one changes; the HTML report and the PNG plots are rendered from the
same numbers and are kept as digests only.

To record new golden files after an intended change of behavior::

    TRIGGERLAB_REGEN_GOLDEN=1 python -m pytest tests/experiments/test_golden_runs.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from experiments import run

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


#: Files kept as copies beside the digests (the rest are digests only).
KEPT = (".parquet", ".csv", ".md", ".yaml")


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name == "spec.yaml":
        head, sep, _versions = data.decode().partition("\n  versions:\n")
        assert sep, "spec.yaml has no run.versions block"
        data = head.encode()
    return hashlib.sha256(data).hexdigest()


def test_every_shipped_spec_has_golden_files() -> None:
    assert NAMES, "no shipped specs found"
    if not REGEN:
        assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_spec_run_folder_is_unchanged(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    run(small_spec(name), out=out, progress=False)
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
    changed = [f for f in got if got[f] != want[f]]
    assert not changed, (f"{name}: these files differ from the golden run: {changed} "
                         f"(copies of the tables and texts are in {GOLDEN / name})")
