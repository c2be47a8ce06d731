"""Fit propensity models on simulated history and check them against the truth.

Targets (:data:`TARGETS`): ``purchase_7d`` (a purchase within 7 days of the cut),
``churn`` (no site session within 14 days, or an unsubscribe from the cut's email) and
``open`` (the cut's campaign email is opened). :func:`fit_propensity` fits one model:
scikit-learn's ``HistGradientBoostingClassifier`` with isotonic calibration
(``CalibratedClassifierCV``, 3 folds) or a standardized logistic regression with sigmoid
calibration. :func:`propensity_report` trains at the first cut of a
:class:`~experiments.models.data.SimulatedHistory` and tests at the last (a time-based
split: features only from events up to each cut, rows: subscribers still subscribed),
and compares every score with the observed outcome *and* with the simulator's true
probability for the same subscriber at the same time (:func:`truth_comparison`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from experiments.models.data import SimulatedHistory
from policies.segments import history_features, model_matrix
from policies.segments.scores import PropensityScores

__all__ = ["TARGETS", "fit_propensity", "propensity_report", "truth_comparison"]

#: target -> (observed outcome column, true probability column)
TARGETS: dict[str, tuple[str, str]] = {
    "purchase_7d": ("purchased", "p_purchase"),
    "churn": ("churned", "p_churn"),
    "open": ("opened", "p_open"),
}


def fit_propensity(features: pd.DataFrame, outcome: pd.Series, *, seed: int,
                   model: str = "hgb") -> Any:
    """A calibrated classifier of ``outcome`` (bool) from history ``features``."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = model_matrix(features).to_numpy()
    y = outcome.loc[features.index].to_numpy(bool)
    if model == "hgb":
        base: Any = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05,
                                                   max_leaf_nodes=15, random_state=seed)
        method = "isotonic"
    elif model == "logistic":
        base = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        method = "sigmoid"
    else:
        raise ValueError(f"model: expected 'hgb' or 'logistic', got {model!r}")
    return CalibratedClassifierCV(base, method=method, cv=3).fit(x, y)


def truth_comparison(score: np.ndarray, observed: np.ndarray, truth: np.ndarray,
                     bins: int = 10) -> dict[str, Any]:
    """How a score compares with the observed outcome and the true probability.

    Returns ``auc`` (score vs observed), ``auc_truth`` (the true probability vs
    observed: the best any score can reach on these outcomes), ``brier`` and
    ``brier_truth`` (mean squared error against the 0/1 outcome), ``rmse_vs_truth``,
    ``corr_vs_truth`` (Pearson) and ``spearman_vs_truth`` (NaN for a constant score),
    ``ece_vs_truth`` (mean over score deciles, weighted by size, of
    |mean score - mean truth|), ``base_rate`` and ``calibration`` (a DataFrame by score
    decile: ``n``, ``score``, ``truth``, ``observed`` means).
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import brier_score_loss, roc_auc_score

    s, y, p = (np.asarray(a, np.float64) for a in (score, observed, truth))
    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)[1:-1]))
    b = np.searchsorted(edges, s, side="right")
    cal = pd.DataFrame({"bin": b, "score": s, "truth": p, "observed": y}).groupby("bin").agg(
        n=("score", "size"), score=("score", "mean"), truth=("truth", "mean"),
        observed=("observed", "mean"))
    ece = float(np.sum(cal["n"] * (cal["score"] - cal["truth"]).abs()) / len(s))
    varied = bool(np.std(s) > 0 and np.std(p) > 0)      # else correlations are undefined
    return {
        "n": len(s), "base_rate": float(y.mean()),
        "auc": float(roc_auc_score(y, s)), "auc_truth": float(roc_auc_score(y, p)),
        "brier": float(brier_score_loss(y, s)), "brier_truth": float(brier_score_loss(y, p)),
        "rmse_vs_truth": float(np.sqrt(np.mean((s - p) ** 2))),
        "corr_vs_truth": float(np.corrcoef(s, p)[0, 1]) if varied else float("nan"),
        "spearman_vs_truth": float(spearmanr(s, p).statistic) if varied else float("nan"),
        "ece_vs_truth": ece, "calibration": cal,
    }


def propensity_report(history: SimulatedHistory, *, seed: int, model: str = "hgb",
                      targets: tuple[str, ...] = tuple(TARGETS)
                      ) -> tuple[pd.DataFrame, PropensityScores, dict[str, pd.DataFrame]]:
    """Train at the first cut, test at the last; one row of figures per target.

    Returns ``(table, scorer, calibration)``: the table is indexed by target with the
    figures of :func:`truth_comparison` (but the calibration) and ``fit_s`` (wall
    seconds); ``scorer`` scores new feature frames; ``calibration`` maps each target to
    its calibration-by-decile frame.
    """
    train, test = history.cuts[0], history.cuts[-1]
    if train.now >= test.now:
        raise ValueError("history: expected at least two cuts for a time-based split")
    feats = {}
    for cut in (train, test):
        rows = cut.subscribed.index[cut.subscribed.to_numpy()].to_numpy()
        feats[cut.now] = history_features(history.events, cut.now, rows)
    models, rows, cals = {}, [], {}
    for name in targets:
        outcome, truth = TARGETS[name]
        t0 = time.perf_counter()
        models[name] = fit_propensity(feats[train.now], train.labels[outcome], seed=seed,
                                      model=model)
        fit_s = time.perf_counter() - t0
        f = feats[test.now]
        score = PropensityScores({name: models[name]}).score(f)[f"p_{name}"]
        r = truth_comparison(score.to_numpy(), test.labels.loc[f.index, outcome].to_numpy(),
                             test.truth.loc[f.index, truth].to_numpy())
        cals[name] = r.pop("calibration")
        rows.append({"target": name, **r, "fit_s": fit_s})
    return pd.DataFrame(rows).set_index("target"), PropensityScores(models), cals
