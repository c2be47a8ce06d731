"""Response delays: the filtered distribution functions equal the direct sums, have the
right edges, and the probability of a response within a window matches the sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr
from test_response import T0, _random_emails, _random_state

from policies.event_schema import EVENT_TYPES
from sim.delays import (
    KINDS,
    DelayModel,
    delay_cdfs,
    delay_cdfs_reference,
    within_window,
)
from sim.population import Population
from sim.presets import EMAIL_KINDS, get_preset
from sim.response import EmailBatch, probabilities, sample
from sim.rng import KeyedRandom

RETAIL = DelayModel.from_preset(get_preset("retail"))
ODD = DelayModel(open_delay_median_hours=0.2, click_delay_mean_s=30.0,
                 purchase_delay_mean_s=3000.0)
CODE = {n: EVENT_TYPES.code(n) for n in ("email_open", "email_click", "purchase_completed")}
CHUNK = 1 << 14
# the edges of every part (59/60 human open, 64/65 click, 144/145 order), chunk
# boundaries, one window beyond the support, a reward window and the end of a 14-day run
WINDOWS = [0, 29, 30, 59, 60, 61, 64, 65, 144, 145, 146, 599, 600, 900, 3599, 3600,
           CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7, 86_400, 259_200, 1_209_600,
           1_209_601]
SUPPORT = tuple(range(900, 1_209_601, 900))


@pytest.mark.parametrize("model", [RETAIL, ODD], ids=["retail", "odd"])
@pytest.mark.parametrize("dh", [0.0, 3.0, 12.0])
def test_filtered_cdfs_equal_direct_sums(model: DelayModel, dh: float) -> None:
    w = np.array(WINDOWS)
    fast = delay_cdfs(model, np.full(len(w), dh), w, SUPPORT)
    for i, win in enumerate(WINDOWS):
        ref = delay_cdfs_reference(model, dh, win)
        for k in KINDS:
            assert fast[k][i] == pytest.approx(ref[k], abs=1e-12), (k, win)


def test_cdf_edges_and_shape() -> None:
    a = RETAIL.open_scale(2.0)
    w = np.arange(-5, 400)
    c = delay_cdfs(RETAIL, np.full(len(w), 2.0), w, tuple(range(400)))
    at = {k: dict(zip(w.tolist(), v.tolist(), strict=True)) for k, v in c.items()}
    assert at["machine_open"][29] == 0 and at["machine_open"][30] == pytest.approx(1 / 570)
    assert at["human_open"][59] == 0
    assert at["human_open"][60] == pytest.approx(ndtr((math.log(61) - math.log(a)) / 0.9))
    assert at["click"][64] == 0 < at["click"][65]
    assert at["order"][144] == 0 < at["order"][145]
    assert all(v[-5] == 0 for v in at.values())  # a negative window: never
    far = delay_cdfs(RETAIL, np.full(3, 2.0), np.array([599, 10**8, 10**9]))
    assert far["machine_open"][0] == 1.0
    for k in ("human_open", "click", "order"):
        assert far[k][1] == pytest.approx(1.0, abs=1e-12)
    grid = np.arange(0, 200_000, 997)
    g = delay_cdfs(RETAIL, np.full(len(grid), 5.0), grid, tuple(grid.tolist()))
    for k in KINDS:
        assert (np.diff(g[k]) >= -1e-15).all(), k
    # each later response lands no earlier than the one before it
    assert (g["human_open"] >= g["click"] - 1e-15).all()
    assert (g["click"] >= g["order"] - 1e-15).all()


def _sampled(seed: int, m: int) -> tuple[Population, EmailBatch, dict, dict]:
    pop = Population.generate(3000, seed=seed, start=500)
    g = np.random.default_rng(seed)
    _random_state(pop, g, T0)
    pop.engagement[:] = np.clip(pop.engagement * 1.8, 0, 1)  # more clicks and orders
    emails = _random_emails(pop, g, T0, m)
    emails = EmailBatch(**{**{f: getattr(emails, f) for f in (
        "subscriber", "time", "kind", "subject_style", "strategy", "personalization",
        "urgency", "incentive", "send_hour")}, "campaign": np.arange(m)})  # one code each
    events, pr, _ = sample(pop, emails, KeyedRandom(seed))
    return pop, emails, pr, events


@pytest.mark.parametrize("window", [600, 3600, 4 * 3600, 86_400])
def test_probability_within_window_matches_the_sampler(window: int) -> None:
    pop, emails, pr, ev = _sampled(21, 60_000)
    expect = within_window(pop, emails, pr, window)
    delay = ev["time"] - emails.time[ev["campaign_id"]]
    cart = np.asarray(pr["cart_open"], bool)
    ret = pop.return_time[emails.subscriber - pop.start]
    returner = cart & (ret > emails.time)
    for name, code in (("p_open", "email_open"), ("p_click", "email_click"),
                       ("p_purchase", "purchase_completed")):
        hit = (ev["type"] == CODE[code]) & (delay <= window)
        if code == "purchase_completed":  # the organic return buys the cart first
            e = ev["campaign_id"]
            hit &= ~returner[e] | (ev["time"] < ret[e])
        p = expect[name]
        observed, expected = int(hit.sum()), float(p.sum())
        sd = math.sqrt(float((p * (1 - p)).sum()))
        assert abs(observed - expected) < 4.5 * sd, (name, observed, expected, sd)
    # revenue: the sum of counted purchases' revenue (variance <= p E[value^2])
    hit = (ev["type"] == CODE["purchase_completed"]) & (delay <= window)
    hit &= ~returner[ev["campaign_id"]] | (ev["time"] < ret[ev["campaign_id"]])
    second = pr["order_value"] ** 2 * np.where(cart, 1.0, math.exp(0.5**2))
    sd = math.sqrt(float((expect["p_purchase"] * second).sum()))
    assert abs(float(ev["revenue"][hit].sum()) - expect["expected_revenue"].sum()) < 4.5 * sd


def test_sampler_check_detects_the_any_time_basis() -> None:
    # the same comparison with the response model's any-time probabilities is far off
    # at a 1 h window: what the runtime's truth columns were before
    pop, emails, pr, ev = _sampled(22, 20_000)
    delay = ev["time"] - emails.time[ev["campaign_id"]]
    clicks = int(((ev["type"] == CODE["email_click"]) & (delay <= 3600)).sum())
    assert clicks < 0.5 * pr["p_click"].sum()
    assert clicks == pytest.approx(within_window(pop, emails, pr, 3600)["p_click"].sum(),
                                   rel=0.15)


def test_an_unbounded_window_gives_the_model_probabilities() -> None:
    pop = Population.generate(400, seed=3)
    g = np.random.default_rng(3)
    _random_state(pop, g, T0)
    emails = _random_emails(pop, g, T0, 300)
    pr = probabilities(pop, emails)
    w = within_window(pop, emails, pr, 10**9)
    returner = np.asarray(pr["cart_open"], bool) & (
        pop.return_time[emails.subscriber - pop.start] > emails.time)
    assert returner.any() and (~returner).any()
    for name in ("p_open", "p_click", "p_purchase", "expected_revenue",
                 "p_incremental_purchase"):
        np.testing.assert_allclose(w[name][~returner], pr[name][~returner], rtol=1e-12,
                                   atol=1e-15, err_msg=name)
    # a would-return cart: its reminder's order counts only before the cart comes back
    live = returner & (pr["p_purchase"] > 0)
    assert live.any() and (w["p_purchase"][live] < pr["p_purchase"][live]).all()
    assert (w["p_incremental_purchase"][returner] == 0).all()


@pytest.mark.parametrize(("return_in", "window", "buy_window", "incremental"), [
    (3600, 86_400, 3599, False),     # comes back within the window: the reminder's order
    (3600, 3000, 3000, True),        # counts only before; it caused nothing in the window
    (100_000, 86_400, 86_400, True),  # comes back after the window
    (0, 86_400, 86_400, True),       # no return scheduled
])
def test_cart_reminder_to_a_would_return_cart(return_in: int, window: int,
                                              buy_window: int, incremental: bool) -> None:
    pop = Population.generate(1, seed=4)
    pop.cart_value[0], pop.cart_time[0] = 120.0, T0 - 7200
    pop.return_time[0] = T0 + return_in if return_in else 0
    emails = EmailBatch.make([0], T0, kind="cart_abandonment", send_hour=10)
    pr = probabilities(pop, emails)
    w = within_window(pop, emails, pr, window)
    order = delay_cdfs_reference(RETAIL, float(pr["hour_distance"][0]), buy_window)["order"]
    assert w["p_purchase"][0] == pytest.approx(pr["p_purchase"][0] * order, rel=1e-12)
    assert w["expected_revenue"][0] == pytest.approx(w["p_purchase"][0] * 120.0)
    assert w["p_incremental_purchase"][0] == (w["p_purchase"][0] if incremental else 0.0)
    assert EMAIL_KINDS[int(emails.kind[0])] == "cart_abandonment"
