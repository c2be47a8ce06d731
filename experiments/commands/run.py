"""``triggerlab run SPEC``: run an experiment and write its run folder.

Prints the recommendation and where the report is. The folder (default
``runs/<spec name>``) holds spec.yaml, metrics.parquet, truth.parquet, summary.csv,
report.md/html and the PNG plots; it is written atomically (nothing half-written is
left behind when the run fails).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.results import Results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="experiment spec (YAML file)")
    parser.add_argument("--executor", choices=("inline", "ray"), default=None,
                        help="override the spec's executor (default: the spec's, inline)")
    parser.add_argument("--shards", type=int, default=None,
                        help="override the spec's shard count")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (executor ray; default a local cluster)")
    parser.add_argument("--out", default=None,
                        help="run folder to write (default runs/<spec name>)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: only on a terminal)")


def print_outcome(results: Results, seconds: float | None = None) -> None:
    """Print the headline, the key table and the report location."""
    from experiments.report import headline

    for line in headline(results):
        print(line)
    if results.run_dir is not None:
        print(f"report: {results.run_dir / 'report.md'} (and report.html, PNG plots)")
    if seconds is not None:
        print(f"took {seconds:.1f} s")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from experiments.runner import run as run_experiment
    from experiments.spec import load_spec

    if args.shards is not None and args.shards < 1:
        raise ValueError(f"--shards: expected an integer >= 1, got {args.shards}")
    spec = load_spec(Path(args.spec))
    out = Path(args.out) if args.out else Path("runs") / spec.name
    t0 = time.perf_counter()
    results = run_experiment(spec, out=out, executor=args.executor, shards=args.shards,
                             address=args.address, progress=args.progress,
                             plots=not args.no_plots)
    print_outcome(results, time.perf_counter() - t0)
    return 0
