"""Hypothesis strategies for valid journeys, as the YAML-shaped data ``load_rules`` reads.

:func:`journey_rules` draws one journey rule: every entry kind (event conditions,
inactivity, attribute change, catalog events), every step kind nested up to
``max_depth`` levels (sends with ``expire``/``smart_sending``, waits, wait-untils with
each ``since`` and ``where``, branches on segment and entry properties with and without
``else``, A/B and policy splits, exits), exit criteria with and without a ``match`` key,
goals, segments and re-entry forms. Everything drawn passes the static checks by
construction (no step after an exit, every email used, entry properties carried by the
entry, ``since: last_send`` only after a send, ...). :func:`rule_sets` draws whole rule
sets (journeys beside an optional plain rule, optional ``settings.smart_sending``).

Used by the language tests and, next, by the engines' differential tests: policy splits
name policies ``policy_0`` and ``policy_1`` (:data:`POLICY_NAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from policies.event_schema import event_columns
from policies.triggers.journeys import CATALOG_COLUMNS

__all__ = ["EMAIL_NAMES", "ENTRY_KINDS", "POLICY_NAMES", "journey_rules", "rule_sets"]

#: Names of the emails a drawn journey may send.
EMAIL_NAMES = tuple(f"mail_{i}" for i in range(6))
#: Policies that splits may name.
POLICY_NAMES = ("policy_0", "policy_1")
#: Entry kinds :func:`journey_rules` draws from by default.
ENTRY_KINDS = ("event", "inactive", "attribute", "catalog")

_DURATIONS = ("30m", "1h", "2h", "6h", "1d", "3d")
#: Numeric event columns (min/max tests) and categorical ones (equals/in tests).
_NUMERIC = ("cart_value", "price", "time_on_page", "quantity", "items", "revenue",
            "old_price", "new_price", "drop", "drop_fraction")
_CATEGORICAL = ("product_id", "category", "link_type")
#: Event conditions an event entry draws from (event, where column or None).
_CONDITIONS = (("add_to_cart", "cart_value"), ("product_view", "time_on_page"),
               ("email_click", "link_type"), ("checkout_started", None),
               ("price_check", "price"))
_WAIT_EVENTS = ("email_open", "email_click", "product_view", "add_to_cart", "page_view",
                "checkout_started", "purchase_completed")
_EXIT_EVENTS = ("purchase_completed", "unsubscribe", "cart_cleared", "email_click",
                "checkout_started")
_ACTIVITY = ("page_view", "product_view", "add_to_cart", "purchase_completed", "email_open",
             "email_click")
_TYPES = ("cart_abandonment", "browse_abandonment", "reactivation", "cross_sell",
          "lifecycle_transition", "price_drop", "inventory_alert", "engagement_momentum")


@dataclass
class _Context:
    """What the step generator must respect while drawing one journey."""

    entry_columns: frozenset[str]
    ends: frozenset[str]  # event types that end the journey unconditionally
    budget: int
    max_depth: int
    used: set[str] = field(default_factory=set)


def _event_test(draw: Any, column: str) -> dict[str, Any]:
    if column in _CATEGORICAL:
        if column == "link_type":
            return {column: draw(st.sampled_from(["product", {"in": ["product", "cart"]}]))}
        return {column: draw(st.sampled_from([{"equals": 7}, {"in": [1, 2, 3]}]))}
    bound = draw(st.sampled_from([0, 0.1, 1, 25, 100]))
    op = draw(st.sampled_from(["min", "max"]))
    return {column: {op: bound}}


def _segment(draw: Any) -> dict[str, Any]:
    choices = [
        {"engagement_score": {"min": draw(st.sampled_from([0.1, 0.3, 0.5]))}},
        {"price_sensitivity": {"min": 0.6}},
        {"lifecycle_stage": {"in": ["prospect", "customer"]}},
        {"educational_seeker": {"equals": True}},
        {"days_since_engagement": {"max": 14}},
    ]
    picked = draw(st.lists(st.sampled_from(range(len(choices))), min_size=1, max_size=2,
                           unique=True))
    out: dict[str, Any] = {}
    for i in picked:
        out.update(choices[i])
    return out


def _duration(draw: Any) -> str:
    return draw(st.sampled_from(_DURATIONS))


def _steps(draw: Any, ctx: _Context, depth: int, sent: bool, top: bool = False
           ) -> tuple[list[Any], bool, bool]:
    """Draw a step list: (steps, a send may have happened at its end, every path ends)."""
    n = draw(st.integers(1 if top else 0, 5 if top else 3))
    steps: list[Any] = []
    for _ in range(n):
        if ctx.budget <= 0:
            break
        kinds = ["send", "send", "wait", "exit"]
        if ctx.budget >= 2 and depth < ctx.max_depth:
            kinds += ["wait_until", "branch", "split"]
        kind = draw(st.sampled_from(kinds))
        ctx.budget -= 1
        if kind == "exit":
            steps.append("exit")
            return steps, sent, True
        if kind == "send":
            email = draw(st.sampled_from(EMAIL_NAMES))
            ctx.used.add(email)
            step: dict[str, Any] = {"send": email}
            if draw(st.booleans()):
                step["expire"] = _duration(draw)
            smart = draw(st.sampled_from([None, None, False, "1h", "16h"]))
            if smart is not None:
                step["smart_sending"] = smart
            steps.append(step)
            sent = True
            continue
        if kind == "wait":
            steps.append({"wait": _duration(draw)})
            continue
        results: list[tuple[list[Any], bool, bool]] = []
        if kind == "wait_until":
            events = draw(st.lists(st.sampled_from([e for e in _WAIT_EVENTS
                                                    if e not in ctx.ends]),
                                   min_size=1, max_size=2, unique=True))
            w: dict[str, Any] = {"events": events, "within": _duration(draw)}
            since = draw(st.sampled_from(["step", "entry", "last_send"] if sent
                                         else ["step", "entry"]))
            if since != "step" or draw(st.booleans()):
                w["since"] = since
            carried = sorted(set.union(*(set(event_columns(e) or ()) for e in events))
                             & set(_NUMERIC + _CATEGORICAL))
            if carried and draw(st.booleans()):
                w["where"] = _event_test(draw, draw(st.sampled_from(carried)))
            for key in ("happened", "timed_out"):
                path = _steps(draw, ctx, depth + 1, sent)
                results.append(path)
                if path[0] or draw(st.booleans()):
                    w[key] = path[0]
            steps.append({"wait_until": w})
        elif kind == "branch":
            cases: list[dict[str, Any]] = []
            for _ in range(draw(st.integers(1, 3))):
                tests: dict[str, Any] = {}
                entry_cols = sorted(ctx.entry_columns & set(_NUMERIC + _CATEGORICAL))
                if not entry_cols or draw(st.booleans()):
                    tests["segment"] = _segment(draw)
                if entry_cols and (not tests or draw(st.booleans())):
                    tests["entry"] = _event_test(draw, draw(st.sampled_from(entry_cols)))
                path = _steps(draw, ctx, depth + 1, sent)
                results.append(path)
                cases.append({"if": tests, "then": path[0]})
            if draw(st.booleans()):
                path = _steps(draw, ctx, depth + 1, sent)
                results.append(path)
                cases.append({"else": path[0]})
            else:
                results.append(([], sent, False))  # the implicit else
            steps.append({"branch": cases})
        else:
            names = draw(st.lists(st.sampled_from(["a", "b", "c", "control", "offer"]),
                                  min_size=2, max_size=3, unique=True))
            paths = {}
            for name in names:
                path = _steps(draw, ctx, depth + 1, sent)
                results.append(path)
                paths[name] = path[0]
            split: dict[str, Any]
            if draw(st.booleans()):
                parts = [draw(st.integers(1, 5)) for _ in names]
                split = {"ab": {n: k / sum(parts) for n, k in zip(names, parts, strict=True)}}
            else:
                split = {"policy": draw(st.sampled_from(POLICY_NAMES))}
            split["paths"] = paths
            steps.append({"split": split})
        sent = any(s for _, s, ends in results if not ends)
        if all(ends for _, _, ends in results):
            return steps, sent, True
    return steps, sent, False


def _contains_send(steps: list[Any]) -> bool:
    for s in steps:
        if not isinstance(s, dict):
            continue
        if "send" in s:
            return True
        body = next(iter(s.values()))
        if "wait_until" in s and any(_contains_send(body.get(k, []))
                                     for k in ("happened", "timed_out")):
            return True
        if "branch" in s and any(_contains_send(c.get("then", c.get("else", [])))
                                 for c in body):
            return True
        if "split" in s and any(_contains_send(p) for p in body["paths"].values()):
            return True
    return False


@st.composite
def journey_rules(draw: Any, rule_id: str = "journey", entry_kinds: tuple[str, ...] = ENTRY_KINDS,
                  max_steps: int = 24, max_depth: int = 4) -> dict[str, Any]:
    """One valid journey rule as a raw mapping (an item of ``rules:``)."""
    kind = draw(st.sampled_from(entry_kinds))
    rule: dict[str, Any] = {"id": rule_id, "type": draw(st.sampled_from(_TYPES))}
    columns: frozenset[str]
    if kind == "event":
        picked = draw(st.lists(st.sampled_from(range(len(_CONDITIONS))), min_size=1,
                               max_size=2, unique=True))
        when = []
        for i in picked:
            event, col = _CONDITIONS[i]
            cond: dict[str, Any] = {"event": event, "within": _duration(draw)}
            if col is not None and draw(st.booleans()):
                cond["where"] = _event_test(draw, col)
            if draw(st.booleans()):
                cond["count"] = draw(st.integers(1, 3))
            when.append(cond)
        rule["when"] = when
        entry_events = [c["event"] for c in when]
        columns = frozenset().union(*(event_columns(e) or () for e in entry_events))
        if draw(st.booleans()):
            candidates = [e for e in ("cart_cleared", "unsubscribe", "purchase_completed")
                          if e not in entry_events]
            rule["exclude"] = draw(st.lists(st.sampled_from(candidates), min_size=1,
                                            max_size=2, unique=True))
    elif kind == "inactive":
        inactive: dict[str, Any] = {
            "events": draw(st.lists(st.sampled_from(_ACTIVITY), min_size=1, max_size=3,
                                    unique=True)),
            "for": draw(st.sampled_from(["1d", "7d", "30d"]))}
        if draw(st.booleans()):
            inactive["since_attribute"] = "last_engaged_at"
        rule["when"] = [{"inactive": inactive}]
        columns = frozenset()
    elif kind == "attribute":
        rule["when"] = [{"attribute": _segment(draw)}]
        columns = frozenset()
    else:
        event = draw(st.sampled_from(sorted(CATALOG_COLUMNS)))
        audience = draw(st.sampled_from([{"viewed": "14d"}, {"carted": "7d"},
                                         {"viewed": "14d", "carted": "14d"}]))
        catalog: dict[str, Any] = {"event": event, "audience": audience}
        columns = frozenset(CATALOG_COLUMNS[event])
        if draw(st.booleans()):
            catalog["where"] = _event_test(
                draw, draw(st.sampled_from(sorted(columns - {"product_id"}))))
        rule["when"] = [{"catalog": catalog}]

    # exits: an entry key only when the entry carries it
    keys = sorted(columns & {"product_id", "category"})
    key = draw(st.sampled_from(keys)) if keys and draw(st.booleans()) else None
    exits = []
    for event in draw(st.lists(st.sampled_from(_EXIT_EVENTS), max_size=2, unique=True)):
        x: dict[str, Any] = {"event": event}
        carried = event_columns(event) or frozenset()
        if key is not None and key in carried and draw(st.booleans()):
            x["match"] = key
        elif "revenue" in carried and draw(st.booleans()):
            x["where"] = {"revenue": {"min": 10}}
        exits.append(x)
    if exits:
        rule["exit"] = exits
    ends = frozenset(rule.get("exclude", [])) | frozenset(
        x["event"] for x in exits if len(x) == 1)

    if draw(st.booleans()):
        goal: dict[str, Any] = {"event": "purchase_completed", "within": "7d"}
        used_keys = {x["match"] for x in exits if "match" in x}
        if key is not None and (not used_keys or used_keys == {key}) and draw(st.booleans()):
            goal["match"] = key
        rule["goal"] = goal
    if draw(st.booleans()):
        rule["segment"] = _segment(draw)
    reentry = draw(st.sampled_from([None, "always", "once", {"cooldown": "7d"}]))
    if reentry is not None:
        rule["reentry"] = reentry
    if draw(st.booleans()):
        rule["priority"] = draw(st.integers(-5, 20))

    ctx = _Context(entry_columns=columns, ends=ends, budget=max_steps, max_depth=max_depth)
    steps, _, _ = _steps(draw, ctx, 1, False, top=True)
    if not _contains_send(steps):
        email = draw(st.sampled_from(EMAIL_NAMES))
        ctx.used.add(email)
        steps.insert(0, {"send": email})
    switches = ("include_cart_items", "show_recommendations", "apply_urgency")
    rule["emails"] = {
        name: {k: draw(st.booleans()) for k in switches if draw(st.booleans())}
        for name in EMAIL_NAMES if name in ctx.used
    }
    rule["steps"] = steps
    return rule


_PLAIN = {"id": "plain_cart", "type": "cart_abandonment",
          "when": [{"event": "add_to_cart", "within": "1h"}],
          "exclude": ["purchase_completed"], "delay": "1h", "expire": "1d"}


@st.composite
def rule_sets(draw: Any, max_journeys: int = 3, plain: bool | None = None,
              **journey_kwargs: Any) -> dict[str, Any]:
    """A valid rule set (raw mapping): 1..max_journeys journeys, maybe a plain rule,
    maybe ``settings`` with a frequency cap, quiet hours and smart sending."""
    n = draw(st.integers(1, max_journeys))
    rules = [draw(journey_rules(rule_id=f"journey_{i}", **journey_kwargs)) for i in range(n)]
    if plain if plain is not None else draw(st.booleans()):
        rules.insert(draw(st.integers(0, len(rules))), dict(_PLAIN))
    data: dict[str, Any] = {"rules": rules}
    settings: dict[str, Any] = {}
    if draw(st.booleans()):
        settings["smart_sending"] = draw(st.sampled_from(["1h", "16h"]))
    if draw(st.booleans()):
        settings["frequency_cap"] = {"max": draw(st.integers(1, 3)), "per": "1d"}
    if draw(st.booleans()):
        settings["quiet_hours"] = {"start": "22:00", "end": "08:00"}
    if settings:
        data["settings"] = settings
    return data
