"""BG/NBD and Gamma-Gamma: the CDNOW sample gives the published parameters, a
simulated BG/NBD population gives back its own, the RFM summary of an event log is
right by hand, and bad input is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from policies.errors import TriggerLabValueError
from policies.events import EventBatch
from policies.segments.clv import (
    BetaGeo,
    GammaGamma,
    clv,
    fit_beta_geo,
    fit_gamma_gamma,
    rfm_summary,
)


def two_significant(estimate: float, published: float) -> bool:
    """``estimate`` equals ``published`` to two significant figures (within half a unit
    of the second digit)."""
    return abs(estimate - published) <= 0.5 * 10 ** (math.floor(math.log10(published)) - 1)


@pytest.fixture(scope="module")
def cdnow():
    datasets = pytest.importorskip("lifetimes.datasets",
                                   reason="the CDNOW sample ships with lifetimes (dev extra)")
    return datasets.load_cdnow_summary_data_with_monetary_value()


def test_cdnow_reproduces_fader_hardie_lee_2005(cdnow) -> None:
    bg = fit_beta_geo(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}   # FHL 2005, weeks
    for name, value in published.items():
        assert two_significant(getattr(bg, name), value), (name, getattr(bg, name))
        assert getattr(bg, name) == pytest.approx(value, abs=0.001)       # in fact to 3 d.p.
    assert bg.loglik == pytest.approx(-9582.4, abs=0.1)                   # FHL 2005
    # FHL 2005's worked customer: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks
    assert bg.expected_purchases(39, 2, 30.43, 38.86)[()] == pytest.approx(1.226, abs=5e-4)


def test_cdnow_reproduces_fader_hardie_2013_gamma_gamma(cdnow) -> None:
    gg = fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert two_significant(getattr(gg, name), value), (name, getattr(gg, name))
    # the model's mean spend of a customer with no repeat purchase: the population mean
    assert gg.expected_spend(0, 0.0)[()] == pytest.approx(gg.p * gg.gamma / (gg.q - 1))


def test_p_alive_and_forecast_agree_with_lifetimes(cdnow) -> None:
    """Cross-check of the conditional formulas against the reference implementation."""
    lifetimes = pytest.importorskip("lifetimes")
    bg = BetaGeo(0.243, 4.414, 0.793, 2.426)
    ref = lifetimes.BetaGeoFitter()
    ref.params_ = __import__("pandas").Series({"r": bg.r, "alpha": bg.alpha, "a": bg.a,
                                               "b": bg.b})
    x, t_x, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(bg.p_alive(x, t_x, T),
                               ref.conditional_probability_alive(x, t_x, T), rtol=1e-9)
    np.testing.assert_allclose(
        bg.expected_purchases(10, x, t_x, T),
        ref.conditional_expected_number_of_purchases_up_to_time(10, x, t_x, T), rtol=1e-7)


def simulate_bg_nbd(n: int, r: float, alpha: float, a: float, b: float, T: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD customers observed for ``T`` time units after their first purchase."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, bool)     # alive at the first purchase; may drop out after a repeat
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        inside = t[idx] <= T
        got = idx[inside]
        x[got] += 1
        t_x[got] = t[got]
        alive[idx[~inside]] = False
        alive[got] = rng.uniform(size=len(got)) >= p[got]
    return x, t_x, np.full(n, T)


def test_recovers_the_parameters_it_simulated() -> None:
    true = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    x, t_x, T = simulate_bg_nbd(8_000, **true, T=52.0, seed=4)
    bg = fit_beta_geo(x, t_x, T)
    for name, value in true.items():
        assert getattr(bg, name) == pytest.approx(value, rel=0.25), name
    # the fitted model's E[X(T)] (FHL 2005, eq. 7) matches the simulated mean count
    ex = (bg.a + bg.b - 1) / (bg.a - 1) * (1 - (bg.alpha / (bg.alpha + 52.0)) ** bg.r
                                          * __import__("scipy").special.hyp2f1(
                                              bg.r, bg.b, bg.a + bg.b - 1, 52 / (bg.alpha + 52)))
    assert ex == pytest.approx(x.mean(), rel=0.05)


DAY = 86_400
NOW = 1_720_000_000 - 1_720_000_000 % DAY


def test_rfm_summary_by_hand() -> None:
    rec = [
        {"subscriber": 1, "time": NOW - 70 * DAY, "type": "purchase_completed", "revenue": 10.0},
        {"subscriber": 1, "time": NOW - 70 * DAY + 60, "type": "purchase_completed",
         "revenue": 5.0},                                     # same day: one transaction
        {"subscriber": 1, "time": NOW - 35 * DAY, "type": "purchase_completed", "revenue": 20.0},
        {"subscriber": 1, "time": NOW - 14 * DAY, "type": "purchase_completed", "revenue": 40.0},
        {"subscriber": 1, "time": NOW + DAY, "type": "purchase_completed", "revenue": 99.0},
        {"subscriber": 2, "time": NOW - 7 * DAY, "type": "purchase_completed", "revenue": 8.0},
        {"subscriber": 3, "time": NOW - 7 * DAY, "type": "page_view"},
    ]
    s = rfm_summary(EventBatch.from_records(rec), NOW)
    assert list(s.index) == [1, 2]
    assert s.loc[1].tolist() == [2, 8.0, 10.0, 30.0]         # x, t_x, T (weeks), m_x
    assert s.loc[2].tolist() == [0, 0.0, 1.0, 0.0]
    bg, gg = BetaGeo(0.243, 4.414, 0.793, 2.426), GammaGamma(6.25, 3.74, 15.44)
    one = clv(bg, gg, s, periods=1, period_units=4.0, discount=0.0)
    np.testing.assert_allclose(
        one, bg.expected_purchases(4.0, s["x"], s["t_x"], s["T"])
        * gg.expected_spend(s["x"], s["m_x"]))
    year = clv(bg, gg, s, periods=12, discount=0.01)
    assert year.name == "clv" and (year > one).all()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: fit_beta_geo([1], [2.0], [1.0]), r"expected x >= 0 and 0 <= t_x <= T, got x=1.0, "
                                              r"t_x=2.0, T=1.0 \(customer 0\)"),
    (lambda: fit_beta_geo([-1], [0.0], [1.0]), r"expected x >= 0"),
    (lambda: fit_beta_geo([1], [np.nan], [1.0]), r"expected x >= 0"),
    (lambda: fit_beta_geo([], [], []), r"x: expected at least one customer, got none"),
    (lambda: fit_beta_geo([1], [0.5], [1.0], penalizer=-1), r"penalizer: expected a number >= 0"),
    (lambda: fit_gamma_gamma([0, 0], [0.0, 0.0]), r"x: expected customers with repeat"),
    (lambda: fit_gamma_gamma([1, 2], [5.0]), r"m_x: expected the shape of x \(2,\), got \(1,\)"),
    (lambda: fit_gamma_gamma([1], [0.0]), r"m_x: expected a mean spend > 0"),
    (lambda: rfm_summary("log", NOW), r"events: expected an EventBatch, got str"),
    (lambda: rfm_summary(EventBatch.empty(), NOW, time_unit_days=0),
     r"time_unit_days: expected a number > 0, got 0"),
])
def test_bad_input(call, match: str) -> None:
    with pytest.raises(TriggerLabValueError, match=match):
        call()


@pytest.mark.parametrize("r", [1e9, 1e12])
def test_expected_purchases_stay_finite_at_the_poisson_limit(r: float) -> None:
    """r and alpha at the edge of the search with a fixed rate (a fit at the Poisson
    limit): the Gauss function overflows there; the forecast follows its confluent limit
    and matches a large but ordinary r."""
    from policies.segments.clv import BetaGeo

    x, t_x, T = np.array([0, 1, 3, 5.0]), np.array([0, 2, 5, 5.0]), np.full(4, 6.0)
    near = BetaGeo(r=1e5, alpha=1e6, a=0.8, b=2.4).expected_purchases(2, x, t_x, T)
    far = BetaGeo(r=r, alpha=10 * r, a=0.8, b=2.4).expected_purchases(2, x, t_x, T)
    assert np.isfinite(far).all()
    np.testing.assert_allclose(far, near, rtol=1e-3)
