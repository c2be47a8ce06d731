"""``triggerlab tune SPEC``: search the parameters of the spec's ``tune`` section on the
simulator (Bayesian optimization, Optuna's TPE; docs/tuning.md).

Prints a line per trial and the best values with their observed and true figures; the
output folder (default ``runs/<spec name>-tune``) holds study.db (resumable: the same
command continues a stopped or shorter study), trials.csv, best.yaml, best_rules.yaml and
the plots.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="experiment spec (YAML file) with a 'tune' section")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials in all (default: the spec's tune.trials); a resumed "
                             "study runs only the missing ones")
    parser.add_argument("--parallel", type=int, default=None,
                        help="trials per run (default: the spec's tune.parallel, 1)")
    parser.add_argument("--executor", choices=("inline", "ray"), default=None,
                        help="override the spec's executor (ray: a run's arms in parallel)")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/<spec name>-tune)")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from experiments.spec import load_spec
    from experiments.tuning import tune

    spec = load_spec(Path(args.spec))
    out = Path(args.out) if args.out else Path("runs") / f"{spec.name}-tune"
    t0 = time.perf_counter()

    def show(done: int, total: int, row: dict) -> None:
        values = ", ".join(f"{p.name}={row[p.name]}" for p in spec.tune.parameters)
        guard = ("" if spec.tune.guardrail_metric is None else
                 f"; {spec.tune.guardrail_metric} worse by {row['guardrail_worse']:.4g} "
                 f"(true {row['guardrail_true_worse']:.4g})")
        print(f"trial {done}/{total} ({time.perf_counter() - t0:.0f} s): {values}: "
              f"{spec.tune.metric} {row['metric']:.4g} (true {row['metric_truth']:.4g}){guard}",
              flush=True)

    result = tune(spec, trials=args.trials, parallel=args.parallel, out=out,
                  executor=args.executor, progress=show)
    base = result.baseline
    print(f"the arm as declared ({spec.tune.arm}): {spec.tune.metric} {base['metric']:.4g} "
          f"(true {base['metric_truth']:.4g})")
    if result.best:
        b = result.best
        values = ", ".join(f"{k}={v}" for k, v in b["values"].items())
        print(f"best: trial {b['trial']}: {values}: {spec.tune.metric} {b['metric']:.4g} "
              f"(true {b['metric_truth']:.4g})")
        print(f"rules with the best values: {out / 'best_rules.yaml'}")
    elif not len(result.trials):
        print("no trial could be judged (did their rules send any email?): nothing to "
              "recommend")
    else:
        print("no trial kept the guardrail: nothing to recommend")
    print(f"trials: {out / 'trials.csv'}; plots: {out / 'history.png'}, "
          f"{out / 'partial_dependence.png'}")
    return 0
