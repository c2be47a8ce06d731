"""Uplift: who is persuadable, the predicted incremental outcome of sending an email.

:class:`UpliftModel` is fitted on a randomized send/holdout sample (history features at
the send time, whether the subscriber was sent the email, an outcome measured after it)
and scores a feature table with ``uplift``: the predicted outcome if sent minus the
predicted outcome if not, in the outcome's unit (orders, currency, ...) per subscriber.
Two meta-learners over scikit-learn regressors (Kuenzel et al. 2019, "Metalearners for
estimating heterogeneous treatment effects"):

* ``method="t"`` (**two-model**): ``mu1`` fitted on the sent rows, ``mu0`` on the
  holdout; ``uplift = mu1(x) - mu0(x)``.
* ``method="x"`` (**X-learner**): the same ``mu0`` and ``mu1``, then the imputed
  effects ``y - mu0(x)`` of the sent rows and ``mu1(x) - y`` of the holdout rows are
  each regressed on ``x`` (``tau1``, ``tau0``), and ``uplift = e tau0(x) + (1 - e)
  tau1(x)`` with ``e`` the propensity of being sent: here the known randomization
  share (``treated_share``; by default the sent share of the fitting sample).

Base regressors (``base``): ``"hgb"`` (``HistGradientBoostingRegressor``, squared error,
no early stopping) or ``"linear"`` (standardized ridge regression). Inputs are
:func:`~policies.segments.matrix.model_matrix` of the history features plus, if named in
``attributes``, numeric subscriber attributes taken as they are (e.g. a known
``price_sensitivity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.checks import (
    check_choice,
    check_column,
    check_int,
    check_number,
    check_vector,
    expected,
)
from policies.errors import TriggerLabValueError
from policies.segments.matrix import model_matrix

__all__ = ["UPLIFT_BASES", "UPLIFT_METHODS", "UpliftModel", "design_matrix"]

#: Meta-learners: two-model and X-learner.
UPLIFT_METHODS: tuple[str, ...] = ("t", "x")
#: Base regressors.
UPLIFT_BASES: tuple[str, ...] = ("hgb", "linear")
_E = TriggerLabValueError


def design_matrix(features: pd.DataFrame, attributes: tuple[str, ...] = ()) -> np.ndarray:
    """Float64 array (rows of ``features``): the model matrix of the history features,
    then the ``attributes`` columns (finite numbers, no missing value)."""
    x = model_matrix(features).to_numpy()
    if not attributes:
        return x
    missing = [a for a in attributes if a not in features.columns]
    if missing:
        raise _E(f"features: expected the attribute columns {list(attributes)}, "
                 f"missing {missing}")
    cols = []
    for a in attributes:
        col = features[a]
        check_column(f"features.{a}", col, "number", error=_E, label="subscriber")
        values = col.to_numpy(np.float64, na_value=np.nan)
        if np.isnan(values).any():
            i = int(np.flatnonzero(np.isnan(values))[0])
            key = features.index[i]
            key = key.item() if isinstance(key, np.generic) else key
            raise _E(f"features.{a}[{i}]: expected a finite number, got a missing value "
                     f"(subscriber {key!r})")
        cols.append(values)
    return np.column_stack([x, *cols])


def _seed(seed: int, k: int) -> int:
    """The random_state of learner ``k``: keyed by (seed, k)."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


@dataclass(eq=False)
class UpliftModel:
    """Predicted incremental outcome of sending, per subscriber.

    Parameters
    ----------
    seed : int
        Keys the base regressors' random_state (one per learner).
    method : str
        ``"x"`` (X-learner) or ``"t"`` (two-model); see the module.
    base : str
        ``"linear"`` (the default: on the simulator's randomized sends it ranked better
        than boosting at every size measured, docs/segments.md) or ``"hgb"``.
    treated_share : float, optional
        Known probability of being sent in the randomized sample, in (0, 1) (X-learner
        weights); None uses the sent share of the rows given to :meth:`fit`.
    attributes : tuple of str
        Numeric feature columns used beside the history features.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf :
        Gradient-boosting settings (``base="hgb"``).
    alpha : float
        Ridge penalty (``base="linear"``).
    """

    seed: int
    method: str = "x"
    base: str = "linear"
    treated_share: float | None = None
    attributes: tuple[str, ...] = ()
    max_iter: int = 100
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 50
    alpha: float = 1.0
    share_: float = field(init=False, default=float("nan"))
    models_: dict[str, Any] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, error=_E, low=0)
        check_choice("method", self.method, UPLIFT_METHODS, error=_E)
        check_choice("base", self.base, UPLIFT_BASES, error=_E)
        if self.treated_share is not None:
            check_number("treated_share", self.treated_share, error=_E, low=0, high=1,
                         low_open=True, high_open=True)
        if (not isinstance(self.attributes, tuple)
                or not all(isinstance(a, str) and a for a in self.attributes)):
            raise expected(_E, "attributes", "a tuple of column names", self.attributes)
        check_int("max_iter", self.max_iter, error=_E, low=1)
        check_number("learning_rate", self.learning_rate, error=_E, low=0, low_open=True)
        check_int("max_leaf_nodes", self.max_leaf_nodes, error=_E, low=2)
        check_int("min_samples_leaf", self.min_samples_leaf, error=_E, low=1)
        check_number("alpha", self.alpha, error=_E, low=0)

    def _regressor(self, k: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.base == "linear":
            return make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            early_stopping=False, random_state=_seed(self.seed, k))

    def fit(self, features: pd.DataFrame, treated: Any, outcome: Any) -> UpliftModel:
        """Fit on a randomized sample.

        Parameters
        ----------
        features : DataFrame
            History features (one row per subscriber) and the ``attributes`` columns.
        treated : array of bool, shape (n,)
            Sent (True) or held out (False); a Series must be indexed like ``features``.
        outcome : array of float, shape (n,)
            The outcome after the send (finite; e.g. orders in the week after).
        """
        if not isinstance(features, pd.DataFrame):
            raise expected(_E, "features", "a DataFrame of history features", features)
        n = len(features)
        t = check_vector("treated", treated, "bool", error=_E, n=n, index=features.index)
        y = check_vector("outcome", outcome, "number", error=_E, n=n, index=features.index)
        n1 = int(t.sum())
        if n1 < 2 or n - n1 < 2:
            raise _E(f"treated: expected at least 2 sent and 2 held-out rows, got {n1} sent "
                     f"and {n - n1} held out")
        x = design_matrix(features, self.attributes)
        share = (n1 / n) if self.treated_share is None else float(self.treated_share)
        mu0 = self._regressor(0).fit(x[~t], y[~t])
        mu1 = self._regressor(1).fit(x[t], y[t])
        models: dict[str, Any] = {"mu0": mu0, "mu1": mu1}
        if self.method == "x":
            d1 = y[t] - mu0.predict(x[t])
            d0 = mu1.predict(x[~t]) - y[~t]
            models["tau1"] = self._regressor(2).fit(x[t], d1)
            models["tau0"] = self._regressor(3).fit(x[~t], d0)
        self.models_ = models
        self.share_ = share
        return self

    def score(self, features: pd.DataFrame) -> pd.Series:
        """Predicted uplift per row: float64 Series named ``uplift``, the index of
        ``features`` (the outcome's unit per subscriber)."""
        if not self.models_:
            raise _E("UpliftModel: call fit before score")
        if not isinstance(features, pd.DataFrame):
            raise expected(_E, "features", "a DataFrame of history features", features)
        x = design_matrix(features, self.attributes)
        if not len(x):
            return pd.Series(np.zeros(0), index=features.index, name="uplift")
        m = self.models_
        if self.method == "t":
            tau = m["mu1"].predict(x) - m["mu0"].predict(x)
        else:
            e = self.share_
            tau = e * m["tau0"].predict(x) + (1.0 - e) * m["tau1"].predict(x)
        return pd.Series(np.asarray(tau, np.float64), index=features.index, name="uplift")
