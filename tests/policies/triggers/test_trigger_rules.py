"""Rule loading: the schema, the reference rules, and a table of invalid rules."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from policies.errors import RuleError
from policies.event_schema import category_code
from policies.triggers import (
    Condition,
    Predicate,
    Rule,
    default_rules,
    format_duration,
    load_rules,
    parse_duration,
)

YAML = """
rules:
  - id: cart_abandonment_24h
    type: cart_abandonment
    when:
      - event: add_to_cart
        where: {cart_value: {min: 25}}
        within: 60m
        count: 1
    exclude: [purchase_completed, cart_cleared]
    delay: 24h
    expire: 3d
    priority: 10
    segment:
      lifecycle_stage: {in: [prospect, customer]}
      engagement_score: {min: 0.3}
    reentry: always
    content: {include_cart_items: true, show_recommendations: true, apply_urgency: false}
settings:
  frequency_cap: {max: 1, per: 24h}
  quiet_hours: {start: "22:00", end: "08:00"}
  retry: {max_attempts: 3, backoff: 30m}
"""


def base() -> dict[str, Any]:
    """A valid rule set as a dict (deep-copied by each caller)."""
    return {
        "rules": [
            {
                "id": "a",
                "type": "cart_abandonment",
                "when": [{"event": "add_to_cart", "within": "60m"}],
                "delay": "1h",
                "expire": "2h",
            },
            {
                "id": "b",
                "type": "browse_abandonment",
                "when": [{"event": "product_view", "within": "2h", "count": 3}],
                "delay": "2h",
                "expire": "1d",
            },
        ]
    }


def test_issue_example_loads_with_every_field() -> None:
    rs = load_rules(YAML)
    (rule,) = rs.rules
    assert rule.when == (
        Condition("add_to_cart", within=3600, count=1, where=(Predicate("cart_value", "min", 25),)),
    )
    assert (rule.delay, rule.expire, rule.priority) == (86400, 3 * 86400, 10)
    assert rule.exclude == ("purchase_completed", "cart_cleared")
    assert rule.segment == (
        Predicate("lifecycle_stage", "in", ("prospect", "customer")),
        Predicate("engagement_score", "min", 0.3),
    )
    assert rule.content["include_cart_items"] is True
    assert rs.settings.frequency_cap is not None and rs.settings.frequency_cap.per == 86400
    assert rs.settings.quiet_hours is not None
    assert (rs.settings.quiet_hours.start, rs.settings.quiet_hours.end) == (22 * 60, 8 * 60)
    assert (rs.settings.retry.max_attempts, rs.settings.retry.backoff) == (3, 1800)


def test_path_string_and_dict_sources_agree(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(YAML, encoding="utf-8")
    import yaml

    assert load_rules(path) == load_rules(str(path)) == load_rules(YAML)
    assert load_rules(yaml.safe_load(YAML)) == load_rules(YAML)


def test_default_rules_are_the_three_reference_rules() -> None:
    rs = default_rules()
    assert rs.ids == ("cart_abandonment_24h", "browse_abandonment_2h", "engagement_momentum")
    cart, browse, momentum = rs.rules
    assert (cart.delay, cart.expire, cart.priority) == (86400, 259200, 10)
    assert (browse.when[0].count, browse.when[0].within, browse.delay) == (3, 7200, 7200)
    assert browse.segment[1] == Predicate("days_since_engagement", "max", 14)
    assert momentum.when[0].where == (
        Predicate("link_type", "equals", category_code("link_type", "product")),
    )
    assert [c.within for c in momentum.when] == [1800, 900]
    assert (momentum.delay, momentum.expire, momentum.priority) == (900, 10800, 15)
    assert momentum.exclude == ()
    assert rs.content("cart_abandonment_24h")["include_cart_items"] is True


def test_rules_are_immutable_picklable_and_stored_unchanged() -> None:
    rs = default_rules()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rs.rules[0].delay = 5  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(rs)) == rs
    when = (Condition("add_to_cart", 60),)
    rule = Rule("x", "cart_abandonment", when, delay=0, expire=10)
    assert rule.when is when


def test_reentry_forms() -> None:
    for raw, expected in [("always", ("always", 0)), ("once", ("once", 0)),
                          ({"cooldown": "7d"}, ("cooldown", 7 * 86400))]:
        d = base()
        d["rules"][0]["reentry"] = raw
        rule = load_rules(d).rules[0]
        assert (rule.reentry, rule.cooldown) == expected


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 259200), ("0s", 0)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def _set(path: str, value: Any) -> dict[str, Any]:
    """``base()`` with the field at a dotted/indexed ``path`` set (or deleted if ...)."""
    d = copy.deepcopy(base())
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    node: Any = d
    for k in keys[:-1]:
        node = node.setdefault(k, {}) if isinstance(k, str) else node[k]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


INVALID = [
    (_set("rules.1.when.0.within", "soon"),
     r"^rules\[1\]\.when\[0\]\.within: expected a duration like '30m', got 'soon'$"),
    (_set("rules.0.delay", 30), r"^rules\[0\]\.delay: expected a duration like '30m', got 30$"),
    (_set("rules.0.expire", "30m"), r"^rules\[0\]\.expire: expected at least the delay"),
    (_set("rules.0.colour", "red"), r"^rules\[0\]\.colour: unknown key; expected one of id"),
    (_set("rules.0.when.0.wihtin", "5m"), r"^rules\[0\]\.when\[0\]\.wihtin: unknown key"),
    (_set("rules.0.when.0.within", ...), r"^rules\[0\]\.when\[0\]\.within: missing$"),
    (_set("rules.0.id", ...), r"^rules\[0\]\.id: missing$"),
    (_set("rules.0.type", "spam"), r"^rules\[0\]\.type: expected one of cart_abandonment"),
    (_set("rules.0.id", "b"), r"^rules\[1\]\.id: duplicate rule id 'b'$"),
    (_set("rules.0.id", "has space"), r"^rules\[0\]\.id: expected an identifier"),
    (_set("rules.0.when", []), r"^rules\[0\]\.when: expected a non-empty list"),
    (_set("rules.0.when.0.event", "teleport"),
     r"^rules\[0\]\.when\[0\]\.event: unknown event type 'teleport'"),
    (_set("rules.0.when.0.count", 0),
     r"^rules\[0\]\.when\[0\]\.count: expected an integer >= 1, got 0$"),
    (_set("rules.0.when.0.count", "two"),
     r"^rules\[0\]\.when\[0\]\.count: expected an integer, got 'two'$"),
    (_set("rules.0.when.0.where", {"cart_value": {"min": "lots"}}),
     r"^rules\[0\]\.when\[0\]\.where\.cart_value\.min: expected a number, got 'lots'$"),
    (_set("rules.0.when.0.where", {"cart_value": {"above": 3}}),
     r"^rules\[0\]\.when\[0\]\.where\.cart_value\.above: unknown key; expected one of min, max"),
    (_set("rules.0.when.0.where", {"link_type": "carrier_pigeon"}),
     r"^rules\[0\]\.when\[0\]\.where\.link_type: unknown category 'carrier_pigeon'"),
    (_set("rules.0.when.0.where", {"link_type": {"in": []}}),
     r"^rules\[0\]\.when\[0\]\.where\.link_type\.in: expected a non-empty list"),
    # a range no value can pass (the rule would validate and never fire)
    (_set("rules.0.when.0.where", {"cart_value": {"min": 50, "max": 10}}),
     r"^rules\[0\]\.when\[0\]\.where\.cart_value: expected min <= max \(no value can "
     r"pass\), got min 50 and max 10$"),
    (_set("rules.0.when.0.where", {"cart_value": {"max": 0.5, "min": 0.75}}),
     r"^rules\[0\]\.when\[0\]\.where\.cart_value: expected min <= max"),
    (_set("rules.0.segment", {"engagement_score": {"min": 0.9, "max": 0.1}}),
     r"^rules\[0\]\.segment\.engagement_score: expected min <= max \(no value can pass\)"),
    (_set("rules.0.when.0.where", {"time": {"min": 3}}),
     r"^rules\[0\]\.when\[0\]\.where\.time: core column"),
    (_set("rules.0.exclude", ["add_to_cart"]),
     r"^rules\[0\]\.exclude\[0\]: 'add_to_cart' is also a 'when' event"),
    (_set("rules.0.exclude", ["nope"]), r"^rules\[0\]\.exclude\[0\]: unknown event type 'nope'"),
    (_set("rules.0.exclude", "purchase_completed"), r"^rules\[0\]\.exclude: expected a list"),
    (_set("rules.0.priority", 1.5), r"^rules\[0\]\.priority: expected an integer, got 1\.5$"),
    (_set("rules.0.reentry", "twice"),
     r"^rules\[0\]\.reentry: expected 'always', 'once' or \{cooldown: 7d\}, got 'twice'$"),
    (_set("rules.0.reentry", {"cooldown": "0s"}),
     r"^rules\[0\]\.reentry\.cooldown: expected a positive duration"),
    (_set("rules.0.reentry", {"wait": "1d"}), r"^rules\[0\]\.reentry\.wait: unknown key"),
    (_set("rules.0.segment", {"engagement_score": {"min": None}}),
     r"^rules\[0\]\.segment\.engagement_score\.min: expected a number, got None$"),
    (_set("rules.0.segment", ["x"]), r"^rules\[0\]\.segment: expected a mapping"),
    (_set("rules.0.content", {"include_cart_items": "yes"}),
     r"^rules\[0\]\.content\.include_cart_items: expected true or false, got 'yes'$"),
    (_set("rules.0.content", {"font": True}), r"^rules\[0\]\.content\.font: unknown key"),
    (_set("settings", {"frequency_cap": {"max": 0, "per": "1d"}}),
     r"^settings\.frequency_cap\.max: expected an integer in 1\.\.64, got 0$"),
    (_set("settings", {"frequency_cap": {"max": 1}}), r"^settings\.frequency_cap\.per: missing$"),
    (_set("settings", {"quiet_hours": {"start": "25:00", "end": "08:00"}}),
     r"^settings\.quiet_hours\.start: expected a clock time like '22:00', got '25:00'$"),
    (_set("settings", {"quiet_hours": {"start": "08:00", "end": "08:00"}}),
     r"^settings\.quiet_hours\.end: expected a time different from start"),
    (_set("settings", {"retry": {"max_attempts": 3, "backoff": "later"}}),
     r"^settings\.retry\.backoff: expected a duration like '30m', got 'later'$"),
    (_set("settings", {"throttle": 1}), r"^settings\.throttle: unknown key"),
    ({"rulez": []}, r"^rulez: unknown key; expected one of rules, settings$"),
    ({"rules": []}, r"^rules: expected a non-empty list of rules"),
    ({"rules": ["x"]}, r"^rules\[0\]: expected a mapping, got 'x'$"),
    ("rules: [unclosed", r"^source: not valid YAML"),
    ("missing_file.yaml", r"missing_file\.yaml: no such rules file$"),
]


@pytest.mark.parametrize(("source", "message"), INVALID)
def test_invalid_rules_name_the_path(source: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        load_rules(source)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Predicate("x", "min", "a"), r"^x\.min: expected a number"),
        (lambda: Predicate("x", "near", 1), r"^x: expected one of min, max, equals, in"),
        (lambda: Condition("add_to_cart", within=0), r"^within: expected a positive duration"),
        (lambda: Rule("r", "cart_abandonment", (), 0, 1), r"^when: expected at least one"),
        (lambda: Rule("r", "cart_abandonment", (Condition("add_to_cart", 5),), 0, 1,
                      reentry="cooldown"), r"^cooldown: expected > 0 exactly when"),
    ],
)
def test_invalid_dataclass_params(make: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        make()
