"""Reading journey rules (rules with ``steps``) from YAML-shaped data.

:func:`~policies.triggers.load_rules` hands a rule here when :func:`is_journey_data` says
it is one (it has ``steps``, ``emails``, ``exit`` or ``goal``, or an ``inactive``,
``attribute`` or ``catalog`` entry in ``when``); a rule without them is read exactly as
before. This module checks the shape of the YAML (mappings, lists, known keys, durations)
and converts (durations to seconds, category words to codes); the dataclasses of
:mod:`policies.triggers.journeys` check the meaning. Messages carry the full YAML path:
``rules[0].steps[3].split.paths.discount[0].send: unknown email 'reminder_9'; ...``.

The fields a journey shares with a plain rule (event conditions, ``segment``,
``reentry``, ``priority``) are read by the plain loader's own functions, passed in as a
:class:`RuleParsers` (so there is one reader of each and no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.checks import check_duration, check_mapping, expected, one_of
from policies.errors import RuleError
from policies.triggers.journeys import (
    ENTRY_KINDS,
    STEP_KINDS,
    AttributeEntry,
    Branch,
    BranchCase,
    CatalogEntry,
    Email,
    Entry,
    Exit,
    ExitCriterion,
    Goal,
    Inactivity,
    Journey,
    Send,
    Split,
    SplitPath,
    Step,
    Wait,
    WaitUntil,
    entry_phrase,
)
from policies.triggers.ruleset import Condition, Predicate, Rule

__all__ = ["JOURNEY_KEYS", "RuleParsers", "is_journey_data", "parse_journey_rule"]

#: Rule keys only a journey has.
JOURNEY_KEYS: tuple[str, ...] = ("steps", "emails", "exit", "goal")
_RULE_KEYS = ("id", "type", "when", "exclude", "exit", "goal", "priority", "segment",
              "reentry", "emails", "steps")
#: Plain-rule keys a journey does not take, and what to write instead.
_PLAIN_ONLY = {
    "delay": "a journey has no delay: wait with a wait step",
    "expire": "a journey has no expire: give a send step its expire",
    "content": "a journey has no content: give each email its switches under emails",
}
_STEP_WORDS = "exit or a mapping with one of send, wait, wait_until, branch, split"


@dataclass(frozen=True)
class RuleParsers:
    """The plain loader's readers of the fields a journey shares with a plain rule.

    ``condition(path, raw)``, ``predicates(path, raw, *, event, declared=True)``,
    ``reentry(path, raw)`` (``(reentry, cooldown)``) and ``integer(path, raw)``, each raising
    :class:`RuleError` with ``path``.
    """

    condition: Callable[[str, Any], Condition]
    predicates: Callable[..., tuple[Predicate, ...]]
    reentry: Callable[[str, Any], tuple[str, int]]
    integer: Callable[[str, Any], int]


def is_journey_data(raw: Any) -> bool:
    """Whether the raw rule mapping ``raw`` is a journey (see the module docstring)."""
    if not isinstance(raw, Mapping):
        return False
    if any(key in raw for key in JOURNEY_KEYS):
        return True
    when = raw.get("when")
    return isinstance(when, list) and any(_entry_kind(c) for c in when)


def _entry_kind(item: Any) -> str:
    if isinstance(item, Mapping):
        for kind in ENTRY_KINDS:
            if kind in item:
                return kind
    return ""


def _mapping(path: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()
             ) -> dict[str, Any]:
    return check_mapping(path, value, allowed, required, error=RuleError)


def _build(path: str, cls: Any, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs)
    except RuleError as exc:
        raise RuleError(f"{path}.{exc}") from None


def _duration(path: str, value: Any) -> int:
    return check_duration(path, value, error=RuleError)


def _list(path: str, value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise expected(RuleError, path, what, value)
    return value


def parse_journey_rule(path: str, raw: Any, parsers: RuleParsers) -> Rule:
    """The :class:`~policies.triggers.ruleset.Rule` (with its ``journey``) of the raw rule
    mapping ``raw`` at YAML path ``path`` (``rules[0]``)."""
    _mapping(path, raw, _RULE_KEYS + tuple(_PLAIN_ONLY))
    if "steps" not in raw:
        why = next((k for k in JOURNEY_KEYS if k in raw), "")
        why = why or entry_phrase(next(_entry_kind(c) for c in raw["when"] if _entry_kind(c)))
        raise RuleError(f"{path}.steps: missing (a rule with {why} is a journey)")
    for key, hint in _PLAIN_ONLY.items():
        if key in raw:
            raise RuleError(f"{path}.{key}: {hint}")
    d = _mapping(path, raw, _RULE_KEYS, ("id", "type", "when", "steps", "emails"))
    conditions, entry = _parse_when(f"{path}.when", d["when"], parsers)
    exclude = d.get("exclude") or []
    _list(f"{path}.exclude", exclude, "a list of event types")
    journey = _build(
        path,
        Journey,
        steps=_parse_steps(f"{path}.steps", d["steps"], parsers),
        emails=_parse_emails(f"{path}.emails", d["emails"]),
        entry=entry,
        exits=_parse_exits(f"{path}.exit", d.get("exit"), parsers),
        goal=_parse_goal(path, d["goal"]) if d.get("goal") is not None else None,
    )
    reentry, cooldown = parsers.reentry(f"{path}.reentry", d.get("reentry", "always"))
    return _build(
        path,
        Rule,
        id=d["id"],
        type=d["type"],
        when=conditions,
        delay=0,
        expire=0,
        exclude=tuple(exclude),
        priority=parsers.integer(f"{path}.priority", d.get("priority", 0)),
        segment=parsers.predicates(f"{path}.segment", d.get("segment") or {}, event=False),
        reentry=reentry,
        cooldown=cooldown,
        journey=journey,
    )


# ---------------------------------------------------------------------------
# entry


def _parse_when(path: str, raw: Any, parsers: RuleParsers
                ) -> tuple[tuple[Condition, ...], Entry | None]:
    if not isinstance(raw, list) or not raw:
        raise expected(RuleError, path, "a non-empty list: event conditions, or one inactive, "
                       "attribute or catalog entry", raw)
    kinds = [(i, _entry_kind(c)) for i, c in enumerate(raw) if _entry_kind(c)]
    if not kinds:
        return tuple(parsers.condition(f"{path}[{i}]", c) for i, c in enumerate(raw)), None
    i, kind = kinds[0]
    if len(raw) > 1:
        raise RuleError(f"{path}[{i}]: {entry_phrase(kind)} must be the only item of when "
                        "(one entry kind per rule)")
    item = _mapping(f"{path}[0]", raw[0], (kind,))
    return (), _parse_entry(f"{path}[0]", kind, item[kind], parsers)


def _parse_entry(path: str, kind: str, raw: Any, parsers: RuleParsers) -> Entry:
    if kind == "inactive":
        d = _mapping(f"{path}.inactive", raw, ("events", "for", "since_attribute"),
                     ("events", "for"))
        return _build(
            path, Inactivity,
            events=tuple(_list(f"{path}.inactive.events", d["events"], "a list of event types")),
            duration=_duration(f"{path}.inactive.for", d["for"]),
            since_attribute=d.get("since_attribute"),
        )
    if kind == "attribute":
        return _build(path, AttributeEntry,
                      segment=parsers.predicates(f"{path}.attribute", raw or {}, event=False))
    d = _mapping(f"{path}.catalog", raw, ("event", "audience", "where"), ("event", "audience"))
    audience = _mapping(f"{path}.catalog.audience", d["audience"], ("viewed", "carted"))
    windows = {k: _duration(f"{path}.catalog.audience.{k}", v) for k, v in audience.items()}
    return _build(
        path, CatalogEntry, event=d["event"], **windows,
        where=parsers.predicates(f"{path}.catalog.where", d.get("where") or {}, event=True,
                                 declared=False),
    )


# ---------------------------------------------------------------------------
# steps


def _parse_steps(path: str, raw: Any, parsers: RuleParsers) -> tuple[Step, ...]:
    """A step list (``null`` is an empty path)."""
    steps = _list(path, [] if raw is None else raw, "a list of steps")
    return tuple(_parse_step(f"{path}[{i}]", s, parsers) for i, s in enumerate(steps))


def _parse_step(path: str, raw: Any, parsers: RuleParsers) -> Step:
    if raw == "exit":
        return Exit()
    if not isinstance(raw, Mapping) or not raw:
        raise expected(RuleError, path, f"a step: {_STEP_WORDS}", raw)
    kinds = [k for k in STEP_KINDS if k in raw]
    if "exit" in kinds:
        raise RuleError(f"{path}.exit: write exit as a plain list item (- exit)")
    if not kinds:
        key = next(iter(raw))
        raise RuleError(f"{path}.{key}: unknown key; expected {one_of(STEP_KINDS[:-1])}")
    if len(kinds) > 1:
        raise RuleError(f"{path}: expected one step kind, got {' and '.join(kinds)}")
    kind = kinds[0]
    if kind == "send":
        d = _mapping(path, raw, ("send", "expire", "smart_sending"))
        return _build(
            path, Send, email=d["send"],
            expire=None if d.get("expire") is None else _duration(f"{path}.expire", d["expire"]),
            smart_sending=_smart_sending(f"{path}.smart_sending", d.get("smart_sending")),
        )
    value = _mapping(path, raw, (kind,))[kind]
    if kind == "wait":
        return _build(path, Wait, duration=_duration(f"{path}.wait", value))
    if kind == "wait_until":
        w = f"{path}.wait_until"
        d = _mapping(w, value, ("events", "within", "since", "where", "happened", "timed_out"),
                     ("events", "within"))
        return _build(
            path, WaitUntil,
            events=tuple(_list(f"{w}.events", d["events"], "a list of event types")),
            within=_duration(f"{w}.within", d["within"]),
            since=d.get("since", "step"),
            where=parsers.predicates(f"{w}.where", d.get("where") or {}, event=True),
            happened=_parse_steps(f"{w}.happened", d.get("happened"), parsers),
            timed_out=_parse_steps(f"{w}.timed_out", d.get("timed_out"), parsers),
        )
    if kind == "branch":
        cases = _list(f"{path}.branch", value, "a list of cases ({if: ..., then: [...]} or "
                      "{else: [...]})")
        return _build(path, Branch, cases=tuple(
            _parse_case(f"{path}.branch[{i}]", c, parsers) for i, c in enumerate(cases)))
    return _parse_split(path, value, parsers)


def _smart_sending(path: str, raw: Any) -> int | None:
    """A send's ``smart_sending``: absent -> None (engine setting), false -> 0 (off), or a
    positive duration."""
    if raw is None:
        return None
    if raw is False:
        return 0
    seconds = _duration(path, raw) if isinstance(raw, str) else -1
    if seconds <= 0:
        raise expected(RuleError, path, "a positive duration like '16h', or false", raw)
    return seconds


def _parse_case(path: str, raw: Any, parsers: RuleParsers) -> BranchCase:
    if isinstance(raw, Mapping) and "else" in raw:
        d = _mapping(path, raw, ("else",))
        return _build(path, BranchCase, then=_parse_steps(f"{path}.else", d["else"], parsers),
                      otherwise=True)
    d = _mapping(path, raw, ("if", "then"), ("if", "then"))
    tests = _mapping(f"{path}.if", d["if"], ("segment", "entry"))
    return _build(
        path, BranchCase,
        then=_parse_steps(f"{path}.then", d["then"], parsers),
        segment=parsers.predicates(f"{path}.if.segment", tests.get("segment") or {},
                                   event=False),
        entry=parsers.predicates(f"{path}.if.entry", tests.get("entry") or {}, event=True,
                                 declared=False),  # the entry's columns: check_rule
    )


def _parse_split(path: str, raw: Any, parsers: RuleParsers) -> Split:
    s = f"{path}.split"
    d = _mapping(s, raw, ("ab", "policy", "paths"), ("paths",))
    paths = d["paths"]
    if not isinstance(paths, Mapping):
        raise expected(RuleError, f"{s}.paths", "a mapping of path name to steps", paths)
    ab = d.get("ab")
    if ab is not None and not isinstance(ab, Mapping):
        raise expected(RuleError, f"{s}.ab", "a mapping of path name to weight", ab)
    if (ab is None) == (d.get("policy") is None):
        raise RuleError(f"{s}: expected ab weights or a policy, got "
                        f"{'both' if ab is not None else 'neither'}")
    for name in ab or {}:
        if name not in paths:
            raise RuleError(f"{s}.ab.{name}: no path named {name!r} in paths")
    built = tuple(
        _build(f"{s}.paths", SplitPath, name=name,
               steps=_parse_steps(f"{s}.paths.{name}", steps, parsers),
               weight=None if ab is None else ab.get(name))
        for name, steps in paths.items()
    )
    return _build(path, Split, paths=built, policy=d.get("policy"))


# ---------------------------------------------------------------------------
# emails, exit, goal


def _parse_emails(path: str, raw: Any) -> tuple[Email, ...]:
    if not isinstance(raw, Mapping):
        raise expected(RuleError, path, "a mapping of email name to content switches", raw)
    out = []
    for name, content in raw.items():
        content = {} if content is None else content
        if not isinstance(content, Mapping):
            raise expected(RuleError, f"{path}.{name}", "a mapping of content switches",
                           content)
        out.append(_build(path, Email, name=name, content=dict(content)))
    return tuple(out)


def _parse_exits(path: str, raw: Any, parsers: RuleParsers) -> tuple[ExitCriterion, ...]:
    items = _list(path, [] if raw is None else raw, "a list of exit criteria")
    out = []
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        d = _mapping(p, item, ("event", "where", "match"), ("event",))
        out.append(_build(
            p, ExitCriterion, event=d["event"], match=d.get("match"),
            where=parsers.predicates(f"{p}.where", d.get("where") or {}, event=True)))
    return tuple(out)


def _parse_goal(path: str, raw: Any) -> Goal:
    d = _mapping(f"{path}.goal", raw, ("event", "within", "match"), ("event", "within"))
    return _build(path, Goal, event=d["event"], within=_duration(f"{path}.goal.within",
                                                                 d["within"]),
                  match=d.get("match"))
