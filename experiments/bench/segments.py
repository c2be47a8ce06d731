"""``python -m experiments.bench segments``: fit times and truth checks of the segment
models.

* clusters: a simulated history of ``--subscribers`` subscribers (56 days, a campaign
  every 3 days), history features at day 42 (6 windows of 7 days), the default
  :class:`~policies.segments.clusters.BehaviorClusters` (mixture, BIC elbow); ARI
  against the hidden segments, its permutation null and the supervised ceiling;
* propensity: another history (56 days, a weekly campaign), calibrated gradient boosting
  trained at day 28 and tested at day 42 (:func:`experiments.models.propensity.
  propensity_report`): AUC, Brier, correlation and ECE against the truth per target;
* CLV: BG/NBD and Gamma-Gamma fitted on the CDNOW sample (needs ``lifetimes``, the dev
  extra; otherwise the figures say ``not installed``).

Fit times are wall seconds on this machine, one process on one thread (threadpoolctl):
scikit-learn's OpenMP loops slow down many times over when other processes hold the
cores, which made multi-threaded figures vary by 10x from run to run.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from experiments.bench._common import emit, peak_rss_bytes


def measure(subscribers: int = 50_000, seed: int = 7) -> dict[str, Any]:
    """The figures of the benchmark (see the module docstring)."""
    from experiments.models.clusters import cluster_report
    from experiments.models.data import simulate_history
    from experiments.models.propensity import propensity_report
    from policies.segments import fit_beta_geo, fit_gamma_gamma, history_features

    out: dict[str, Any] = {"subscribers": subscribers, "seed": seed}
    t0 = time.perf_counter()
    h = simulate_history(subscribers, seed, days=56, cuts=(42,), every_days=3)
    out["simulate_s"] = time.perf_counter() - t0
    cut = h.cuts[0]
    t0 = time.perf_counter()
    f = history_features(h.events, cut.now, cut.truth.index.to_numpy(), window_days=7,
                         n_windows=6)
    out["features_s"] = time.perf_counter() - t0
    out["events"] = len(h.events)
    c = cluster_report(f, cut.truth["segment"], seed=0)
    out.update({"cluster_k": c["k"], "cluster_criterion": c["criterion"],
                "cluster_fit_s": c["fit_s"], "ari": c["ari"], "ari_null": c["ari_null"],
                "ari_supervised": c["ari_supervised"]})
    h2 = simulate_history(subscribers, seed)
    table, _, _ = propensity_report(h2, seed=0)
    for target, row in table.iterrows():
        for k in ("base_rate", "auc", "auc_truth", "brier", "brier_truth", "corr_vs_truth",
                  "ece_vs_truth", "fit_s"):
            out[f"{target}_{k}"] = float(row[k])
    try:
        from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
    except ImportError:
        out["cdnow"] = "not installed (pip install lifetimes: the dev extra)"
    else:
        d = load_cdnow_summary_data_with_monetary_value()
        t0 = time.perf_counter()
        bg = fit_beta_geo(d["frequency"], d["recency"], d["T"])
        out["bgnbd_fit_s"] = time.perf_counter() - t0
        out.update({"bgnbd_r": bg.r, "bgnbd_alpha": bg.alpha, "bgnbd_a": bg.a,
                    "bgnbd_b": bg.b, "bgnbd_loglik": bg.loglik})
        t0 = time.perf_counter()
        gg = fit_gamma_gamma(d["frequency"], d["monetary_value"])
        out["gamma_gamma_fit_s"] = time.perf_counter() - t0
        out.update({"gamma_gamma_p": gg.p, "gamma_gamma_q": gg.q,
                    "gamma_gamma_gamma": gg.gamma})
    out["peak_rss_mb"] = peak_rss_bytes() / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench segments")
    p.add_argument("--subscribers", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if args.subscribers < 100:
        p.error("--subscribers must be >= 100")
    import sklearn.cluster
    import sklearn.ensemble
    from threadpoolctl import threadpool_limits

    # threadpoolctl limits the pools already loaded: load scikit-learn's first
    assert sklearn.cluster.KMeans and sklearn.ensemble.HistGradientBoostingClassifier
    with threadpool_limits(limits=1):
        figures = measure(args.subscribers, args.seed)
    emit("segments", argv, figures, as_json=args.json, record=args.record,
         title="segments (clusters, propensity scores and CLV vs the truth)")
    return 0
