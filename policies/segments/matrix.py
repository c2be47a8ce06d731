"""The numeric model matrix of the history features (shared by clustering and scores).

:func:`model_matrix` turns a frame of :data:`~policies.segments.history.HISTORY_FEATURES`
into float64 columns :data:`MODEL_COLUMNS` with no missing value: counts and amounts on
a log scale (``log1p``), missing recencies ("never") set to :data:`NEVER_DAYS` days,
a missing spend or category share set to 0 (no open cart: its age :data:`NEVER_DAYS`),
trends as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.checks import expected
from policies.errors import TriggerLabValueError
from policies.segments.history import HISTORY_FEATURES, TREND_KINDS

__all__ = ["MODEL_COLUMNS", "NEVER_DAYS", "model_matrix"]

#: Days standing in for "never" (no purchase, no engagement).
NEVER_DAYS = 365.0
_LOG = ("recency_days", "frequency", "monetary", "days_since_engagement", "open_cart_value",
        "open_cart_days",
        *(f"{k}_{s}" for k in TREND_KINDS for s in ("last", "mean")))
#: Columns of :func:`model_matrix`.
MODEL_COLUMNS: tuple[str, ...] = (*(f"log_{c}" for c in _LOG),
                                  *(f"{k}_trend" for k in TREND_KINDS),
                                  "top_category_share")


def model_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Float64 frame (same index) with columns :data:`MODEL_COLUMNS`, no NaN."""
    if not isinstance(features, pd.DataFrame):
        raise expected(TriggerLabValueError, "features", "a DataFrame of history features",
                       features)
    missing = [c for c in HISTORY_FEATURES if c not in features.columns]
    if missing:
        raise TriggerLabValueError(f"features: expected the columns of history_features, "
                                   f"missing {missing}")
    out: dict[str, np.ndarray] = {}
    for c in _LOG:
        x = features[c].to_numpy(np.float64, na_value=np.nan)
        fill = NEVER_DAYS if c in ("recency_days", "days_since_engagement",
                                   "open_cart_days") else 0.0
        out[f"log_{c}"] = np.log1p(np.where(np.isnan(x), fill, np.maximum(x, 0.0)))
    for k in TREND_KINDS:
        out[f"{k}_trend"] = features[f"{k}_trend"].to_numpy(np.float64)
    out["top_category_share"] = np.nan_to_num(
        features["top_category_share"].to_numpy(np.float64, na_value=np.nan))
    return pd.DataFrame(out, index=features.index)
