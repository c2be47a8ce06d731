"""Trigger rules as immutable dataclasses (:class:`Rule`, :class:`RuleSet`, ...) and
:func:`segment_mask`, the vectorized test of a rule's segment on a subscriber table.

The dataclasses hold plain numbers (durations in whole seconds, clock times in minutes
after midnight, event categories as the registry's integer codes); their constructors
validate but never transform their arguments. :mod:`policies.triggers.rules` reads them
from YAML (see its docstring for the file format).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from policies.checks import check_number, expected, is_missing, is_real
from policies.errors import InvalidEventError, RuleError
from policies.event_schema import EVENT_TYPES, check_data_column
from policies.subscriber_schema import segment_problem
from policies.triggers.durations import MAX_DURATION

if TYPE_CHECKING:
    from policies.triggers.journeys import Journey

__all__ = [
    "CONTENT_KEYS",
    "PREDICATE_OPS",
    "TRIGGER_TYPES",
    "Condition",
    "FrequencyCap",
    "Predicate",
    "QuietHours",
    "Retry",
    "Rule",
    "RuleSet",
    "Settings",
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
CONTENT_SWITCHES: tuple[str, ...] = (
    "include_cart_items",
    "include_viewed_products",
    "include_similar_products",
    "show_recommendations",
    "show_social_proof",
    "show_limited_time_offer",
    "apply_urgency",
)
#: Every content key: the switches, and ``incentive`` -- the discount the email offers, a
#: fraction of the order value in [0, 1) (0.15: 15 % off; 0, the default: none).
CONTENT_KEYS: tuple[str, ...] = (*CONTENT_SWITCHES, "incentive")


def check_content(path: str, content: Mapping[str, Any]) -> None:
    """Raise :class:`RuleError` unless ``content`` maps :data:`CONTENT_KEYS` to valid
    values: booleans for the switches, a number in [0, 1) for ``incentive``. ``path``
    prefixes the messages (``content``, ``emails.cart_3``)."""
    for key, value in content.items():
        if key not in CONTENT_KEYS:
            hint = ("; an email's discount is 'incentive', a fraction of the order value "
                    "(0.15: 15 % off)" if key in ("discount", "coupon", "offer") else "")
            raise RuleError(f"{path}.{key}: unknown key; expected one of "
                            f"{', '.join(CONTENT_KEYS)}{hint}")
        if key == "incentive":
            check_number(f"{path}.{key}", value, error=RuleError, low=0, high=1, high_open=True)
        elif not isinstance(value, bool):
            raise expected(RuleError, f"{path}.{key}", "true or false", value)

#: Tests a predicate can make on a value.
PREDICATE_OPS: tuple[str, ...] = ("min", "max", "equals", "in")
_REENTRY = ("always", "once", "cooldown")


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
        if self.op not in PREDICATE_OPS:
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


#: How messages name a duration field that must be > 0 (durations are bounded by
#: MAX_DURATION, 36500 days, so that time + duration never overflows int64).
_POSITIVE = "a positive duration <= 36500d, in seconds"


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
        All must hold for an event to match; each tests a declared data column
        (:func:`~policies.event_schema.check_data_column`).
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
        if (not isinstance(self.within, int) or isinstance(self.within, bool)
                or not 0 < self.within <= MAX_DURATION):
            raise expected(RuleError, "within", _POSITIVE, self.within)
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise expected(RuleError, "count", "an integer >= 1", self.count)
        if self.count > 64:
            raise expected(RuleError, "count", "at most 64", self.count)
        for p in self.where:
            if not isinstance(p, Predicate):
                raise expected(RuleError, "where", "Predicate objects", p)
            try:
                check_data_column(p.column)
            except InvalidEventError as exc:
                raise RuleError(f"where.{p.column}: {exc}") from None


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
        Tests on subscriber attributes, all must hold at entry. A test on a documented
        column that no subscriber can pass (``lifecycle_stage`` in ``vip``,
        ``engagement_score`` >= 1.5) is an error
        (:func:`~policies.subscriber_schema.segment_problem`); other columns may exist
        in some table (the engine warns when its table lacks them).
    reentry : {"always", "once", "cooldown"}
        ``once``: never re-enter after a fire; ``cooldown``: re-enter only ``cooldown``
        seconds after the last fire.
    cooldown : int
        Seconds (> 0 exactly when ``reentry == "cooldown"``).
    content : mapping of str to bool or float
        Personalization switches handed to content and the email's ``incentive`` (keys in
        :data:`CONTENT_KEYS`, :func:`check_content`).
    journey : Journey, optional
        A rule with steps (:mod:`policies.triggers.journeys`): then ``delay`` and
        ``expire`` are 0, ``content`` is empty (each email has its own) and ``when`` is
        empty when the journey has another entry kind. None: a plain rule.
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
    content: Mapping[str, bool | float] = field(default_factory=dict)
    journey: Journey | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.isidentifier():
            raise expected(RuleError, "id", "an identifier like 'cart_abandonment_24h'", self.id)
        if self.type not in TRIGGER_TYPES:
            raise expected(RuleError, "type", f"one of {', '.join(TRIGGER_TYPES)}", self.type)
        check_journey = getattr(self.journey, "check_rule", None)  # journeys.py imports us
        if self.journey is not None and check_journey is None:
            raise expected(RuleError, "journey", "a Journey", self.journey)
        if not self.when and (self.journey is None or self.journey.entry is None):
            raise RuleError("when: expected at least one condition, got none")
        for c in self.when:
            if not isinstance(c, Condition):
                raise expected(RuleError, "when", "Condition objects", c)
        for name in ("delay", "expire", "priority", "cooldown"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise expected(RuleError, name, "an integer", v)
        if not 0 <= self.delay <= MAX_DURATION:
            raise expected(RuleError, "delay", "a duration >= 0 and <= 36500d, in seconds",
                           self.delay)
        if self.expire > MAX_DURATION:
            raise expected(RuleError, "expire", "a duration <= 36500d, in seconds", self.expire)
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
        for p in self.segment:
            if not isinstance(p, Predicate):
                raise expected(RuleError, "segment", "Predicate objects", p)
            problem = segment_problem(p.column, p.op, p.value)
            if problem is not None:
                raise RuleError(f"segment.{p.column}.{problem[0]}: {problem[1]}")
        if len(set(self.exclude)) != len(self.exclude):
            raise RuleError(f"exclude: duplicate event types in {list(self.exclude)}")
        if self.reentry not in _REENTRY:
            raise expected(RuleError, "reentry", "'always', 'once' or {cooldown: 7d}", self.reentry)
        if self.cooldown > MAX_DURATION:
            raise expected(RuleError, "cooldown", _POSITIVE, self.cooldown)
        if (self.reentry == "cooldown") != (self.cooldown > 0) or self.cooldown < 0:
            raise expected(RuleError, "cooldown", "> 0 exactly when reentry is 'cooldown'",
                           self.cooldown)
        check_content("content", self.content)
        if check_journey is not None:
            check_journey(self)

    @property
    def window(self) -> int:
        """The largest ``within`` of the rule's conditions, in seconds (exclusion window;
        0 for a journey entering otherwise than by event conditions)."""
        return max((c.within for c in self.when), default=0)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max`` sends per subscriber in any rolling ``per`` seconds, over all rules."""

    max: int
    per: int

    def __post_init__(self) -> None:
        if not isinstance(self.max, int) or isinstance(self.max, bool) or not 1 <= self.max <= 64:
            raise expected(RuleError, "max", "an integer in 1..64", self.max)
        if not isinstance(self.per, int) or isinstance(self.per, bool) or not (
                0 < self.per <= MAX_DURATION):
            raise expected(RuleError, "per", _POSITIVE, self.per)


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
        if not isinstance(self.backoff, int) or isinstance(self.backoff, bool) or not (
                0 < self.backoff <= MAX_DURATION):
            raise expected(RuleError, "backoff", _POSITIVE, self.backoff)


@dataclass(frozen=True)
class Settings:
    """Engine-wide settings: optional frequency cap and quiet hours, the retry policy, and
    optional smart sending (seconds: a journey send is skipped when the subscriber got any
    email from the engine in that many seconds before; plain rules are not affected)."""

    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None
    retry: Retry = field(default_factory=Retry)
    smart_sending: int | None = None

    def __post_init__(self) -> None:
        if self.smart_sending is not None and (
                not isinstance(self.smart_sending, int) or isinstance(self.smart_sending, bool)
                or not 0 < self.smart_sending <= MAX_DURATION):
            raise expected(RuleError, "smart_sending", _POSITIVE, self.smart_sending)


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

    def content(self, rule_id: str) -> Mapping[str, bool | float]:
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
