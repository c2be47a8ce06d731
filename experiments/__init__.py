"""Experiment specs, the runner, statistics, off-policy evaluation, attribution,
plots, reports, load tests, benchmarks and the ``triggerlab`` command line.
"""

# Public entry points, imported lazily so that ``triggerlab --help`` stays fast.
__all__ = ["ExperimentSpec", "Results", "load_spec", "run"]

_LAZY = {
    "ExperimentSpec": "experiments.spec",
    "Results": "experiments.results",
    "load_spec": "experiments.spec",
    "run": "experiments.runner",
}


def __getattr__(name: str) -> object:
    if name == "__version__":
        from policies._version import __version__

        return __version__
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")
