"""Trigger rules: the YAML/dict loader with path-named errors (the dataclasses it builds
live in :mod:`policies.triggers.ruleset`; :mod:`policies.triggers` exports both).

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

A ``where`` may only test declared event data columns (``register_event_column`` adds
yours); a ``segment`` test that no subscriber can pass on a documented column of the
subscriber table (``lifecycle_stage: {in: [vip]}``) is an error, as is ``min > max``.

Durations become whole seconds, clock times minutes after midnight, and category words
in ``where`` (``link_type: product``) become the event registry's integer codes, so the
dataclasses hold plain numbers. The dataclass constructors validate but never transform
their arguments.

A rule with ``steps`` (or ``emails``, ``exit``, ``goal``, or an ``inactive`` /
``attribute`` / ``catalog`` entry) is a journey, read by
:mod:`policies.triggers.journey_loader` (docs/journeys.md); ``settings.smart_sending``
applies to journey sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from policies.checks import (
    check_duration,
    check_int,
    check_mapping,
    expected,
    is_real,
)
from policies.errors import InvalidEventError, RuleError
from policies.event_schema import EVENT_TYPES, category_code, check_data_column, column_kind
from policies.subscriber_schema import segment_problem
from policies.triggers.durations import parse_clock
from policies.triggers.journey_loader import RuleParsers, is_journey_data, parse_journey_rule
from policies.triggers.ruleset import (
    PREDICATE_OPS,
    Condition,
    FrequencyCap,
    Predicate,
    QuietHours,
    Retry,
    Rule,
    RuleSet,
    Settings,
)
from policies.yaml_io import parse_yaml, read_yaml_file

__all__ = ["default_rules", "default_rules_data", "example_journeys", "load_rules"]

_RULE_KEYS = (
    "id", "type", "when", "exclude", "delay", "expire", "priority", "segment", "reentry",
    "content",
)
_CONDITION_KEYS = ("event", "where", "within", "count")


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
        if isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
        ):
            path = Path(source)
            if not path.is_file():
                raise RuleError(f"{path}: no such rules file")
            data = read_yaml_file(path, "source", RuleError, "not valid YAML")
        elif isinstance(source, str):
            data = parse_yaml(source, "source", RuleError, malformed="not valid YAML")
        else:
            raise expected(RuleError, "source", "a path, YAML text or a dict", source)
    return _parse_ruleset(data)


def default_rules_data() -> dict[str, Any]:
    """``reference_rules.yaml`` as parsed YAML (a new dict each call: callers may edit it)."""
    text = resources.files("policies.triggers").joinpath("reference_rules.yaml").read_text(
        encoding="utf-8"
    )
    return dict(parse_yaml(text, "reference_rules.yaml", RuleError))


def default_rules() -> RuleSet:
    """The three reference rules of docs/domain.md (``reference_rules.yaml``)."""
    return load_rules(default_rules_data())


def example_journeys() -> RuleSet:
    """The shipped journey set of docs/journeys.md (``example_journeys.yaml``): a cart
    series, a win-back on inactivity, a price-drop alert from catalog events and a
    welcome series on an attribute change."""
    text = resources.files("policies.triggers").joinpath("example_journeys.yaml").read_text(
        encoding="utf-8")
    return load_rules(dict(parse_yaml(text, "example_journeys.yaml", RuleError)))


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
    if is_journey_data(raw):  # a rule with steps (docs/journeys.md)
        return parse_journey_rule(path, raw, _PARSERS)
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


def _parse_predicates(path: str, raw: Any, *, event: bool,
                      declared: bool = True) -> tuple[Predicate, ...]:
    """Predicates of a ``segment`` (``event=False``) or of a ``where`` on event data; an
    event column must be declared unless ``declared=False`` (catalog events: their own
    columns, checked by the journey entry)."""
    if not isinstance(raw, Mapping):
        raise expected(RuleError, path, "a mapping of column to test", raw)
    out: list[Predicate] = []
    for column, spec in raw.items():
        cpath = f"{path}.{column}"
        if not isinstance(column, str) or not column.isidentifier():
            raise RuleError(f"{cpath}: expected a column name")
        if event and column in ("subscriber", "time", "type"):
            raise RuleError(f"{cpath}: core column, not a data column")
        if event and declared:
            try:
                check_data_column(column)
            except InvalidEventError as exc:
                raise RuleError(f"{cpath}: {exc}") from None
        ops = (_mapping(cpath, spec, PREDICATE_OPS) if isinstance(spec, Mapping)
               else {"equals": spec})
        if not ops:
            raise RuleError(f"{cpath}: expected one of min, max, equals, in")
        low, high = ops.get("min"), ops.get("max")
        if low is not None and high is not None and is_real(low) and is_real(high) \
                and low > high:
            raise RuleError(f"{cpath}: expected min <= max (no value can pass), got min "
                            f"{low!r} and max {high!r}")
        for op, value in ops.items():
            opath = f"{cpath}.{op}" if isinstance(spec, Mapping) else cpath
            value = _predicate_value(opath, column, op, value, event=event)
            problem = None if event else segment_problem(column, op, value)
            if problem is not None:
                where = f"{cpath}.{problem[0]}" if isinstance(spec, Mapping) else cpath
                raise RuleError(f"{where}: {problem[1]}")
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
    d = _mapping(path, raw, ("frequency_cap", "quiet_hours", "retry", "smart_sending"))
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
    smart = d.get("smart_sending")
    if smart is not None:
        smart = _duration(f"{path}.smart_sending", smart)
    return _build(path, Settings, frequency_cap=cap, quiet_hours=quiet, retry=retry,
                  smart_sending=smart)


#: The readers a journey shares with plain rules (policies.triggers.journey_loader).
_PARSERS = RuleParsers(condition=_parse_condition, predicates=_parse_predicates,
                       reentry=_parse_reentry, integer=_int)
