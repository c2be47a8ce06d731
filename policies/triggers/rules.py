"""Trigger rules: immutable dataclasses and the YAML/dict loader with path-named errors.

A rule file looks like this (every key is validated; unknown keys are errors)::

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
        reentry: always                  # always | once | {cooldown: 7d}
        content: {include_cart_items: true}
    settings:
      frequency_cap: {max: 1, per: 24h}
      quiet_hours: {start: "22:00", end: "08:00"}
      retry: {max_attempts: 3, backoff: 30m}

Durations become whole seconds, clock times minutes after midnight, and category words
in ``where`` (``link_type: product``) become the event registry's integer codes, so the
dataclasses hold plain numbers. The dataclass constructors validate but never transform
their arguments.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from policies.checks import (
    check_duration,
    check_int,
    check_mapping,
    expected,
    is_missing,
    is_real,
)
from policies.errors import InvalidEventError, RuleError
from policies.events import EVENT_TYPES, category_code, column_kind
from policies.triggers.durations import parse_clock

__all__ = [
    "CONTENT_KEYS",
    "TRIGGER_TYPES",
    "Condition",
    "FrequencyCap",
    "Predicate",
    "QuietHours",
    "Retry",
    "Rule",
    "RuleSet",
    "Settings",
    "default_rules",
    "load_rules",
    "segment_mask",
]

#: Trigger types (docs/domain.md).
TRIGGER_TYPES: tuple[str, ...] = (
    "cart_abandonment",
    "browse_abandonment",
    "engagement_momentum",
    "reactivation",
    "cross_sell",
    "lifecycle_transition",
    "price_drop",
    "inventory_alert",
)

#: Personalization switches a rule may hand to content (docs/domain.md), all booleans.
CONTENT_KEYS: tuple[str, ...] = (
    "include_cart_items",
    "include_viewed_products",
    "include_similar_products",
    "show_recommendations",
    "show_social_proof",
    "show_limited_time_offer",
    "apply_urgency",
)

_OPS = ("min", "max", "equals", "in")
_REENTRY = ("always", "once", "cooldown")
_RULE_KEYS = (
    "id", "type", "when", "exclude", "delay", "expire", "priority", "segment", "reentry",
    "content",
)
_CONDITION_KEYS = ("event", "where", "within", "count")


# ---------------------------------------------------------------------------
# dataclasses


@dataclass(frozen=True)
class Predicate:
    """One test on a value: ``value >= x`` (min), ``<= x`` (max), ``== x`` (equals), in.

    Parameters
    ----------
    column : str
        Event data column (in ``where``) or subscriber attribute (in ``segment``).
    op : {"min", "max", "equals", "in"}
    value : float, int, str, bool or tuple
        The bound (a number for min/max), the value (equals) or a non-empty tuple (in).
        In ``where`` on categorical columns, values are integer codes.

    A missing value (None, NaN, or -1 in a categorical event column) never matches.
    """

    column: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column.isidentifier():
            raise RuleError(f"expected a column name, got {self.column!r}")
        if self.op not in _OPS:
            raise expected(RuleError, f"{self.column}", "one of min, max, equals, in", self.op)
        if self.op in ("min", "max"):
            if not is_real(self.value):
                raise expected(RuleError, f"{self.column}.{self.op}", "a number", self.value)
        elif self.op == "in":
            if not isinstance(self.value, tuple) or not self.value:
                raise expected(RuleError, f"{self.column}.in", "a non-empty list", self.value)
            for v in self.value:
                _check_scalar(f"{self.column}.in", v)
        else:
            _check_scalar(f"{self.column}.equals", self.value)

    def matches(self, value: Any) -> bool:
        """Whether one scalar ``value`` passes (missing values never do)."""
        if is_missing(value):
            return False
        if self.op == "min":
            return _is_number_like(value) and value >= self.value
        if self.op == "max":
            return _is_number_like(value) and value <= self.value
        if self.op == "equals":
            return bool(value == self.value)
        return any(bool(value == v) for v in self.value)


def _is_number_like(value: Any) -> bool:
    return isinstance(value, numbers.Real)


def _check_scalar(path: str, value: Any) -> None:
    if isinstance(value, str | bool) or is_real(value):
        return
    raise expected(RuleError, path, "a number, string or boolean", value)


@dataclass(frozen=True)
class Condition:
    """At least ``count`` events of type ``event`` passing ``where`` in the last ``within`` s.

    Parameters
    ----------
    event : str
        A registered event type.
    within : int
        Window length in seconds (> 0): events in ``(t - within, t]`` count.
    count : int
        Required number of matching events (>= 1).
    where : tuple of Predicate
        All must hold for an event to match.
    """

    event: str
    within: int
    count: int = 1
    where: tuple[Predicate, ...] = ()

    def __post_init__(self) -> None:
        if self.event not in EVENT_TYPES:
            raise RuleError(
                f"event: unknown event type {self.event!r}; known: {', '.join(EVENT_TYPES.names)}"
            )
        if not isinstance(self.within, int) or isinstance(self.within, bool) or self.within <= 0:
            raise expected(RuleError, "within", "a positive duration", self.within)
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise expected(RuleError, "count", "an integer >= 1", self.count)
        if self.count > 64:
            raise expected(RuleError, "count", "at most 64", self.count)
        for p in self.where:
            if not isinstance(p, Predicate):
                raise expected(RuleError, "where", "Predicate objects", p)


@dataclass(frozen=True)
class Rule:
    """One behavioral trigger rule (see the module docstring for the YAML form).

    Parameters
    ----------
    id : str
        Unique identifier (a Python identifier).
    type : str
        One of :data:`TRIGGER_TYPES`.
    when : tuple of Condition
        All must hold at an event of one of their types for a subscriber to enter.
    delay : int
        Seconds from entry to the scheduled send (>= 0).
    expire : int
        Seconds after entry after which the send may no longer go out (>= delay).
    exclude : tuple of str
        Event types that block entry (within the largest ``within``) and cancel a
        pending instance.
    priority : int
        Higher goes first among sends due at the same time under the frequency cap.
    segment : tuple of Predicate
        Tests on subscriber attributes, all must hold at entry.
    reentry : {"always", "once", "cooldown"}
        ``once``: never re-enter after a fire; ``cooldown``: re-enter only ``cooldown``
        seconds after the last fire.
    cooldown : int
        Seconds (> 0 exactly when ``reentry == "cooldown"``).
    content : mapping of str to bool
        Personalization switches handed to content (keys in :data:`CONTENT_KEYS`).
    """

    id: str
    type: str
    when: tuple[Condition, ...]
    delay: int
    expire: int
    exclude: tuple[str, ...] = ()
    priority: int = 0
    segment: tuple[Predicate, ...] = ()
    reentry: str = "always"
    cooldown: int = 0
    content: Mapping[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.isidentifier():
            raise expected(RuleError, "id", "an identifier like 'cart_abandonment_24h'", self.id)
        if self.type not in TRIGGER_TYPES:
            raise expected(RuleError, "type", f"one of {', '.join(TRIGGER_TYPES)}", self.type)
        if not self.when:
            raise RuleError("when: expected at least one condition, got none")
        for c in self.when:
            if not isinstance(c, Condition):
                raise expected(RuleError, "when", "Condition objects", c)
        for name in ("delay", "expire", "priority", "cooldown"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise expected(RuleError, name, "an integer", v)
        if self.delay < 0:
            raise expected(RuleError, "delay", "a duration >= 0", self.delay)
        if self.expire < self.delay:
            raise RuleError(
                f"expire: expected at least the delay ({self.delay} s), got {self.expire} s"
            )
        when_types = {c.event for c in self.when}
        for i, name in enumerate(self.exclude):
            if name not in EVENT_TYPES:
                raise RuleError(f"exclude[{i}]: unknown event type {name!r}")
            if name in when_types:
                raise RuleError(
                    f"exclude[{i}]: {name!r} is also a 'when' event, the rule could never fire"
                )
        if len(set(self.exclude)) != len(self.exclude):
            raise RuleError(f"exclude: duplicate event types in {list(self.exclude)}")
        if self.reentry not in _REENTRY:
            raise expected(RuleError, "reentry", "'always', 'once' or {cooldown: 7d}", self.reentry)
        if (self.reentry == "cooldown") != (self.cooldown > 0) or self.cooldown < 0:
            raise expected(RuleError, "cooldown", "> 0 exactly when reentry is 'cooldown'",
                           self.cooldown)
        for key, value in self.content.items():
            if key not in CONTENT_KEYS:
                raise RuleError(
                    f"content.{key}: unknown key; expected one of {', '.join(CONTENT_KEYS)}"
                )
            if not isinstance(value, bool):
                raise expected(RuleError, f"content.{key}", "true or false", value)

    @property
    def window(self) -> int:
        """The largest ``within`` of the rule's conditions, in seconds (exclusion window)."""
        return max(c.within for c in self.when)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max`` sends per subscriber in any rolling ``per`` seconds, over all rules."""

    max: int
    per: int

    def __post_init__(self) -> None:
        if not isinstance(self.max, int) or isinstance(self.max, bool) or not 1 <= self.max <= 64:
            raise expected(RuleError, "max", "an integer in 1..64", self.max)
        if not isinstance(self.per, int) or self.per <= 0:
            raise expected(RuleError, "per", "a positive duration", self.per)


@dataclass(frozen=True)
class QuietHours:
    """No sends from ``start`` to ``end`` (minutes after midnight, subscriber local time).

    ``start > end`` wraps midnight (22:00-08:00). A send due inside is postponed to ``end``.
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1440:
                raise expected(RuleError, name, "minutes after midnight in 0..1439", v)
        if self.start == self.end:
            raise expected(RuleError, "end", "a time different from start", self.end)


@dataclass(frozen=True)
class Retry:
    """A failed send is retried ``backoff`` x attempt seconds later, at most ``max_attempts``."""

    max_attempts: int = 3
    backoff: int = 1800

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or not 1 <= self.max_attempts <= 100:
            raise expected(RuleError, "max_attempts", "an integer in 1..100", self.max_attempts)
        if not isinstance(self.backoff, int) or self.backoff <= 0:
            raise expected(RuleError, "backoff", "a positive duration", self.backoff)


@dataclass(frozen=True)
class Settings:
    """Engine-wide settings: optional frequency cap and quiet hours, and the retry policy."""

    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None
    retry: Retry = field(default_factory=Retry)


@dataclass(frozen=True)
class RuleSet:
    """An ordered collection of rules (rule order breaks priority ties) plus settings."""

    rules: tuple[Rule, ...]
    settings: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, r in enumerate(self.rules):
            if not isinstance(r, Rule):
                raise expected(RuleError, f"rules[{i}]", "a Rule", r)
            if r.id in seen:
                raise RuleError(f"rules[{i}].id: duplicate rule id {r.id!r}")
            seen.add(r.id)
        if len(self.rules) > 64:
            raise RuleError(f"rules: at most 64 rules, got {len(self.rules)}")

    @property
    def ids(self) -> tuple[str, ...]:
        """Rule ids in rule order."""
        return tuple(r.id for r in self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def __len__(self) -> int:
        return len(self.rules)

    def content(self, rule_id: str) -> Mapping[str, bool]:
        """The personalization config of ``rule_id`` (for the runtime to pass to content)."""
        return self[rule_id].content


def segment_mask(df: pd.DataFrame, predicates: Sequence[Predicate]) -> np.ndarray:
    """Which rows of a subscriber table pass all ``predicates`` (a rule's ``segment``).

    Vectorized equivalent of ``all(p.matches(row[p.column]) for p in predicates)``:
    a missing column or value never matches.

    Returns
    -------
    ndarray of bool, shape (len(df),)
    """
    mask = np.ones(len(df), bool)
    for p in predicates:
        if p.column not in df.columns:
            return np.zeros(len(df), bool)
        col = df[p.column]
        if p.op in ("min", "max") and (col.dtype.kind in "biuf"):
            values = col.to_numpy(np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                ok = values >= p.value if p.op == "min" else values <= p.value
        elif p.op in ("equals", "in") and col.dtype.kind in "biuf":
            wanted = p.value if p.op == "in" else (p.value,)
            nums = [float(v) for v in wanted if not isinstance(v, str)]
            values = col.to_numpy(np.float64, na_value=np.nan)
            ok = np.isin(values, np.array(nums, np.float64)) if nums else np.zeros(len(df), bool)
        elif p.op in ("equals", "in") and all(
            isinstance(v, str) for v in (p.value if p.op == "in" else (p.value,))
        ):
            wanted = list(p.value) if p.op == "in" else [p.value]
            ok = (col.isin(wanted) & col.notna()).to_numpy(bool)
        else:
            ok = np.fromiter((p.matches(v) for v in col.tolist()), bool, len(df))
        mask &= ok
    return mask


# ---------------------------------------------------------------------------
# loader


def load_rules(source: str | Path | Mapping[str, Any]) -> RuleSet:
    """Load and validate a rule set from a YAML file path, a YAML string or a dict.

    Parameters
    ----------
    source : str, Path or mapping
        A path to a ``.yaml``/``.yml`` file, YAML text, or the already-parsed mapping.

    Returns
    -------
    RuleSet

    Raises
    ------
    RuleError
        Naming the path of the offending field, e.g.
        ``rules[1].when[0].within: expected a duration like '30m', got 'soon'``.
    """
    if isinstance(source, Mapping):
        data: Any = source
    else:
        text: str
        if isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
        ):
            path = Path(source)
            if not path.is_file():
                raise RuleError(f"{path}: no such rules file")
            text = path.read_text(encoding="utf-8")
        elif isinstance(source, str):
            text = source
        else:
            raise expected(RuleError, "source", "a path, YAML text or a dict", source)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RuleError(f"source: not valid YAML ({exc})") from None
    return _parse_ruleset(data)


def default_rules() -> RuleSet:
    """The three reference rules of docs/domain.md (``reference_rules.yaml``)."""
    text = resources.files("policies.triggers").joinpath("reference_rules.yaml").read_text(
        encoding="utf-8"
    )
    return load_rules(text)


def _mapping(path: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
    return check_mapping(path, value, allowed, required, error=RuleError)


def _build(path: str, cls: Any, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs)
    except RuleError as exc:
        raise RuleError(f"{path}.{exc}" if path else str(exc)) from None


def _duration(path: str, value: Any) -> int:
    return check_duration(path, value, error=RuleError)


def _int(path: str, value: Any) -> int:
    if not isinstance(value, int):  # a plain int: rule files are YAML
        raise expected(RuleError, path, "an integer", value)
    return check_int(path, value, error=RuleError)


def _parse_ruleset(data: Any) -> RuleSet:
    top = _mapping("", data, ("rules", "settings"), ("rules",))
    rules_raw = top["rules"]
    if not isinstance(rules_raw, list) or not rules_raw:
        raise expected(RuleError, "rules", "a non-empty list of rules", rules_raw)
    rules = tuple(_parse_rule(f"rules[{i}]", r) for i, r in enumerate(rules_raw))
    settings = _parse_settings("settings", top.get("settings") or {})
    try:
        return RuleSet(rules, settings)
    except RuleError as exc:
        raise RuleError(str(exc)) from None


def _parse_rule(path: str, raw: Any) -> Rule:
    d = _mapping(path, raw, _RULE_KEYS, ("id", "type", "when", "delay", "expire"))
    when_raw = d["when"]
    if not isinstance(when_raw, list) or not when_raw:
        raise expected(RuleError, f"{path}.when", "a non-empty list of conditions", when_raw)
    when = tuple(_parse_condition(f"{path}.when[{i}]", c) for i, c in enumerate(when_raw))
    exclude_raw = d.get("exclude", [])
    if exclude_raw is None:
        exclude_raw = []
    if not isinstance(exclude_raw, list):
        raise expected(RuleError, f"{path}.exclude", "a list of event types", exclude_raw)
    for i, name in enumerate(exclude_raw):
        if not isinstance(name, str) or name not in EVENT_TYPES:
            raise RuleError(
                f"{path}.exclude[{i}]: unknown event type {name!r}; known: "
                f"{', '.join(EVENT_TYPES.names)}"
            )
    reentry, cooldown = _parse_reentry(f"{path}.reentry", d.get("reentry", "always"))
    content = d.get("content", {}) or {}
    if not isinstance(content, Mapping):
        raise expected(RuleError, f"{path}.content", "a mapping", content)
    return _build(
        path,
        Rule,
        id=d["id"],
        type=d["type"],
        when=when,
        delay=_duration(f"{path}.delay", d["delay"]),
        expire=_duration(f"{path}.expire", d["expire"]),
        exclude=tuple(exclude_raw),
        priority=_int(f"{path}.priority", d.get("priority", 0)),
        segment=_parse_predicates(f"{path}.segment", d.get("segment", {}) or {}, event=False),
        reentry=reentry,
        cooldown=cooldown,
        content=dict(content),
    )


def _parse_reentry(path: str, raw: Any) -> tuple[str, int]:
    if raw in ("always", "once"):
        return str(raw), 0
    if isinstance(raw, Mapping):
        d = _mapping(path, raw, ("cooldown",), ("cooldown",))
        seconds = _duration(f"{path}.cooldown", d["cooldown"])
        if seconds <= 0:
            raise expected(RuleError, f"{path}.cooldown", "a positive duration", d['cooldown'])
        return "cooldown", seconds
    raise expected(RuleError, path, "'always', 'once' or {cooldown: 7d}", raw)


def _parse_condition(path: str, raw: Any) -> Condition:
    d = _mapping(path, raw, _CONDITION_KEYS, ("event", "within"))
    event = d["event"]
    if not isinstance(event, str) or event not in EVENT_TYPES:
        raise RuleError(
            f"{path}.event: unknown event type {event!r}; known: {', '.join(EVENT_TYPES.names)}"
        )
    within = _duration(f"{path}.within", d["within"])
    count = _int(f"{path}.count", d.get("count", 1))
    where = _parse_predicates(f"{path}.where", d.get("where", {}) or {}, event=True)
    return _build(path, Condition, event=event, within=within, count=count, where=where)


def _parse_predicates(path: str, raw: Any, *, event: bool) -> tuple[Predicate, ...]:
    if not isinstance(raw, Mapping):
        raise expected(RuleError, path, "a mapping of column to test", raw)
    out: list[Predicate] = []
    for column, spec in raw.items():
        cpath = f"{path}.{column}"
        if not isinstance(column, str) or not column.isidentifier():
            raise RuleError(f"{cpath}: expected a column name")
        if event and column in ("subscriber", "time", "type"):
            raise RuleError(f"{cpath}: core column, not a data column")
        ops = _mapping(cpath, spec, _OPS) if isinstance(spec, Mapping) else {"equals": spec}
        if not ops:
            raise RuleError(f"{cpath}: expected one of min, max, equals, in")
        for op, value in ops.items():
            opath = f"{cpath}.{op}" if isinstance(spec, Mapping) else cpath
            value = _predicate_value(opath, column, op, value, event=event)
            out.append(_build(path, Predicate, column=column, op=op, value=value))
    return tuple(out)


def _predicate_value(path: str, column: str, op: str, value: Any, *, event: bool) -> Any:
    if op in ("min", "max"):
        if not is_real(value):
            raise expected(RuleError, path, "a number", value)
        return value
    if op == "in":
        if not isinstance(value, list) or not value:
            raise expected(RuleError, path, "a non-empty list", value)
        return tuple(
            _scalar(f"{path}[{i}]", column, v, event=event) for i, v in enumerate(value)
        )
    return _scalar(path, column, value, event=event)


def _scalar(path: str, column: str, value: Any, *, event: bool) -> Any:
    if not event:
        if isinstance(value, str | bool) or is_real(value):
            return value
        raise expected(RuleError, path, "a number, string or boolean", value)
    if column_kind(column) == "int":
        if isinstance(value, bool):
            raise expected(RuleError, path, f"a category of {column}", value)
        try:
            return category_code(column, value)
        except InvalidEventError as exc:
            raise RuleError(f"{path}: {str(exc).removeprefix(f'{column}: ')}") from None
    if not is_real(value):
        raise expected(RuleError, path, "a number", value)
    return value


def _parse_settings(path: str, raw: Any) -> Settings:
    d = _mapping(path, raw, ("frequency_cap", "quiet_hours", "retry"))
    cap = None
    if d.get("frequency_cap") is not None:
        c = _mapping(f"{path}.frequency_cap", d["frequency_cap"], ("max", "per"), ("max", "per"))
        cap = _build(
            f"{path}.frequency_cap",
            FrequencyCap,
            max=_int(f"{path}.frequency_cap.max", c["max"]),
            per=_duration(f"{path}.frequency_cap.per", c["per"]),
        )
    quiet = None
    if d.get("quiet_hours") is not None:
        q = _mapping(f"{path}.quiet_hours", d["quiet_hours"], ("start", "end"), ("start", "end"))
        clock = {}
        for key in ("start", "end"):
            try:
                clock[key] = parse_clock(q[key])
            except ValueError as exc:
                raise RuleError(f"{path}.quiet_hours.{key}: {exc}") from None
        quiet = _build(f"{path}.quiet_hours", QuietHours, **clock)
    retry = Retry()
    if d.get("retry") is not None:
        r = _mapping(f"{path}.retry", d["retry"], ("max_attempts", "backoff"))
        retry = _build(
            f"{path}.retry",
            Retry,
            max_attempts=_int(f"{path}.retry.max_attempts", r.get("max_attempts", 3)),
            backoff=_duration(f"{path}.retry.backoff", r.get("backoff", "30m")),
        )
    return Settings(frequency_cap=cap, quiet_hours=quiet, retry=retry)
