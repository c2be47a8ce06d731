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

With ``--refresh``: the cost of one dynamic-segment refresh in one shard of
``--subscribers`` subscribers (:func:`measure_refresh`): history features from a
synthetic log of ``--events-per-subscriber`` events each over 35 days
(:func:`experiments.bench.features.synthetic_log`), the built-in scorers (``propensity``
with gradient boosting, ``clusters``; fitted beforehand on a prior run of
``--train-subscribers`` (5,000), not timed) and the engine update of the rows whose
segments changed (the retail rules plus ``p_churn >= 0.7`` and ``cluster in [0, 2]``
rules), with targeting (the top 30 % by ``p_purchase_7d``: the cutoff over the shard's
scores). Two refreshes: day 28 (the first: from no score) and day 35. Wall and CPU
seconds (the process's, one thread): on a shared machine the CPU figure is the steadier.

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


def measure_refresh(subscribers: int = 100_000, events_per_subscriber: int = 10,
                    seed: int = 7, train_subscribers: int = 5000,
                    model: str = "hgb") -> dict[str, Any]:
    """The figures of ``--refresh`` (see the module docstring)."""
    import numpy as np

    from actors.config import CampaignConfig, ScoringConfig, SimulationConfig, TargetConfig
    from actors.shard import ShardCore
    from experiments.bench.features import synthetic_log
    from experiments.models.scorers import fit_scorers
    from policies.segments import history_features
    from policies.segments.dynamic import score_frame, top_cutoff
    from policies.triggers import load_rules
    from policies.triggers.rules import default_rules_data
    from sim.clock import DAY

    t0 = time.perf_counter()
    scorers, columns = fit_scorers(("propensity", "clusters"), subscribers=train_subscribers,
                                   days=35, seed=seed, model=model)
    out: dict[str, Any] = {"subscribers": subscribers,
                           "events": subscribers * events_per_subscriber,
                           "fit_s (not in the refresh)": time.perf_counter() - t0}
    rules = default_rules_data()
    base = rules["rules"][0]
    rules["rules"] += [
        dict(base, id="churn_risk", segment={"p_churn": {"min": 0.7}}),
        dict(base, id="clusters_0_2", segment={"cluster": {"in": [0, 2]}}),
    ]
    days = 35
    log = synthetic_log(subscribers * events_per_subscriber, subscribers, days, seed)
    start = int(log.time.min()) - int(log.time.min()) % DAY
    cfg = SimulationConfig(seed=seed, subscribers=subscribers, days=float(days + 1),
                           start=start, tick_seconds=3600, rules=load_rules(rules),
                           campaign=CampaignConfig(),
                           scoring=ScoringConfig(scorers, columns, first_day=28, every_days=7),
                           target=TargetConfig("p_purchase_7d", 0.3))
    t0 = time.perf_counter()
    core = ShardCore(cfg, 0, subscribers)
    out["shard_build_s"] = time.perf_counter() - t0
    assert core.engine is not None
    engine, timed = core.engine, {"update_s": 0.0, "rows": 0}
    real = engine.update_subscribers

    def update(df: Any, at: int | None = None) -> Any:
        u0 = time.perf_counter()
        r = real(df, at=at)
        timed["update_s"] += time.perf_counter() - u0
        timed["rows"] += len(df)
        return r

    engine.update_subscribers = update  # type: ignore[method-assign,assignment]
    ids = np.arange(subscribers, dtype=np.int64)
    for day in (28, 35):
        now = start + day * DAY
        core._history = [log[log.time <= now]]
        core.position = day * DAY // cfg.tick_seconds   # the shard at that boundary
        timed.update(update_s=0.0, rows=0)
        w0, c0 = time.perf_counter(), time.process_time()
        part = core.refresh(now)
        cut = top_cutoff([part] if part is not None else [], cfg.target.top)  # type: ignore[union-attr]
        core.set_target(cut)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        f0, g0 = time.perf_counter(), time.process_time()
        feats = history_features(core._history[0], now, ids)
        f1, g1 = time.perf_counter(), time.process_time()
        score_frame(scorers, feats, columns)
        f2, g2 = time.perf_counter(), time.process_time()
        out.update({f"day{day}_refresh_s": wall, f"day{day}_refresh_cpu_s": cpu,
                    f"day{day}_features_s": f1 - f0, f"day{day}_features_cpu_s": g1 - g0,
                    f"day{day}_scoring_s": f2 - f1, f"day{day}_scoring_cpu_s": g2 - g1,
                    f"day{day}_engine_update_s": timed["update_s"],
                    f"day{day}_rows_written": timed["rows"],
                    f"day{day}_targeted": cut.count})
    out["peak_rss_mb"] = peak_rss_bytes() / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench segments")
    p.add_argument("--subscribers", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--refresh", action="store_true",
                   help="time one dynamic-segment refresh instead (see the module)")
    p.add_argument("--events-per-subscriber", type=int, default=10)
    p.add_argument("--train-subscribers", type=int, default=5000,
                   help="--refresh: subscribers of the prior run the scorers are fitted on")
    p.add_argument("--model", choices=("hgb", "logistic"), default="hgb",
                   help="--refresh: propensity model kind")
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if args.subscribers < 100:
        p.error("--subscribers must be >= 100")
    if args.events_per_subscriber < 1 or args.train_subscribers < 100:
        p.error("--events-per-subscriber must be >= 1 and --train-subscribers >= 100")
    import sklearn.cluster
    import sklearn.ensemble
    from threadpoolctl import threadpool_limits

    # threadpoolctl limits the pools already loaded: load scikit-learn's first
    assert sklearn.cluster.KMeans and sklearn.ensemble.HistGradientBoostingClassifier
    with threadpool_limits(limits=1):
        if args.refresh:
            figures = measure_refresh(args.subscribers, args.events_per_subscriber,
                                      args.seed, args.train_subscribers, args.model)
        else:
            figures = measure(args.subscribers, args.seed)
    emit("segments", argv, figures, as_json=args.json, record=args.record,
         title=("segments --refresh (one dynamic-segment refresh in one shard)"
                if args.refresh else
                "segments (clusters, propensity scores and CLV vs the truth)"))
    return 0
