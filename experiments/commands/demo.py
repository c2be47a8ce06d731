"""``triggerlab demo``: a small but real comparison on the embedded (inline) executor.

Runs two built-in experiments from ``experiments/specs/`` at demo scale:

1. ``trigger_timing`` -- the cart-abandonment reminder sent 1 hour vs 24 hours after
   the cart is abandoned vs no reminder, on the same simulated subscribers (common random
   numbers);
2. ``ab_vs_bandit`` -- a fixed equal-split subject-line test vs Thompson sampling over
   the same four subject styles on the campaign.

Prints each experiment's recommendation with the simulator's ground truth beside it and
where the reports are (``--out``, default ``runs/demo``). Takes 15-90 s here (2 shared
cores).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.spec import ExperimentSpec

#: (spec file, subscribers, days, replications) at demo scale.
DEMO_RUNS: tuple[tuple[str, int, float, int], ...] = (
    ("trigger_timing", 25_000, 14.0, 1),
    ("ab_vs_bandit", 20_000, 14.0, 1),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo",
                        help="folder for the two run folders (default runs/demo)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the demo population sizes (default 1.0)")
    parser.add_argument("--seed", type=int, default=None,
                        help="override the specs' seeds")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: only on a terminal)")


def demo_specs(scale: float = 1.0, seed: int | None = None) -> list[ExperimentSpec]:
    """The demo's experiment specs (built-in specs at demo scale)."""
    import dataclasses
    from importlib import resources

    from experiments.spec import load_spec

    specs = []
    for name, subscribers, days, reps in DEMO_RUNS:
        path = resources.files("experiments").joinpath("specs", f"{name}.yaml")
        spec = load_spec(str(path))
        spec = dataclasses.replace(spec, subscribers=max(100, round(subscribers * scale)),
                                   days=days, replications=reps,
                                   seed=spec.seed if seed is None else seed)
        specs.append(spec)
    return specs


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from experiments.commands.run import print_outcome
    from experiments.runner import run as run_experiment

    if not args.scale > 0:
        raise ValueError(f"--scale: expected a number > 0, got {args.scale}")
    t_all = time.perf_counter()
    out = Path(args.out)
    for k, spec in enumerate(demo_specs(args.scale, args.seed)):
        if k:
            print()
        t0 = time.perf_counter()
        results = run_experiment(spec, out=out / spec.name, executor="inline",
                                 progress=args.progress)
        print_outcome(results, time.perf_counter() - t0)
    print(f"\ndemo finished in {time.perf_counter() - t_all:.1f} s; reports: "
          f"{out / 'trigger_timing' / 'report.md'}, {out / 'ab_vs_bandit' / 'report.md'}")
    return 0
