"""Behavioral segments: clusters of the history features.

:class:`BehaviorClusters` standardizes :func:`~policies.segments.matrix.model_matrix`
and fits a Gaussian mixture (``method="gmm"``, diagonal covariances) or k-means
(``method="kmeans"``). With ``k=None`` the number of clusters is chosen over
``k_range``:

* mixture, **BIC elbow**: the smallest k after which one more cluster lowers the BIC by
  less than ``elbow`` (default 10 %) of the whole drop from the smallest to the largest
  k of the range. (The lowest BIC itself keeps falling with k on these features, whose
  counts are discrete, so it would always pick the largest k tried.)
* k-means, **silhouette**: the highest silhouette score (on a seeded sample of at most
  ``silhouette_sample`` rows).

:attr:`BehaviorClusters.criterion_` keeps every k's value (BIC or silhouette).
:meth:`BehaviorClusters.predict` returns a ``cluster`` Series
indexed by subscriber, ready to become a subscriber attribute.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.checks import check_choice, check_int, check_number, expected
from policies.errors import TriggerLabValueError
from policies.segments.matrix import model_matrix

__all__ = ["BehaviorClusters"]


@dataclass(eq=False)
class BehaviorClusters:
    """Cluster subscribers by behavior.

    Parameters
    ----------
    seed : int
        Seeds the mixture / k-means initialization and the silhouette sample.
    k : int, optional
        Number of clusters; None chooses it over ``k_range`` (see the module).
    k_range : tuple of int
        Inclusive range of k to try when ``k`` is None (2 <= low <= high).
    method : str
        ``"gmm"`` or ``"kmeans"``.
    silhouette_sample : int
        Rows used for the silhouette score (k-means selection).
    elbow : float
        Share of the BIC drop below which one more cluster is not worth it, in (0, 1).
    """

    seed: int
    k: int | None = None
    k_range: tuple[int, int] = (2, 8)
    method: str = "gmm"
    silhouette_sample: int = 5000
    elbow: float = 0.1
    k_: int = field(init=False, default=0)
    criterion_: dict[int, float] = field(init=False, default_factory=dict)
    _mean: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.zeros(0))
    _scale: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.zeros(0))
    _model: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, error=TriggerLabValueError, low=0)
        if self.k is not None:
            check_int("k", self.k, error=TriggerLabValueError, low=1)
        if (not isinstance(self.k_range, tuple) or len(self.k_range) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool)
                           for v in self.k_range)
                or not 2 <= self.k_range[0] <= self.k_range[1]):
            raise expected(TriggerLabValueError, "k_range", "a tuple (low, high) with "
                           "2 <= low <= high", self.k_range)
        check_choice("method", self.method, ("gmm", "kmeans"), error=TriggerLabValueError)
        check_int("silhouette_sample", self.silhouette_sample, error=TriggerLabValueError,
                  low=10)
        check_number("elbow", self.elbow, error=TriggerLabValueError, low=0, high=1,
                     low_open=True, high_open=True)

    @property
    def criterion(self) -> str:
        """How k is chosen: ``"bic"`` (lowest) or ``"silhouette"`` (highest)."""
        return "bic_elbow" if self.method == "gmm" else "silhouette"

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        return model_matrix(features).to_numpy()

    def _make(self, k: int) -> Any:
        from sklearn.cluster import KMeans
        from sklearn.mixture import GaussianMixture

        if self.method == "gmm":
            return GaussianMixture(k, covariance_type="diag", reg_covar=1e-2,
                                   random_state=self.seed)
        return KMeans(k, n_init=4, random_state=self.seed)

    def fit(self, features: pd.DataFrame) -> BehaviorClusters:
        """Fit on a frame of history features (one row per subscriber)."""
        x = self._matrix(features)
        if len(x) < 2:
            raise TriggerLabValueError(f"features: expected at least 2 rows, got {len(x)}")
        self._mean = x.mean(axis=0)
        scale = x.std(axis=0)
        self._scale = np.where(scale > 0, scale, 1.0)
        z = (x - self._mean) / self._scale
        ks = [self.k] if self.k is not None else list(range(self.k_range[0],
                                                            self.k_range[1] + 1))
        ks = [k for k in ks if k <= len(z)]
        if not ks:
            raise TriggerLabValueError(f"features: {len(z)} rows, fewer than k")
        models = {k: self._make(k).fit(z) for k in ks}
        self.criterion_ = {k: self._criterion(m, z, k) for k, m in models.items()}
        self.k_ = self._choose(self.criterion_)
        self._model = models[self.k_]
        return self

    def _choose(self, values: dict[int, float]) -> int:
        ks = sorted(values)
        if self.method == "kmeans":
            return max(ks, key=lambda k: (values[k], -k))
        drop = values[ks[0]] - min(values.values())
        for a, b in itertools.pairwise(ks):
            if drop <= 0 or values[a] - values[b] < self.elbow * drop:
                return a
        return ks[-1]

    def _criterion(self, model: Any, z: np.ndarray, k: int) -> float:
        if self.method == "gmm":
            return float(model.bic(z))
        from sklearn.metrics import silhouette_score

        labels = model.labels_
        if k < 2 or len(np.unique(labels)) < 2:
            return -1.0
        m = min(self.silhouette_sample, len(z))
        return float(silhouette_score(z, labels, sample_size=m, random_state=self.seed))

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Cluster of every row (int64 Series named ``cluster``, the frame's index)."""
        if self._model is None:
            raise TriggerLabValueError("BehaviorClusters: call fit before predict")
        z = (self._matrix(features) - self._mean) / self._scale
        labels = np.asarray(self._model.predict(z), np.int64)
        return pd.Series(labels, index=features.index, name="cluster")
