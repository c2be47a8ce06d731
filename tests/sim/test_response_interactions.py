"""The call to action and the interactions between email elements in the response model:
each term moves exactly the logit or multiplier the docs state, only where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from policies.errors import SpecError
from sim.population import Population
from sim.presets import CALLS_TO_ACTION, SUBJECT_STYLES, get_preset
from sim.response import EmailBatch, probabilities


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@pytest.fixture(scope="module")
def pop() -> Population:
    return Population.generate(2000, seed=8)


def _pr(pop: Population, **fields) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return probabilities(pop, EmailBatch.make(pop.ids, pop.time + 3600, **fields))


@pytest.mark.parametrize("style", SUBJECT_STYLES)
@pytest.mark.parametrize("cta", CALLS_TO_ACTION)
@pytest.mark.parametrize("incentive", [0.0, 0.2])
def test_call_to_action_moves_the_click_logit_by_its_effects(pop, style, cta, incentive):  # type: ignore[no-untyped-def]
    p = pop.preset
    base = _pr(pop, subject_style=style, incentive=incentive)
    with_cta = _pr(pop, subject_style=style, incentive=incentive, cta=cta)
    s, c = SUBJECT_STYLES.index(style), CALLS_TO_ACTION.index(cta)
    expected = (p.cta_click_effects[c] + p.subject_cta_click_effects[s][c]
                + p.offer_cta_incentive_click_gain * (cta == "see_offer" and incentive > 0))
    diff = _logit(with_cta["p_click_given_open"]) - _logit(base["p_click_given_open"])
    np.testing.assert_allclose(diff, expected, atol=1e-9)
    # the button is seen only after the open: opens, purchases and unsubscribes unchanged
    for key in ("p_open", "p_purchase_given_click", "p_unsubscribe"):
        np.testing.assert_array_equal(with_cta[key], base[key])


def test_the_subject_x_button_interaction_is_a_difference_of_differences(pop):  # type: ignore[no-untyped-def]
    p = pop.preset
    lg = {(s, c): _logit(_pr(pop, subject_style=s, cta=c)["p_click_given_open"])
          for s in ("plain", "learn") for c in ("shop_now", "learn_more")}
    dd = (lg["learn", "learn_more"] - lg["learn", "shop_now"]
          - lg["plain", "learn_more"] + lg["plain", "shop_now"])
    table = p.subject_cta_click_effects
    learn, plain = SUBJECT_STYLES.index("learn"), SUBJECT_STYLES.index("plain")
    shop, more = CALLS_TO_ACTION.index("shop_now"), CALLS_TO_ACTION.index("learn_more")
    np.testing.assert_allclose(dd, table[learn][more] - table[learn][shop]
                               - table[plain][more] + table[plain][shop], atol=1e-9)
    assert dd[0] > 0.3     # a real interaction at the defaults


@pytest.mark.parametrize("style", SUBJECT_STYLES)
def test_a_deadline_subject_multiplies_the_discount_effect(pop, style):  # type: ignore[no-untyped-def]
    gain = pop.preset.subject_discount_buy_gain[SUBJECT_STYLES.index(style)]
    no = _pr(pop, subject_style=style)["p_purchase_given_click"]
    yes = _pr(pop, subject_style=style, incentive=0.2)["p_purchase_given_click"]
    plain_no = _pr(pop, subject_style="plain")["p_purchase_given_click"]
    plain_yes = _pr(pop, subject_style="plain", incentive=0.2)["p_purchase_given_click"]
    free = (yes < 0.95) & (plain_yes < 0.95)         # not at the cap
    assert free.mean() > 0.9
    np.testing.assert_allclose((yes / no - 1)[free],
                               ((plain_yes / plain_no - 1) * (1 + gain))[free], rtol=1e-12)
    if style == "limited_time":
        assert gain > 0 and (yes / no)[free].mean() > (plain_yes / plain_no)[free].mean()


def test_neutral_interactions_give_the_sum_of_the_parts() -> None:
    pre = get_preset(subject_cta_click_effects=((0.0, 0.0, 0.0),) * 6,
                     subject_discount_buy_gain=(0.0,) * 6, offer_cta_incentive_click_gain=0.0)
    pop = Population.generate(500, seed=2, preset=pre)
    a = _logit(_pr(pop, subject_style="learn", cta="learn_more")["p_click_given_open"])
    b = _logit(_pr(pop, subject_style="learn")["p_click_given_open"])
    c = _logit(_pr(pop, subject_style="plain", cta="learn_more")["p_click_given_open"])
    d = _logit(_pr(pop, subject_style="plain")["p_click_given_open"])
    np.testing.assert_allclose(a - b, c - d, atol=1e-9)


@pytest.mark.parametrize("fields,message", [
    ({"cta": "buy_buy_buy"}, r"cta: expected one of shop_now, see_offer, learn_more"),
    ({"cta": 3}, r"cta: expected codes in \[-1, 3\), got 3"),
    ({"cta": -2}, r"cta: expected codes in \[-1, 3\), got -2"),
])
def test_bad_calls_to_action_are_refused(fields, message):  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=message):
        EmailBatch.make([1, 2], 0, **fields)


@pytest.mark.parametrize("overrides,message", [
    ({"cta_click_effects": (0.1, 0.2)}, r"cta_click_effects: expected 3 effects"),
    ({"subject_discount_buy_gain": (0.1,)}, r"subject_discount_buy_gain: expected 6 gains"),
    ({"subject_cta_click_effects": ((0.0, 0.0),) * 6}, r"expected a 6 x 3 table"),
    ({"offer_cta_incentive_click_gain": float("nan")}, r"offer_cta_incentive_click_gain"),
])
def test_bad_interaction_parameters_are_refused(overrides, message):  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=message):
        get_preset(**overrides)


def test_batches_keep_and_name_the_call_to_action() -> None:
    b = EmailBatch.make([1, 2, 3], 0, cta=["shop_now", None, "learn_more"])
    assert b.cta.tolist() == [0, -1, 2]
    names = b.to_pandas()["cta"]
    assert names[0] == "shop_now" and names[2] == "learn_more" and names.isna()[1]
    assert EmailBatch.concat([b, b.take([0])]).cta.tolist() == [0, -1, 2, 0]
