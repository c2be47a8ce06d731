"""``python -m experiments.bench uplift``: an uplift model on a simulated randomized
send/holdout, checked against the simulator's true incremental orders.

A world of ``--subscribers`` subscribers (``--world persuadable``: the overrides
:data:`experiments.models.uplift.PERSUADABLE` and a 30 % discount in the test email;
``--world retail``: the retail preset and a plain campaign) runs 28 days with a weekly
campaign; on day 28 the test email goes to a random half, the other half is held out;
outcome: orders in the 7 days after (:func:`experiments.models.uplift.simulate_uplift`).
Half of the subscribers train :class:`~policies.segments.uplift.UpliftModel`
(``--method``, ``--base``) and a purchase propensity model (``--propensity``: calibrated
gradient boosting, or logistic regression, on the held-out training rows); the other
half compares five rankings: the model, the propensity model, the truth
(:func:`sim.incremental.incremental_orders`), the true purchase probability and random
(:func:`~experiments.models.uplift.uplift_report`): Spearman with the true uplift, Qini
area (observed outcomes, orders per subscriber) and the share of the true incremental
orders captured by emailing the top 30 %; the model's mean predicted uplift beside the
true and observed means; a table of uplift by decile of the model's score (observed
sent minus held-out mean orders, the true mean, the predicted mean).
``--plot PATH`` writes the Qini curves (model, propensity, truth, random line) as a PNG.
Fit times are wall seconds, one thread (threadpoolctl), as in the ``segments`` benchmark.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from experiments.bench._common import emit, peak_rss_bytes

RANKINGS = ("model", "propensity", "truth", "true_propensity", "random")


def measure(subscribers: int = 50_000, seed: int = 7, *, world: str = "persuadable",
            method: str = "x", base: str = "linear", propensity: str = "hgb",
            plot: str | None = None) -> dict[str, Any]:
    """The figures of the benchmark (see the module docstring)."""
    from experiments.models.uplift import (
        PERSUADABLE,
        plot_qini,
        simulate_uplift,
        uplift_report,
    )
    from policies.segments import uplift_by_decile

    out: dict[str, Any] = {"subscribers": subscribers, "seed": seed, "world": world,
                           "method": method, "base": base, "propensity": propensity}
    t0 = time.perf_counter()
    if world == "persuadable":
        s = simulate_uplift(subscribers, seed, overrides=PERSUADABLE, incentive=0.3)
    else:
        s = simulate_uplift(subscribers, seed, incentive=0.0, attributes=())
    out["simulate_s"] = time.perf_counter() - t0
    t, y = s.treated.to_numpy(), s.orders.to_numpy()
    out["true_uplift_mean"] = float(s.truth["uplift_orders"].mean())
    out["observed_uplift_mean"] = float(y[t].mean() - y[~t].mean())
    out["holdout_orders_mean"] = float(y[~t].mean())
    r = uplift_report(s, seed=0, method=method, base=base, propensity_model=propensity,
                      attributes=("price_sensitivity",) if world == "persuadable" else ())
    out.update({k: r[k] for k in ("n_train", "n_test", "fit_s", "propensity_fit_s")})
    out["predicted_uplift_mean"] = float(r["scores"]["model"].mean())
    for name in RANKINGS:
        if name not in ("truth", "random"):
            out[f"spearman_{name}"] = r[f"spearman_{name}"]
    for name in RANKINGS:
        out[f"qini_{name}"] = r[f"qini_{name}"]
    for name in RANKINGS:
        out[f"captured30_{name}"] = r[f"captured_{name}"]
    if plot:
        plot_qini({k: r["curves"][k] for k in ("model", "propensity", "truth")}, plot,
                  title=f"Qini curves, {world} world ({r['n_test']} test subscribers)")
        out["plot"] = plot
    idx = r["scores"].index
    out["deciles"] = uplift_by_decile(r["scores"]["model"], s.treated.loc[idx],
                                      s.orders.loc[idx], truth=r["scores"]["truth"])
    out["peak_rss_mb"] = peak_rss_bytes() / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench uplift")
    p.add_argument("--subscribers", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--world", choices=("persuadable", "retail"), default="persuadable")
    p.add_argument("--method", choices=("x", "t"), default="x")
    p.add_argument("--base", choices=("linear", "hgb"), default="linear")
    p.add_argument("--propensity", choices=("hgb", "logistic"), default="hgb")
    p.add_argument("--plot", default=None, help="write the Qini curves to this PNG")
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if args.subscribers < 1000:
        p.error("--subscribers must be >= 1000")
    import sklearn.ensemble
    from threadpoolctl import threadpool_limits

    # threadpoolctl limits the pools already loaded: load scikit-learn's first
    assert sklearn.ensemble.HistGradientBoostingRegressor
    with threadpool_limits(limits=1):
        figures = measure(args.subscribers, args.seed, world=args.world, method=args.method,
                          base=args.base, propensity=args.propensity, plot=args.plot)
    deciles = figures.pop("deciles")
    table = ("uplift by decile of the model's score (test rows; orders per subscriber):\n"
             + deciles.round(4).to_string())
    emit("uplift", argv, figures, as_json=args.json, record=args.record, table=table,
         title="uplift (model vs propensity vs the true incremental orders)")
    return 0
