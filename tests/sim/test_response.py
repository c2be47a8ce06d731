"""Email response: fast sampler == reference, sampled frequencies == ground truth, effects."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policies.errors import SpecError
from policies.event_schema import EVENT_TYPES
from sim import _events as E
from sim.population import Population
from sim.presets import CONTENT_STRATEGIES, EMAIL_KINDS, SEGMENTS, SUBJECT_STYLES
from sim.response import EmailBatch, npe_update, probabilities, sample, sample_reference
from sim.rng import KeyedRandom

CODE = {n: EVENT_TYPES.code(n) for n in EVENT_TYPES.names}
T0 = 1_704_067_200 + 5 * 86400 + 15 * 3600


def _random_state(pop: Population, g: np.random.Generator, t: int) -> None:
    n = len(pop)
    carts = g.random(n) < 0.5
    pop.cart_value[carts] = np.round(g.uniform(10, 300, carts.sum()), 2).astype(np.float32)
    pop.cart_time[carts] = t - g.integers(600, 3 * 86400, carts.sum())
    pop.cart_seq[:] = g.integers(0, 9, n)
    pop.return_time[carts] = np.where(g.random(carts.sum()) < 0.3, t + 3600, 0)
    pop.npe[:] = g.normal(0, 1, n).astype(np.float32)
    pop.subscribed[:] = g.random(n) < 0.9
    pop.intent[:] = g.random(n).astype(np.float32)


def _random_emails(pop: Population, g: np.random.Generator, t: int, m: int) -> EmailBatch:
    return EmailBatch.make(
        g.integers(pop.start, pop.stop, m), t,
        campaign=g.integers(0, 70_000, m),
        kind=g.integers(0, len(EMAIL_KINDS), m),
        subject_style=g.integers(0, len(SUBJECT_STYLES), m),
        strategy=g.integers(-1, len(CONTENT_STRATEGIES), m),
        personalization=g.integers(0, 2, m),
        urgency=g.random(m) < 0.3,
        incentive=np.where(g.random(m) < 0.3, 0.15, 0.0),
        send_hour=g.integers(-1, 24, m),
    )


def assert_sampler_matches_reference(pop: Population, emails: EmailBatch, seed: int) -> None:
    """:func:`sample` and :func:`sample_reference` draw the same events (same order after
    sorting by subscriber, time, type and email; values to 1e-12 relative)."""
    rng = KeyedRandom(seed)
    fast, _, _ = sample(pop, emails, rng)
    ref = sample_reference(pop, emails, rng)
    assert E.size(fast) == len(ref)
    key = lambda r: (r["subscriber"], r["time"], r["type"], r["campaign_id"])  # noqa: E731
    ref = sorted(ref, key=key)
    order = np.lexsort((fast["campaign_id"], fast["type"], fast["time"], fast["subscriber"]))
    for i, rec in zip(order, ref, strict=True):
        for col, value in rec.items():
            assert fast[col][i] == pytest.approx(value, rel=1e-12), (col, fast[col][i], value)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**40), state=st.integers(0, 2**31), m=st.integers(1, 400))
@example(seed=1, state=15595247, m=346)  # a revenue at a half-cent boundary (math.exp vs np.exp)
def test_fast_sampler_equals_reference(seed: int, state: int, m: int) -> None:
    pop = Population.generate(300, seed=seed, start=1000)
    g = np.random.default_rng(state)
    _random_state(pop, g, T0)
    pop.engagement[:] = np.clip(pop.engagement * 1.8, 0, 1)  # more clicks to compare
    emails = _random_emails(pop, g, T0, m)
    assert_sampler_matches_reference(pop, emails, seed)


@pytest.fixture(scope="module")
def big() -> tuple[Population, EmailBatch, dict, E.Events]:
    pop = Population.generate(60_000, seed=8)
    g = np.random.default_rng(8)
    _random_state(pop, g, T0)
    emails = _random_emails(pop, g, T0, 150_000)
    ev, pr, _ = sample(pop, emails, KeyedRandom(8))
    return pop, emails, pr, ev


def _hits(emails: EmailBatch, ev: E.Events, type_name: str, **where) -> np.ndarray:
    sel = ev["type"] == CODE[type_name]
    for col, value in where.items():
        sel &= ev[col] == value
    key = ev["subscriber"][sel] * 100_003 + ev["campaign_id"][sel]
    return np.isin(emails.subscriber * 100_003 + emails.campaign, key)


@pytest.mark.parametrize(
    ("type_name", "prob", "where"),
    [
        ("email_open", "p_open", {}),
        ("email_open", "p_machine_open", {"machine": 1}),
        ("email_click", "p_click", {}),
        ("purchase_completed", "p_purchase", {}),
        ("unsubscribe", "p_unsubscribe", {}),
    ],
)
def test_sampled_frequencies_match_the_ground_truth(big, type_name, prob, where) -> None:
    _pop, emails, pr, ev = big
    _, idx = np.unique(emails.subscriber * 100_003 + emails.campaign, return_index=True)
    hit = _hits(emails, ev, type_name, **where)[idx]
    p = pr[prob][idx]
    se = np.sqrt((p * (1 - p)).sum())
    assert abs(hit.sum() - p.sum()) < 4.5 * se + 1, (hit.sum(), p.sum(), se)
    assert p.sum() > 20


def test_revenue_matches_expected_revenue(big) -> None:
    _pop, _emails, pr, ev = big
    buys = ev["type"] == CODE["purchase_completed"]
    total = ev["revenue"][buys].sum()
    expected = pr["expected_revenue"].sum()
    assert abs(total - expected) < 0.08 * expected


def test_responses_come_after_the_send_and_machines_do_not_click(big) -> None:
    pop, emails, pr, ev = big
    assert (ev["time"] > T0).all()
    opens = ev["type"] == CODE["email_open"]
    machine = opens & (ev["machine"] == 1)
    assert machine.sum() > 1000
    assert pop.privacy_proxy[ev["subscriber"][machine] - pop.start].all()
    assert (ev["time"][machine] - T0 <= 600).all()
    human = opens & (ev["machine"] == 0)
    assert np.median(ev["time"][human] - T0) > 1800
    # a proxy user's mail shows a human open only when the proxy did not fetch it first
    assert pop.privacy_proxy[ev["subscriber"][human] - pop.start].mean() < 0.05
    # unsubscribed subscribers get nothing delivered
    dead = ~pop.subscribed[emails.subscriber - pop.start]
    assert (pr["p_open"][dead] == 0).all() and (pr["p_unsubscribe"][dead] == 0).all()
    assert dead.sum() > 1000
    assert pop.subscribed[ev["subscriber"] - pop.start].all()
    # clicks carry a link type; each click is followed by a product view of the same email
    clicks = ev["type"] == CODE["email_click"]
    assert (ev["link_type"][clicks] >= 0).all()
    assert clicks.sum() == ((ev["type"] == CODE["product_view"]) & (ev["campaign_id"] >= 0)).sum()


def _one_each(pop: Population, **kw) -> EmailBatch:
    return EmailBatch.make(pop.ids, T0, **kw)


@pytest.fixture(scope="module")
def pop() -> Population:
    p = Population.generate(30_000, seed=2)
    p.intent[:] = np.clip(p.intent, 0, 0.6)
    return p


def test_subject_style_by_segment_interaction(pop) -> None:
    """Each segment has its own best style; picking per segment beats any global style."""
    seg = probabilities(pop, _one_each(pop))["segment"]
    p_open = np.stack([probabilities(pop, _one_each(pop, subject_style=s))["p_human_open"]
                       for s in SUBJECT_STYLES])
    best_by_segment = {SEGMENTS[k]: SUBJECT_STYLES[int(p_open[:, seg == k].mean(1).argmax())]
                       for k in range(len(SEGMENTS)) if (seg == k).any()}
    assert len(set(best_by_segment.values())) >= 4, best_by_segment
    assert best_by_segment["low"] == "dont_miss"
    assert best_by_segment["seeker"] == "learn"
    assert best_by_segment["engaged"] == "first_name"
    global_best = p_open.mean(1).max()
    contextual = np.mean([p_open[SUBJECT_STYLES.index(best_by_segment[SEGMENTS[k]]), i]
                          for i, k in enumerate(seg)])
    assert contextual > global_best * 1.03


def test_personalization_and_strategy_match_lift_clicks_where_they_fit(pop) -> None:
    base = probabilities(pop, _one_each(pop))
    pers = probabilities(pop, _one_each(pop, personalization=1))
    eng = pop.engagement
    lift = pers["p_click_given_open"] / base["p_click_given_open"] - 1
    assert lift[eng > 0.7].mean() > 0.2
    assert lift[eng < 0.2].mean() < 0.5 * lift[eng > 0.7].mean()
    seg = base["segment"]
    edu = probabilities(pop, _one_each(pop, strategy="educational_nurturing"))
    seekers = seg == SEGMENTS.index("seeker")
    assert (edu["p_click"][seekers] > base["p_click"][seekers]).all()
    assert (edu["p_click"][~seekers] == pytest.approx(base["p_click"][~seekers]))


def test_send_hour_matching_preferred_hour_opens_more(pop) -> None:
    at_pref = probabilities(pop, _one_each(pop, send_hour=pop.preferred_hour))
    opposite = probabilities(pop, _one_each(pop, send_hour=(pop.preferred_hour + 12) % 24))
    assert (at_pref["p_human_open"] > opposite["p_human_open"]).all()
    assert at_pref["p_human_open"].mean() > 1.1 * opposite["p_human_open"].mean()


def test_cart_reminder_soon_beats_a_day_later_and_incrementality(pop) -> None:
    p = pop.copy()
    p.cart_value[:] = 60.0
    p.return_time[:] = 0
    p.cart_time[:] = T0 - 3600
    soon = probabilities(p, _one_each(p, kind="cart_abandonment"))
    p.cart_time[:] = T0 - 24 * 3600
    later = probabilities(p, _one_each(p, kind="cart_abandonment"))
    assert (soon["p_purchase"] > later["p_purchase"]).all()
    assert soon["p_purchase"].mean() > 1.5 * later["p_purchase"].mean()
    # subscribers who would come back anyway: high raw conversion, no incremental effect
    p.return_time[: len(p) // 2] = T0 + 6 * 3600
    mixed = probabilities(p, _one_each(p, kind="cart_abandonment"))
    half = np.arange(len(p)) < len(p) // 2
    assert (mixed["p_purchase"][half] > later["p_purchase"][half]).all()
    assert (mixed["p_incremental_purchase"][half] == 0).all()
    np.testing.assert_allclose(mixed["p_incremental_purchase"][~half],
                               mixed["p_purchase"][~half])
    assert mixed["p_incremental_purchase"].sum() < 0.7 * mixed["p_purchase"].sum()


def test_incentive_raises_conversion_and_lowers_order_value(pop) -> None:
    plain = probabilities(pop, _one_each(pop))
    disc = probabilities(pop, _one_each(pop, incentive=0.2))
    assert (disc["p_purchase"] >= plain["p_purchase"]).all()
    assert disc["p_purchase"].mean() > 1.1 * plain["p_purchase"].mean()
    np.testing.assert_allclose(disc["order_value"], 0.8 * plain["order_value"])


def test_fatigue_urgency_buys_clicks_now_and_costs_later(pop) -> None:
    """RecSim NPE: clickbait lifts clicks now, then lowers opens and raises unsubscribes."""
    plain_now = probabilities(pop, _one_each(pop))
    bait_now = probabilities(pop, _one_each(pop, subject_style="dont_miss", urgency=True))
    assert bait_now["p_click_given_open"].mean() > 1.2 * plain_now["p_click_given_open"].mean()
    a, b = pop.copy(), pop.copy()
    rng = KeyedRandom(1)
    for week in range(8):
        for pop_, kw in ((a, {}), (b, {"subject_style": "dont_miss", "urgency": True})):
            emails = _one_each(pop_, campaign=week, **kw)
            u = rng.uniforms(emails.subscriber, emails.time, 6, k=20, index=week)
            npe_update(pop_, emails, u)
    assert b.npe.mean() < a.npe.mean() - 1.0
    after_a = probabilities(a, _one_each(a))
    after_b = probabilities(b, _one_each(b))
    assert after_b["p_human_open"].mean() < 0.9 * after_a["p_human_open"].mean()
    assert after_b["p_unsubscribe"].mean() > 1.5 * after_a["p_unsubscribe"].mean()
    # frequency alone costs too: more emails, lower NPE
    assert a.npe.mean() < pop.npe.mean()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject_style": "shouting"}, r"subject_style: expected one of plain, first_name"),
        ({"kind": "newsletter"}, r"kind: expected one of campaign, cart_abandonment"),
        ({"kind": 9}, r"kind: expected codes in \[0, 7\), got 9"),
        ({"strategy": "upsell"}, r"strategy: expected one of onboarding_education"),
        ({"incentive": 1.5}, r"EmailBatch.incentive: expected values in \[0, 1\)"),
        ({"personalization": 2}, r"EmailBatch.personalization: expected 0 or 1"),
        ({"send_hour": 24}, r"EmailBatch.send_hour: expected hours in 0..23 or -1"),
        ({"campaign": -3}, r"EmailBatch.campaign: expected codes >= 0"),
        ({"time": np.array([1, 2, 3])}, r"EmailBatch.time: expected length 2, got 3"),
    ],
)
def test_email_batch_bad_input(kwargs, message) -> None:
    args = {"subscriber": [1, 2], "time": T0, **kwargs}
    with pytest.raises(SpecError, match=message):
        EmailBatch.make(args.pop("subscriber"), args.pop("time"), **args)


def test_email_batch_names_round_trip() -> None:
    b = EmailBatch.make([4, 5], T0, kind="browse_abandonment", subject_style="learn",
                        strategy="educational_nurturing", urgency=True)
    df = b.to_pandas()
    assert list(df.kind) == ["browse_abandonment"] * 2
    assert list(df.subject_style) == ["learn"] * 2
    assert list(df.strategy) == ["educational_nurturing"] * 2
    assert len(EmailBatch.concat([b, b.take([0])])) == 3


@settings(max_examples=200, deadline=None)
@given(subs=st.lists(st.integers(0, 2**48 - 1), min_size=0, max_size=30),
       times=st.lists(st.sampled_from([0, 1, 2**40]), min_size=30, max_size=30),
       campaigns=st.lists(st.sampled_from([0, 1, 0xFFFF, 0x10000, 2**40 + 1]), min_size=30,
                          max_size=30),
       sort=st.booleans())
def test_email_draw_index_skips_the_key_sort_only_when_keys_are_distinct(
        subs, times, campaigns, sort) -> None:
    """The fast path (strictly increasing subscribers: occurrence 0 everywhere) draws the
    uniforms the key-sorting reference draws, duplicates and extremes included."""
    from sim.response import _email_uniforms, _occurrence_reference

    sub = np.array(sorted(set(subs)) if sort else subs, np.int64)
    n = len(sub)
    emails = EmailBatch.make(sub, np.array(times[:n], np.int64) + 10**9,
                             campaign=np.array(campaigns[:n], np.int64))
    occ = _occurrence_reference(emails)
    if sort:
        assert not occ.any()
    rng = KeyedRandom(9)
    pr = {"p_human_open": np.full(n, 0.9), "p_click_given_open": np.full(n, 0.9),
          "p_unsubscribe": np.full(n, 0.5)}
    u = _email_uniforms(rng, emails, pr)
    index = ((emails.campaign & 0xFFFF) << 8) | (occ & 0xFF)
    ref = rng._uniforms_reference(emails.subscriber, emails.time, 6, k=8, index=index)
    np.testing.assert_array_equal(u[:, [0, 1, 2, 3, 4, 5, 15, 19]], ref)
