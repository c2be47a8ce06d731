"""What each arm sets on an email (actors.variants): combination arms name their
elements by vocabulary; bad arms are refused with the arm's path."""

from __future__ import annotations

import numpy as np
import pytest

from actors.variants import ELEMENTS, ArmVariants, arm_columns, element_of
from policies.bandits import FactorizedThompson
from policies.errors import SpecError


def test_every_level_names_one_element() -> None:
    seen: dict[str, str] = {}
    for element, levels in ELEMENTS.items():
        for level in levels:
            assert level not in seen, (level, seen.get(level), element)
            seen[level] = element
            assert ":" not in level
            assert element_of(level)[0] == element


def test_combination_arms_decode_to_email_fields() -> None:
    cols = arm_columns("combination", ["learn:learn_more:off15:urgent:h20",
                                       "plain:shop_now:off0:not_urgent:h09"])
    assert set(cols) == {"subject_style", "cta", "incentive", "urgency", "send_hour"}
    assert cols["subject_style"].tolist() == [4, 0]
    assert cols["cta"].tolist() == [2, 0]
    np.testing.assert_array_equal(cols["incentive"], [0.15, 0.0])
    assert cols["urgency"].dtype == bool and cols["urgency"].tolist() == [True, False]
    assert cols["send_hour"].tolist() == [20, 9]
    assert ArmVariants("combination", ("h07:plain", "h21:learn")).send_hours().tolist() == [7, 21]
    assert ArmVariants("subject_style", ("plain", "learn")).send_hours() is None


def test_factorized_thompson_arm_names_are_combinations() -> None:
    policy = FactorizedThompson({"subject": ["plain", "learn"],
                                 "content": ["general_engagement", "conversion_focused"],
                                 "cta": ["shop_now", "learn_more"]})
    cols = ArmVariants("combination", tuple(policy.arm_names)).columns()
    assert cols["subject_style"].tolist() == [0, 0, 0, 0, 4, 4, 4, 4]
    assert cols["cta"].tolist() == [0, 2, 0, 2, 0, 2, 0, 2]


def test_single_element_arms_keep_their_columns() -> None:
    assert arm_columns("subject_style", ["plain", "question"]) == {
        "subject_style": pytest.approx(np.array([0, 5]))}
    cols = arm_columns("strategy", ["reengagement:high", "conversion_focused"])
    assert cols["strategy"].tolist() == [1, 2] and cols["personalization"].tolist() == [1, -1]


@pytest.mark.parametrize("arms,message", [
    (["plain:shouty"], r"policy.arm_names\[0\]: expected a level of one of .* got 'shouty'"),
    (["plain:learn"], r"policy.arm_names\[0\]: sets subject_style twice in 'plain:learn'"),
    (["plain:shop_now", "learn:h09"],
     r"policy.arm_names\[1\]: sets subject_style, send_hour, but policy.arm_names\[0\] sets "
     r"subject_style, cta: every arm sets the same elements"),
    (["plain", "learn"], r"policy.arm_names\[0\]: a combination sets two or more elements"),
    (["plain:off95"], r"got 'off95'"),
    (["plain:off05"], r"got 'off05'"),
    (["plain:h24"], r"got 'h24'"),
    (["plain:"], r"got ''"),
])
def test_bad_combination_arms_are_refused(arms, message):  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=message):
        arm_columns("combination", arms)


def test_unknown_decides_is_refused() -> None:
    with pytest.raises(SpecError, match=r"policy.decides: expected subject_style, send_hour, "
                                        r"strategy or combination, got 'cta'"):
        arm_columns("cta", ["shop_now"])
