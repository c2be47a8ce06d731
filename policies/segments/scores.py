"""Scoring subscribers with fitted propensity models.

:class:`PropensityScores` holds one fitted probabilistic classifier per target (anything
with scikit-learn's ``predict_proba``, e.g. the calibrated models that
``experiments.models.propensity`` fits) and turns a frame of history features into one
column of probabilities per target, ``p_<target>``, indexed by subscriber: ready to
become subscriber attributes (``p_purchase_7d``, ``p_churn``, ``p_open``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policies.checks import expected
from policies.errors import TriggerLabValueError
from policies.segments.matrix import model_matrix

__all__ = ["PropensityScores"]


@dataclass(frozen=True, eq=False)
class PropensityScores:
    """Fitted models by target name (an identifier, e.g. ``"churn"``)."""

    models: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.models, Mapping) or not self.models:
            raise expected(TriggerLabValueError, "models", "a non-empty mapping of target "
                           "name to fitted classifier", self.models)
        for name, model in self.models.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise expected(TriggerLabValueError, "models", "target names that are "
                               "identifiers", name)
            if not callable(getattr(model, "predict_proba", None)):
                raise expected(TriggerLabValueError, f"models[{name!r}]",
                               "a fitted classifier with predict_proba", model)

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Probability of every target per subscriber: columns ``p_<target>`` (float64 in
        [0, 1]), the index of ``features`` (history features, one row per subscriber)."""
        x = model_matrix(features).to_numpy()
        out = {}
        for name, model in self.models.items():
            if not len(x):
                out[f"p_{name}"] = np.zeros(0)
                continue
            proba = np.asarray(model.predict_proba(x), np.float64)
            out[f"p_{name}"] = np.clip(proba[:, 1], 0.0, 1.0)
        return pd.DataFrame(out, index=features.index)
