"""The layers import downward only: policies/ never imports sim, actors, experiments, ray;
only actors/ imports ray (every import counts, also one inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "policies": {"sim", "actors", "experiments", "ray"},
    "sim": {"actors", "experiments", "ray"},
    "actors": {"experiments"},
    "experiments": {"ray"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_down(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules under {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN[package]) for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package}/ imports upper layers: {offenders}"


def test_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import ray\nfrom sim.population import Population\nfrom . import x\n")
    assert _imports(bad) == {"ray", "sim"}


def test_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    bad = tmp_path / "lazy.py"
    bad.write_text("def f():\n    import ray.util\n\n\nclass C:\n    def g(self):\n"
                   "        from ray import exceptions\n        return exceptions\n")
    assert _imports(bad) == {"ray"}


def test_no_wall_clock_in_core() -> None:
    """policies/ and sim/ never read the wall clock: time is an argument (README, Layout)."""
    needles = ("datetime.now", "time.time(", "utcnow", "date.today", "perf_counter",
               "np.random.seed", "np.random.rand")
    hits = []
    for package in ("policies", "sim"):
        for f in (ROOT / package).rglob("*.py"):
            text = f.read_text(encoding="utf-8")
            hits.extend(f"{f.relative_to(ROOT)}: {n}" for n in needles if n in text)
    assert not hits, hits
