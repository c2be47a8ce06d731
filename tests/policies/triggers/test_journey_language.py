"""The journey language: loading, static checks (a table of invalid journeys with their
messages), the compiler's node table, dump/load round trips, the shipped set, and that
rules without ``steps`` load exactly as before journeys."""

from __future__ import annotations

import copy
import doctest
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from journey_strategies import rule_sets
from rules_snapshot import RULE_FIELDS, SETTINGS_FIELDS, snapshot, sources

import policies.triggers.journeys
import policies.triggers.rules_dump
from policies.errors import RuleError, SpecError
from policies.event_schema import EVENT_TYPES
from policies.triggers import (
    Branch,
    BranchCase,
    Email,
    Exit,
    ExitCriterion,
    Journey,
    Predicate,
    Rule,
    RuleSet,
    Send,
    Split,
    SplitPath,
    Wait,
    WaitUntil,
    compile_journey,
    dump_rules,
    load_rules,
)
from policies.triggers.journeys import (
    KIND_EXIT,
    KIND_SEND,
    MAX_STEPS,
    NODE_KINDS,
    AttributeEntry,
    CatalogEntry,
    Goal,
    Inactivity,
    JourneyProgram,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "policies" / "triggers" / "example_journeys.yaml"
#: Stands for the registered event types in expected messages (other tests register more
#: types in the same process, so the list is read when the test runs).
KNOWN = "<known event types>"


def _expected(message: str) -> str:
    return message.replace(KNOWN, ", ".join(EVENT_TYPES.names))


def J(**changes: Any) -> dict[str, Any]:
    """A rule set of one valid journey with ``changes`` applied (``None`` deletes a key)."""
    rule: dict[str, Any] = {
        "id": "j",
        "type": "cart_abandonment",
        "when": [{"event": "add_to_cart", "where": {"cart_value": {"min": 25}},
                  "within": "1h"}],
        "emails": {"a": {"include_cart_items": True}, "b": {}},
        "steps": [{"wait": "1h"}, {"send": "a"}, {"send": "b"}],
    }
    for key, value in changes.items():
        if value is None:
            rule.pop(key, None)
        else:
            rule[key] = value
    return {"rules": [rule]}


def S(*steps: Any, **changes: Any) -> dict[str, Any]:
    """:func:`J` with these steps."""
    return J(steps=list(steps), **changes)


A, B = {"send": "a"}, {"send": "b"}
OPEN = {"events": ["email_open"], "within": "1d"}
INACTIVE = [{"inactive": {"events": ["page_view"], "for": "30d"}}]
CATALOG = [{"catalog": {"event": "price_drop", "audience": {"viewed": "14d"}}}]


def _nested(levels: int) -> list[Any]:
    steps: list[Any] = [A, B]
    for _ in range(levels - 1):
        steps = [{"branch": [{"if": {"segment": {"engagement_score": {"min": 0.1}}},
                              "then": steps}]}]
    return steps


def _deep_label(levels: int) -> str:
    return "steps[0]" + ".branch[0].then[0]" * (levels - 1)


# (id, rules data or YAML text, exact message)
INVALID: list[tuple[str, Any, str]] = [
    # emails
    ("unknown email (the issue's example)",
     S({"wait": "1h"}, A, {"wait": "1d"},
       {"split": {"ab": {"control": 0.5, "discount": 0.5},
                  "paths": {"control": [B], "discount": [{"send": "reminder_9"}]}}}),
     "rules[0].steps[3].split.paths.discount[0].send: unknown email 'reminder_9'; known: a, b"),
    ("unused email", J(emails={"a": {}, "b": {}, "c": {}}),
     "rules[0].emails.c: never sent by any step"),
    ("email content key", J(emails={"a": {"discount": True}, "b": {}}),
     "rules[0].emails.a.discount: unknown key; expected one of include_cart_items, "
     "include_viewed_products, include_similar_products, show_recommendations, "
     "show_social_proof, show_limited_time_offer, apply_urgency, incentive; an email's "
     "discount is 'incentive', a fraction of the order value (0.15: 15 % off)"),
    ("email switch not a bool", J(emails={"a": {"apply_urgency": "yes"}, "b": {}}),
     "rules[0].emails.a.apply_urgency: expected true or false, got 'yes'"),
    ("incentive of 1 or more", J(emails={"a": {"incentive": 1.0}, "b": {}}),
     "rules[0].emails.a.incentive: expected a number in [0, 1), got 1.0"),
    ("negative incentive", J(emails={"a": {"incentive": -0.1}, "b": {}}),
     "rules[0].emails.a.incentive: expected a number in [0, 1), got -0.1"),
    ("incentive not a number", J(emails={"a": {"incentive": True}, "b": {}}),
     "rules[0].emails.a.incentive: expected a number in [0, 1), got True"),
    ("incentive NaN", J(emails={"a": {"incentive": float("nan")}, "b": {}}),
     "rules[0].emails.a.incentive: expected a number in [0, 1), got nan"),
    ("incentive as text", J(emails={"a": {"incentive": "15%"}, "b": {}}),
     "rules[0].emails.a.incentive: expected a number in [0, 1), got '15%'"),
    ("email not a mapping", J(emails={"a": "yes", "b": {}}),
     "rules[0].emails.a: expected a mapping of content switches, got 'yes'"),
    ("emails not a mapping", J(emails=["a", "b"]),
     "rules[0].emails: expected a mapping of email name to content switches, got ['a', 'b']"),
    ("emails missing", J(emails=None), "rules[0].emails: missing"),
    ("email name", S({"send": 5}, emails={5: {}}),
     "rules[0].steps[0].send: expected an email name like 'cart_1', got 5"),
    # reachability, sends, size
    ("step after exit", S(A, "exit", B), "rules[0].steps[2]: unreachable: steps[1] is exit"),
    ("step after a wait_until that always exits",
     S(A, {"wait_until": {**OPEN, "happened": ["exit"], "timed_out": ["exit"]}}, B),
     "rules[0].steps[2]: unreachable: every path of steps[1] ends with exit"),
    ("step after a branch whose every case exits",
     S(A, {"branch": [{"if": {"segment": {"engagement_score": {"min": 0.5}}},
                       "then": [B, "exit"]}, {"else": ["exit"]}]}, B),
     "rules[0].steps[2]: unreachable: every path of steps[1] ends with exit"),
    ("step after exit inside a path",
     S(A, {"split": {"ab": {"x": 0.5, "y": 0.5}, "paths": {"x": ["exit", B], "y": []}}}),
     "rules[0].steps[1].split.paths.x[1]: unreachable: steps[1].split.paths.x[0] is exit"),
    ("no send", S({"wait": "1h"}, "exit", emails={}),
     "rules[0].steps: no send step; a journey sends at least one email"),
    ("no steps", S(emails={}), "rules[0].steps: expected at least one step, got none"),
    ("steps not a list", J(steps={"send": "a"}),
     "rules[0].steps: expected a list of steps, got {'send': 'a'}"),
    ("too many steps", S(*([A] * MAX_STEPS), B),
     "rules[0].steps: expected at most 64 steps in a journey (nested paths included), got 65"),
    ("nested too deep", S(*_nested(9)),
     f"rules[0].{_deep_label(9)}: nested 9 levels deep; at most 8"),
    # step shapes
    ("unknown step kind", S({"notify": "a"}, A, B),
     "rules[0].steps[0].notify: unknown key; expected one of send, wait, wait_until, branch, "
     "split"),
    ("two step kinds", S({"send": "a", "wait": "1h"}, B),
     "rules[0].steps[0]: expected one step kind, got send and wait"),
    ("exit as a mapping", S(A, {"exit": True}, B),
     "rules[0].steps[1].exit: write exit as a plain list item (- exit)"),
    ("a word that is no step", S(A, "stop", B),
     "rules[0].steps[1]: expected a step: exit or a mapping with one of send, wait, "
     "wait_until, branch, split, got 'stop'"),
    ("send with an unknown key", S({"send": "a", "delay": "1h"}, B),
     "rules[0].steps[0].delay: unknown key; expected one of send, expire, smart_sending"),
    ("send smart_sending true", S({"send": "a", "smart_sending": True}, B),
     "rules[0].steps[0].smart_sending: expected a positive duration like '16h', or false, "
     "got True"),
    ("send smart_sending 0s", S({"send": "a", "smart_sending": "0s"}, B),
     "rules[0].steps[0].smart_sending: expected a positive duration like '16h', or false, "
     "got '0s'"),
    ("send expire 0s", S({"send": "a", "expire": "0s"}, B),
     "rules[0].steps[0].expire: expected a positive duration <= 36500d, in seconds, got 0"),
    ("wait 0s", S({"wait": "0s"}, A, B),
     "rules[0].steps[0].wait: expected a positive duration <= 36500d, in seconds, got 0"),
    ("wait beyond 36500d", S({"wait": "36501d"}, A, B),
     "rules[0].steps[0].wait: expected a duration of at most 36500d (100 years), got '36501d'"),
    ("wait with no unit", S({"wait": 30}, A, B),
     "rules[0].steps[0].wait: expected a duration like '30m', got 30"),
    # wait_until
    ("wait_until with no events", S(A, {"wait_until": {"events": [], "within": "1d"}}, B),
     "rules[0].steps[1].wait_until.events: expected at least one event type, got none"),
    ("wait_until unknown event", S(A, {"wait_until": {"events": ["opened"], "within": "1d"}}, B),
     f"rules[0].steps[1].wait_until.events[0]: unknown event type 'opened'; known: {KNOWN}"),
    ("wait_until duplicate event",
     S(A, {"wait_until": {"events": ["email_open", "email_open"], "within": "1d"}}, B),
     "rules[0].steps[1].wait_until.events[1]: duplicate event type 'email_open'"),
    ("wait_until without within", S(A, {"wait_until": {"events": ["email_open"]}}, B),
     "rules[0].steps[1].wait_until.within: missing"),
    ("wait_until within 'soon'", S(A, {"wait_until": {**OPEN, "within": "soon"}}, B),
     "rules[0].steps[1].wait_until.within: expected a duration like '30m', got 'soon'"),
    ("wait_until since", S(A, {"wait_until": {**OPEN, "since": "later"}}, B),
     "rules[0].steps[1].wait_until.since: expected one of step, entry, last_send, got 'later'"),
    ("wait_until since last_send before any send",
     S({"wait_until": {**OPEN, "since": "last_send"}}, A, B),
     "rules[0].steps[0].wait_until.since: 'last_send', but no send comes before this step on "
     "any path"),
    ("wait_until where on a column its events do not carry",
     S(A, {"wait_until": {**OPEN, "where": {"cart_value": {"min": 1}}}}, B),
     "rules[0].steps[1].wait_until.where.cart_value: email_open events carry no 'cart_value'"),
    ("wait_until unknown key", S(A, {"wait_until": {**OPEN, "then": []}}, B),
     "rules[0].steps[1].wait_until.then: unknown key; expected one of events, within, since, "
     "where, happened, timed_out"),
    ("wait_until on an event that exits first",
     S(A, {"wait_until": {"events": ["email_click"], "within": "1d"}}, B,
       exit=[{"event": "email_click"}]),
     "rules[0].steps[1].wait_until.events[0]: 'email_click' ends the journey (exit[0]) before "
     "the wait can see it"),
    ("wait_until on an exclude event",
     S(A, {"wait_until": {"events": ["cart_cleared"], "within": "1d"}}, B,
       exclude=["cart_cleared"]),
     "rules[0].steps[1].wait_until.events[0]: 'cart_cleared' ends the journey (exclude) before "
     "the wait can see it"),
    ("a path that is not a list", S(A, {"wait_until": {**OPEN, "happened": "exit"}}, B),
     "rules[0].steps[1].wait_until.happened: expected a list of steps, got 'exit'"),
    # branch
    ("else not last",
     S(A, {"branch": [{"else": [B]}, {"if": {"segment": {"x": 1}}, "then": []}]}),
     "rules[0].steps[1].branch[0]: else must be the last case"),
    ("two elses",
     S(A, {"branch": [{"if": {"segment": {"x": 1}}, "then": []}, {"else": [B]}, {"else": []}]}),
     "rules[0].steps[1].branch[2]: more than one else"),
    ("only an else", S(A, {"branch": [{"else": [B]}]}),
     "rules[0].steps[1].branch[0]: expected an if case before the else"),
    ("empty branch", S(A, {"branch": []}, B),
     "rules[0].steps[1].branch: expected at least one case, got none"),
    ("branch not a list", S(A, {"branch": {"if": {}}}, B),
     "rules[0].steps[1].branch: expected a list of cases ({if: ..., then: [...]} or "
     "{else: [...]}), got {'if': {}}"),
    ("if without tests", S(A, {"branch": [{"if": {}, "then": [B]}]}),
     "rules[0].steps[1].branch[0].if: expected segment and/or entry tests, got none"),
    ("if with an unknown test", S(A, {"branch": [{"if": {"attribute": {"x": 1}}, "then": [B]}]}),
     "rules[0].steps[1].branch[0].if.attribute: unknown key; expected one of segment, entry"),
    ("case without then", S(A, {"branch": [{"if": {"segment": {"x": 1}}}]}, B),
     "rules[0].steps[1].branch[0].then: missing"),
    ("else with tests", S(A, {"branch": [{"if": {"segment": {"x": 1}}, "then": []},
                                         {"else": [B], "if": {}}]}),
     "rules[0].steps[1].branch[1].if: unknown key; expected one of else"),
    ("branch on an entry property the entry events do not carry",
     S(A, {"branch": [{"if": {"entry": {"time_on_page": {"min": 3}}}, "then": [B]}]}),
     "rules[0].steps[1].branch[0].if.entry.time_on_page: the entry events (add_to_cart) carry "
     "no 'time_on_page'"),
    ("branch on an entry property of an inactive entry",
     S(A, {"branch": [{"if": {"entry": {"cart_value": {"min": 3}}}, "then": [B]}]},
       when=INACTIVE),
     "rules[0].steps[1].branch[0].if.entry: an inactive entry has no entry event; branch on "
     "segment instead"),
    ("branch on a catalog property price_drop does not carry",
     S(A, {"branch": [{"if": {"entry": {"cart_value": {"min": 3}}}, "then": [B]}]},
       when=CATALOG),
     "rules[0].steps[1].branch[0].if.entry.cart_value: price_drop catalog events carry no "
     "'cart_value'"),
    ("branch entry category word unknown",
     S(A, {"branch": [{"if": {"entry": {"link_type": "banner"}}, "then": [B]}]},
       when=[{"event": "email_click", "within": "1h"}]),
     "rules[0].steps[1].branch[0].if.entry.link_type: unknown category 'banner'; known: "
     "product, category, content, cart, unsubscribe, other (add yours with "
     "register_categories)"),
    # split
    ("split weights not summing to 1",
     S(A, {"split": {"ab": {"control": 0.5, "urgency": 0.4},
                     "paths": {"control": [], "urgency": [B]}}}),
     "rules[0].steps[1].split.ab: expected weights summing to 1, got 0.5 + 0.4 = 0.9"),
    ("split weight zero",
     S(A, {"split": {"ab": {"x": 1.0, "y": 0}, "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split.ab.y: expected a positive weight, got 0"),
    ("split weight negative",
     S(A, {"split": {"ab": {"x": 1.5, "y": -0.5}, "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split.ab.y: expected a positive weight, got -0.5"),
    ("split weight a word",
     S(A, {"split": {"ab": {"x": "half", "y": 0.5}, "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split.ab.x: expected a positive weight, got 'half'"),
    ("split weight for no path",
     S(A, {"split": {"ab": {"x": 0.5, "z": 0.5}, "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split.ab.z: no path named 'z' in paths"),
    ("split path without weight",
     S(A, {"split": {"ab": {"x": 1.0}, "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split.ab.y: missing (a split without a policy weighs every path)"),
    ("split with ab and policy",
     S(A, {"split": {"ab": {"x": 0.5, "y": 0.5}, "policy": "p", "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split: expected ab weights or a policy, got both"),
    ("split with neither", S(A, {"split": {"paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split: expected ab weights or a policy, got neither"),
    ("split with one path", S(A, {"split": {"policy": "p", "paths": {"x": [B]}}}),
     "rules[0].steps[1].split.paths: expected at least two paths, got 1"),
    ("split policy name", S(A, {"split": {"policy": "my-policy", "paths": {"x": [], "y": [B]}}}),
     "rules[0].steps[1].split.policy: expected a policy name like 'subject_bandit', got "
     "'my-policy'"),
    ("split path name", S(A, {"split": {"policy": "p", "paths": {"x": [], "a-b": [B]}}}),
     "rules[0].steps[1].split.paths.a-b: expected a path name like 'control', got 'a-b'"),
    ("duplicate path names (YAML)",
     "rules:\n  - id: j\n    type: cart_abandonment\n"
     "    when: [{event: add_to_cart, within: 1h}]\n    emails: {a: {}}\n    steps:\n"
     "      - split:\n          policy: p\n          paths:\n            x: [{send: a}]\n"
     "            x: []\n",
     "source: duplicate key 'x' at line 11 (first at line 10); a key may be given once"),
    # entry kinds
    ("two entry kinds", J(when=[{"event": "add_to_cart", "within": "1h"}, *INACTIVE]),
     "rules[0].when[1]: an inactive entry must be the only item of when (one entry kind per "
     "rule)"),
    ("entry item with another key",
     J(when=[{"inactive": {"events": ["page_view"], "for": "30d"}, "within": "1h"}]),
     "rules[0].when[0].within: unknown key; expected one of inactive"),
    ("inactive without for", J(when=[{"inactive": {"events": ["page_view"]}}]),
     "rules[0].when[0].inactive.for: missing"),
    ("inactive unknown event",
     J(when=[{"inactive": {"events": ["page_view", "visit"], "for": "30d"}}]),
     f"rules[0].when[0].inactive.events[1]: unknown event type 'visit'; known: {KNOWN}"),
    ("inactive attribute name",
     J(when=[{"inactive": {"events": ["page_view"], "for": "30d", "since_attribute": "x y"}}]),
     "rules[0].when[0].inactive.since_attribute: expected a subscriber attribute like "
     "'last_engaged_at', got 'x y'"),
    ("attribute entry without tests", J(when=[{"attribute": {}}]),
     "rules[0].when[0].attribute: expected at least one test, got none"),
    ("catalog event unknown",
     J(when=[{"catalog": {"event": "sale", "audience": {"viewed": "1d"}}}]),
     "rules[0].when[0].catalog.event: unknown catalog event type 'sale'; known: price_drop, "
     "back_in_stock"),
    ("catalog without audience window",
     J(when=[{"catalog": {"event": "price_drop", "audience": {}}}]),
     "rules[0].when[0].catalog.audience: expected a viewed and/or carted window"),
    ("catalog audience unknown key",
     J(when=[{"catalog": {"event": "price_drop", "audience": {"bought": "1d"}}}]),
     "rules[0].when[0].catalog.audience.bought: unknown key; expected one of viewed, carted"),
    ("catalog where on a column back_in_stock lacks",
     J(when=[{"catalog": {"event": "back_in_stock", "audience": {"carted": "7d"},
                          "where": {"old_price": {"min": 10}}}}]),
     "rules[0].when[0].catalog.where.old_price: back_in_stock events carry no 'old_price'"),
    ("exclude with a catalog entry", J(when=CATALOG, exclude=["cart_cleared"]),
     "rules[0].exclude: blocks entry within the conditions' window, so it needs event "
     "conditions in when; with a catalog entry use exit"),
    ("exclude unknown event", J(exclude=["refund"]),
     "rules[0].exclude[0]: unknown event type 'refund'"),
    # exit and goal
    ("match key the exit event does not carry",
     J(exit=[{"event": "email_open", "match": "product_id"}]),
     "rules[0].exit[0].match: email_open events carry no 'product_id'"),
    ("match key the entry events do not carry",
     J(when=[{"event": "checkout_started", "within": "1h"}],
       exit=[{"event": "purchase_completed", "match": "product_id"}]),
     "rules[0].exit[0].match: the entry events (checkout_started) carry no 'product_id'"),
    ("match with an attribute entry",
     J(when=[{"attribute": {"lifecycle_stage": "customer"}}],
       exit=[{"event": "purchase_completed", "match": "product_id"}]),
     "rules[0].exit[0].match: an attribute entry has no entry event, so nothing to match"),
    ("match on a numeric column",
     J(exit=[{"event": "purchase_completed", "match": "cart_value"}]),
     "rules[0].exit[0].match: expected a categorical column such as product_id, got "
     "'cart_value'"),
    ("match key a second exit event does not carry",
     J(exit=[{"event": "purchase_completed", "match": "product_id"},
             {"event": "checkout_started", "match": "category"}]),
     "rules[0].exit[1].match: checkout_started events carry no 'category'"),
    ("two entry keys",
     J(exit=[{"event": "purchase_completed", "match": "product_id"},
             {"event": "product_view", "match": "category"}]),
     "rules[0].exit[1].match: expected the entry key of exit[0].match ('product_id'): a "
     "journey keeps one entry key, got 'category'"),
    ("goal key differs from the exit key",
     J(exit=[{"event": "purchase_completed", "match": "product_id"}],
       goal={"event": "purchase_completed", "within": "7d", "match": "category"}),
     "rules[0].goal.match: expected the entry key of exit[0].match ('product_id'): a journey "
     "keeps one entry key, got 'category'"),
    ("duplicate exit criterion",
     J(exit=[{"event": "unsubscribe"}, {"event": "unsubscribe"}]),
     "rules[0].exit[1]: the same criterion as exit[0]"),
    ("exit where on a column the event does not carry",
     J(exit=[{"event": "email_open", "where": {"cart_value": {"min": 1}}}]),
     "rules[0].exit[0].where.cart_value: email_open events carry no 'cart_value'"),
    ("exit unknown event", J(exit=[{"event": "refund"}]),
     f"rules[0].exit[0].event: unknown event type 'refund'; known: {KNOWN}"),
    ("exit not a list", J(exit={"event": "unsubscribe"}),
     "rules[0].exit: expected a list of exit criteria, got {'event': 'unsubscribe'}"),
    ("goal without within", J(goal={"event": "purchase_completed"}),
     "rules[0].goal.within: missing"),
    ("goal within 0s", J(goal={"event": "purchase_completed", "within": "0s"}),
     "rules[0].goal.within: expected a positive duration <= 36500d, in seconds, got 0"),
    # rule-level keys
    ("delay in a journey", J(delay="1h"), "rules[0].delay: a journey has no delay: wait with a "
     "wait step"),
    ("expire in a journey", J(expire="1d"), "rules[0].expire: a journey has no expire: give a "
     "send step its expire"),
    ("content in a journey", J(content={"apply_urgency": True}),
     "rules[0].content: a journey has no content: give each email its switches under emails"),
    ("emails without steps", J(steps=None),
     "rules[0].steps: missing (a rule with emails is a journey)"),
    ("inactive entry in a plain rule",
     {"rules": [{"id": "p", "type": "reactivation", "when": INACTIVE, "delay": "1h",
                 "expire": "1d"}]},
     "rules[0].steps: missing (a rule with an inactive entry is a journey)"),
    ("unknown rule key", J(stages=[]),
     "rules[0].stages: unknown key; expected one of id, type, when, exclude, exit, goal, "
     "priority, segment, reentry, emails, steps, delay, expire, content"),
    ("reentry", J(reentry="never"),
     "rules[0].reentry: expected 'always', 'once' or {cooldown: 7d}, got 'never'"),
    ("rule id", J(id="cart series"),
     "rules[0].id: expected an identifier like 'cart_abandonment_24h', got 'cart series'"),
    # settings
    ("settings.smart_sending 0s", {**J(), "settings": {"smart_sending": "0s"}},
     "settings.smart_sending: expected a positive duration <= 36500d, in seconds, got 0"),
    ("settings.smart_sending no unit", {**J(), "settings": {"smart_sending": 16}},
     "settings.smart_sending: expected a duration like '30m', got 16"),
]


@pytest.mark.parametrize(("source", "message"), [r[1:] for r in INVALID],
                         ids=[r[0] for r in INVALID])
def test_invalid_journeys_name_the_path(source: Any, message: str) -> None:
    with pytest.raises(RuleError) as info:
        load_rules(copy.deepcopy(source))
    assert str(info.value) == _expected(message)


def test_invalid_table_is_large_and_each_row_distinct() -> None:
    assert len(INVALID) >= 40
    assert len({r[0] for r in INVALID}) == len(INVALID)
    assert len({r[2] for r in INVALID}) >= len(INVALID) - 1  # two rows share a message


def _case(**kw: Any) -> BranchCase:
    return BranchCase(segment=(Predicate("x", "min", 1),), **kw)


# The dataclasses check without the loader (messages relative to the object).
DATACLASS_INVALID: list[tuple[str, Any, str]] = [
    ("duplicate path names",
     lambda: Split((SplitPath("x", (), 0.5), SplitPath("x", (), 0.5))),
     "split.paths.x: duplicate path name"),
    ("policy and weights", lambda: Split((SplitPath("x", (), 0.5), SplitPath("y")), "p"),
     "split.ab.x: a split has ab weights or a policy, not both"),
    ("step of a wrong type", lambda: WaitUntil(("email_open",), 60, happened=("exit",)),
     "wait_until.happened[0]: expected a step (Send, Wait, WaitUntil, Branch, Split or Exit), "
     "got 'exit'"),
    ("else with tests", lambda: BranchCase(segment=(Predicate("x", "min", 1),), otherwise=True),
     "else: an else case has no tests"),
    ("case of a wrong type", lambda: Branch((_case(), "else")),
     "branch[1]: expected a BranchCase, got 'else'"),
    ("duplicate email", lambda: Journey((Send("a"),), (Email("a"), Email("a"))),
     "emails.a: duplicate email name"),
    ("entry of a wrong type", lambda: Journey((Send("a"),), (Email("a"),), entry="inactive"),
     "when: expected an Inactivity, AttributeEntry or CatalogEntry, got 'inactive'"),
    ("wait of a float", lambda: Wait(1.5), "wait: expected a positive duration <= 36500d, in "
     "seconds, got 1.5"),
    ("smart_sending negative", lambda: Send("a", smart_sending=-1),
     "smart_sending: expected a duration <= 36500d in seconds (0: off), or None, got -1"),
    ("catalog window negative", lambda: CatalogEntry("price_drop", viewed=-1),
     "catalog.audience.viewed: expected a duration <= 36500d in seconds, got -1"),
    ("inactivity for 0", lambda: Inactivity(("page_view",), 0),
     "inactive.for: expected a positive duration <= 36500d, in seconds, got 0"),
    ("attribute tests not predicates", lambda: AttributeEntry(("x",)),  # type: ignore[arg-type]
     "attribute: expected Predicate objects, got 'x'"),
    ("goal event", lambda: Goal("buy", 60),
     f"goal.event: unknown event type 'buy'; known: {KNOWN}"),
    ("exit match unknown column", lambda: ExitCriterion("purchase_completed", match="sku"),
     "match: expected a categorical column such as product_id, got 'sku'"),
    ("journey delay", lambda: Rule("r", "cart_abandonment", (), 60, 60, journey=Journey(
        (Send("a"),), (Email("a"),), entry=AttributeEntry((Predicate("x", "min", 1),)))),
     "delay: a journey has none (use a wait step), got 60"),
    ("journey with entry and conditions", lambda: Rule(
        "r", "cart_abandonment", load_rules(J()).rules[0].when, 0, 0,
        journey=Journey((Send("a"),), (Email("a"),), entry=AttributeEntry(
            (Predicate("x", "min", 1),)))),
     "when: one entry kind per rule: event conditions or an attribute entry, got both"),
    ("plain rule without conditions", lambda: Rule("r", "cart_abandonment", (), 0, 0),
     "when: expected at least one condition, got none"),
    ("journey not a Journey", lambda: Rule("r", "cart_abandonment", (), 0, 0, journey="x"),
     "journey: expected a Journey, got 'x'"),
    ("settings smart_sending bool", lambda: __import__("policies.triggers").triggers.Settings(
        smart_sending=True), "smart_sending: expected a positive duration <= 36500d, in "
     "seconds, got True"),
]


@pytest.mark.parametrize(("make", "message"), [r[1:] for r in DATACLASS_INVALID],
                         ids=[r[0] for r in DATACLASS_INVALID])
def test_invalid_dataclasses(make: Any, message: str) -> None:
    with pytest.raises(RuleError) as info:
        make()
    assert str(info.value) == _expected(message)


# ---------------------------------------------------------------------------
# rules without steps: exactly as before


def test_every_shipped_rule_set_loads_exactly_as_before_journeys() -> None:
    """tests/data/rules_snapshot.json was written by the code before journeys (see
    rules_snapshot.py); no plain rule may gain a journey or smart sending."""
    before = json.loads((ROOT / "tests" / "data" / "rules_snapshot.json").read_text())
    assert snapshot() == before
    for data in sources().values():
        rs = load_rules(data)
        assert rs.settings.smart_sending is None
        for rule in rs.rules:
            assert rule.journey is None
            assert rule == Rule(**{f: getattr(rule, f) for f in RULE_FIELDS})
    assert len(before) >= 10 and SETTINGS_FIELDS


@pytest.mark.parametrize("label", sorted(json.loads(
    (ROOT / "tests" / "data" / "rules_snapshot.json").read_text())))
def test_dump_and_load_round_trip_shipped_rule_sets(label: str) -> None:
    rs = load_rules(sources()[label])
    assert load_rules(dump_rules(rs)) == rs


# ---------------------------------------------------------------------------
# the compiler


def _edges(prog: JourneyProgram, node: int) -> list[int]:
    if prog.n_paths[node]:
        lo = int(prog.first_path[node])
        return [int(s) for s in prog.path_start[lo:lo + int(prog.n_paths[node])]]
    if prog.kind[node] == KIND_EXIT:
        return [-1]
    return [int(prog.next[node])]


def _all_paths(prog: JourneyProgram) -> tuple[list[int], set[int]]:
    """Brute force: the number of sends on every path from node 0 to the end, and the
    nodes visited."""
    counts: list[int] = []
    seen: set[int] = set()

    def walk(node: int, sends: int, on_path: frozenset[int]) -> None:
        if node == -1:
            counts.append(sends)
            return
        assert node not in on_path, "a loop"
        assert len(on_path) <= len(prog)
        seen.add(node)
        sends += int(prog.kind[node] == KIND_SEND)
        for nxt in _edges(prog, node):
            walk(nxt, sends, on_path | {node})

    walk(0, 0, frozenset())
    return counts, seen


def _resolve(raw: Any, label: str) -> Any:
    """The raw YAML object at ``label`` (``steps[3].split.paths.discount[0]``), or KeyError."""
    obj = raw
    for name, index in re.findall(r"(\w+)|\[(\d+)\]", label):
        obj = obj[int(index)] if index else obj[name]
    return obj


def _raw_kind(raw_step: Any) -> str:
    return "exit" if raw_step == "exit" else next(k for k in NODE_KINDS if k in raw_step)


def check_program(raw_rule: dict[str, Any], prog: JourneyProgram) -> None:
    """Every consistency property of a compiled journey against its YAML."""
    n = len(prog)
    assert 1 <= n <= MAX_STEPS and 1 <= prog.max_depth <= 8
    assert len(set(prog.labels)) == n and len(set(prog.path_labels)) == len(prog.path_names)
    for col in (prog.arg, prog.next, prog.first_path, prog.n_paths, prog.depth, prog.events,
                prog.since, prog.expire, prog.smart_sending):
        assert col.shape == (n,)
    # labels: each names the YAML step of the node's kind; depth = nesting
    index = {label: i for i, label in enumerate(prog.labels)}
    for i, label in enumerate(prog.labels):
        assert NODE_KINDS[prog.kind[i]] == _raw_kind(_resolve(raw_rule, label))
        assert prog.depth[i] == label.count("[") - label.count(".branch[")
    # structured flow: next = the following step of the same list, else the holder's next
    for i, label in enumerate(prog.labels):
        prefix, k = re.fullmatch(r"(.*)\[(\d+)\]", label).groups()  # type: ignore[union-attr]
        sibling = f"{prefix}[{int(k) + 1}]"
        if prog.kind[i] == KIND_EXIT:
            want = -1
        elif sibling in index:
            want = index[sibling]
        elif prefix == "steps":
            want = -1
        else:
            holder = next(p for p in range(len(prog.path_labels))
                          if prog.path_labels[p] == prefix)
            want = int(prog.next[prog.path_node[holder]])
        assert prog.next[i] == want, label
    # paths: start at their first step, or where the holder continues when empty
    for p, label in enumerate(prog.path_labels):
        holder = int(prog.path_node[p])
        assert prog.first_path[holder] <= p < prog.first_path[holder] + prog.n_paths[holder]
        first = f"{label}[0]"
        want = index[first] if first in index else int(prog.next[holder])
        assert prog.path_start[p] == want
    counts, seen = _all_paths(prog)
    assert seen == set(range(n)), "unreachable nodes"
    assert prog.max_sends == max(counts)
    n_sends = json.dumps(raw_rule["steps"]).count('{"send": ')
    assert max(counts) <= n_sends


@given(rule_sets())
def test_generated_journeys_load_compile_and_are_consistent(data: dict[str, Any]) -> None:
    rs = load_rules(copy.deepcopy(data))
    for raw_rule, rule in zip(data["rules"], rs.rules, strict=True):
        if "steps" not in raw_rule:
            assert rule.journey is None
            continue
        assert rule.journey is not None
        check_program(raw_rule, compile_journey(rule))
    assert load_rules(dump_rules(rs)) == rs
    assert load_rules(yaml.safe_dump(dump_rules(rs), sort_keys=False)) == rs
    assert pickle.loads(pickle.dumps(rs)) == rs


def _terminate(steps: list[Any]) -> list[Any]:
    return [*steps, "exit"]


@given(rule_sets(max_journeys=1, plain=False), st.data())
def test_mutations_of_valid_journeys_are_caught(data: dict[str, Any], extra: Any) -> None:
    rule = data["rules"][0]
    emails, steps = rule["emails"], rule["steps"]
    # a step after a terminating step is unreachable
    bad = copy.deepcopy(data)
    bad["rules"][0]["steps"] = [*_terminate(steps), {"send": next(iter(emails))}]
    with pytest.raises(RuleError, match=r"^rules\[0\]\.steps\[\d+\]: unreachable: "):
        load_rules(bad)
    # an email nobody sends
    bad = copy.deepcopy(data)
    bad["rules"][0]["emails"]["never_sent"] = {}
    with pytest.raises(RuleError, match=r"^rules\[0\]\.emails\.never_sent: never sent"):
        load_rules(bad)
    # a send of an email that is not declared
    bad = copy.deepcopy(data)
    name = extra.draw(st.sampled_from(sorted(emails)))
    del bad["rules"][0]["emails"][name]
    with pytest.raises(RuleError, match=rf"\.send: unknown email '{name}'"):
        load_rules(bad)


def test_compiled_design_example() -> None:
    rs = load_rules(S(
        {"wait": "1h"}, A,
        {"wait_until": {"events": ["email_open", "email_click"], "within": "24h",
                        "since": "last_send", "happened": ["exit"], "timed_out": [B]}},
        {"wait": "48h"},
        {"branch": [{"if": {"segment": {"price_sensitivity": {"min": 0.6}}}, "then": [B]},
                    {"if": {"entry": {"cart_value": {"min": 100}}}, "then": [A]}]},
        {"split": {"ab": {"control": 0.25, "urgency": 0.75},
                   "paths": {"control": [A], "urgency": [{"send": "b", "expire": "2h",
                                                          "smart_sending": False}]}}},
        exit=[{"event": "purchase_completed", "match": "product_id"}]))
    prog = compile_journey(rs.rules[0])
    assert [NODE_KINDS[k] for k in prog.kind] == [
        "wait", "send", "wait_until", "exit", "send", "wait", "branch", "send", "send",
        "split", "send", "send"]
    assert prog.next.tolist() == [1, 2, 5, -1, 5, 6, 9, 9, 9, -1, -1, -1]
    assert prog.arg.tolist() == [3600, 0, 86400, 0, 1, 172800, 0, 1, 0, 0, 0, 1]
    codes = [EVENT_TYPES.code("email_open"), EVENT_TYPES.code("email_click")]
    assert prog.events[2] == sum(1 << c for c in codes) and prog.since[2] == 2
    assert prog.path_names == ("happened", "timed_out", "case0", "case1", "else", "control",
                               "urgency")
    assert prog.path_labels[4] == "steps[4].branch.else"  # implicit: nothing matched
    assert prog.path_start.tolist() == [3, 4, 7, 8, 9, 10, 11]
    assert prog.path_weight[5:].tolist() == [0.25, 0.75]
    assert prog.labels[11] == "steps[5].split.paths.urgency[0]"
    assert (prog.expire[11], prog.smart_sending[11], prog.smart_sending[10]) == (7200, 0, -1)
    assert prog.path_entry[3] == (Predicate("cart_value", "min", 100),)
    assert prog.max_sends == 4 and prog.max_depth == 2
    assert prog.event_types == {"add_to_cart", "email_open", "email_click",
                                "purchase_completed"}


# ---------------------------------------------------------------------------
# the shipped set, the engines, specs, validate, docs


def test_example_journeys_load_and_compile() -> None:
    rs = load_rules(EXAMPLES)
    assert rs.ids == ("cart_series", "winback", "price_drop_alert", "welcome_series")
    progs = {r.id: compile_journey(r) for r in rs.rules}
    assert {k: p.max_sends for k, p in progs.items()} == {
        "cart_series": 3, "winback": 2, "price_drop_alert": 1, "welcome_series": 3}
    assert isinstance(rs["winback"].journey.entry, Inactivity)  # type: ignore[union-attr]
    assert progs["price_drop_alert"].catalog_events == {"price_drop"}
    assert isinstance(rs["welcome_series"].journey.entry,  # type: ignore[union-attr]
                      AttributeEntry)
    kinds = {NODE_KINDS[k] for p in progs.values() for k in p.kind}
    assert kinds == {"send", "wait", "wait_until", "branch", "split", "exit"}
    assert rs.settings.smart_sending == 16 * 3600
    assert load_rules(dump_rules(rs)) == rs


def test_specs_accept_journeys_and_refuse_what_a_simulation_cannot_run() -> None:
    from experiments.spec import spec_from_dict

    arms = [{"name": "a"}, {"name": "b"}]
    spec = spec_from_dict({"name": "j", "seed": 1, "rules": J(), "arms": arms})
    assert spec.rules is not None
    plain = {**J(steps=None, emails=None, delay="1h", expire="1d"),
             "settings": {"smart_sending": "1h"}}
    spec_from_dict({"name": "j", "seed": 1, "rules": plain, "arms": arms})
    split = J(steps=[{"split": {"policy": "subject_bandit",
                                "paths": {"x": [{"send": "a"}], "y": [{"send": "b"}]}}}],
              emails={"a": {}, "b": {}})
    with pytest.raises(SpecError, match=(
            r"^rules: rules\[0\]\.steps\[0\]\.split\.policy: a split by policy "
            r"\('subject_bandit'\) runs in TriggerEngine and the service \(serve "
            r"--split-policy\), not in a simulation: give the split ab weights")):
        spec_from_dict({"name": "j", "seed": 1, "rules": split, "arms": arms})


def test_validate_prints_each_journeys_bound(capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.cli import main

    assert main(["validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "journeys: cart_series (7 steps, at most 3 sends per entry), winback (6 steps, " \
           "at most 2 sends per entry), price_drop_alert (1 step, at most 1 send per entry)" in out
    assert "not yet" not in out


def test_trigger_demo_runs_the_shipped_journeys(capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.cli import main

    assert main(["trigger-demo", "--rules", str(EXAMPLES), "--subscribers", "500",
                 "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "cart_series" in out and "welcome_series" in out


def test_rules_with_journeys_are_immutable_and_picklable() -> None:
    rs = load_rules(EXAMPLES)
    assert pickle.loads(pickle.dumps(rs)) == rs
    rule = rs.rules[0]
    with pytest.raises(AttributeError):
        rule.journey.steps = ()  # type: ignore[misc,union-attr]
    assert rule.journey.content("cart_nudge") == {  # type: ignore[union-attr]
        "include_cart_items": True, "apply_urgency": True}
    prog = compile_journey(rule)
    again = pickle.loads(pickle.dumps(prog))
    assert again.labels == prog.labels and (again.next == prog.next).all()
    assert Exit() == Exit() and isinstance(rule.journey.steps[0], Wait)  # type: ignore[union-attr]


def test_compile_needs_a_journey() -> None:
    plain = load_rules(J(steps=None, emails=None, delay="1h", expire="1d")).rules[0]
    with pytest.raises(RuleError, match=r"^j: not a journey \(a rule without steps\)$"):
        compile_journey(plain)
    assert RuleSet((plain,)).rules[0].window == 3600


@pytest.mark.parametrize("module", [policies.triggers.journeys, policies.triggers.rules_dump])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_catalog_entry_types() -> None:
    entry = CatalogEntry("back_in_stock", carted=86400,
                         where=(Predicate("new_price", "max", 50),))
    assert entry.viewed == 0
