"""Every shipped spec, shrunk, gives the run folder recorded in ``tests/data/golden/``.

The files there were written by the code before a refactor; a refactor that changes no
behavior leaves every byte of them unchanged (``timing.json`` holds wall times and is
not compared; ``spec.yaml`` is compared without its package-version lines, which name
the installed versions rather than the run).

To record new golden files after an intended change of behavior::

    TRIGGERLAB_REGEN_GOLDEN=1 python -m pytest tests/experiments/test_golden_runs.py
"""

from __future__ import annotations

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
    return spec


def _comparable(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name != "spec.yaml":
        return data
    text = data.decode()
    head, sep, _versions = text.partition("\n  versions:\n")
    assert sep, "spec.yaml has no run.versions block"
    return head.encode()


def test_every_shipped_spec_has_golden_files() -> None:
    assert NAMES, "no shipped specs found"
    if not REGEN:
        assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_spec_run_folder_is_unchanged(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    run(small_spec(name), out=out, progress=False)
    files = sorted(p.name for p in out.iterdir() if p.name != "timing.json")
    if REGEN:
        shutil.rmtree(GOLDEN / name, ignore_errors=True)
        (GOLDEN / name).mkdir(parents=True)
        for f in files:
            shutil.copyfile(out / f, GOLDEN / name / f)
        pytest.skip("golden files written")
    assert files == sorted(p.name for p in (GOLDEN / name).iterdir())
    changed = [f for f in files if _comparable(out / f) != _comparable(GOLDEN / name / f)]
    assert not changed, f"{name}: these files differ from the golden run: {changed}"
