"""The world's email path (sim.response_sparse) == sim.response's dense sampler, bit for bit:
respond's events == sample's, open_terms (compiled) == _open_terms (numpy reference),
apply_fatigue (compiled) == npe_noise_update and npe_update (numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_response import T0, _random_emails, _random_state

from sim import _events as E
from sim.catalog import PRODUCTS_PER_CATEGORY
from sim.clock import DAY
from sim.population import Population
from sim.presets import CALLS_TO_ACTION, LIFECYCLE_STAGES
from sim.response import EmailBatch, _open_terms, npe_noise_update, npe_update, sample
from sim.response_sparse import apply_fatigue, open_terms, respond
from sim.rng import KeyedRandom

_F32 = np.float32
#: float32 values at and next to the segment thresholds, and the ends of [0, 1]
_EDGES = np.array([0.0, 1.0, *[np.nextafter(_F32(v), _F32(d)) for v in (0.3, 0.7, 0.4375)
                               for d in (-1, 1)], _F32(0.3), _F32(0.7), _F32(0.4375)],
                  np.float32)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


def _extreme_state(pop: Population, g: np.random.Generator) -> None:
    """Random state with a share of extremes: threshold and end values of engagement and
    intent, large and tiny NPE, lapsed exactly at the threshold, every lifecycle stage,
    every UTC offset and preferred hour."""
    n = len(pop)
    _random_state(pop, g, T0)
    pick = g.random(n) < 0.3
    pop.engagement[pick] = g.choice(_EDGES, pick.sum())
    pick = g.random(n) < 0.3
    pop.intent[pick] = g.choice(_EDGES, pick.sum())
    pick = g.random(n) < 0.2
    pop.npe[pick] = g.choice(np.array([-80.0, -5.0, -1e-30, 0.0, 1e-30, 5.0, 80.0], np.float32),
                             pick.sum())
    days = pop.preset.lapsed_inactive_days
    pop.last_engaged[:] = T0 - np.round(g.choice([0.0, days - 1e-5, days, days + 1e-5, 2 * days],
                                                 n) * DAY).astype(np.int64)
    pop.lifecycle[:] = g.integers(0, len(LIFECYCLE_STAGES), n)
    pop.educational_seeker[:] = g.random(n) < 0.3
    pop.privacy_proxy[:] = g.random(n) < 0.4
    pop.utc_offset_minutes[:] = g.integers(-720, 841, n)
    pop.preferred_hour[:] = g.integers(0, 24, n)


def _emails(pop: Population, g: np.random.Generator, m: int, shape: int) -> EmailBatch:
    """A campaign to increasing ids (shape 0) or mixed emails with journey fields, calls to
    action and repeated keys (several emails per subscriber and time)."""
    if shape == 0:
        sub = np.sort(g.choice(pop.ids, size=min(m, len(pop)), replace=False))
        return EmailBatch.make(sub, T0 + int(g.integers(0, 86400)),
                               campaign=int(g.integers(0, 70_000)))
    e = _random_emails(pop, g, T0, m)
    alert = g.random(m) < 0.3
    return EmailBatch.make(
        e.subscriber, T0 + g.integers(0, 3, m), campaign=e.campaign % 5, kind=e.kind,
        subject_style=e.subject_style, strategy=e.strategy,
        personalization=e.personalization, urgency=e.urgency, incentive=e.incentive,
        send_hour=e.send_hour, series_index=np.where(g.random(m) < 0.4, g.integers(0, 6, m), 0),
        alert_product=np.where(
            alert, g.integers(0, pop.preset.n_categories * PRODUCTS_PER_CATEGORY, m), -1),
        drop_fraction=np.where(alert & (g.random(m) < 0.7), g.uniform(0, 0.5, m), 0.0),
        cta=np.where(g.random(m) < 0.5, g.integers(0, len(CALLS_TO_ACTION), m), -1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**40), state=st.integers(0, 2**31), m=st.integers(0, 600),
       shape=st.integers(0, 1), boost=st.booleans())
def test_respond_equals_sample_and_the_fatigue_update(seed, state, m, shape, boost) -> None:
    pop = Population.generate(400, seed=seed % 1000, start=int(seed % 5000))
    g = np.random.default_rng(state)
    _extreme_state(pop, g)
    if boost:  # more opens, clicks and purchases to compare
        pop.engagement[:] = np.clip(pop.engagement * 1.8, 0, 1)
        pop.intent[:] = np.clip(pop.intent * 3, 0, 1)
    emails = _emails(pop, g, m, shape)
    rng = KeyedRandom(seed)
    dense, _, u = sample(pop, emails, rng)
    events, noise = respond(pop, emails, rng)
    _same(dense, events)
    assert noise.tobytes() == u[:, 19].tobytes()
    a, b = pop.copy(), pop.copy()
    npe_update(a, emails, u)
    apply_fatigue(b, emails, noise)
    assert a.npe.tobytes() == b.npe.tobytes()


@settings(max_examples=60, deadline=None)
@given(state=st.integers(0, 2**31), m=st.integers(0, 500), shape=st.integers(0, 1))
def test_apply_fatigue_equals_the_numpy_reference(state, m, shape) -> None:
    pop = Population.generate(200, seed=state % 89, start=3)
    g = np.random.default_rng(state)
    _extreme_state(pop, g)
    emails = _emails(pop, g, m, shape)  # shape 1: several emails per subscriber
    noise = g.choice(np.array([1e-10, 0.5, 1 - 2**-33, *g.random(5)]), len(emails))
    a, b = pop.copy(), pop.copy()
    npe_noise_update(a, emails, noise)
    apply_fatigue(b, emails, noise)
    assert a.npe.tobytes() == b.npe.tobytes()


@settings(max_examples=60, deadline=None)
@given(state=st.integers(0, 2**31), m=st.integers(0, 500), shape=st.integers(0, 1))
def test_open_terms_kernel_equals_the_numpy_reference(state, m, shape) -> None:
    pop = Population.generate(300, seed=state % 97, start=7)
    g = np.random.default_rng(state)
    _extreme_state(pop, g)
    emails = _emails(pop, g, m, shape)
    row = pop.index_of(emails.subscriber)
    _same(open_terms(pop, row, emails), _open_terms(pop, row, emails))


def test_open_terms_falls_back_outside_the_hour_table() -> None:
    pop = Population.generate(50, seed=3)
    pop.preferred_hour[:5] = [40, -3, 100, 24, 23]  # out of range: distances beyond 0..12
    emails = EmailBatch.make(pop.ids, T0, send_hour=-1)
    row = pop.index_of(emails.subscriber)
    _same(open_terms(pop, row, emails), _open_terms(pop, row, emails))


def test_respond_of_no_emails_and_a_bad_alert() -> None:
    pop = Population.generate(20, seed=2)
    events, noise = respond(pop, EmailBatch.make(np.zeros(0, np.int64), T0), KeyedRandom(1))
    assert E.size(events) == 0 and noise.shape == (0,)
    with pytest.raises(Exception, match="alert_product"):
        respond(pop, EmailBatch.make(pop.ids[:2], T0, alert_product=[5, 10**7]), KeyedRandom(1))
