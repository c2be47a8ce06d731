"""Shared fixtures: seeded generators, and one local Ray cluster per test session."""

from __future__ import annotations

import os

# One worker runs per core (pytest-xdist): thread pools inside a worker (OpenMP in
# scikit-learn, BLAS) would oversubscribe the cores, which slowed model fits tenfold when
# the cores were busy. Set before numpy and scikit-learn load; notebook kernels inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed for each test."""
    return np.random.default_rng(20261128)


#: Modules whose tests share an expensive module-scoped fixture (a simulation run, seconds
#: to tens of seconds): each is one xdist group, so one worker computes the fixture once
#: instead of every worker that gets one of the module's tests computing it again.
SHARED_SETUP = frozenset({
    "tests/actors/test_truth_basis.py",
    "tests/experiments/test_calibration.py",
    "tests/experiments/test_campaign_holdout.py",
    "tests/experiments/test_cli.py",
    "tests/experiments/test_coverage.py",
    "tests/experiments/test_margin_metric.py",
    "tests/experiments/test_propensity.py",
    "tests/experiments/test_report.py",
    "tests/sim/test_behavior.py",
})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that needs Ray (marked ``ray`` or using :func:`ray_session`) joins the
    xdist group ``ray`` (pyproject: ``--dist loadgroup``): one worker runs them all, so the
    session starts one local cluster, not one per worker. A test marked ``own_cluster``
    starts a cluster of its own (a notebook's kernel, a subprocess), not the session's: it
    is left out of that group, so the other worker runs it while the first one runs the
    session's Ray tests (the group alone was most of the suite's time). The tests of a
    module in :data:`SHARED_SETUP` form a group of their own (xdist starts the largest
    groups first)."""
    root = config.rootpath
    for item in items:
        module = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) \
            else ""
        if item.get_closest_marker("own_cluster") is not None:
            assert "ray_session" not in getattr(item, "fixturenames", ()), item.nodeid
            item.add_marker(pytest.mark.xdist_group(f"own_cluster:{module}"))
            continue
        if (item.get_closest_marker("ray") is not None
                or "ray_session" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("ray"))
            continue
        if module in SHARED_SETUP:
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture(scope="session")
def ray_session():
    """Start a small local Ray cluster once for the whole test session."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()
