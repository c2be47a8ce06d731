""":func:`dump_rules`: a rule set back to the YAML-shaped data :func:`load_rules` reads.

``load_rules(dump_rules(rs)) == rs`` for every rule set the loader builds, journeys
included. Durations are written in their shortest exact form (``90m``), clock times as
``"HH:MM"``, categorical event values as their integer codes (which the loader accepts),
and fields at their default are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policies.errors import RuleError
from policies.triggers.durations import format_duration
from policies.triggers.journeys import (
    AttributeEntry,
    Branch,
    CatalogEntry,
    Exit,
    Inactivity,
    Journey,
    Send,
    Split,
    Step,
    Wait,
    WaitUntil,
)
from policies.triggers.ruleset import Condition, Predicate, Rule, RuleSet, Settings

__all__ = ["dump_rules"]


def dump_rules(ruleset: RuleSet) -> dict[str, Any]:
    """The data of ``ruleset`` as ``load_rules`` reads it (a new dict of plain values).

    >>> from policies.triggers import default_rules, load_rules
    >>> data = dump_rules(default_rules())
    >>> data["rules"][0]["delay"], data["settings"]["quiet_hours"]
    ('1d', {'start': '22:00', 'end': '08:00'})
    >>> load_rules(data) == default_rules()
    True
    """
    out: dict[str, Any] = {"rules": [_rule(r) for r in ruleset.rules]}
    settings = _settings(ruleset.settings)
    if settings:
        out["settings"] = settings
    return out


def _predicates(preds: Sequence[Predicate]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in preds:
        ops = out.setdefault(p.column, {})
        if p.op in ops:
            raise RuleError(f"{p.column}.{p.op}: two tests of one kind on a column cannot be "
                            "written in YAML")
        ops[p.op] = list(p.value) if p.op == "in" else p.value
    return out


def _condition(c: Condition) -> dict[str, Any]:
    out: dict[str, Any] = {"event": c.event}
    if c.where:
        out["where"] = _predicates(c.where)
    out["within"] = format_duration(c.within)
    if c.count != 1:
        out["count"] = c.count
    return out


def _rule(r: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "type": r.type}
    j = r.journey
    out["when"] = ([_condition(c) for c in r.when] if j is None or j.entry is None
                   else [_entry(j.entry)])
    if r.exclude:
        out["exclude"] = list(r.exclude)
    if j is None:
        out["delay"] = format_duration(r.delay)
        out["expire"] = format_duration(r.expire)
    else:
        out.update(_journey_keys(j))
    if r.priority:
        out["priority"] = r.priority
    if r.segment:
        out["segment"] = _predicates(r.segment)
    if r.reentry != "always":
        out["reentry"] = ({"cooldown": format_duration(r.cooldown)} if r.reentry == "cooldown"
                          else r.reentry)
    if r.content:
        out["content"] = dict(r.content)
    return out


def _entry(entry: Inactivity | AttributeEntry | CatalogEntry) -> dict[str, Any]:
    if isinstance(entry, Inactivity):
        d: dict[str, Any] = {"events": list(entry.events),
                             "for": format_duration(entry.duration)}
        if entry.since_attribute is not None:
            d["since_attribute"] = entry.since_attribute
        return {"inactive": d}
    if isinstance(entry, AttributeEntry):
        return {"attribute": _predicates(entry.segment)}
    audience = {k: format_duration(v) for k, v in (("viewed", entry.viewed),
                                                   ("carted", entry.carted)) if v}
    d = {"event": entry.event, "audience": audience}
    if entry.where:
        d["where"] = _predicates(entry.where)
    return {"catalog": d}


def _journey_keys(j: Journey) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if j.exits:
        out["exit"] = []
        for x in j.exits:
            d: dict[str, Any] = {"event": x.event}
            if x.where:
                d["where"] = _predicates(x.where)
            if x.match is not None:
                d["match"] = x.match
            out["exit"].append(d)
    if j.goal is not None:
        out["goal"] = {"event": j.goal.event, "within": format_duration(j.goal.within)}
        if j.goal.match is not None:
            out["goal"]["match"] = j.goal.match
    out["emails"] = {e.name: dict(e.content) for e in j.emails}
    out["steps"] = _steps(j.steps)
    return out


def _steps(steps: Sequence[Step]) -> list[Any]:
    return [_step(s) for s in steps]


def _step(s: Step) -> Any:
    if isinstance(s, Exit):
        return "exit"
    if isinstance(s, Send):
        d: dict[str, Any] = {"send": s.email}
        if s.expire is not None:
            d["expire"] = format_duration(s.expire)
        if s.smart_sending is not None:
            d["smart_sending"] = format_duration(s.smart_sending) if s.smart_sending else False
        return d
    if isinstance(s, Wait):
        return {"wait": format_duration(s.duration)}
    if isinstance(s, WaitUntil):
        w: dict[str, Any] = {"events": list(s.events), "within": format_duration(s.within)}
        if s.since != "step":
            w["since"] = s.since
        if s.where:
            w["where"] = _predicates(s.where)
        if s.happened:
            w["happened"] = _steps(s.happened)
        if s.timed_out:
            w["timed_out"] = _steps(s.timed_out)
        return {"wait_until": w}
    if isinstance(s, Branch):
        cases: list[dict[str, Any]] = []
        for c in s.cases:
            if c.otherwise:
                cases.append({"else": _steps(c.then)})
                continue
            tests: dict[str, Any] = {}
            if c.segment:
                tests["segment"] = _predicates(c.segment)
            if c.entry:
                tests["entry"] = _predicates(c.entry)
            cases.append({"if": tests, "then": _steps(c.then)})
        return {"branch": cases}
    assert isinstance(s, Split)
    split: dict[str, Any] = (
        {"policy": s.policy} if s.policy is not None
        else {"ab": {p.name: p.weight for p in s.paths}})
    split["paths"] = {p.name: _steps(p.steps) for p in s.paths}
    return {"split": split}


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _settings(s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.frequency_cap is not None:
        out["frequency_cap"] = {"max": s.frequency_cap.max,
                                "per": format_duration(s.frequency_cap.per)}
    if s.quiet_hours is not None:
        out["quiet_hours"] = {"start": _clock(s.quiet_hours.start),
                              "end": _clock(s.quiet_hours.end)}
    out["retry"] = {"max_attempts": s.retry.max_attempts,
                    "backoff": format_duration(s.retry.backoff)}
    if s.smart_sending is not None:
        out["smart_sending"] = format_duration(s.smart_sending)
    return out
