"""The standard context matrix of contextual policies, built from the subscriber table.

``subscriber_features(df)`` turns the subscriber table (CONTRACTS: one row per
subscriber, columns ``lifecycle_stage``, ``engagement_score``, ...) into an ``(n, d)``
float64 matrix whose columns are :data:`FEATURE_NAMES`. Every feature lies in [0, 1]
except the hour encodings (in [-1, 1]); the first column is a constant bias.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.errors import PolicyError
from policies.subscriber_schema import LIFECYCLE_STAGES

__all__ = ["FEATURE_NAMES", "LIFECYCLE_STAGES", "REQUIRED_COLUMNS", "feature_index",
           "subscriber_features"]

#: Column names of :func:`subscriber_features` (d = 15).
FEATURE_NAMES: tuple[str, ...] = (
    "bias",
    "engagement_score",
    "conversion_readiness",
    "educational_seeker",
    "price_sensitivity",
    "recently_engaged",          # days_since_engagement <= 14
    "recency",                   # exp(-days_since_engagement / 30)
    *(f"lifecycle_{s}" for s in LIFECYCLE_STAGES),
    "hour_sin",                  # sin(2 pi preferred_hour / 24)
    "hour_cos",
    "subscribed",
)

REQUIRED_COLUMNS: tuple[str, ...] = (
    "lifecycle_stage", "engagement_score", "conversion_readiness", "educational_seeker",
    "price_sensitivity", "days_since_engagement", "preferred_hour", "subscribed",
)


def feature_index(name: str) -> int:
    """Column of feature ``name`` in :data:`FEATURE_NAMES`."""
    try:
        return FEATURE_NAMES.index(name)
    except ValueError:
        raise PolicyError(f"feature: expected one of {list(FEATURE_NAMES)}, got {name!r}") from None


def _column(df: pd.DataFrame, name: str, low: float | None = None,
            high: float | None = None) -> np.ndarray:
    values = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        raise PolicyError(f"subscribers['{name}']: expected no missing values, "
                          f"got {int(np.isnan(values).sum())} NaN")
    if (low is not None and (values < low).any()) or (high is not None and (values > high).any()):
        bad = values[((values < low) if low is not None else False)
                     | ((values > high) if high is not None else False)]
        raise PolicyError(f"subscribers['{name}']: expected values in [{low}, {high}], "
                          f"got {bad[:3].tolist()}")
    return values


def subscriber_features(df: pd.DataFrame) -> np.ndarray:
    """Context matrix (n, d = len(FEATURE_NAMES)) of the subscriber table ``df``.

    Parameters
    ----------
    df : pandas.DataFrame
        The subscriber table (docs/domain.md); needs :data:`REQUIRED_COLUMNS`. Rows keep
        their order.

    Returns
    -------
    ndarray of shape (n, 15), float64
        Columns :data:`FEATURE_NAMES`. ``days_since_engagement`` is in days,
        ``preferred_hour`` in hours 0..23 (subscriber local time).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"lifecycle_stage": ["prospect"], "engagement_score": [0.5],
    ...     "conversion_readiness": [0.2], "educational_seeker": [True],
    ...     "price_sensitivity": [0.1], "days_since_engagement": [3.0],
    ...     "preferred_hour": [6], "subscribed": [True]})
    >>> subscriber_features(df).shape
    (1, 15)
    """
    if not isinstance(df, pd.DataFrame):
        raise PolicyError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PolicyError(f"subscribers: expected columns {list(REQUIRED_COLUMNS)}, "
                          f"missing {missing}")
    n = len(df)
    stage = df["lifecycle_stage"].astype(str).to_numpy()
    unknown = sorted(set(stage) - set(LIFECYCLE_STAGES))
    if unknown:
        raise PolicyError(f"subscribers['lifecycle_stage']: expected one of "
                          f"{list(LIFECYCLE_STAGES)}, got {unknown[:3]}")
    days = _column(df, "days_since_engagement", low=0.0)
    hour = _column(df, "preferred_hour", low=0, high=23)
    out = np.empty((n, len(FEATURE_NAMES)))
    out[:, 0] = 1.0
    out[:, 1] = _column(df, "engagement_score", 0.0, 1.0)
    out[:, 2] = _column(df, "conversion_readiness", 0.0, 1.0)
    out[:, 3] = _column(df, "educational_seeker", 0.0, 1.0)
    out[:, 4] = _column(df, "price_sensitivity", 0.0, 1.0)
    out[:, 5] = days <= 14.0
    out[:, 6] = np.exp(-days / 30.0)
    for j, s in enumerate(LIFECYCLE_STAGES):
        out[:, 7 + j] = stage == s
    out[:, 12] = np.sin(2 * np.pi * hour / 24.0)
    out[:, 13] = np.cos(2 * np.pi * hour / 24.0)
    out[:, 14] = _column(df, "subscribed", 0.0, 1.0)
    return out
