"""subscriber_features: column meaning, shapes and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policies.errors import PolicyError
from policies.features import FEATURE_NAMES, feature_index, subscriber_features


def table(**over) -> pd.DataFrame:
    base = {
        "lifecycle_stage": ["new_subscriber", "customer", "lapsed"],
        "engagement_score": [0.1, 0.8, 0.5],
        "conversion_readiness": [0.2, 0.9, 0.0],
        "educational_seeker": [True, False, True],
        "preferred_hour": [0, 6, 18],
        "utc_offset_minutes": [0, 60, -300],
        "days_since_engagement": [0.0, 30.0, 200.0],
        "price_sensitivity": [0.5, 0.1, 1.0],
        "top_category": [1, 2, 3],
        "subscribed": [True, True, False],
        "signup_time": [1_700_000_000] * 3,
    }
    base.update(over)
    return pd.DataFrame(base, index=pd.Index([10, 11, 12], name="subscriber"))


def test_feature_values() -> None:
    x = subscriber_features(table())
    assert x.shape == (3, len(FEATURE_NAMES)) == (3, 15)
    col = {n: x[:, feature_index(n)] for n in FEATURE_NAMES}
    np.testing.assert_array_equal(col["bias"], 1.0)
    np.testing.assert_array_equal(col["engagement_score"], [0.1, 0.8, 0.5])
    np.testing.assert_array_equal(col["educational_seeker"], [1, 0, 1])
    np.testing.assert_array_equal(col["recently_engaged"], [1, 0, 0])
    np.testing.assert_allclose(col["recency"], np.exp(-np.array([0, 30, 200]) / 30))
    np.testing.assert_array_equal(col["lifecycle_new_subscriber"], [1, 0, 0])
    np.testing.assert_array_equal(col["lifecycle_customer"], [0, 1, 0])
    np.testing.assert_array_equal(col["lifecycle_lapsed"], [0, 0, 1])
    np.testing.assert_allclose(col["hour_sin"], [0, 1, -1], atol=1e-12)
    np.testing.assert_allclose(col["hour_cos"], [1, 0, 0], atol=1e-12)
    np.testing.assert_array_equal(col["subscribed"], [1, 1, 0])
    assert x.sum(axis=1)[0] == pytest.approx(1 + 0.1 + 0.2 + 1 + 0.5 + 1 + 1 + 1 + 0 + 1 + 1)


@pytest.mark.parametrize(("df", "match"), [
    (table().drop(columns="engagement_score"), r"missing \['engagement_score'\]"),
    (table(lifecycle_stage=["new", "customer", "lapsed"]),
     r"subscribers\['lifecycle_stage'\]: expected one of .* got \['new'\]"),
    (table(engagement_score=[0.1, 1.5, 0.2]),
     r"subscribers\['engagement_score'\]: expected values in \[0.0, 1.0\], got \[1.5\]"),
    (table(preferred_hour=[0, 24, 1]), r"subscribers\['preferred_hour'\]: expected values"),
    (table(days_since_engagement=[1.0, np.nan, 2.0]),
     r"subscribers\['days_since_engagement'\]: expected no missing values, got 1 NaN"),
    ("not a frame", r"df: expected a pandas DataFrame, got str"),
])
def test_bad_tables(df, match) -> None:
    with pytest.raises(PolicyError, match=match):
        subscriber_features(df)
