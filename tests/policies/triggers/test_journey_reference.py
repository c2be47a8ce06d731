"""Both engines run journeys: one readable scenario per point of the contract in
docs/journeys.md ("Semantics: the engine contract"); every test runs once per engine.

Each scenario is a row: a journey (``steps`` and extras on a small cart rule), a list of
actions (events, attribute updates, failure reports, catalog events) and the decisions
expected, as ``(kind, subscriber, time - T0, step label, path name, attempt)``.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from policies.ab import keyed_unit
from policies.bandits import EpsilonGreedy
from policies.errors import TriggerLabValueError
from policies.triggers import (
    CatalogBatch,
    Decisions,
    TriggerEngine,
    TriggerIdError,
    parse_journey_trigger_id,
    parse_trigger_id,
    trigger_id,
)
from tests.policies.triggers.trigger_helpers import DAY, HOUR, T0, events, subscribers

NOON = T0 + 12 * HOUR
M = 60
ENGINE = "reference"


@pytest.fixture(autouse=True, params=["reference", "fast"])
def engine_name(request: pytest.FixtureRequest) -> str:
    """Run every test of this module on both engines."""
    global ENGINE
    ENGINE = request.param
    return ENGINE


def cart(steps: list[Any], **extra: Any) -> dict[str, Any]:
    """A rule set with one cart journey (entry: add_to_cart) sending emails a, b, c."""
    used = {s for s in ("a", "b", "c") if f"'send': '{s}'" in repr(steps)}
    rule = {"id": "j", "type": "cart_abandonment",
            "when": [{"event": "add_to_cart", "within": "1h"}],
            "emails": {name: {} for name in sorted(used)}, "steps": steps}
    settings = extra.pop("settings", None)
    rule.update(extra)
    data: dict[str, Any] = {"rules": [rule]}
    if settings:
        data["settings"] = settings
    return data


SUBS = {1: {"price_sensitivity": 0.8, "engagement_score": 0.5, "lifecycle_stage": "customer"},
        2: {"price_sensitivity": 0.2, "engagement_score": 0.5, "lifecycle_stage": "prospect"}}


def run(data: dict[str, Any], actions: list[tuple], subs: dict[int, dict] | None = None,
        **kwargs: Any) -> tuple[TriggerEngine, Decisions]:
    """Feed ``actions``: ("ev", [(sub, t, type, data)], until), ("update", {sub: attrs},
    at), ("fail", index of a fire row so far, now), ("catalog", [records], until)."""
    engine = TriggerEngine(data, subscribers=subscribers(subs or SUBS), engine=ENGINE,
                           **kwargs)
    parts: list[Decisions] = []
    for action in actions:
        kind, arg, t = action
        if kind == "ev":
            parts.append(engine.process(events(*arg), until=t))
        elif kind == "update":
            parts.append(engine.update_subscribers(subscribers(arg), at=t))
        elif kind == "fail":
            fires = Decisions.concat(parts).sorted().of_kind("fire")
            parts.append(engine.report_failures([fires.trigger_id[arg]], t))
        else:
            parts.append(engine.process(events(), until=t,
                                        catalog=CatalogBatch.from_records(arg)))
    return engine, Decisions.concat(parts).sorted()


def table(d: Decisions) -> list[tuple]:
    df = d.to_pandas()
    return [(k, s, t - T0, label, path, a) for k, s, t, label, path, a in zip(
        df["kind"], df["subscriber"], df["time"], df["step_label"], df["path_name"],
        df["attempt"], strict=True)]


def at(h: float) -> int:
    """Seconds after T0 of noon + h hours."""
    return int(12 * HOUR + h * HOUR)


ADD = "add_to_cart"
SCENARIOS: list[tuple[str, dict[str, Any], list[tuple], list[tuple]]] = [
    ("wait then send: the send fires at entry + wait",
     cart([{"wait": "1h"}, {"send": "a"}]),
     [("ev", [(1, NOON, ADD)], NOON + DAY)],
     [("fire", 1, at(1), "steps[1]", "", 1)]),
    ("wait_until happened (since step): the happened path runs at the event",
     cart([{"send": "a"}, {"wait_until": {"events": ["email_open"], "within": "1d",
                                          "happened": [{"send": "b"}],
                                          "timed_out": [{"send": "c"}]}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + 2 * HOUR, "email_open")], NOON + 2 * DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1),
      ("branch", 1, at(2), "steps[1]", "happened", 1),
      ("fire", 1, at(2), "steps[1].wait_until.happened[0]", "", 1)]),
    ("wait_until: an event at exactly the time-out comes after it (timed out)",
     cart([{"send": "a"}, {"wait_until": {"events": ["email_open"], "within": "1d",
                                          "happened": [{"send": "b"}],
                                          "timed_out": [{"send": "c"}]}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + DAY, "email_open")], NOON + 2 * DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1),
      ("branch", 1, at(24), "steps[1]", "timed_out", 1),
      ("fire", 1, at(24), "steps[1].wait_until.timed_out[0]", "", 1)]),
    ("wait_until since step: an event before the step does not count",
     cart([{"wait": "2h"}, {"wait_until": {"events": ["email_open"], "within": "1h",
                                           "happened": [{"send": "a"}],
                                           "timed_out": [{"send": "b"}]}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, "email_open")], NOON + DAY)],
     [("branch", 1, at(3), "steps[1]", "timed_out", 1),
      ("fire", 1, at(3), "steps[1].wait_until.timed_out[0]", "", 1)]),
    ("wait_until since entry: an event between entry and step makes it happen at once",
     cart([{"wait": "2h"}, {"wait_until": {"events": ["email_open"], "within": "1h",
                                           "since": "entry", "happened": [{"send": "a"}],
                                           "timed_out": [{"send": "b"}]}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, "email_open")], NOON + DAY)],
     [("branch", 1, at(2), "steps[1]", "happened", 1),
      ("fire", 1, at(2), "steps[1].wait_until.happened[0]", "", 1)]),
    ("wait_until since last_send: only events after the journey's last send count",
     cart([{"wait": "1h"}, {"send": "a"}, {"wait": "1h"},
           {"wait_until": {"events": ["email_open"], "within": "1h", "since": "last_send",
                           "happened": [{"send": "b"}], "timed_out": [{"send": "c"}]}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + 30 * M, "email_open"),
              (2, NOON, ADD), (2, NOON + 90 * M, "email_open")], NOON + DAY)],
     [("fire", 1, at(1), "steps[1]", "", 1), ("fire", 2, at(1), "steps[1]", "", 1),
      ("branch", 2, at(2), "steps[3]", "happened", 1),
      ("fire", 2, at(2), "steps[3].wait_until.happened[0]", "", 1),
      ("branch", 1, at(3), "steps[3]", "timed_out", 1),
      ("fire", 1, at(3), "steps[3].wait_until.timed_out[0]", "", 1)]),
    ("wait_until where: a non-matching event does not count",
     cart([{"send": "a"}, {"wait_until": {"events": ["email_click"], "within": "1d",
                                          "where": {"link_type": "product"},
                                          "happened": [{"send": "b"}]}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, "email_click", {"link_type": "cart"}),
              (2, NOON, ADD), (2, NOON + HOUR, "email_click", {"link_type": "product"})],
       NOON + 2 * DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("fire", 2, at(0), "steps[0]", "", 1),
      ("branch", 2, at(1), "steps[1]", "happened", 1),
      ("fire", 2, at(1), "steps[1].wait_until.happened[0]", "", 1),
      ("branch", 1, at(24), "steps[1]", "timed_out", 1)]),
    ("branch on segment: the first case that holds, else otherwise",
     cart([{"branch": [{"if": {"segment": {"price_sensitivity": {"min": 0.6}}},
                        "then": [{"send": "a"}]},
                       {"else": [{"send": "b"}]}]}]),
     [("ev", [(1, NOON, ADD), (2, NOON, ADD)], NOON + DAY)],
     [("branch", 1, at(0), "steps[0]", "case0", 1),
      ("fire", 1, at(0), "steps[0].branch[0].then[0]", "", 1),
      ("branch", 2, at(0), "steps[0]", "else", 1),
      ("fire", 2, at(0), "steps[0].branch[1].else[0]", "", 1)]),
    ("branch on segment tests the attributes when the step is reached",
     cart([{"wait": "1h"}, {"branch": [{"if": {"segment": {"price_sensitivity": {"min": 0.6}}},
                                        "then": [{"send": "a"}]}]}]),
     [("ev", [(2, NOON, ADD)], NOON + 30 * M),
      ("update", {2: {**SUBS[2], "price_sensitivity": 0.9}}, NOON + 30 * M),
      ("ev", [], NOON + DAY)],
     [("branch", 2, at(1), "steps[1]", "case0", 1),
      ("fire", 2, at(1), "steps[1].branch[0].then[0]", "", 1)]),
    ("branch on entry properties (stored at entry); no case and no else: goes on",
     cart([{"branch": [{"if": {"entry": {"cart_value": {"min": 100}}},
                        "then": [{"send": "a"}]}]}, {"send": "b"}]),
     [("ev", [(1, NOON, ADD, {"cart_value": 150.0}), (2, NOON, ADD, {"cart_value": 20.0})],
       NOON + DAY)],
     [("branch", 1, at(0), "steps[0]", "case0", 1),
      ("fire", 1, at(0), "steps[0].branch[0].then[0]", "", 1),
      ("fire", 1, at(0), "steps[1]", "", 1),
      ("branch", 2, at(0), "steps[0]", "else", 1),
      ("fire", 2, at(0), "steps[1]", "", 1)]),
    ("exit step: kind exit, nothing after it runs",
     cart([{"send": "a"}, {"wait_until": {"events": ["email_open"], "within": "1d",
                                          "happened": ["exit"]}}, {"send": "b"}]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, "email_open")], NOON + 3 * DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1),
      ("branch", 1, at(1), "steps[1]", "happened", 1),
      ("exit", 1, at(1), "steps[1].wait_until.happened[0]", "", 1)]),
    ("exit criteria with match: another product does not end it, the entry's does",
     cart([{"wait": "1d"}, {"send": "a"}],
          exit=[{"event": "purchase_completed", "match": "product_id"}]),
     [("ev", [(1, NOON, ADD, {"product_id": 5}), (2, NOON, ADD, {"product_id": 5}),
              (1, NOON + HOUR, "purchase_completed", {"product_id": 6}),
              (2, NOON + HOUR, "purchase_completed", {"product_id": 5})], NOON + 2 * DAY)],
     [("exit", 2, at(1), "steps[0]", "", 1), ("fire", 1, at(24), "steps[1]", "", 1)]),
    ("exclude ends a journey at any step (kind exit)",
     cart([{"send": "a"}, {"wait": "1d"}, {"send": "b"}], exclude=["cart_cleared"]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, "cart_cleared")], NOON + 2 * DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("exit", 1, at(1), "steps[1]", "", 1)]),
    ("same second: what is due first, then the event's exit",
     cart([{"wait": "1h"}, {"send": "a"}, {"wait": "1h"}, {"send": "b"}],
          exit=[{"event": "purchase_completed"}]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, "purchase_completed")], NOON + DAY)],
     [("fire", 1, at(1), "steps[1]", "", 1), ("exit", 1, at(1), "steps[2]", "", 1)]),
    ("one instance: an entry event during a journey is ignored; exit + entry restarts",
     cart([{"wait": "2h"}, {"send": "a"}], exit=[{"event": "add_to_cart",
                                                  "where": {"cart_value": {"min": 100}}}]),
     [("ev", [(1, NOON, ADD), (1, NOON + HOUR, ADD),
              (2, NOON, ADD), (2, NOON + HOUR, ADD, {"cart_value": 150.0})], NOON + DAY)],
     [("exit", 2, at(1), "steps[0]", "", 1), ("fire", 1, at(2), "steps[1]", "", 1),
      ("fire", 2, at(3), "steps[1]", "", 1)]),
    ("reentry cooldown counts from the journey's end",
     cart([{"wait": "1h"}, {"send": "a"}], reentry={"cooldown": "3h"}),
     [("ev", [(1, NOON, ADD), (1, NOON + 3 * HOUR, ADD), (1, NOON + 4 * HOUR, ADD)],
       NOON + DAY)],
     [("fire", 1, at(1), "steps[1]", "", 1), ("fire", 1, at(5), "steps[1]", "", 1)]),
    ("quiet hours postpone a send; the rest of the journey shifts",
     cart([{"wait": "10h"}, {"send": "a"}, {"wait": "1h"}, {"send": "b"}],
          settings={"quiet_hours": {"start": "22:00", "end": "08:00"}}),
     [("ev", [(1, NOON, ADD)], NOON + 2 * DAY)],
     [("fire", 1, at(20), "steps[1]", "", 1), ("fire", 1, at(21), "steps[3]", "", 1)]),
    ("a send's expire counts from reaching the step (quiet hours push past it)",
     cart([{"wait": "10h"}, {"send": "a", "expire": "2h"}, {"send": "b"}],
          settings={"quiet_hours": {"start": "22:00", "end": "08:00"}}),
     [("ev", [(1, NOON, ADD)], NOON + 2 * DAY)],
     [("expire", 1, at(10), "steps[1]", "", 1), ("fire", 1, at(20), "steps[2]", "", 1)]),
    ("a send postponed to exactly its expire still goes out (expired: strictly later)",
     cart([{"wait": "10h"}, {"send": "a", "expire": "10h"}, {"send": "b"}],
          settings={"quiet_hours": {"start": "22:00", "end": "08:00"}}),
     [("ev", [(1, NOON, ADD)], NOON + 2 * DAY)],
     [("fire", 1, at(20), "steps[1]", "", 1), ("fire", 1, at(20), "steps[2]", "", 1)]),
    ("frequency cap suppresses a send and the journey goes on",
     cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}, {"wait": "1d"}, {"send": "c"}],
          settings={"frequency_cap": {"max": 1, "per": "1d"}}),
     [("ev", [(1, NOON, ADD)], NOON + 3 * DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("suppress", 1, at(1), "steps[2]", "", 1),
      ("fire", 1, at(25), "steps[4]", "", 1)]),
    ("smart sending skips a send and the journey goes on; false turns it off",
     cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}, {"send": "c", "smart_sending": False}],
          settings={"smart_sending": "16h"}),
     [("ev", [(1, NOON, ADD)], NOON + DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("skip", 1, at(1), "steps[2]", "", 1),
      ("fire", 1, at(1), "steps[3]", "", 1)]),
    ("retries: a failed send is retried (same id, attempt 2) while the journey moves on",
     cart([{"send": "a"}, {"wait": "2h"}, {"send": "b"}]),
     [("ev", [(1, NOON, ADD)], NOON + 10 * M), ("fail", 0, NOON + 10 * M),
      ("ev", [], NOON + DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("fire", 1, 12 * HOUR + 40 * M, "steps[0]", "", 2),
      ("fire", 1, at(2), "steps[2]", "", 1)]),
    ("an exit cancels a pending retry",
     cart([{"send": "a"}, {"wait": "2h"}, {"send": "b"}], exit=[{"event": "purchase_completed"}]),
     [("ev", [(1, NOON, ADD)], NOON + 10 * M), ("fail", 0, NOON + 10 * M),
      ("ev", [(1, NOON + 20 * M, "purchase_completed")], NOON + DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("cancel", 1, 12 * HOUR + 20 * M, "steps[0]", "", 2),
      ("exit", 1, 12 * HOUR + 20 * M, "steps[1]", "", 1)]),
    ("a journey step and a retry of the same node due at once: the step first (then the "
     "cap suppresses the retry)",
     cart([{"send": "a"}], settings={"quiet_hours": {"start": "22:00", "end": "08:00"},
                                     "frequency_cap": {"max": 1, "per": "1d"},
                                     "retry": {"max_attempts": 3, "backoff": "30m"}}),
     [("ev", [(1, NOON, ADD)], NOON + 9 * HOUR + 50 * M), ("fail", 0, NOON + 9 * HOUR + 50 * M),
      ("ev", [(1, NOON + 11 * HOUR, ADD)], NOON + DAY)],
     [("fire", 1, at(0), "steps[0]", "", 1), ("suppress", 1, at(20), "steps[0]", "", 2),
      ("fire", 1, at(20), "steps[0]", "", 1)]),
]


@pytest.mark.parametrize(("data", "actions", "expected"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_contract_scenarios(data: dict[str, Any], actions: list[tuple],
                            expected: list[tuple]) -> None:
    _, d = run(data, actions)
    assert table(d) == expected


def entry_rule(when: dict[str, Any], steps: list[Any] | None = None,
               **extra: Any) -> dict[str, Any]:
    rule = {"id": "j", "type": "reactivation", "when": [when], "emails": {"a": {}},
            "steps": steps or [{"send": "a"}], **extra}
    return {"rules": [rule]}


INACTIVE = {"inactive": {"events": ["page_view"], "for": "1d",
                         "since_attribute": "last_engaged_at"}}
ENTRY_SCENARIOS: list[tuple[str, dict[str, Any], dict[int, dict], list[tuple], list[tuple]]] = [
    ("inactivity: enters `for` after the latest activity, once per lapse",
     entry_rule(INACTIVE), {1: {}},
     [("ev", [(1, NOON, "page_view")], NOON + 5 * DAY)],
     [("fire", 1, at(24), "steps[0]", "", 1)]),
    ("inactivity: a new activity restarts the clock",
     entry_rule(INACTIVE), {1: {}},
     [("ev", [(1, NOON, "page_view"), (1, NOON + 20 * HOUR, "page_view")], NOON + 5 * DAY)],
     [("fire", 1, at(44), "steps[0]", "", 1)]),
    ("inactivity: no activity seen, the clock starts at the attribute",
     entry_rule(INACTIVE), {1: {"last_engaged_at": NOON}, 2: {"last_engaged_at": np.nan}},
     [("ev", [], NOON + 5 * DAY)],
     [("fire", 1, at(24), "steps[0]", "", 1)]),
    ("inactivity: no activity nor attribute, the clock starts at the first event seen",
     entry_rule(INACTIVE), {1: {}},
     [("ev", [(1, NOON, "email_open")], NOON + 5 * DAY)],
     [("fire", 1, at(24), "steps[0]", "", 1)]),
    ("attribute entry: enters when update_subscribers makes the tests pass, at `at`",
     entry_rule({"attribute": {"lifecycle_stage": {"in": ["customer"]}}}),
     {1: {"lifecycle_stage": "prospect"}, 2: {"lifecycle_stage": "customer"}},
     [("update", {1: {"lifecycle_stage": "customer"}, 2: {"lifecycle_stage": "customer"}},
       NOON)],
     [("fire", 1, at(0), "steps[0]", "", 1)]),
    ("catalog entry: viewed within the window and not bought since",
     entry_rule({"catalog": {"event": "price_drop", "audience": {"viewed": "7d"},
                             "where": {"drop_fraction": {"min": 0.1}}}},
                exit=[{"event": "purchase_completed", "match": "product_id"}]),
     {1: {}, 2: {}, 3: {}},
     [("ev", [(1, NOON, "product_view", {"product_id": 5}),
              (2, NOON, "product_view", {"product_id": 5}),
              (2, NOON + HOUR, "purchase_completed", {"product_id": 5}),
              (3, NOON, "product_view", {"product_id": 6})], NOON + DAY),
      ("catalog", [{"time": NOON + DAY, "type": "price_drop", "product_id": 5,
                    "old_price": 100.0, "new_price": 80.0},
                   {"time": NOON + DAY, "type": "price_drop", "product_id": 6,
                    "old_price": 100.0, "new_price": 95.0}], NOON + DAY)],
     [("fire", 1, at(24), "steps[0]", "", 1)]),
    ("catalog entry: a purchase at the same second as the view counts as since; one "
     "before the view (not yet remembered) does not",
     entry_rule({"catalog": {"event": "back_in_stock", "audience": {"viewed": "7d"}}}),
     {1: {}, 2: {}},
     [("ev", [(1, NOON, "product_view", {"product_id": 5}),
              (1, NOON, "purchase_completed", {"product_id": 5}),
              (2, NOON, "purchase_completed", {"product_id": 5}),
              (2, NOON, "product_view", {"product_id": 5})], NOON + HOUR),
      ("catalog", [{"time": NOON + HOUR, "type": "back_in_stock", "product_id": 5,
                    "new_price": 10.0}], NOON + HOUR)],
     [("fire", 2, at(1), "steps[0]", "", 1)]),
    ("catalog entry: only the last 8 products viewed are remembered",
     entry_rule({"catalog": {"event": "back_in_stock", "audience": {"viewed": "7d"}}}),
     {1: {}},
     [("ev", [(1, NOON + k, "product_view", {"product_id": k}) for k in range(10)],
       NOON + HOUR),
      ("catalog", [{"time": NOON + HOUR, "type": "back_in_stock", "product_id": k,
                    "new_price": 10.0} for k in (0, 1, 2)], NOON + HOUR)],
     [("fire", 1, at(1), "steps[0]", "", 1)]),
]


@pytest.mark.parametrize(("data", "subs", "actions", "expected"),
                         [s[1:] for s in ENTRY_SCENARIOS], ids=[s[0] for s in ENTRY_SCENARIOS])
def test_entry_scenarios(data: dict[str, Any], subs: dict[int, dict], actions: list[tuple],
                         expected: list[tuple]) -> None:
    _, d = run(data, actions, subs)
    assert table(d) == expected


def test_catalog_entry_carries_the_catalog_properties() -> None:
    data = entry_rule({"catalog": {"event": "price_drop", "audience": {"carted": "7d"}}},
                      steps=[{"branch": [{"if": {"entry": {"drop": {"min": 15}}},
                                          "then": [{"send": "a"}]}]}])
    _, d = run(data, [("ev", [(1, NOON, ADD, {"product_id": 5})], NOON),
                      ("catalog", [{"time": NOON + HOUR, "type": "price_drop", "product_id": 5,
                                    "old_price": 100.0, "new_price": 80.0}], NOON + HOUR)],
               {1: {}})
    assert table(d) == [("branch", 1, at(1), "steps[0]", "case0", 1),
                        ("fire", 1, at(1), "steps[0].branch[0].then[0]", "", 1)]


def test_catalog_entry_keys_every_row_with_the_product() -> None:
    """A catalog journey's rows carry the product the alert is about (no ``match`` needed),
    a retry's too; a plain rule's rows -1."""
    data = entry_rule({"catalog": {"event": "price_drop", "audience": {"viewed": "7d"}}},
                      steps=[{"send": "a"}, {"wait": "1h"}, {"send": "b"}],
                      emails={"a": {}, "b": {}})
    data["settings"] = {"retry": {"max_attempts": 2, "backoff": "10m"}}
    _, d = run(data, [("ev", [(1, NOON, "product_view", {"product_id": 5}),
                              (1, NOON, "product_view", {"product_id": 9})], NOON),
                      ("catalog", [{"time": NOON + HOUR, "type": "price_drop", "product_id": 9,
                                    "old_price": 100.0, "new_price": 80.0}], NOON + HOUR),
                      ("fail", 0, NOON + HOUR + 60), ("ev", [], NOON + DAY)], {1: {}})
    df = d.to_pandas()
    assert list(zip(df["kind"], df["attempt"], df["entry_key"], strict=True)) == [
        ("fire", 1, 9), ("fire", 2, 9), ("fire", 1, 9)]


def test_matched_exit_keys_the_journey_with_the_entry_event() -> None:
    """With an exit matched on product_id, rows carry the entry event's product (-1 when
    the entry event has none)."""
    data = cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}],
                exit=[{"event": "purchase_completed", "match": "product_id"}])
    _, d = run(data, [("ev", [(1, NOON, ADD, {"product_id": 7}), (2, NOON, ADD)],
                       NOON + DAY)])
    df = d.to_pandas()
    assert list(zip(df["subscriber"], df["entry_key"], strict=True)) == [
        (1, 7), (2, -1), (1, 7), (2, -1)]
    plain = TriggerEngine({"rules": [{"id": "p", "type": "cart_abandonment",
                                      "when": [{"event": ADD, "within": "1h"}],
                                      "delay": "1h", "expire": "1d"}]},
                          subscribers=subscribers(SUBS), engine=ENGINE)
    assert plain.process(events((1, NOON, ADD, {"product_id": 7})),
                         until=NOON + DAY).entry_key.tolist() == [-1]


SPLIT = cart([{"split": {"ab": {"x": 0.3, "y": 0.7},
                         "paths": {"x": [{"send": "a"}], "y": [{"send": "b"}]}}}])


def test_ab_split_is_the_salted_hash_of_rule_node_subscriber_entry() -> None:
    subs = {s: {} for s in range(200)}
    _, d = run(SPLIT, [("ev", [(s, NOON, ADD) for s in subs], NOON)], subs)
    splits = d.of_kind("split")
    u = keyed_unit(0, "j:0", NOON)  # rule j, node 0, entered at NOON
    expected_first = 0 if u < 0.3 else 1
    assert splits.path[0] == expected_first
    expected = np.array([0 if keyed_unit(s, "j:0", NOON) < 0.3 else 1
                         for s in subs])
    assert splits.path.tolist() == expected.tolist()
    assert np.allclose(splits.propensity, np.where(expected == 0, 0.3, 0.7))
    fires = d.of_kind("fire")  # sends carry the propensity of the split on their path
    assert np.allclose(fires.propensity, splits.propensity)
    assert 40 < (expected == 0).sum() < 80


POLICY_SPLIT = cart([{"split": {"policy": "bandit",
                                "paths": {"x": [{"send": "a"}], "y": [{"send": "b"}]}}}])


def test_policy_split_records_the_policy_choice_and_propensity() -> None:
    subs = {s: {} for s in range(100)}
    acts = [("ev", [(s, NOON, ADD) for s in subs], NOON)]
    policy = EpsilonGreedy(arm_names=("x", "y"), epsilon=0.5)
    # y is best: p(y) = 0.75, p(x) = 0.25
    policy.update(["x"] * 5 + ["y"] * 5, [0.0] * 5 + [1.0] * 5)
    _, d1 = run(POLICY_SPLIT, acts, subs, policies={"bandit": policy}, seed=3)
    _, d2 = run(POLICY_SPLIT, acts, subs, policies={"bandit": policy}, seed=3)
    _, d3 = run(POLICY_SPLIT, acts, subs, policies={"bandit": policy}, seed=4)
    s1 = d1.of_kind("split")
    assert d1.equals(d2) and not d1.equals(d3)
    assert np.allclose(s1.propensity, np.where(s1.path == 1, 0.75, 0.25))
    assert 10 < (s1.path == 0).sum() < 45


@pytest.mark.parametrize(("policies", "message"), [
    ({}, "rules[0] 'j' steps[0].split.policy: unknown policy 'bandit'; given: none"),
    ({"bandit": EpsilonGreedy(arm_names=("x", "y", "z"))},
     "rules[0] 'j' steps[0].split.policy: policy 'bandit' has 3 arms, the split 2 paths"),
    ({"bandit": "greedy"}, "policies['bandit']: expected a Policy, got str"),
])
def test_policy_splits_need_a_matching_policy(policies: dict, message: str) -> None:
    with pytest.raises(TriggerLabValueError) as info:
        TriggerEngine(POLICY_SPLIT, subscribers=subscribers(SUBS), engine=ENGINE,
                      policies=policies)
    assert str(info.value) == message


def test_trigger_ids_of_journey_steps() -> None:
    _, d = run(cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}]),
               [("ev", [(1, NOON, ADD)], NOON + DAY)])
    assert list(d.trigger_id) == [f"j:1:{NOON}:0", f"j:1:{NOON}:2"]
    assert parse_journey_trigger_id(d.trigger_id[1]) == ("j", 1, NOON, 2)
    assert parse_trigger_id(d.trigger_id[1]) == ("j", 1, NOON)
    assert trigger_id("j", 1, NOON, 2) == d.trigger_id[1]
    assert parse_journey_trigger_id(f"plain:-4:{NOON}") == ("plain", -4, NOON, -1)


@pytest.mark.parametrize(("tid", "message"), [
    (f"j:1:{NOON}", f"trigger_id 'j:1:{NOON}': not the latest send of rule 'j' to subscriber 1"),
    (f"j:1:{NOON}:9", f"trigger_id 'j:1:{NOON}:9': not the latest send of rule 'j' to "
                      "subscriber 1"),
    (f"j:1:{NOON}:x", f"trigger_id: expected '<rule>:<subscriber>:<entered_at>' or "
                      f"'<rule>:<subscriber>:<entered_at>:<step>', got 'j:1:{NOON}:x'"),
    (f"j:1:{NOON}:-2", f"trigger_id: expected '<rule>:<subscriber>:<entered_at>' or "
                       f"'<rule>:<subscriber>:<entered_at>:<step>', got 'j:1:{NOON}:-2'"),
])
def test_failure_reports_of_journey_sends_name_the_latest_send(tid: str, message: str) -> None:
    engine, _ = run(cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}]),
                    [("ev", [(1, NOON, ADD)], NOON)])
    with pytest.raises(TriggerIdError) as info:
        engine.report_failures([tid], NOON + 1)
    assert str(info.value) == message


def test_decisions_of_plain_rule_sets_keep_their_columns() -> None:
    plain = {"rules": [{"id": "p", "type": "cart_abandonment",
                        "when": [{"event": "add_to_cart", "within": "1h"}], "delay": "1h",
                        "expire": "1d"}]}
    for name in ("reference", "fast"):
        e = TriggerEngine(plain, subscribers=subscribers(SUBS), engine=name)
        d = e.process(events((1, NOON, ADD)), until=NOON + DAY)
        assert list(d.to_pandas().columns) == ["trigger_id", "subscriber", "rule", "kind",
                                               "time", "entered_at", "attempt"]
        assert list(d.counts().columns) == ["fire", "cancel", "expire", "suppress"]
        assert d.trigger_id.tolist() == [f"p:1:{NOON}"]


def test_journey_decisions_have_step_path_and_propensity_columns() -> None:
    _, d = run(SPLIT, [("ev", [(1, NOON, ADD)], NOON)])
    df = d.to_pandas()
    assert list(df.columns)[7:] == ["step", "step_label", "path", "path_name", "propensity",
                                    "entry_key"]
    assert list(d.counts().columns) == ["fire", "cancel", "expire", "suppress", "exit", "skip",
                                        "branch", "split"]


def test_attribute_entry_needs_at() -> None:
    e = TriggerEngine(entry_rule({"attribute": {"lifecycle_stage": {"in": ["customer"]}}}),
                      subscribers=subscribers({1: {}}), engine=ENGINE)
    with pytest.raises(TriggerLabValueError, match=r"^at: required when a rule has an "
                                                   r"attribute entry"):
        e.update_subscribers(subscribers({1: {"lifecycle_stage": "customer"}}))


def test_state_dict_round_trip_carries_journeys() -> None:
    data = cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}])
    e = TriggerEngine(data, subscribers=subscribers(SUBS), engine=ENGINE)
    first = e.process(events((1, NOON, ADD)), until=NOON + 30 * M)
    assert e.n_pending() == 1
    again = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(e.state_dict())))
    rest = again.process(events(), until=NOON + DAY)
    assert table(Decisions.concat([first, rest])) == [
        ("fire", 1, at(0), "steps[0]", "", 1), ("fire", 1, at(1), "steps[2]", "", 1)]


def test_catalog_batches_are_checked() -> None:
    e = TriggerEngine(SPLIT, subscribers=subscribers(SUBS), engine=ENGINE)
    e.process(events((1, NOON, ADD)))
    late = CatalogBatch.from_records([{"time": NOON - 1, "type": "price_drop", "product_id": 1,
                                       "old_price": 2.0, "new_price": 1.0}])
    with pytest.raises(Exception, match="catalog events are before the engine clock"):
        e.process(events(), until=NOON, catalog=late)
    with pytest.raises(Exception, match=r"catalog\[0\]\.type: expected one of price_drop, "
                                        r"back_in_stock, got 'sale'"):
        CatalogBatch.from_records([{"time": NOON, "type": "sale", "product_id": 1}])
    assert pd.isna(CatalogBatch.from_records(
        [{"time": NOON, "type": "back_in_stock", "product_id": 1}]).new_price[0])
