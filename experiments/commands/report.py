"""``triggerlab report RUN_DIR``: re-render a run folder's summary.csv, report.md/html and
PNG plots from its stored tables (e.g. after upgrading TriggerLab)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder written by triggerlab run")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    from experiments.commands.run import print_outcome
    from experiments.report import rerender
    from experiments.results import Results

    results = Results.load(args.run_dir)
    rerender(results, plots=not args.no_plots)
    print_outcome(results)
    return 0
