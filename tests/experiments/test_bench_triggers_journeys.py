"""``python -m experiments.bench triggers --rules journeys``: its streams and its run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.bench import _journeys, triggers
from experiments.synthetic import generate_events, generate_subscribers
from policies.event_schema import EVENT_TYPES
from policies.triggers import example_journeys


@pytest.fixture(scope="module")
def stream():
    subs = generate_subscribers(300, np.random.default_rng(1))
    return subs, generate_events(subs, np.random.default_rng(2), n_events=6000, products=50)


def test_products_leave_every_other_column_as_it_was(stream) -> None:
    subs, with_products = stream
    plain = generate_events(subs, np.random.default_rng(2), n_events=6000)
    assert np.array_equal(plain.time, with_products.time)
    assert np.array_equal(plain.subscriber, with_products.subscriber)
    for name, col in plain.columns.items():
        assert np.array_equal(col, with_products.columns[name], equal_nan=True), name
    assert set(with_products.columns) - set(plain.columns) == {"product_id"}


def test_product_ids_sit_on_product_events_and_follow_popularity(stream) -> None:
    _, events = stream
    pid = events.columns["product_id"]
    names = np.array(EVENT_TYPES.names)[events.type]
    shows = np.isin(names, ["product_view", "product_click", "price_check", "add_to_cart",
                            "checkout_started", "purchase_completed"])
    assert (pid[shows] >= 0).all() and (pid[shows] < 50).all()
    assert (pid[~shows] == -1).all()
    counts = np.bincount(pid[shows], minlength=50)
    assert counts[0] > counts[10] > counts[49]  # popularity ~ 1 / rank


def test_a_cart_is_of_a_product_viewed_in_its_session(stream) -> None:
    subs, _ = stream  # without n_events: no event of a session is left out at random
    events = generate_events(subs, np.random.default_rng(4), days=2, products=50)
    pid = events.columns["product_id"]
    names = np.array(EVENT_TYPES.names)[events.type]
    carts = np.flatnonzero(names == "add_to_cart")
    assert len(carts) >= 20
    for i in carts[:50]:
        sub, t = events.subscriber[i], events.time[i]
        before = (events.subscriber == sub) & (names == "product_view") & (events.time <= t)
        assert pid[i] in set(pid[before].tolist())


def test_touch_masks_and_the_dense_stream(stream) -> None:
    _, events = stream
    rules = example_journeys()
    touch, activity = _journeys._masks(rules, events)
    names = np.array(EVENT_TYPES.names)[events.type]
    cart = (names == "add_to_cart") & (events.columns["cart_value"] >= 25)
    assert touch[cart].all()                               # the cart series' entry
    assert touch[names == "purchase_completed"].all()      # its exit, the win-back's
    assert touch[names == "email_open"].all()              # a wait_until event
    assert not touch[(names == "add_to_cart") & ~cart].any()
    assert activity[names == "page_view"].all() and not (touch & activity).any()
    dense = _journeys._dense(events, touch, np.random.default_rng(3))
    share = _journeys._masks(rules, dense)[0].mean()
    assert 0.5 <= share <= 0.6 and np.all(np.diff(dense.time) >= 0)


def test_main_runs_the_journey_set_and_prints_one_json_object_last(capsys) -> None:
    code = triggers.main(["--rules", "journeys", "--events", "6000", "--subscribers", "600",
                          "--reference-events", "3000", "--repeat", "1", "--fanout", "500",
                          "--json"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and figures["engines_agree_on_prefix"] is True
    assert figures["fanout_entered"] == 500
    assert figures["dense_touch_share"] >= 0.5 > figures["base_touch_share"]
    assert figures["base_decisions"] > 0 and figures["prefix_decisions"] > 0
    for key in ("base_fast_events_per_s", "dense_fast_events_per_s", "speedup",
                "state_bytes_per_subscriber", "fanout_s"):
        assert figures[key] > 0
