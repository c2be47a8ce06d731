"""``python -m experiments.bench tune``: Bayesian optimization vs a grid of the same
budget, judged on the simulator's truth.

The shipped ``cart_series`` spec at ``--subscribers`` x ``--days`` (one replication),
its ``series`` arm: the first reminder's wait (30 min to 6 h) and the wait before the last
call (12 h to 72 h), for attributed margin per subscriber. ``--trials`` trials of
:func:`experiments.tuning.tune` (TPE), and a grid of as many points (the most even
``a x b`` split), each run ``--parallel`` candidates beside the baseline; both judged by
each objective (``truth``: the simulator's expected margin; ``observed``: the run's).
For each search and objective: the true margin of its best point, and how far it is from
the best true value among all the points evaluated. Figures ``tpe_<objective>_*``,
``grid_<objective>_*``, ``best_true_seen``, ``baseline_truth``.

With ``--dense-grid LEVELS``: the shipped ``tune_cart_series`` spec (three parameters)
at ``--subscribers`` x ``--days``, its search with ``--trials`` trials against a full grid
of LEVELS values per parameter (``grid_points`` = LEVELS ** 3 runs' worth), both judged by
the truth: ``tpe_gap_to_grid_best_pct`` is how far the search's best is below the grid's
best feasible point.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.bench._common import emit

ROOT = Path(__file__).resolve().parents[2]


def _spec(subscribers: int, days: float, trials: int, parallel: int) -> Any:
    import yaml

    from experiments.spec import load_spec

    data = yaml.safe_load((ROOT / "experiments/specs/cart_series.yaml").read_text())
    data.update(name="bench_tune", replications=1)
    data["population"]["subscribers"] = subscribers
    data["duration"]["days"] = days
    data["tune"] = {"arm": "series", "metric": "attributed_margin", "trials": trials,
                    "parallel": parallel,
                    "parameters": {
                        "first_wait": {"path": "cart_series.steps[0].wait", "low": "30m",
                                       "high": "6h"},
                        "last_wait": {"path": "cart_series.steps[4].wait", "low": "12h",
                                      "high": "72h"}}}
    return load_spec(data)


def _grid(spec: Any, budget: int) -> list[dict[str, Any]]:
    """The most even a x b grid with a * b <= budget (a <= b), minutes apart."""
    a = int(np.floor(np.sqrt(budget)))
    while budget % a and a > 1:
        a -= 1
    b = budget // a
    p1, p2 = spec.tune.parameters
    out = []
    for x in np.linspace(p1.low, p1.high, a):
        for y in np.linspace(p2.low, p2.high, b):
            out.append({p1.name: p1.spec_value(round(x / 60) * 60),
                        p2.name: p2.spec_value(round(y / 60) * 60)})
    return out


def measure(subscribers: int, days: float, trials: int, parallel: int,
            executor: str) -> dict[str, Any]:
    import dataclasses

    from experiments.tuning import evaluate, tune

    spec = _spec(subscribers, days, trials, parallel)
    t0 = time.perf_counter()
    points = _grid(spec, trials)
    grid_rows = []
    baseline: dict[str, float] = {}
    for k in range(0, len(points), parallel):
        figs, baseline = evaluate(spec, spec.tune, points[k:k + parallel], executor)
        grid_rows += [{**p, **f} for p, f in zip(points[k:k + parallel], figs, strict=True)]
    out: dict[str, Any] = {"subscribers": subscribers, "days": days, "trials": trials,
                           "parallel": parallel, "baseline_truth": baseline["metric_truth"],
                           "grid_wall_s": time.perf_counter() - t0}
    searched: dict[str, tuple[Any, Any]] = {}
    for objective in ("truth", "observed"):
        t0 = time.perf_counter()
        s = dataclasses.replace(spec, tune=dataclasses.replace(spec.tune, objective=objective))
        result = tune(s, executor=executor)
        out[f"tpe_{objective}_wall_s"] = time.perf_counter() - t0
        searched[objective] = (s.tune, result)
    best_true = max([r["metric_truth"] for r in grid_rows]
                    + [float(r.trials["metric_truth"].max()) for _, r in searched.values()])
    out["best_true_seen"] = best_true
    for objective, (section, result) in searched.items():
        key = section.objective_column
        g = max(grid_rows, key=lambda r: float(r[key]))
        b = result.best
        out[f"tpe_{objective}_best_values"] = ", ".join(f"{k}={v}"
                                                        for k, v in b["values"].items())
        out[f"tpe_{objective}_best_truth"] = b["metric_truth"]
        out[f"tpe_{objective}_gap_to_best_true_seen_pct"] = 100 * (1 - b["metric_truth"]
                                                                   / best_true)
        out[f"grid_{objective}_best_values"] = (f"first_wait={g['first_wait']}, "
                                                f"last_wait={g['last_wait']}")
        out[f"grid_{objective}_best_truth"] = g["metric_truth"]
        out[f"grid_{objective}_gap_to_best_true_seen_pct"] = 100 * (1 - g["metric_truth"]
                                                                    / best_true)
    return out


def measure_dense(subscribers: int, days: float, trials: int, parallel: int, levels: int,
                  executor: str) -> dict[str, Any]:
    """The shipped ``tune_cart_series`` spec: TPE with ``trials`` trials against a dense
    grid of ``levels`` values per parameter, both judged by the truth."""
    import dataclasses

    from experiments.spec import load_spec
    from experiments.tuning import grid_search, tune

    spec = load_spec(ROOT / "experiments/specs/tune_cart_series.yaml")
    spec = dataclasses.replace(spec, subscribers=subscribers, days=days,
                               tune=dataclasses.replace(spec.tune, trials=trials,
                                                        parallel=parallel))
    t0 = time.perf_counter()
    result = tune(spec, executor=executor)
    tpe_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    grid = grid_search(spec, levels, executor=executor)
    grid_wall = time.perf_counter() - t0
    ok = grid[grid["feasible"].astype(bool)]
    g = ok.loc[ok["metric_truth"].idxmax()]
    b = result.best
    return {"spec": "tune_cart_series", "subscribers": subscribers, "days": days,
            "trials": trials, "parallel": parallel, "grid_points": len(grid),
            "grid_feasible_points": len(ok), "tpe_wall_s": tpe_wall, "grid_wall_s": grid_wall,
            "baseline_truth": result.baseline["metric_truth"],
            "tpe_best_values": ", ".join(f"{k}={v}" for k, v in b["values"].items()),
            "tpe_best_truth": b["metric_truth"],
            "grid_best_values": ", ".join(f"{p.name}={g[p.name]}"
                                          for p in spec.tune.parameters),
            "grid_best_truth": float(g["metric_truth"]),
            "tpe_gap_to_grid_best_pct": 100 * (1 - b["metric_truth"] / g["metric_truth"])}


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench tune")
    p.add_argument("--subscribers", type=int, default=5000)
    p.add_argument("--days", type=float, default=14)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--executor", choices=("inline", "ray"), default="inline")
    p.add_argument("--dense-grid", type=int, default=0, metavar="LEVELS",
                   help="instead: the tune_cart_series spec's search against a full grid of "
                        "LEVELS values per parameter (--subscribers, --days, --trials apply)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if args.subscribers < 10 or args.days <= 0 or args.trials < 2 or args.parallel < 1:
        p.error("--subscribers >= 10, --days > 0, --trials >= 2, --parallel >= 1")
    if args.dense_grid:
        if args.dense_grid < 2:
            p.error("--dense-grid >= 2")
        figures = measure_dense(args.subscribers, args.days, args.trials, args.parallel,
                                args.dense_grid, args.executor)
        title = "tune: tune_cart_series, Bayesian optimization vs a dense grid, on the truth"
    else:
        figures = measure(args.subscribers, args.days, args.trials, args.parallel,
                          args.executor)
        title = "tune: Bayesian optimization vs a grid of the same budget, on the truth"
    emit("tune", argv, figures, as_json=args.json, record=args.record, title=title)
    return 0
