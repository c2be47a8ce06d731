"""sim.truth.outlook: its probabilities match replicated futures of the same state; the
email columns are the response model's; it is a pure function of the state."""

from __future__ import annotations

import numpy as np
import pytest

from policies.errors import SpecError
from policies.event_schema import EVENT_TYPES
from sim import DAY, EmailBatch, Population, World
from sim.truth import OUTLOOK_COLUMNS, outlook

PURCHASE = EVENT_TYPES.code("purchase_completed")
PAGE_VIEW = EVENT_TYPES.code("page_view")


@pytest.fixture(scope="module")
def world() -> World:
    w = World(Population.generate(2500, seed=11), seed=11)
    t = w.now
    for d in range(21):
        if d % 7 == 0:
            w.send(EmailBatch.make(w.population.ids, t, kind="campaign"))
        w.step(t, t + DAY)
        t += DAY
    return w


def replicate(w: World, days: int, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Share of replicated futures (organic only, fresh seeds) with a purchase in the
    first 7 days and with no page view in ``days`` days, per subscriber."""
    n = len(w.population)
    bought, idle = np.zeros(n), np.zeros(n)
    for r in range(reps):
        ww = World(w.population.copy(), seed=500 + r, now=w.now)
        t = w.now
        b, v = np.zeros(n, bool), np.zeros(n, bool)
        for d in range(days):
            ev = ww.step(t, t + DAY)
            t += DAY
            if d < 7:
                b[ev.subscriber[ev.type == PURCHASE]] = True
            v[ev.subscriber[ev.type == PAGE_VIEW]] = True
        bought += b
        idle += ~v
    return bought / reps, idle / reps


def test_outlook_matches_replicated_futures(world: World) -> None:
    reps = 16
    truth = outlook(world.population, world.now, horizon_days=7, inactive_days=14)
    bought, idle = replicate(world, 14, reps)
    # a return already scheduled lives in the world's buffer, which a replica lacks
    free = world.population.return_time <= world.now
    assert free.sum() > 2000
    for name, seen in (("p_purchase", bought), ("p_inactive", idle)):
        p = truth[name].to_numpy()[free]
        obs = seen[free]
        se = np.sqrt(np.sum(p * (1 - p)) / reps) / len(p)       # of the mean
        assert abs(obs.mean() - p.mean()) < 4 * se + 0.02 * p.mean(), name
        # calibration by quintiles of the truth: each bin's observed share agrees
        edges = np.quantile(p, [0.2, 0.4, 0.6, 0.8])
        bins = np.digitize(p, edges)
        for b in range(5):
            m = bins == b
            se_b = np.sqrt(np.sum(p[m] * (1 - p[m])) / reps) / m.sum()
            assert abs(obs[m].mean() - p[m].mean()) < 4 * se_b + 0.05 * p[m].mean(), (name, b)
    assert np.corrcoef(truth["p_inactive"].to_numpy()[free], idle[free])[0, 1] > 0.8


def test_email_columns_are_the_response_model(world: World) -> None:
    pop = world.population
    ids = pop.ids[::-1].copy()                        # any order
    email = EmailBatch.make(ids, world.now, kind="campaign", subject_style="question")
    before = pop.copy()
    t = outlook(pop, world.now, email=email, catalog=world.catalog)
    assert pop.equals(before)                         # no state change
    assert list(t.columns) == list(OUTLOOK_COLUMNS)
    exp = world.expected(email).set_index("subscriber").loc[pop.ids]
    np.testing.assert_allclose(t["p_open"], exp["p_open"])
    np.testing.assert_allclose(t["p_unsubscribe"], exp["p_unsubscribe"])
    organic = outlook(pop, world.now)
    np.testing.assert_allclose(
        1 - t["p_purchase"], (1 - organic["p_purchase"]) * (1 - exp["p_purchase"]))
    np.testing.assert_allclose(
        1 - t["p_churn"], (1 - organic["p_inactive"]) * (1 - exp["p_unsubscribe"]))
    np.testing.assert_array_equal(t["segment"], exp["segment"])
    pd_again = outlook(pop, world.now, email=email, catalog=world.catalog)
    assert pd_again.equals(t)                         # deterministic


def test_unsubscribed_never_open(world: World) -> None:
    pop = world.population.copy()
    pop.subscribed[:10] = False
    t = outlook(pop, world.now, email=EmailBatch.make(pop.ids, world.now))
    assert (t["p_open"].to_numpy()[:10] == 0).all() and (t["p_unsubscribe"][:10] == 0).all()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"now": 1}, r"now: expected a day boundary .* got 1"),
    ({"now": 1.0 * 86400 * 19000}, r"now: expected a day boundary"),
    ({"horizon_days": 0}, r"horizon_days: expected an integer >= 1, got 0"),
    ({"inactive_days": 2.5}, r"inactive_days: expected an integer >= 1, got 2.5"),
    ({"email": "x"}, r"email: expected an EmailBatch, got str"),
    ({"email": "short"}, r"email: expected one email per subscriber \(2500\), got 3"),
    ({"email": "late"}, r"email.time: expected every email delivered at now="),
])
def test_bad_arguments(world: World, kwargs: dict, match: str) -> None:
    pop = world.population
    args = {"now": world.now, **kwargs}
    if args.get("email") == "short":
        args["email"] = EmailBatch.make([0, 1, 2], world.now)
    elif args.get("email") == "late":
        args["email"] = EmailBatch.make(pop.ids, world.now + 60)
    with pytest.raises(SpecError, match=match):
        outlook(pop, **args)
