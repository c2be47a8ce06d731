"""Who to send to: features from event history (and, in later modules, behavioral
clusters, propensity scores and customer lifetime value).

Everything here takes data and a time ``now`` as arguments and returns a DataFrame
indexed by subscriber id, so that its columns can become subscriber attributes.
"""

from policies.segments.history import (
    ENGAGEMENT_TYPES,
    HISTORY_FEATURES,
    history_features,
)
from policies.segments.history_reference import history_features_reference

__all__ = [
    "ENGAGEMENT_TYPES",
    "HISTORY_FEATURES",
    "history_features",
    "history_features_reference",
]
