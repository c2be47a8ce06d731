"""Who to send to: features from event history, behavioral clusters, propensity
scoring, customer lifetime value and uplift (with Qini curves).

Everything here takes data (and a time ``now``) as arguments and returns a DataFrame or
Series indexed by subscriber id, so that its columns can become subscriber attributes.
"""

from policies.segments.clusters import BehaviorClusters
from policies.segments.clv import (
    BetaGeo,
    GammaGamma,
    clv,
    fit_beta_geo,
    fit_gamma_gamma,
    rfm_summary,
)
from policies.segments.history import (
    ENGAGEMENT_TYPES,
    HISTORY_FEATURES,
    history_features,
)
from policies.segments.history_reference import history_features_reference
from policies.segments.matrix import MODEL_COLUMNS, model_matrix
from policies.segments.qini import qini_area, qini_curve, uplift_by_decile
from policies.segments.scores import PropensityScores
from policies.segments.uplift import UpliftModel, design_matrix

__all__ = [
    "ENGAGEMENT_TYPES",
    "HISTORY_FEATURES",
    "MODEL_COLUMNS",
    "BehaviorClusters",
    "BetaGeo",
    "GammaGamma",
    "PropensityScores",
    "UpliftModel",
    "clv",
    "design_matrix",
    "fit_beta_geo",
    "fit_gamma_gamma",
    "history_features",
    "history_features_reference",
    "model_matrix",
    "qini_area",
    "qini_curve",
    "rfm_summary",
    "uplift_by_decile",
]
