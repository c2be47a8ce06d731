"""How well behavioral clusters recover the simulator's hidden segments.

:func:`cluster_report` fits :class:`~policies.segments.clusters.BehaviorClusters` on the
history features at a cut and compares its clusters with the hidden response segments
(:func:`sim.response.segments`, in the cut's truth) by the adjusted Rand index (ARI: 0
for a labelling unrelated to the segments, 1 for the segments themselves), beside two
references on the same rows: a null (the clusters against a seeded permutation of the
segments) and a ceiling of what the features can tell at all (a gradient-boosting
classifier trained to predict the segment, 3-fold cross-validated predictions).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from policies.segments.clusters import BehaviorClusters

__all__ = ["cluster_report"]


def cluster_report(features: pd.DataFrame, segment: pd.Series, *, seed: int,
                   method: str = "gmm", k: int | None = None,
                   ceiling: bool = True) -> dict[str, Any]:
    """ARI of the clusters vs the segments, with the null and (optionally) the ceiling.

    Returns a dict: ``k`` (chosen), ``criterion`` (name), ``criterion_by_k``, ``ari``,
    ``ari_null``, ``ari_supervised`` (NaN without ``ceiling``), ``fit_s`` (wall seconds
    of the fit including the choice of k), ``clusters`` (the Series).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_predict

    from policies.segments.matrix import model_matrix

    seg = segment.loc[features.index].to_numpy()
    t0 = time.perf_counter()
    model = BehaviorClusters(seed=seed, method=method, k=k).fit(features)
    fit_s = time.perf_counter() - t0
    clusters = model.predict(features)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {
        "k": model.k_, "criterion": model.criterion, "criterion_by_k": model.criterion_,
        "ari": float(adjusted_rand_score(seg, clusters)),
        "ari_null": float(adjusted_rand_score(rng.permutation(seg), clusters)),
        "ari_supervised": float("nan"), "fit_s": fit_s, "clusters": clusters,
    }
    if ceiling:
        x = model_matrix(features).to_numpy()
        pred = cross_val_predict(HistGradientBoostingClassifier(max_iter=100,
                                                                random_state=seed),
                                 x, seg, cv=3)
        out["ari_supervised"] = float(adjusted_rand_score(seg, pred))
    return out
