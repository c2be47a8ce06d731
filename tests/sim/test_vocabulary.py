"""The email vocabulary is defined once (policies.base) and means the same on both sides.

Policies name subject styles and content strategies; emails carry their positions as
integer codes (actors.variants.ArmVariants) that the simulator's response model decodes.
"""

from __future__ import annotations

import numpy as np
import pytest

import policies
import sim
from actors.variants import ArmVariants
from policies.base import CONTENT_STRATEGIES, SUBJECT_STYLES
from policies.personalization import ContentStrategyPolicy, SubjectRulePolicy
from sim import presets, response
from sim.response import EmailBatch


def test_one_definition() -> None:
    assert presets.SUBJECT_STYLES is SUBJECT_STYLES is sim.SUBJECT_STYLES
    assert presets.CONTENT_STRATEGIES is CONTENT_STRATEGIES is sim.CONTENT_STRATEGIES
    assert policies.SUBJECT_STYLES is SUBJECT_STYLES
    assert policies.CONTENT_STRATEGIES is CONTENT_STRATEGIES


@pytest.mark.parametrize(("decides", "names", "field"), [
    ("subject_style", SUBJECT_STYLES, "subject_style"),
    ("strategy", CONTENT_STRATEGIES, "strategy"),
])
def test_policy_codes_decode_to_the_same_names_in_the_simulator(decides, names, field) -> None:  # type: ignore[no-untyped-def]
    codes = ArmVariants(decides, tuple(names)).columns()[field]
    assert codes.tolist() == list(range(len(names)))
    batch = EmailBatch.make(np.arange(len(names)), 0, **{field: codes})
    assert batch.to_pandas()[field].tolist() == list(names)
    by_name = EmailBatch.make(np.arange(len(names)), 0, **{field: list(names)})
    assert getattr(by_name, field).tolist() == codes.tolist()


def test_rule_based_policies_use_the_vocabulary() -> None:
    assert tuple(SubjectRulePolicy().arm_names) == SUBJECT_STYLES
    assert tuple(ContentStrategyPolicy().arm_names) == CONTENT_STRATEGIES


def test_preset_per_style_parameters_follow_the_style_order() -> None:
    p = presets.PRESETS["retail"]
    assert len(p.subject_open_effects) == len(SUBJECT_STYLES)
    assert len(p.subject_clickbait) == len(SUBJECT_STYLES)
    effects = dict(zip(SUBJECT_STYLES, p.subject_open_effects, strict=True))
    best_segment = {s: presets.SEGMENTS[int(np.argmax(row))] for s, row in effects.items()
                    if any(row)}
    # rows are keyed by SUBJECT_STYLES: personal names work on engaged readers, "learn"
    # on educational seekers, urgency on the unengaged and the ready-to-buy
    assert best_segment["first_name"] == "engaged"
    assert best_segment["learn"] == "seeker"
    assert best_segment["dont_miss"] == "low"
    assert best_segment["limited_time"] == "ready"
    assert effects["plain"] == (0.0,) * len(presets.SEGMENTS)  # the reference style
    clickbait = dict(zip(SUBJECT_STYLES, p.subject_clickbait, strict=True))
    assert max(clickbait, key=clickbait.__getitem__) in ("dont_miss", "limited_time")


def test_natural_strategy_of_each_segment() -> None:
    assert tuple(response.NATURAL_STRATEGY) == presets.SEGMENTS
    assert set(response.NATURAL_STRATEGY.values()) == set(CONTENT_STRATEGIES)
    decoded = [CONTENT_STRATEGIES[c] for c in response._NATURAL_STRATEGY]
    assert decoded == [response.NATURAL_STRATEGY[s] for s in presets.SEGMENTS]
