"""The Mesa 3 model of the shop (experiments/bench/mesa_shop.py) behaves like sim.World.

Two kinds of checks:

* exact: fed the world's uniforms, the agent's session, email response, session plan
  and daily update give what the world's specifications give (``realize_sessions_reference``,
  ``sample_reference``, ``schedule_day``, ``daily_update``), on states and emails chosen
  to exercise every branch;
* statistical: both models run on the same subscribers with the same daily campaign
  (own random numbers each) and agree on the rate of every event type and on revenue
  per subscriber-day within 3 standard errors.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("mesa")

from experiments.bench.mesa_shop import (
    METRICS,
    Email,
    ShopModel,
    Tally,
    compare,
    mesa_tally,
    run_mesa,
    run_world,
)
from sim import DAY, HOUR, Catalog, EmailBatch, Population
from sim._events import T
from sim.behavior import (
    SessionSchedule,
    daily_update,
    realize_sessions_reference,
    schedule_day,
)
from sim.presets import (
    CALLS_TO_ACTION,
    CONTENT_STRATEGIES,
    EMAIL_KINDS,
    SUBJECT_STYLES,
    get_preset,
)
from sim.response import _email_uniforms, npe_update, probabilities, sample_reference
from sim.rng import PURPOSES, KeyedRandom

SEED = 3


def _model(pop: Population, catalog: Catalog) -> ShopModel:
    return ShopModel(pop.copy(), seed=SEED, catalog=catalog, campaign_hour=None)


def _email(emails: EmailBatch, i: int) -> Email:
    return Email(*(getattr(emails, f)[i].item() for f in Email._fields))


def test_sessions_equal_the_reference() -> None:
    preset = get_preset("retail", stockout_rate_per_day=0.3, return_probability=0.5,
                        cart_clear_probability=0.6, price_drop_rate_per_day=0.2)
    n = 600
    pop = Population.generate(n, seed=SEED, preset=preset)
    g = np.random.default_rng(0)
    pop.intent[:] = g.uniform(0.3, 1.0, n).astype(np.float32)
    some = g.random(n) < 0.3  # carts already open
    pop.cart_value[some] = np.round(g.uniform(5, 200, some.sum()), 2).astype(np.float32)
    pop.cart_items[some] = g.integers(1, 5, some.sum()).astype(np.int8)
    pop.cart_seq[some] = g.integers(1, 9, some.sum()).astype(np.int32)
    catalog = Catalog(SEED, preset)
    start = pop.time + g.integers(1, 3 * DAY, n)
    s = SessionSchedule(start, pop.ids, np.zeros(n, np.int64), start // DAY)
    rng = KeyedRandom(SEED)
    ref_pop = pop.copy()
    want = realize_sessions_reference(ref_pop, rng, s, catalog)
    u = rng.uniforms(s.subscriber, s.day, PURPOSES["session"], k=20, index=s.k)
    ur = rng.uniforms(s.subscriber, s.day, PURPOSES["return"], k=4, index=s.k)
    model = _model(pop, catalog)
    got = []
    for i, agent in enumerate(model.subscribers):
        got += agent.session(int(start[i]), u[i].tolist(), ur[i].tolist())
    types = {e["type"] for e in want}
    assert len(types) == 6 and len(want) > 3 * n  # every kind of session event occurs
    assert got == want
    for name in ("cart_items", "cart_time", "cart_seq", "cart_product", "return_time",
                 "last_engaged"):
        assert [getattr(a, name) for a in model.subscribers] == getattr(ref_pop, name).tolist()
    values = np.array([a.cart_value for a in model.subscribers], np.float32)
    np.testing.assert_array_equal(values, ref_pop.cart_value)


def test_email_response_equals_the_reference() -> None:
    preset = get_preset("retail", open_base_campaign=0.6, open_base_triggered=0.7,
                        click_base_campaign=0.6, click_base_triggered=0.5,
                        buy_base_campaign=0.3, buy_base_triggered=0.3,
                        unsubscribe_base_campaign=0.2, unsubscribe_base_triggered=0.2)
    n = 1500
    pop = Population.generate(n, seed=SEED, preset=preset)
    g = np.random.default_rng(1)
    t = pop.time + 5 * DAY + g.integers(0, DAY, n)
    pop.engagement[:] = g.random(n).astype(np.float32)
    pop.intent[:] = g.random(n).astype(np.float32)
    pop.npe[:] = g.uniform(-2, 1, n).astype(np.float32)
    pop.subscribed[:] = g.random(n) < 0.95
    pop.last_engaged[:] = t - g.integers(0, 120 * DAY, n)
    cart = g.random(n) < 0.5
    pop.cart_value[cart] = np.round(g.uniform(5, 200, cart.sum()), 2).astype(np.float32)
    pop.cart_product[cart] = g.integers(0, 12_000, cart.sum()).astype(np.int32)
    pop.cart_seq[cart] = g.integers(1, 9, cart.sum()).astype(np.int32)
    pop.cart_time[cart] = t[cart] - g.integers(0, 3 * DAY, cart.sum())
    pop.return_time[cart] = np.where(g.random(cart.sum()) < 0.5,
                                     t[cart] + g.integers(-DAY, DAY, cart.sum()), 0)
    alert = g.random(n) < 0.3
    emails = EmailBatch(
        subscriber=pop.ids, time=t, campaign=g.integers(0, 70_000, n),
        kind=g.integers(0, len(EMAIL_KINDS), n),
        subject_style=g.integers(0, len(SUBJECT_STYLES), n),
        strategy=g.integers(-1, len(CONTENT_STRATEGIES), n),
        personalization=g.integers(0, 2, n), urgency=g.random(n) < 0.3,
        incentive=np.where(g.random(n) < 0.4, g.uniform(0.05, 0.4, n), 0.0),
        send_hour=np.where(g.random(n) < 0.5, g.integers(0, 24, n), -1),
        series_index=g.integers(0, 4, n),
        alert_product=np.where(alert, g.integers(0, 12_000, n), -1),
        drop_fraction=np.where(alert & (g.random(n) < 0.7), g.uniform(0.05, 0.4, n), 0.0),
        cta=g.integers(-1, len(CALLS_TO_ACTION), n),
    )
    rng = KeyedRandom(SEED)
    want = sample_reference(pop, emails, rng)
    pr = probabilities(pop, emails)
    u = _email_uniforms(rng, emails, pr)
    model = _model(pop, Catalog(SEED, preset))
    got = []
    chances = []
    for i, agent in enumerate(model.subscribers):
        e = _email(emails, i)
        got += agent.respond(e, u[i].tolist())
        chances.append(agent.chances(e))
    counts = {ty: sum(e["type"] == ty for e in want) for ty in {e["type"] for e in want}}
    assert len(counts) == 7 and min(counts.values()) > 20  # every kind of response occurs
    assert got == want
    for name in ("p_machine_open", "p_human_open", "p_click_given_open",
                 "p_purchase_given_click", "order_value", "p_unsubscribe", "hour_distance",
                 "cart_open"):
        np.testing.assert_allclose([getattr(c, name) for c in chances], pr[name],
                                   rtol=1e-12, atol=1e-15, err_msg=name)
    before = pop.npe.copy()
    npe_update(pop, emails, u)
    delta = [a.npe_change(_email(emails, i), u[i, 19]) for i, a in enumerate(model.subscribers)]
    np.testing.assert_allclose(pop.npe - before, delta, atol=1e-6)


def test_session_plan_and_daily_update_equal_the_world() -> None:
    n = 3000
    pop = Population.generate(n, seed=SEED)
    rng = KeyedRandom(SEED)
    day = pop.time // DAY + 1
    model = _model(pop, Catalog(SEED, pop.preset))
    # the day's update (float32 in the world)
    world_pop = pop.copy()
    daily_update(world_pop, rng, day)
    u = rng.dense_uniforms(0, n, day, PURPOSES["daily"], k=1)[:, 0]
    for a, x in zip(model.subscribers, u.tolist(), strict=True):
        a.daily_update(day, x)
    for name in ("engagement", "intent", "npe"):
        np.testing.assert_allclose([getattr(a, name) for a in model.subscribers],
                                   getattr(world_pop, name), atol=2e-6, err_msg=name)
    assert [a.lifecycle for a in model.subscribers] == world_pop.lifecycle.tolist()
    # the day's sessions, from the updated state
    after = day * DAY + 6 * HOUR
    sched = schedule_day(world_pop, rng, day, after)
    uc = rng.dense_uniforms(0, n, day, PURPOSES["session_count"], k=1)[:, 0]
    got = []
    for a, x in zip(model.subscribers, uc.tolist(), strict=True):
        a.engagement = float(world_pop.engagement[a.subscriber])  # the same float32 state
        a.intent = float(world_pop.intent[a.subscriber])
        count = a.session_count(x)
        if count:
            ut = rng.uniforms(np.full(count, a.subscriber), day, PURPOSES["session_time"],
                              k=3, index=np.arange(count))
            for k in range(count):
                start = a.session_start(day, *ut[k].tolist())
                if start > after:
                    got.append((start, a.subscriber, k))
    want = list(zip(sched.start.tolist(), sched.subscriber.tolist(), sched.k.tolist(),
                    strict=True))
    assert len(want) > 100
    assert sorted(got) == want


def test_tally_and_compare() -> None:
    a, b = Tally(10, 3), Tally(10, 3)
    a.add(np.array([10, 11, 12, 99]), np.array([T.page_view, T.purchase_completed,
                                                T.page_view, T.page_view]),
          np.array([np.nan, 25.0, np.nan, np.nan]))
    b.add_records([{"subscriber": 10, "type": T.page_view},
                   {"subscriber": 12, "type": T.purchase_completed, "revenue": 5.0},
                   {"subscriber": 12, "type": 10_000}])  # not a compared type
    b.add_emails(EmailBatch.make([10, 11, 40], 0))
    i = METRICS.index
    assert a.totals[i("page_view")].tolist() == [1, 0, 1]
    assert a.totals[i("revenue")].tolist() == [0, 25, 0]
    assert b.totals[i("emails")].tolist() == [1, 1, 0]
    table = compare(a, b, days=2.0)
    assert table.loc["page_view", "triggerlab"] == pytest.approx(2 / 3 / 2)
    assert table.loc["revenue", "mesa"] == pytest.approx(5 / 3 / 2)


def test_rates_agree_with_the_world_within_sampling_error() -> None:
    n, days = 5000, 7
    world = Tally(0, n)
    run_world(n, seed=SEED, hours=24 * days, tick=HOUR, tally=world)
    model = run_mesa(n, seed=SEED, hours=24 * days).model
    table = compare(world, mesa_tally(model, n), days)
    print(table.to_string())
    assert (table["triggerlab"] > 0).all() and (table["mesa"] > 0).all()
    assert table["z"].abs().max() < 3.0, table
    # the rates themselves: sessions, opens, emails near the preset's calibration
    assert 0.05 < table.loc["page_view", "mesa"] < 0.5
    assert 0.1 < table.loc["email_open", "mesa"] / table.loc["emails", "mesa"] < 0.5
    assert math.isfinite(table.loc["revenue", "ratio"])


def test_peers_shop_benchmark_small(capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.bench import peers

    assert peers.main(["--model", "shop", "--subscribers", "3000", "--hours", "48",
                       "--mesa-subscribers", "300", "--mesa-hours", "24", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["ratio_triggerlab_over_mesa"] == pytest.approx(
        figures["triggerlab_subscriber_hours_per_s"] / figures["mesa_subscriber_hours_per_s"])
    assert figures["triggerlab_emails"] > 0 and figures["mesa_events_per_subscriber_hour"] > 0
    for m in METRICS:
        assert figures[f"{m}_per_subscriber_day_triggerlab"] >= 0
        assert figures[f"{m}_per_subscriber_day_mesa"] >= 0
    assert any(line.startswith("email_open") for line in out)  # the side-by-side table
    with pytest.raises(SystemExit):
        peers.main(["--model", "shop", "--subscribers", "100", "--mesa-subscribers", "200"])


def test_peers_toy_is_still_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.bench import peers

    assert peers.main(["--subscribers", "2000", "--hours", "5", "--mesa-subscribers", "200",
                       "--mesa-hours", "3", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["expected_events_per_subscriber_hour"] == pytest.approx(0.03)
    assert "toy_model" in figures and "mesa_run" in figures
