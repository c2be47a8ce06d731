"""Journeys in the simulator's runtime: journey sends become emails with their own
content and series index, attribute entries fire from the daily table refresh, and runs
stay identical on any number of shards and across checkpoints."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_config
from hypothesis import given, settings
from hypothesis import strategies as st
from test_actors_inline import assert_same

from actors import ShardCore, run_simulation
from actors.journey_book import JOURNEY_COLUMNS, JourneyBook, journey_frame
from actors.outbox import email_batch
from actors.plan import RunPlan
from actors.series import SeriesCounter
from policies.triggers import ALL_KINDS, load_rules
from policies.triggers.journeys import KIND_SEND, compile_journey
from policies.triggers.rules_dump import dump_rules

EXAMPLE_JOURNEYS = Path(__file__).parents[2] / "policies" / "triggers" / "example_journeys.yaml"


def journey_rules(drop: tuple[str, ...] = ("price_drop_alert",), **email_content):
    """The shipped journey set without ``drop`` (the world emits no catalog events to
    these tests); ``email_content`` replaces emails' content by name."""
    data = dump_rules(load_rules(EXAMPLE_JOURNEYS))
    data["rules"] = [r for r in data["rules"] if r["id"] not in drop]
    for rule in data["rules"]:
        for name, content in email_content.items():
            if name in rule.get("emails", {}):
                rule["emails"][name] = content
    return load_rules(data)


def journey_config(**overrides):
    kw = dict(subscribers=1500, days=9.0, rules=journey_rules(), policy=None, campaign=None,
              reward="order", reward_window_seconds=2 * 86400, record_events=False)
    kw.update(overrides)
    return small_config(**kw)


@pytest.fixture(scope="module")
def journey_result():
    return run_simulation(journey_config(), executor="inline", shards=1)


# -- the series counter --------


def series_reference(fires):
    """Series index of each fire by the definition: earlier first-attempt fires of the
    same (rule, subscriber, entered_at); -1 for plain rules and retries."""
    seen: dict[tuple[int, int, int], int] = {}
    out = []
    for rule, sub, ent, attempt, journey in fires:
        if not journey or attempt > 1:
            out.append(-1)
            continue
        key = (rule, sub, ent)
        out.append(seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
    return out


class _Plan:
    def __init__(self, slot):
        self.journey_slot = np.asarray(slot, np.int64)


@st.composite
def fire_streams(draw):
    """Fires of 1-3 rules (some journeys) to 5 subscribers: per (rule, subscriber) a few
    instances one after the other, each with a few fires (some retries), in time order;
    and where to cut them into calls."""
    n_rules = draw(st.integers(1, 3))
    journeys = draw(st.lists(st.booleans(), min_size=n_rules, max_size=n_rules))
    slot = list(np.where(journeys, np.cumsum(journeys) - 1, -1))
    fires = []
    for rule in range(n_rules):
        for sub in range(draw(st.integers(1, 5))):
            t = 0
            for _ in range(draw(st.integers(1, 3))):
                t += draw(st.integers(1, 5))
                entered = t
                for _ in range(draw(st.integers(1, 4))):
                    t += draw(st.integers(0, 3))
                    attempt = draw(st.sampled_from([1, 1, 1, 2]))
                    fires.append((t, rule, sub, entered, attempt))
    fires.sort(key=lambda f: f[0])   # stable: an instance's fires keep their order
    cuts = sorted(draw(st.lists(st.integers(0, len(fires)), max_size=4)))
    return slot, journeys, fires, cuts


@settings(max_examples=150, deadline=None)
@given(fire_streams())
def test_series_counter_matches_its_definition_however_the_fires_are_cut(case):
    slot, journeys, fires, cuts = case
    want = series_reference([(r, s, e, a, journeys[r]) for _, r, s, e, a in fires])
    counter = SeriesCounter(_Plan(slot), 0, 5)
    got: list[int] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(fires)], strict=True):
        part = fires[lo:hi]
        cols = [np.array([f[i] for f in part], np.int64) for i in (1, 2, 3, 4)]
        got.extend(counter.index(*cols).tolist())
    assert got == want


def test_series_counter_memory_is_nine_bytes_per_subscriber_per_journey():
    counter = SeriesCounter(_Plan([0, -1, 1]), 100, 1100)
    assert counter.entered.nbytes + counter.count.nbytes == 9 * 1000 * 2


# -- journey sends as emails --------


def test_journey_email_content_reaches_the_response_model():
    rules = journey_rules(cart_discount={"include_cart_items": True, "incentive": 0.15},
                          cart_nudge={"apply_urgency": True})
    plan = RunPlan.from_config(journey_config(rules=rules))
    ids = [r.id for r in rules.rules]
    cart = ids.index("cart_series")
    names = rules.rules[cart].journey.email_names
    m = len(names) + 2
    go = {"subscriber": np.arange(m, dtype=np.int64), "email_id": np.arange(m, dtype=np.int64),
          "source": np.array([cart + 1] * len(names) + [0, ids.index("winback") + 1], np.int64),
          "email": np.array([*range(len(names)), -1, 0], np.int64)}
    batch = email_batch(plan, 0, np.zeros(m), go, np.arange(m), np.full(m, -1), 1_700_000_000)
    want_incentive = [0.15 if n == "cart_discount" else 0.0 for n in names] + [0.0, 0.0]
    np.testing.assert_array_equal(batch.incentive, want_incentive)
    np.testing.assert_array_equal(batch.urgency, [n == "cart_nudge" for n in names]
                                  + [False, False])


def test_node_email_table_names_each_send_node():
    rules = journey_rules(drop=())
    plan = RunPlan.from_config(journey_config(rules=rules))
    for r, rule in enumerate(rules.rules):
        prog = compile_journey(rule)
        row = plan.node_email[r, :len(prog)]
        np.testing.assert_array_equal(row, np.where(prog.kind == KIND_SEND, prog.arg, -1))
        assert (plan.node_email[r, len(prog):] == -1).all()
    assert plan.journey_slot.tolist() == list(range(len(rules.rules)))


def test_journey_sends_follow_their_journeys(journey_result):
    d = journey_result.decisions
    cart = d[d["source"] == "cart_series"]
    assert {"cart_reminder", "cart_nudge"} <= set(cart["email"])
    # every instance's emails are numbered 0, 1, ... in send order: the reminder is the
    # journey's first send, the nudge its second, the discount its second or third
    # (a send suppressed by the cap or skipped does not count)
    assert (cart.loc[cart["email"] == "cart_reminder", "series"] == 0).all()
    assert set(cart.loc[cart["email"] == "cart_nudge", "series"]) <= {0, 1}
    assert set(cart.loc[cart["email"] == "cart_discount", "series"]) <= {0, 1, 2}
    assert (cart["series"] == 2).any() and (cart["series"] == 1).any()
    for _, rows in cart.sort_values("time").groupby("subscriber"):
        series = rows["series"].to_numpy()
        # instances follow each other: each restarts at 0 and counts up by one
        steps = np.diff(series)
        assert ((steps == 1) | (series[1:] == 0)).all()
    # winback: hello first; its offer/reminder second
    wb = d[d["source"] == "winback"]
    assert (wb.loc[wb["email"] == "winback_hello", "series"] == 0).all()
    assert set(wb.loc[wb["series"] == 1, "email"]) <= {"winback_offer", "winback_reminder"}
    assert {"winback_offer", "winback_reminder"} <= set(wb["email"])
    # emails of campaigns (none here) and of plain rules carry no journey email
    assert not (d["email"] == "").any()


def test_attribute_entries_fire_from_the_daily_refresh(journey_result):
    d = journey_result.decisions
    welcome = d[d["source"] == "welcome_series"]
    assert (welcome["email"] == "welcome").sum() > 10
    assert (welcome.loc[welcome["email"] == "welcome", "series"] == 0).all()
    assert (welcome["series"] > 0).any()
    # the welcome goes out when the daily refresh sees the new stage (midnight UTC), or
    # when quiet hours end in the subscriber's time zone
    first = welcome[welcome["email"] == "welcome"]
    assert (first["time"] % 3600 == 0).all()


@pytest.mark.parametrize("shards", [2, 3])
def test_journey_runs_are_the_same_on_any_number_of_shards(journey_result, shards):
    other = run_simulation(journey_config(), executor="inline", shards=shards)
    assert_same(journey_result, other, events=False)
    pd.testing.assert_frame_equal(journey_result.journeys, other.journeys)


def test_journey_run_continues_identically_after_a_checkpoint():
    cfg = journey_config(subscribers=600, days=6.0)   # no policy: no arms to pass
    a, b = ShardCore(cfg, 0, 600), ShardCore(cfg, 0, 600)
    half = cfg.n_ticks // 2 + 7    # mid-day: journeys are waiting
    for k in range(half):
        a.step(k, None)
        b.step(k, None)
    c = ShardCore.from_state(copy.deepcopy(b.state()))
    for k in range(half, cfg.n_ticks):
        a.step(k, None)
        c.step(k, None)
    fa, fc = a.finish(), c.finish()
    np.testing.assert_array_equal(fa.counts, fc.counts)
    np.testing.assert_array_equal(fa.truth, fc.truth)
    for key in fa.decisions:
        np.testing.assert_array_equal(fa.decisions[key], fc.decisions[key])
    assert (fa.decisions["series"] > 0).any()


def test_plain_rule_runs_log_no_journey_columns():
    res = run_simulation(small_config(subscribers=300, days=0.5), executor="inline", shards=1)
    assert "email" not in res.decisions.columns and "series" not in res.decisions.columns
    assert isinstance(res.decisions, pd.DataFrame)


# -- what the journeys did --------


def test_journey_counts_agree_with_the_rule_metrics(journey_result):
    j = journey_result.journeys
    assert list(j.columns) == list(JOURNEY_COLUMNS)
    m = journey_result.metrics
    fired = j[j["kind"] == "fire"].groupby(["rule", "group"])["count"].sum()
    for (rule, group), n in fired.items():
        fires = m[(m["source"] == rule) & (m["group"] == group) & (m["metric"] == "fires")]
        assert fires["value"].sum() == n, (rule, group)
    # every path a wait-until took is a branch row; the nudge fires exactly when it timed out
    cart = j[(j["rule"] == "cart_series") & (j["group"] == "treatment")].set_index(
        ["step", "kind", "path"])["count"]
    assert cart[(2, "branch", 1)] == cart[(3, "fire", -1)]
    entered = j[j["kind"] == "enter"].set_index("rule")["count"]
    assert set(entered.index) == {"cart_series", "winback", "welcome_series"}
    first = j[(j["step"] == 1) & (j["rule"] == "cart_series") & (j["kind"] == "fire")]
    assert entered["cart_series"] >= first["count"].sum() > 0


def test_journey_book_counts_and_names_rows():
    rules = journey_rules().rules
    book = JourneyBook(rules)
    r = [r.id for r in rules].index("winback")
    book.count(np.array([r, r, r, 0]), np.array([3, 3, 3, -1]),
               np.array([ALL_KINDS.index("split")] * 3 + [0]), np.array([0, 1, 1, -1]),
               np.array([0, 0, 1, 0]))
    frame = journey_frame(rules, book.counts, np.array([5, 7, 0]))
    assert frame.to_dict("records") == [
        {"rule": "cart_series", "step": -1, "step_label": "entry", "kind": "enter", "path": -1,
         "path_name": "", "group": "all", "count": 5},
        {"rule": "winback", "step": -1, "step_label": "entry", "kind": "enter", "path": -1,
         "path_name": "", "group": "all", "count": 7},
        {"rule": "winback", "step": 3, "step_label": "steps[2]", "kind": "split", "path": 0,
         "path_name": "offer", "group": "treatment", "count": 1},
        {"rule": "winback", "step": 3, "step_label": "steps[2]", "kind": "split", "path": 1,
         "path_name": "reminder", "group": "treatment", "count": 1},
        {"rule": "winback", "step": 3, "step_label": "steps[2]", "kind": "split", "path": 1,
         "path_name": "reminder", "group": "holdout", "count": 1},
        {"rule": "welcome_series", "step": -1, "step_label": "entry", "kind": "enter",
         "path": -1, "path_name": "", "group": "all", "count": 0},
    ]


def test_price_drop_alerts_reach_the_world_with_their_product_and_drop(monkeypatch):
    """A catalog journey's sends are alerts about the entry's product: the world gets
    that product (one the recipient viewed or carted) and the catalog's drop at entry
    (``(old - new) / old`` of the price_drop event that entered it)."""
    from sim.catalog import Catalog
    from sim.world import World

    data = dump_rules(load_rules(EXAMPLE_JOURNEYS))
    data["rules"] = [r for r in data["rules"] if r["id"] == "price_drop_alert"]
    sent: list = []
    send = World.send

    def spy(self, emails):
        sent.append(emails)
        return send(self, emails)

    monkeypatch.setattr(World, "send", spy)
    cfg = journey_config(rules=load_rules(data), subscribers=3000, days=8.0,
                         record_events=True)
    res = run_simulation(cfg, executor="inline", shards=1)
    alerts = [b for b in sent if len(b)]
    product = np.concatenate([b.alert_product for b in alerts])
    drop = np.concatenate([b.drop_fraction for b in alerts])
    subscriber = np.concatenate([b.subscriber for b in alerts])
    time = np.concatenate([b.time for b in alerts])
    assert len(product) >= 20 and (product >= 0).all()
    assert (drop >= 0.1).all() and (drop < 1).all()
    events = res.events
    looked = events[events["type"].isin(["product_view", "add_to_cart"])]
    seen = set(zip(looked["subscriber"], looked["product_id"].astype(np.int64), strict=True))
    assert all((s, p) in seen for s, p in zip(subscriber.tolist(), product.tolist(),
                                              strict=True))
    cat = Catalog(cfg.seed, cfg.preset).events(cfg.start, int(time.max()))
    drops = cat.old_price - cat.new_price
    by_product: dict[int, set[float]] = {}
    for p, d, o in zip(cat.product_id.tolist(), drops.tolist(), cat.old_price.tolist(),
                       strict=True):
        if o == o:   # price drops (restocks have no old price)
            by_product.setdefault(p, set()).add(round(d / o, 9))
    assert all(round(f, 9) in by_product[p] for p, f in zip(product.tolist(), drop.tolist(),
                                                           strict=True))
