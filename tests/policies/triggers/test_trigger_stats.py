"""The engine's counters (contract point 8): one scenario per way a trigger ends, late
events, checkpoints of the current and the previous format, and the docs that define
them. Randomized audits of the same identities are in ``test_trigger_differential.py``."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from trigger_helpers import DAY, HOUR, T0, Ledger, both_engines, events, subscribers

from policies import EventBatch
from policies.errors import LateEventError, TriggerLabValueError
from policies.triggers import STAT_NAMES, TriggerEngine, load_rules
from policies.triggers._migrate import STATE_VERSION

ROOT = Path(__file__).resolve().parents[3]
NOON = T0 + 12 * HOUR
CART = {
    "id": "cart",
    "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "60m"}],
    "exclude": ["purchase_completed"],
    "delay": "1h",
    "expire": "1d",
    "reentry": "always",
}
BROWSE = {
    "id": "browse",
    "type": "browse_abandonment",
    "when": [{"event": "product_view", "within": "30m"}],
    "exclude": ["add_to_cart"],
    "delay": "1h",
    "expire": "1d",
}
CART_1H = {**CART, "expire": "1h"}
QUIET = {"quiet_hours": {"start": "12:30", "end": "20:00"}}  # UTC subscribers: 13:00 is quiet
CAP = {"frequency_cap": {"max": 1, "per": "24h"}}
ONE_TRY = {"retry": {"max_attempts": 1, "backoff": "30m"}}
CARTED = (1, NOON, "add_to_cart")


def _engine(name: str, rule: dict, settings: dict | None = None, **kw: Any) -> TriggerEngine:
    spec: dict[str, Any] = {"rules": [rule, BROWSE], "settings": settings or {}}
    return TriggerEngine(load_rules(spec), subscribers=subscribers({1: {}, 2: {}}),
                         engine=name, **kw)


# steps: ("events", [records], until); ("fail", None, now) reports the latest fire
# failed; ("fail again", None, now) repeats that report (ignored)
SCENARIOS = [
    ("entered, waiting", CART, None, [("events", [CARTED], NOON + 1800)],
     {"entered": 1, "pending": 1}),
    ("fired", CART, None, [("events", [CARTED], NOON + HOUR)],
     {"entered": 1, "fired": 1}),
    ("cancelled by an exit event", CART, None,
     [("events", [CARTED, (1, NOON + 1800, "purchase_completed")], NOON + DAY)],
     {"entered": 1, "cancelled": 1}),
    ("postponed by quiet hours, waiting", CART, QUIET, [("events", [CARTED], NOON + HOUR)],
     {"entered": 1, "pending": 1}),
    ("postponed past its expiry: expired", CART_1H, QUIET,
     [("events", [CARTED], NOON + HOUR)], {"entered": 1, "expired": 1}),
    ("over the frequency cap: suppressed", CART, CAP,
     [("events", [CARTED, (1, NOON + 90 * 60, "add_to_cart")], NOON + DAY)],
     {"entered": 2, "fired": 1, "suppressed": 1}),
    ("failed, retry waiting", CART, None,
     [("events", [CARTED], NOON + HOUR), ("fail", None, NOON + HOUR + 60)],
     {"entered": 1, "fired": 1, "failed": 1, "retried": 1, "pending": 1}),
    ("failed, retried, fired again", CART, None,
     [("events", [CARTED], NOON + HOUR), ("fail", None, NOON + HOUR + 60),
      ("events", [], NOON + DAY)],
     {"entered": 1, "fired": 2, "failed": 1, "retried": 1}),
    ("failed twice, the same report: counted once", CART, None,
     [("events", [CARTED], NOON + HOUR), ("fail", None, NOON + HOUR + 60),
      ("fail again", None, NOON + HOUR + 70)],
     {"entered": 1, "fired": 1, "failed": 1, "retried": 1, "pending": 1}),
    ("failed at the last attempt: cancelled", CART, ONE_TRY,
     [("events", [CARTED], NOON + HOUR), ("fail", None, NOON + HOUR + 60)],
     {"entered": 1, "fired": 1, "failed": 1, "cancelled": 1}),
    ("failed with a newer instance waiting: cancelled", CART, None,
     [("events", [CARTED, (1, NOON + 90 * 60, "add_to_cart")], NOON + 100 * 60),
      ("fail", None, NOON + 100 * 60)],
     {"entered": 2, "fired": 1, "failed": 1, "cancelled": 1, "pending": 1}),
    ("failed three times: two retries, then cancelled", CART, None,
     [("events", [CARTED], NOON + HOUR), ("fail", None, NOON + HOUR),
      ("events", [], NOON + 2 * HOUR), ("fail", None, NOON + 2 * HOUR),
      ("events", [], NOON + 4 * HOUR), ("fail", None, NOON + 4 * HOUR)],
     {"entered": 1, "fired": 3, "failed": 3, "retried": 2, "cancelled": 1}),
]


@both_engines
@pytest.mark.parametrize(("rule", "settings", "steps", "expected"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_each_way_a_trigger_ends_is_counted_once(engine_name, rule, settings, steps,
                                                 expected) -> None:
    e = _engine(engine_name, rule, settings)
    ledger = Ledger()
    fires: list[str] = []
    for op, arg, t in steps:
        if op == "events":
            d = e.process(events(*arg), until=t)
            ledger.decided.append(d)
            fires += list(d.of_kind("fire").trigger_id)
        else:
            ledger.failure.append(e.report_failures([fires[-1]], t))
            if op == "fail":
                ledger.reported.append(fires[-1])
        ledger.check(e)
    row = {name: 0 for name in STAT_NAMES} | expected
    assert e.stats().loc["cart"].to_dict() == row
    assert e.stats().loc["browse"].sum() == 0


def _late_engine(name: str) -> TriggerEngine:
    e = _engine(name, CART, on_late="drop")
    e.process(events((2, NOON, "page_view")), until=NOON + DAY)
    return e


# late events: (subscriber, type) at NOON, before the engine clock NOON + DAY
LATE = [
    ("in cart's when and browse's exclude", [(1, "add_to_cart")], 1, 1, 1),
    ("in cart's exclude only", [(1, "purchase_completed")], 1, 0, 1),
    ("in browse's when only", [(2, "product_view")], 0, 1, 1),
    ("in no rule", [(1, "page_view")], 0, 0, 1),
    ("of a subscriber missing from the table", [(99, "add_to_cart")], 1, 1, 1),
    ("several", [(1, "add_to_cart"), (1, "page_view"), (2, "page_view"),
                 (2, "product_view"), (99, "email_open")], 1, 2, 5),
]


@both_engines
@pytest.mark.parametrize(("late", "cart", "browse", "total"),
                         [row[1:] for row in LATE], ids=[row[0] for row in LATE])
def test_late_events_are_counted_once_in_total_and_per_rule_that_mentions_them(
    engine_name, late, cart, browse, total
) -> None:
    e = _late_engine(engine_name)
    on_time = events((1, NOON + DAY + 60, "page_view"))
    batch = events(*[(sub, NOON, etype) for sub, etype in late])
    batch = EventBatch.concat([batch, on_time])
    assert len(e.process(batch, until=NOON + 2 * DAY)) == 0
    assert e.stats()["late"].tolist() == [cart, browse]
    assert e.n_late() == total
    e.process(batch, until=NOON + 3 * DAY)  # all late now, the on-time one too
    assert e.n_late() == 2 * total + 1
    restored = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(e.state_dict())))
    assert restored.n_late() == e.n_late() and restored.stats().equals(e.stats())


@both_engines
def test_late_events_are_not_counted_when_they_raise(engine_name) -> None:
    e = _engine(engine_name, CART)
    e.process(events((1, NOON, "page_view")), until=NOON + DAY)
    with pytest.raises(LateEventError, match="1 of 1 events are late"):
        e.process(events(CARTED))
    assert e.n_late() == 0 and e.stats()["late"].sum() == 0


# -- checkpoints ---------------------------------------------------------------------


def _busy(name: str) -> tuple[TriggerEngine, Any]:
    """An engine with every counter in use, and the events to continue with."""
    e = _engine(name, CART, {"retry": {"max_attempts": 2, "backoff": "30m"}}, on_late="drop")
    d = e.process(events(CARTED, (2, NOON, "product_view")), until=NOON + HOUR)
    e.report_failures(d, NOON + HOUR + 1)
    d = e.process(events((1, NOON + HOUR + 2, "add_to_cart")), until=NOON + 2 * HOUR)
    e.report_failures(d.of_kind("fire"), NOON + 2 * HOUR)
    e.process(events(CARTED, (1, NOON, "page_view"), (2, NOON, "product_view")),
              until=NOON + 2 * HOUR + 60)
    e.process(events((1, NOON + 3 * HOUR, "add_to_cart"), (2, NOON + 3 * HOUR, "product_view"),
                     (1, NOON + 3 * HOUR + 60, "purchase_completed")),
              until=NOON + 3 * HOUR + 60)
    rest = events((1, NOON + 5 * HOUR, "add_to_cart"), (2, NOON + 5 * HOUR, "product_view"))
    return e, rest


def _as_version_1(state: dict) -> dict:
    """``state`` as version 1 wrote it: per rule entered, fired, cancelled, expired,
    suppressed, retried, late; no failed, no engine-wide late count."""
    old = ("entered", "fired", "cancelled", "expired", "suppressed", "retried", "late")
    core = dict(state["core"])
    del core["n_late"]
    if state["engine"] == "fast":
        now = [n for n in STAT_NAMES if n != "pending"]
        core["stats"] = core["stats"][:, [now.index(n) for n in old]].copy()
    else:
        core["counts"] = {r: {n: c[n] for n in old} for r, c in core["counts"].items()}
    return {**state, "version": 1, "core": core}


@both_engines
def test_a_version_1_checkpoint_is_read_with_its_counters(engine_name) -> None:
    e, rest = _busy(engine_name)
    stats = e.stats()
    assert (stats.drop(columns=["expired", "suppressed", "out_of_range"]).sum() > 0).all()
    assert e.n_late() > stats["late"].max()  # a page_view: no rule mentions it
    old = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(_as_version_1(e.state_dict()))))
    assert old.stats().equals(stats)  # failed follows from the identity
    assert old.n_late() == stats["late"].max()  # the total was not kept: a lower bound
    assert old.state_dict()["version"] == STATE_VERSION == 4
    assert old.process(rest, until=NOON + 2 * DAY).equals(e.process(rest, until=NOON + 2 * DAY))
    assert old.stats().equals(e.stats())


BAD_STATES = [
    ({"version": 0}, r"version 1, 2, 3 or 4, got version 0$"),
    ({"version": 5, "engine": "fast"}, r"version 1, 2, 3 or 4, got version 5$"),
    ({"version": "2"}, r"version 1, 2, 3 or 4, got version '2'$"),
    ({"version": True}, r"version 1, 2, 3 or 4, got version True$"),
    ({"version": 2.0}, r"version 1, 2, 3 or 4, got version 2.0$"),
    ({}, r"version 1, 2, 3 or 4, got version None$"),
    ([("version", 2)], r"version 1, 2, 3 or 4, got list$"),
    (None, r"version 1, 2, 3 or 4, got NoneType$"),
]


@pytest.mark.parametrize(("state", "message"), BAD_STATES)
def test_other_states_are_refused(state, message) -> None:
    with pytest.raises(TriggerLabValueError, match=r"^state: expected a TriggerEngine\."
                       r"state_dict\(\) of " + message):
        TriggerEngine.from_state_dict(state)


# -- documentation -------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "definition"), [
    ("policies/triggers/engine.py", r"``{name}``,"),   # the contract, point 8
    ("docs/production.md", r"^\| `{name}` \| \S"),     # a table row
])
def test_every_counter_is_defined_in_the_docs(doc, definition) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    for name in STAT_NAMES:
        assert re.search(definition.format(name=name), text, re.M), (doc, name)
    assert "entered + failed = fired + cancelled + expired + suppressed + pending" in text
    assert "n_late" in text


def test_the_stats_frame_has_one_row_per_rule_even_before_any_event() -> None:
    e = _engine("fast", CART)
    stats = e.stats()
    assert list(stats.columns) == list(STAT_NAMES) and list(stats.index) == ["cart", "browse"]
    assert isinstance(stats, pd.DataFrame) and (stats.to_numpy() == 0).all()
    assert stats.shape == (2, len(STAT_NAMES)) and stats.dtypes.eq(np.int64).all()
    assert e.n_late() == 0


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_older_states_load_except_the_old_fast_journey_layouts(engine: str, version: int) -> None:
    """Versions 3 and 4 changed only the fast engine's journey state: a version-2 or 3
    state of plain rules (either engine) or of reference journeys continues as before; a
    version-2 or 3 fast journey state is refused with a message, never misread."""
    from policies.errors import TriggerLabValueError
    from policies.triggers import default_rules, example_journeys

    for rules, journeys in ((default_rules(), False), (example_journeys(), True)):
        subs = subscribers({1: {}, 2: {}}).assign(last_engaged_at=T0)
        e = TriggerEngine(rules, subscribers=subs, engine=engine)
        state = {**e.state_dict(), "version": version}
        if engine == "fast" and journeys:
            with pytest.raises(TriggerLabValueError, match=rf"version-{version} state of the "
                               r"fast engine with journeys .* cannot be restored"):
                TriggerEngine.from_state_dict(state)
        else:
            again = TriggerEngine.from_state_dict(state)
            assert again.state_dict()["version"] == STATE_VERSION
