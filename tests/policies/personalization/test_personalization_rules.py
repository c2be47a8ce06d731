"""Rule-based content strategy and subject style (docs/domain.md) match the plain-Python rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.base import CONTENT_STRATEGIES, SUBJECT_STYLES
from policies.features import LIFECYCLE_STAGES, subscriber_features
from policies.personalization import (
    ContentStrategyPolicy,
    SubjectRulePolicy,
    content_strategy,
    personalization_level,
    subject_style,
)
from policies.personalization.rules import content_strategy_reference, subject_style_reference

row_st = st.fixed_dictionaries({
    "lifecycle_stage": st.sampled_from(LIFECYCLE_STAGES),
    "engagement_score": st.sampled_from([0.0, 0.29, 0.3, 0.6, 0.61, 0.7, 0.71, 1.0])
    | st.floats(0, 1),
    "conversion_readiness": st.sampled_from([0.0, 0.7, 0.71, 1.0]) | st.floats(0, 1),
    "educational_seeker": st.booleans(),
    "price_sensitivity": st.floats(0, 1),
    "days_since_engagement": st.floats(0, 400),
    "preferred_hour": st.integers(0, 23),
    "subscribed": st.booleans(),
})


@given(st.lists(row_st, min_size=1, max_size=30))
def test_vectorized_rules_match_reference(rows) -> None:
    x = subscriber_features(pd.DataFrame(rows))
    strategies = [CONTENT_STRATEGIES[i] for i in content_strategy(x)]
    assert strategies == [content_strategy_reference(r) for r in rows]
    styles = [SUBJECT_STYLES[i] for i in subject_style(x)]
    assert styles == [subject_style_reference(r) for r in rows]
    np.testing.assert_array_equal(personalization_level(x),
                                  [int(r["engagement_score"] > 0.6) for r in rows])


BASE = {"lifecycle_stage": "customer", "engagement_score": 0.5, "conversion_readiness": 0.5,
        "educational_seeker": False, "price_sensitivity": 0.5, "days_since_engagement": 1.0,
        "preferred_hour": 9, "subscribed": True}


@pytest.mark.parametrize(("over", "strategy", "style", "level"), [
    ({"lifecycle_stage": "new_subscriber", "engagement_score": 0.1}, "onboarding_education",
     "plain", 0),
    ({"engagement_score": 0.2, "conversion_readiness": 0.9}, "reengagement", "dont_miss", 0),
    ({"conversion_readiness": 0.8, "engagement_score": 0.9}, "conversion_focused",
     "limited_time", 1),
    ({"educational_seeker": True}, "educational_nurturing", "learn", 0),
    ({"engagement_score": 0.75}, "general_engagement", "first_name", 1),
    ({"engagement_score": 0.65}, "general_engagement", "plain", 1),
    ({}, "general_engagement", "plain", 0),
])
def test_rule_table(over, strategy, style, level) -> None:
    x = subscriber_features(pd.DataFrame([{**BASE, **over}]))
    rng = np.random.default_rng(0)
    arms, props = ContentStrategyPolicy().select(x, rng)
    assert CONTENT_STRATEGIES[arms[0]] == strategy and props[0] == 1.0
    arms, _ = SubjectRulePolicy().select(x, rng)
    assert SUBJECT_STYLES[arms[0]] == style
    assert personalization_level(x)[0] == level
