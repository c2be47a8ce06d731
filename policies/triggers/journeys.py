"""Journeys: multi-step trigger rules as immutable dataclasses, their static checks, and
the compiler that turns one into a flat node table (:func:`compile_journey`).

A rule with ``steps`` is a journey (docs/journeys.md has the YAML language;
:mod:`policies.triggers.journey_loader` reads it). Its parts, all frozen dataclasses that
validate in ``__post_init__`` (durations in whole seconds, event data values as the
registry's codes, like :mod:`policies.triggers.ruleset`):

* steps: :class:`Send`, :class:`Wait`, :class:`WaitUntil`, :class:`Branch` (of
  :class:`BranchCase`), :class:`Split` (of :class:`SplitPath`), :class:`Exit`;
* entry kinds besides event conditions: :class:`Inactivity`, :class:`AttributeEntry`,
  :class:`CatalogEntry`;
* :class:`ExitCriterion`, :class:`Goal`, :class:`Email` and the :class:`Journey` itself,
  which a :class:`~policies.triggers.ruleset.Rule` carries in its ``journey`` field.

Paths are nested step lists with structured flow: when a path ends, the journey goes on
with the step after the branch / split / wait-until that holds it. There is no goto, so
a journey is a finite tree: it cannot loop and sends at most
:attr:`JourneyProgram.max_sends` emails per entry.

Error messages name the field with the YAML path below the rule
(``steps[3].split.paths.discount[0].send: unknown email 'reminder_9'; ...``); the loader
puts ``rules[i].`` in front.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from policies.checks import expected, is_int, is_real
from policies.errors import RuleError
from policies.event_schema import EVENT_TYPES, column_kind, event_columns
from policies.triggers.durations import MAX_DURATION
from policies.triggers.ruleset import Predicate, check_content

if TYPE_CHECKING:
    from policies.triggers.ruleset import Rule

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_EVENT_TYPES",
    "ENTRY_KINDS",
    "KIND_BRANCH",
    "KIND_EXIT",
    "KIND_SEND",
    "KIND_SPLIT",
    "KIND_WAIT",
    "KIND_WAIT_UNTIL",
    "MAX_DEPTH",
    "MAX_STEPS",
    "NODE_KINDS",
    "STEP_KINDS",
    "WAIT_SINCE",
    "AttributeEntry",
    "Branch",
    "BranchCase",
    "CatalogEntry",
    "Email",
    "Entry",
    "Exit",
    "ExitCriterion",
    "Goal",
    "Inactivity",
    "Journey",
    "JourneyProgram",
    "Send",
    "Split",
    "SplitPath",
    "Step",
    "Wait",
    "WaitUntil",
    "attribute_tests",
    "compile_journey",
    "entry_phrase",
    "iter_steps",
    "step_paths",
]

#: Step kinds as written in YAML (``exit`` is a bare list item).
STEP_KINDS: tuple[str, ...] = ("send", "wait", "wait_until", "branch", "split", "exit")
#: Node kinds of a compiled journey (``JourneyProgram.kind``): the position in this tuple.
NODE_KINDS: tuple[str, ...] = STEP_KINDS
KIND_SEND, KIND_WAIT, KIND_WAIT_UNTIL, KIND_BRANCH, KIND_SPLIT, KIND_EXIT = range(6)
#: Which events a wait-until counts: those after reaching the step (default), after the
#: entry, or after the journey's last send (after the entry while nothing was sent).
WAIT_SINCE: tuple[str, ...] = ("step", "entry", "last_send")
#: Entry kinds besides event conditions, as keys of an item of ``when``.
ENTRY_KINDS: tuple[str, ...] = ("inactive", "attribute", "catalog")
#: Catalog (product-level, no subscriber) event types.
CATALOG_EVENT_TYPES: tuple[str, ...] = ("price_drop", "back_in_stock")
#: Data a catalog event carries: its product, the prices (currency units), and for a price
#: drop ``drop = old_price - new_price`` and ``drop_fraction = drop / old_price``.
CATALOG_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "price_drop": ("product_id", "old_price", "new_price", "drop", "drop_fraction"),
    "back_in_stock": ("product_id", "new_price"),
}
#: At most this many steps in a journey, nested paths included.
MAX_STEPS = 64
#: At most this many nesting levels (top-level steps are level 1).
MAX_DEPTH = 8

_POSITIVE = "a positive duration <= 36500d, in seconds"


def _at(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _positive(path: str, value: Any) -> None:
    if not is_int(value) or not 0 < value <= MAX_DURATION:
        raise expected(RuleError, path, _POSITIVE, value)


def _identifier(path: str, value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise expected(RuleError, path, what, value)


def _event_type(path: str, name: Any) -> None:
    if not isinstance(name, str) or name not in EVENT_TYPES:
        raise RuleError(
            f"{path}: unknown event type {name!r}; known: {', '.join(EVENT_TYPES.names)}"
        )


def _event_types(path: str, names: Any) -> None:
    if not isinstance(names, tuple):
        raise expected(RuleError, path, "a tuple of event types", names)
    if not names:
        raise RuleError(f"{path}: expected at least one event type, got none")
    for i, name in enumerate(names):
        _event_type(f"{path}[{i}]", name)
        if name in names[:i]:
            raise RuleError(f"{path}[{i}]: duplicate event type {name!r}")


def _predicates(path: str, value: Any) -> None:
    if not isinstance(value, tuple):
        raise expected(RuleError, path, "a tuple of Predicate", value)
    for p in value:
        if not isinstance(p, Predicate):
            raise expected(RuleError, path, "Predicate objects", p)


def _columns_of(events: tuple[str, ...]) -> frozenset[str] | None:
    """Data columns at least one of ``events`` carries (None: some type is undeclared)."""
    out: set[str] = set()
    for name in events:
        cols = event_columns(name)
        if cols is None:
            return None
        out |= cols
    return frozenset(out)


def _carried(path: str, columns: frozenset[str] | None, column: str, who: str) -> None:
    if columns is not None and column not in columns:
        raise RuleError(f"{path}: {who} carry no {column!r}")


def _key(path: str, match: Any, event: str) -> None:
    """An entry key (``match``): a categorical column that ``event`` carries."""
    if match is None:
        return
    if not isinstance(match, str) or column_kind(match) != "int":
        raise expected(RuleError, path, "a categorical column such as product_id", match)
    _carried(path, event_columns(event), match, f"{event} events")


# ---------------------------------------------------------------------------
# steps


@dataclass(frozen=True)
class Send:
    """Send the email ``email`` (a name in :attr:`Journey.emails`).

    Parameters
    ----------
    email : str
    expire : int, optional
        Seconds after reaching the step after which the send may no longer go out
        (quiet hours or retries pushed it later): it expires and the journey goes on.
        None: never.
    smart_sending : int, optional
        Skip the send (the journey goes on) when the subscriber got any email from the
        engine in the last ``smart_sending`` seconds; 0: off for this send; None: the
        engine-wide ``settings.smart_sending``.
    """

    email: str
    expire: int | None = None
    smart_sending: int | None = None

    def __post_init__(self) -> None:
        _identifier("send", self.email, "an email name like 'cart_1'")
        if self.expire is not None:
            _positive("expire", self.expire)
        if self.smart_sending is not None and (
                not is_int(self.smart_sending) or not 0 <= self.smart_sending <= MAX_DURATION):
            raise expected(RuleError, "smart_sending",
                           "a duration <= 36500d in seconds (0: off), or None", self.smart_sending)


@dataclass(frozen=True)
class Wait:
    """Wait ``duration`` seconds (> 0)."""

    duration: int

    def __post_init__(self) -> None:
        _positive("wait", self.duration)


@dataclass(frozen=True)
class WaitUntil:
    """Wait until one of ``events`` (passing ``where``) happens, at most ``within`` s.

    Parameters
    ----------
    events : tuple of str
        Event types of the subscriber; any of them will do.
    within : int
        Seconds from reaching the step to the time-out (> 0).
    since : {"step", "entry", "last_send"}
        Which events count: those after reaching the step, after the entry, or after the
        journey's last send (after the entry while nothing was sent).
    where : tuple of Predicate
        Tests on the event's data, all must hold (columns carried by ``events``).
    happened, timed_out : tuple of steps
        The path taken when such an event happened / when ``within`` ran out.
    """

    events: tuple[str, ...]
    within: int
    since: str = "step"
    where: tuple[Predicate, ...] = ()
    happened: tuple[Step, ...] = ()
    timed_out: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        _event_types("wait_until.events", self.events)
        _positive("wait_until.within", self.within)
        if self.since not in WAIT_SINCE:
            raise expected(RuleError, "wait_until.since", "one of step, entry, last_send",
                           self.since)
        _predicates("wait_until.where", self.where)
        columns = _columns_of(self.events)
        for p in self.where:
            _carried(f"wait_until.where.{p.column}", columns, p.column,
                     f"{' and '.join(self.events)} events")
        _steps("wait_until.happened", self.happened)
        _steps("wait_until.timed_out", self.timed_out)


@dataclass(frozen=True)
class BranchCase:
    """One case of a :class:`Branch`: taken when every test holds (an ``else`` has none).

    Parameters
    ----------
    then : tuple of steps
        The path.
    segment : tuple of Predicate
        Tests on the subscriber's attributes when the step is reached.
    entry : tuple of Predicate
        Tests on the data of the entry event (e.g. ``cart_value``); categorical values
        are codes.
    otherwise : bool
        The ``else`` case (no tests; YAML ``else: [...]``).
    """

    then: tuple[Step, ...] = ()
    segment: tuple[Predicate, ...] = ()
    entry: tuple[Predicate, ...] = ()
    otherwise: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.otherwise, bool):
            raise expected(RuleError, "else", "true or false", self.otherwise)
        _predicates("if.segment", self.segment)
        _predicates("if.entry", self.entry)
        if self.otherwise and (self.segment or self.entry):
            raise RuleError("else: an else case has no tests")
        if not self.otherwise and not (self.segment or self.entry):
            raise RuleError("if: expected segment and/or entry tests, got none")
        _steps("else" if self.otherwise else "then", self.then)


@dataclass(frozen=True)
class Branch:
    """Take the path of the first case whose tests hold (``else``: last, at most one).

    No case holding and no ``else``: the journey goes on after the branch.
    """

    cases: tuple[BranchCase, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.cases, tuple):
            raise expected(RuleError, "branch", "a tuple of BranchCase", self.cases)
        if not self.cases:
            raise RuleError("branch: expected at least one case, got none")
        for i, case in enumerate(self.cases):
            if not isinstance(case, BranchCase):
                raise expected(RuleError, f"branch[{i}]", "a BranchCase", case)
        elses = [i for i, c in enumerate(self.cases) if c.otherwise]
        if len(elses) > 1:
            raise RuleError(f"branch[{elses[1]}]: more than one else")
        if elses and elses[0] != len(self.cases) - 1:
            raise RuleError(f"branch[{elses[0]}]: else must be the last case")
        if elses and elses[0] == 0:
            raise RuleError("branch[0]: expected an if case before the else")


@dataclass(frozen=True)
class SplitPath:
    """One path of a :class:`Split`: its name, steps and A/B weight (None with a policy;
    :class:`Split` checks the weights). Messages start with the name."""

    name: str
    steps: tuple[Step, ...] = ()
    weight: float | None = None

    def __post_init__(self) -> None:
        _identifier(str(self.name), self.name, "a path name like 'control'")
        _steps(self.name, self.steps)


#: Tolerance on the sum of a split's weights.
_WEIGHT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Split:
    """Split into ``paths`` by their A/B weights, or by the policy named ``policy``.

    Parameters
    ----------
    paths : tuple of SplitPath
        At least two, unique names, in the order of the policy's arms.
    policy : str, optional
        Name of a policy (the engine is given the policies by name); None: the paths'
        weights (each > 0, summing to 1 within 1e-9) decide.
    """

    paths: tuple[SplitPath, ...]
    policy: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.paths, tuple):
            raise expected(RuleError, "split.paths", "a tuple of SplitPath", self.paths)
        if len(self.paths) < 2:
            raise RuleError(f"split.paths: expected at least two paths, got {len(self.paths)}")
        names: list[str] = []
        for i, p in enumerate(self.paths):
            if not isinstance(p, SplitPath):
                raise expected(RuleError, f"split.paths[{i}]", "a SplitPath", p)
            if p.name in names:
                raise RuleError(f"split.paths.{p.name}: duplicate path name")
            names.append(p.name)
        if self.policy is not None:
            _identifier("split.policy", self.policy, "a policy name like 'subject_bandit'")
            for p in self.paths:
                if p.weight is not None:
                    raise RuleError(
                        f"split.ab.{p.name}: a split has ab weights or a policy, not both")
            return
        total = 0.0
        for p in self.paths:
            if p.weight is None:
                raise RuleError(f"split.ab.{p.name}: missing (a split without a policy "
                                "weighs every path)")
            if not (is_real(p.weight) and p.weight > 0):
                raise expected(RuleError, f"split.ab.{p.name}", "a positive weight", p.weight)
            total += float(p.weight)
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            shown = " + ".join(f"{p.weight!r}" for p in self.paths)
            raise RuleError(f"split.ab: expected weights summing to 1, got {shown} = {total!r}")


@dataclass(frozen=True)
class Exit:
    """End the journey (kind ``exit``)."""


#: A step of a journey.
Step = Send | Wait | WaitUntil | Branch | Split | Exit
_STEP_TYPES = (Send, Wait, WaitUntil, Branch, Split, Exit)


def _steps(path: str, steps: Any) -> None:
    if not isinstance(steps, tuple):
        raise expected(RuleError, path, "a tuple of steps", steps)
    for i, s in enumerate(steps):
        if not isinstance(s, _STEP_TYPES):
            raise expected(RuleError, f"{path}[{i}]", "a step (Send, Wait, WaitUntil, Branch, "
                           "Split or Exit)", s)


def step_paths(step: Step) -> tuple[tuple[str, str, tuple[Step, ...]], ...]:
    """The paths of a step, in order: ``(name, label, steps)``.

    ``label`` is the YAML key below the step: ``wait_until.happened``,
    ``branch[1].then``, ``branch[2].else``, ``split.paths.control``. A branch without an
    ``else`` gets an implicit empty one, named ``else`` and labelled ``branch.else``, so
    that a branch always takes exactly one path. Simple steps have none.
    """
    if isinstance(step, WaitUntil):
        return (("happened", "wait_until.happened", step.happened),
                ("timed_out", "wait_until.timed_out", step.timed_out))
    if isinstance(step, Branch):
        out = tuple(
            ("else", f"branch[{i}].else", c.then) if c.otherwise
            else (f"case{i}", f"branch[{i}].then", c.then)
            for i, c in enumerate(step.cases)
        )
        if not step.cases[-1].otherwise:
            out += (("else", "branch.else", ()),)
        return out
    if isinstance(step, Split):
        return tuple((p.name, f"split.paths.{p.name}", p.steps) for p in step.paths)
    return ()


def iter_steps(steps: tuple[Step, ...], prefix: str = "steps", depth: int = 1
               ) -> Iterator[tuple[str, int, Step]]:
    """Every step in YAML order (pre-order): ``(label, depth, step)``, where ``label`` is
    its YAML path (``steps[3].split.paths.discount[0]``) and top-level steps have depth 1."""
    for k, step in enumerate(steps):
        label = f"{prefix}[{k}]"
        yield label, depth, step
        for _, key, path_steps in step_paths(step):
            yield from iter_steps(path_steps, f"{label}.{key}", depth + 1)


# ---------------------------------------------------------------------------
# entry kinds, exits, goal, emails


@dataclass(frozen=True)
class Inactivity:
    """Enter ``duration`` s after the subscriber's latest event of ``events`` (win-back).

    Parameters
    ----------
    events : tuple of str
        Event types that count as activity.
    duration : int
        Seconds without such an event (YAML ``for``; > 0).
    since_attribute : str, optional
        Subscriber attribute (epoch seconds) that starts the clock for a subscriber with
        no such event seen by the engine; without it (or when missing) the clock starts
        at the subscriber's first event of any type seen by the engine.
    """

    events: tuple[str, ...]
    duration: int
    since_attribute: str | None = None

    def __post_init__(self) -> None:
        _event_types("inactive.events", self.events)
        _positive("inactive.for", self.duration)
        if self.since_attribute is not None:
            _identifier("inactive.since_attribute", self.since_attribute,
                        "a subscriber attribute like 'last_engaged_at'")


@dataclass(frozen=True)
class AttributeEntry:
    """Enter when the subscriber's attributes start to pass ``segment`` (all must hold)."""

    segment: tuple[Predicate, ...]

    def __post_init__(self) -> None:
        _predicates("attribute", self.segment)
        if not self.segment:
            raise RuleError("attribute: expected at least one test, got none")


@dataclass(frozen=True)
class CatalogEntry:
    """Enter at a catalog event (``price_drop``, ``back_in_stock``) of a product the
    subscriber viewed within ``viewed`` s or carted within ``carted`` s (0: not that
    kind) and has not bought since.

    Parameters
    ----------
    event : str
        One of :data:`CATALOG_EVENT_TYPES`.
    viewed, carted : int
        Audience windows in seconds (>= 0, not both 0).
    where : tuple of Predicate
        Tests on the catalog event's data (:data:`CATALOG_COLUMNS`).
    """

    event: str
    viewed: int = 0
    carted: int = 0
    where: tuple[Predicate, ...] = ()

    def __post_init__(self) -> None:
        if self.event not in CATALOG_EVENT_TYPES:
            raise RuleError(f"catalog.event: unknown catalog event type {self.event!r}; "
                            f"known: {', '.join(CATALOG_EVENT_TYPES)}")
        for name in ("viewed", "carted"):
            v = getattr(self, name)
            if not is_int(v) or not 0 <= v <= MAX_DURATION:
                raise expected(RuleError, f"catalog.audience.{name}",
                               "a duration <= 36500d in seconds", v)
        if not (self.viewed or self.carted):
            raise RuleError("catalog.audience: expected a viewed and/or carted window")
        _predicates("catalog.where", self.where)
        for p in self.where:
            _carried(f"catalog.where.{p.column}", frozenset(CATALOG_COLUMNS[self.event]),
                     p.column, f"{self.event} events")


#: An entry besides event conditions.
Entry = Inactivity | AttributeEntry | CatalogEntry


@dataclass(frozen=True)
class ExitCriterion:
    """An event of type ``event`` (passing ``where``) ends the journey at any step.

    ``match``: only when the event's value of this categorical column equals the entry
    event's (``product_id``: buying another product does not end the journey for the
    carted one). A missing value on either side never matches.
    """

    event: str
    where: tuple[Predicate, ...] = ()
    match: str | None = None

    def __post_init__(self) -> None:
        _event_type("event", self.event)
        _predicates("where", self.where)
        for p in self.where:
            _carried(f"where.{p.column}", event_columns(self.event), p.column,
                     f"{self.event} events")
        _key("match", self.match, self.event)


@dataclass(frozen=True)
class Goal:
    """The conversion a journey aims at, for reports: an ``event`` within ``within`` s
    after the entry (with the entry's ``match`` key if given). Engines ignore it."""

    event: str
    within: int
    match: str | None = None

    def __post_init__(self) -> None:
        _event_type("goal.event", self.event)
        _positive("goal.within", self.within)
        _key("goal.match", self.match, self.event)


@dataclass(frozen=True)
class Email:
    """A named email of a journey and its content (switches and ``incentive``,
    :func:`~policies.triggers.ruleset.check_content`)."""

    name: str
    content: Mapping[str, bool | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _identifier(str(self.name), self.name, "an email name like 'cart_1'")
        if not isinstance(self.content, Mapping):
            raise expected(RuleError, self.name, "a mapping of content switches", self.content)
        check_content(self.name, self.content)


# ---------------------------------------------------------------------------
# the journey


@dataclass(frozen=True)
class Journey:
    """The multi-step part of a rule (see the module docstring).

    Parameters
    ----------
    steps : tuple of steps
        At most :data:`MAX_STEPS` in all, nested at most :data:`MAX_DEPTH` deep.
    emails : tuple of Email
        Unique names; each sent by some step (email index = position).
    entry : Inactivity, AttributeEntry or CatalogEntry, optional
        None: the rule's ``when`` event conditions.
    exits : tuple of ExitCriterion
        Events that end the journey at any step (besides the rule's ``exclude``).
    goal : Goal, optional

    Static checks (besides each part's own): no step after one that ends every path
    (``exit``, or a step all of whose paths end with exit), at least one send, every
    email known and used, ``since: last_send`` only where a send may come before, and
    one entry key (every ``match`` names the same column).
    """

    steps: tuple[Step, ...]
    emails: tuple[Email, ...]
    entry: Entry | None = None
    exits: tuple[ExitCriterion, ...] = ()
    goal: Goal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.emails, tuple):
            raise expected(RuleError, "emails", "a tuple of Email", self.emails)
        names: list[str] = []
        for e in self.emails:
            if not isinstance(e, Email):
                raise expected(RuleError, "emails", "Email objects", e)
            if e.name in names:
                raise RuleError(f"emails.{e.name}: duplicate email name")
            names.append(e.name)
        if self.entry is not None and not isinstance(self.entry, Inactivity | AttributeEntry
                                                     | CatalogEntry):
            raise expected(RuleError, "when", "an Inactivity, AttributeEntry or CatalogEntry",
                           self.entry)
        if not isinstance(self.exits, tuple):
            raise expected(RuleError, "exit", "a tuple of ExitCriterion", self.exits)
        for i, x in enumerate(self.exits):
            if not isinstance(x, ExitCriterion):
                raise expected(RuleError, f"exit[{i}]", "an ExitCriterion", x)
            if x in self.exits[:i]:
                raise RuleError(f"exit[{i}]: the same criterion as exit[{self.exits.index(x)}]")
        if self.goal is not None and not isinstance(self.goal, Goal):
            raise expected(RuleError, "goal", "a Goal", self.goal)
        _steps("steps", self.steps)
        if not self.steps:
            raise RuleError("steps: expected at least one step, got none")
        used: set[str] = set()
        counter = [0]
        self._check_list(self.steps, "steps", 1, False, used, counter)
        if counter[0] > MAX_STEPS:
            raise RuleError(f"steps: expected at most {MAX_STEPS} steps in a journey (nested "
                            f"paths included), got {counter[0]}")
        if not used:
            raise RuleError("steps: no send step; a journey sends at least one email")
        for name in names:
            if name not in used:
                raise RuleError(f"emails.{name}: never sent by any step")
        keys = [(f"exit[{i}].match", x.match) for i, x in enumerate(self.exits)]
        if self.goal is not None:
            keys.append(("goal.match", self.goal.match))
        keys = [(p, k) for p, k in keys if k is not None]
        for p, k in keys[1:]:
            if k != keys[0][1]:
                raise RuleError(f"{p}: expected the entry key of {keys[0][0]} "
                                f"({keys[0][1]!r}): a journey keeps one entry key, got {k!r}")

    def _check_list(self, steps: tuple[Step, ...], prefix: str, depth: int, sent: bool,
                    used: set[str], counter: list[int]) -> tuple[bool, bool]:
        """Check one step list; returns (a send may have happened at its end, every path
        through it ends with exit)."""
        ended = ""
        for k, step in enumerate(steps):
            label = f"{prefix}[{k}]"
            if ended:
                raise RuleError(f"{label}: unreachable: {ended}")
            if depth > MAX_DEPTH:
                raise RuleError(f"{label}: nested {depth} levels deep; at most {MAX_DEPTH}")
            counter[0] += 1
            if isinstance(step, Send):
                if step.email not in {e.name for e in self.emails}:
                    known = ", ".join(e.name for e in self.emails) or "none"
                    raise RuleError(f"{label}.send: unknown email {step.email!r}; known: "
                                    f"{known}")
                used.add(step.email)
                sent = True
            elif isinstance(step, Exit):
                ended = f"{label} is exit"
                continue
            elif isinstance(step, WaitUntil) and step.since == "last_send" and not sent:
                raise RuleError(f"{label}.wait_until.since: 'last_send', but no send comes "
                                "before this step on any path")
            results = [self._check_list(path_steps, f"{label}.{key}", depth + 1, sent, used,
                                        counter)
                       for _, key, path_steps in step_paths(step)]
            if results:
                sent = any(s for s, ends in results if not ends)
                if all(ends for _, ends in results):
                    ended = f"every path of {label} ends with exit"
        return sent, bool(ended)

    @property
    def email_names(self) -> tuple[str, ...]:
        """Email names in order (a send's email index is the position here)."""
        return tuple(e.name for e in self.emails)

    def content(self, email: str) -> Mapping[str, bool | float]:
        """The content of ``email`` (switches and ``incentive``)."""
        for e in self.emails:
            if e.name == email:
                return e.content
        raise KeyError(email)

    def check_rule(self, rule: Rule) -> None:
        """The checks that need the rule holding this journey (called by
        :class:`~policies.triggers.ruleset.Rule`): no ``delay``/``expire``/``content``;
        one entry kind; ``exclude`` only with event conditions; entry properties
        (branches' ``entry`` tests, ``match`` keys) carried by the entry; no wait-until
        on an event that unconditionally ends the journey first."""
        for name, hint in (("delay", "use a wait step"), ("expire", "give a send its expire")):
            if getattr(rule, name) != 0:
                raise RuleError(f"{name}: a journey has none ({hint}), got {getattr(rule, name)}")
        if rule.content:
            raise RuleError("content: a journey has none (give each email its content under "
                            "emails)")
        if self.entry is not None and rule.when:
            raise RuleError("when: one entry kind per rule: event conditions or "
                            f"{entry_phrase(_entry_name(self.entry))}, got both")
        if self.entry is not None and rule.exclude:
            raise RuleError("exclude: blocks entry within the conditions' window, so it needs "
                            "event conditions in when; with "
                            f"{entry_phrase(_entry_name(self.entry))} use exit")
        columns, who = _entry_columns(rule)
        for label, _, step in iter_steps(self.steps):
            if isinstance(step, Branch):
                for i, case in enumerate(step.cases):
                    for p in case.entry:
                        path = f"{label}.branch[{i}].if.entry"
                        if columns == frozenset():
                            raise RuleError(f"{path}: {who}; branch on segment instead")
                        _carried(f"{path}.{p.column}", columns, p.column, who)
            if isinstance(step, WaitUntil):
                for i, event in enumerate(step.events):
                    ender = _unconditional_end(rule, event)
                    if ender:
                        raise RuleError(f"{label}.wait_until.events[{i}]: {event!r} ends the "
                                        f"journey ({ender}) before the wait can see it")
        keyed = [(f"exit[{i}].match", x.match) for i, x in enumerate(self.exits)]
        if self.goal is not None:
            keyed.append(("goal.match", self.goal.match))
        for path, key in keyed:
            if key is None:
                continue
            if columns == frozenset():
                raise RuleError(f"{path}: {who}, so nothing to match")
            _carried(path, columns, key, who)


def entry_phrase(kind: str) -> str:
    """``"an inactive entry"``, ``"a catalog entry"``: how messages name an entry kind."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} entry"


def _entry_name(entry: Entry) -> str:
    return {Inactivity: "inactive", AttributeEntry: "attribute",
            CatalogEntry: "catalog"}[type(entry)]


def _entry_columns(rule: Rule) -> tuple[frozenset[str] | None, str]:
    """Data columns the entry event of ``rule`` may carry (None: not declared; empty: no
    entry event) and how messages name the entry's events."""
    entry = rule.journey.entry if rule.journey is not None else None
    if entry is None:
        events = tuple(dict.fromkeys(c.event for c in rule.when))
        return _columns_of(events), f"the entry events ({', '.join(events)})"
    if isinstance(entry, CatalogEntry):
        return frozenset(CATALOG_COLUMNS[entry.event]), f"{entry.event} catalog events"
    return frozenset(), f"{entry_phrase(_entry_name(entry))} has no entry event"


def _unconditional_end(rule: Rule, event: str) -> str:
    """``"exclude"`` / ``"exit[i]"`` when every ``event`` ends the journey, else ``""``."""
    if event in rule.exclude:
        return "exclude"
    assert rule.journey is not None
    for i, x in enumerate(rule.journey.exits):
        if x.event == event and not x.where and x.match is None:
            return f"exit[{i}]"
    return ""


# ---------------------------------------------------------------------------
# the compiler


@dataclass(frozen=True, eq=False)
class JourneyProgram:
    """A compiled journey: a flat node table in YAML (pre-)order, node 0 first.

    Node columns (shape ``(n,)``, n <= 64):

    * ``kind`` int8: position in :data:`NODE_KINDS` (``KIND_SEND``, ...);
    * ``arg`` int64: email index (send), seconds (wait), ``within`` seconds
      (wait_until), 0 otherwise;
    * ``next`` int16: the node after this one, -1 = the journey ends. Structured flow:
      the last node of a path continues after the step holding the path;
    * ``first_path``/``n_paths`` int16/int8: the node's rows in the path table (branch,
      split, wait_until; -1/0 otherwise);
    * ``depth`` int8 (top level 1); ``events`` uint64: bit ``code`` set for each event
      type a wait_until waits for; ``since`` int8: position in :data:`WAIT_SINCE` (-1);
    * ``expire`` int64 (-1: never) and ``smart_sending`` int64 (-1: the engine setting,
      0: off) of sends;
    * ``labels``: the YAML path of each node (``steps[3].split.paths.discount[0]``);
      ``where``: the wait_until ``where`` tests; ``policy``: a split's policy name.

    Path columns (shape ``(m,)``): ``path_node`` (owner), ``path_start`` (first node,
    or the owner's ``next`` for an empty path), ``path_weight`` (A/B weight, NaN
    otherwise), ``path_names`` (split path name, ``happened``/``timed_out``, ``caseI``/
    ``else``), ``path_labels`` (``steps[2].wait_until.happened``), ``path_segment`` /
    ``path_entry`` (a branch case's tests; both empty for ``else``: always true).

    Facts: ``max_sends`` (most sends on any path from entry to end), ``event_types``
    (subscriber event types the journey reacts to: entry, exclude, exit, wait_until,
    inactivity activity, catalog audience), ``catalog_events``, ``emails`` (names by
    index), ``max_depth``.
    """

    kind: np.ndarray
    arg: np.ndarray
    next: np.ndarray
    first_path: np.ndarray
    n_paths: np.ndarray
    depth: np.ndarray
    events: np.ndarray
    since: np.ndarray
    expire: np.ndarray
    smart_sending: np.ndarray
    labels: tuple[str, ...]
    where: tuple[tuple[Predicate, ...], ...]
    policy: tuple[str | None, ...]
    path_node: np.ndarray
    path_start: np.ndarray
    path_weight: np.ndarray
    path_names: tuple[str, ...]
    path_labels: tuple[str, ...]
    path_segment: tuple[tuple[Predicate, ...], ...]
    path_entry: tuple[tuple[Predicate, ...], ...]
    emails: tuple[str, ...]
    max_sends: int
    event_types: frozenset[str]
    catalog_events: frozenset[str]
    max_depth: int

    def __len__(self) -> int:
        return len(self.kind)


def attribute_tests(rule: Rule) -> tuple[Predicate, ...]:
    """Every test ``rule`` makes on subscriber attributes: its ``segment`` and, for a
    journey, its branch cases' ``segment`` tests and its ``attribute`` entry's. A caller
    that updates attributes (``TriggerEngine.update_subscribers``) needs to pass the rows
    whose outcome of one of these changed."""
    if rule.journey is None:
        return tuple(rule.segment)
    prog = compile_journey(rule)
    entry = rule.journey.entry
    return (*rule.segment, *(p for case in prog.path_segment for p in case),
            *(entry.segment if isinstance(entry, AttributeEntry) else ()))


def compile_journey(rule: Rule) -> JourneyProgram:
    """Compile the journey of ``rule`` (a :class:`~policies.triggers.ruleset.Rule` with a
    ``journey``) into a :class:`JourneyProgram`.

    The rule, not the bare journey, is compiled because the program's
    ``event_types`` include the rule's entry conditions and ``exclude``.

    >>> from policies.triggers import load_rules
    >>> rs = load_rules({"rules": [{"id": "j", "type": "cart_abandonment",
    ...     "when": [{"event": "add_to_cart", "within": "1h"}],
    ...     "emails": {"a": {}, "b": {}},
    ...     "steps": [{"wait": "1h"}, {"send": "a"},
    ...               {"wait_until": {"events": ["email_open"], "within": "1d",
    ...                               "happened": ["exit"]}},
    ...               {"send": "b"}]}]})
    >>> prog = compile_journey(rs.rules[0])
    >>> [NODE_KINDS[k] for k in prog.kind], prog.next.tolist(), prog.max_sends
    (['wait', 'send', 'wait_until', 'exit', 'send'], [1, 2, 4, -1, -1], 2)
    >>> prog.labels[3], prog.path_names, prog.path_start.tolist()
    ('steps[2].wait_until.happened[0]', ('happened', 'timed_out'), [3, 4])
    """
    journey = rule.journey
    if journey is None:
        raise RuleError(f"{rule.id}: not a journey (a rule without steps)")
    email_index = {name: i for i, name in enumerate(journey.email_names)}
    nodes: list[dict[str, Any]] = []
    paths: list[dict[str, Any]] = []

    def size(step: Step) -> int:
        return 1 + sum(size(s) for _, _, ps in step_paths(step) for s in ps)

    def emit(steps: tuple[Step, ...], prefix: str, depth: int, cont: int) -> None:
        index = len(nodes)
        for k, step in enumerate(steps):
            label = f"{prefix}[{k}]"
            after = index + size(step)
            nxt = -1 if isinstance(step, Exit) else (after if k + 1 < len(steps) else cont)
            row = _node_row(step, email_index, label)
            row.update(next=nxt, depth=depth)
            nodes.append(row)
            sub = step_paths(step)
            if sub:
                row.update(first_path=len(paths), n_paths=len(sub))
                first = len(paths)
                paths.extend({} for _ in sub)
                child = index + 1
                for j, (name, key, path_steps) in enumerate(sub):
                    weight, seg, ent = _path_extras(step, j)
                    paths[first + j] = dict(node=index, start=child if path_steps else nxt,
                                            weight=weight, name=name, label=f"{label}.{key}",
                                            segment=seg, entry=ent)
                    emit(path_steps, f"{label}.{key}", depth + 1, nxt)
                    child += sum(size(s) for s in path_steps)
            index = after

    emit(journey.steps, "steps", 1, -1)
    n = len(nodes)

    def col(key: str, dtype: Any, default: Any = -1) -> np.ndarray:
        return np.array([r.get(key, default) for r in nodes], dtype)

    next_ = col("next", np.int16)
    kind = col("kind", np.int8)
    path_start = np.array([p["start"] for p in paths], np.int16)
    first_path, n_paths = col("first_path", np.int16), col("n_paths", np.int8, 0)
    # most sends from each node to the end: every edge points forward, so go backwards
    best = np.zeros(n + 1, np.int64)  # best[-1] (index n) stands for "ended"
    for i in range(n - 1, -1, -1):
        if n_paths[i]:
            starts = path_start[first_path[i]:first_path[i] + n_paths[i]]
            best[i] = max(int(best[s]) for s in starts)
        else:
            best[i] = best[next_[i]] if kind[i] != KIND_EXIT else 0
        best[i] += kind[i] == KIND_SEND
    return JourneyProgram(
        kind=kind,
        arg=col("arg", np.int64, 0),
        next=next_,
        first_path=first_path,
        n_paths=n_paths,
        depth=col("depth", np.int8),
        events=col("events", np.uint64, 0),
        since=col("since", np.int8),
        expire=col("expire", np.int64),
        smart_sending=col("smart_sending", np.int64),
        labels=tuple(r["label"] for r in nodes),
        where=tuple(r.get("where", ()) for r in nodes),
        policy=tuple(r.get("policy") for r in nodes),
        path_node=np.array([p["node"] for p in paths], np.int16),
        path_start=path_start,
        path_weight=np.array([p["weight"] for p in paths], np.float64),
        path_names=tuple(p["name"] for p in paths),
        path_labels=tuple(p["label"] for p in paths),
        path_segment=tuple(p["segment"] for p in paths),
        path_entry=tuple(p["entry"] for p in paths),
        emails=journey.email_names,
        max_sends=int(best[0]),
        event_types=_reacts_to(rule),
        catalog_events=(frozenset({journey.entry.event})
                        if isinstance(journey.entry, CatalogEntry) else frozenset()),
        max_depth=int(max(r["depth"] for r in nodes)),
    )


def _node_row(step: Step, email_index: Mapping[str, int], label: str) -> dict[str, Any]:
    kind = STEP_KINDS.index(_kind_name(step))
    row: dict[str, Any] = {"kind": kind, "label": label}
    if isinstance(step, Send):
        row.update(arg=email_index[step.email],
                   expire=-1 if step.expire is None else step.expire,
                   smart_sending=-1 if step.smart_sending is None else step.smart_sending)
    elif isinstance(step, Wait):
        row["arg"] = step.duration
    elif isinstance(step, WaitUntil):
        mask = 0
        for i, name in enumerate(step.events):
            code = EVENT_TYPES.code(name)
            if code >= 64:
                raise RuleError(f"{label}.wait_until.events[{i}]: {name!r} has event-type code "
                                f"{code}; a wait-until waits for codes below 64")
            mask |= 1 << code
        row.update(arg=step.within, events=mask, since=WAIT_SINCE.index(step.since),
                   where=step.where)
    elif isinstance(step, Split):
        row["policy"] = step.policy
    return row


def _kind_name(step: Step) -> str:
    return {Send: "send", Wait: "wait", WaitUntil: "wait_until", Branch: "branch",
            Split: "split", Exit: "exit"}[type(step)]


def _path_extras(step: Step, j: int
                 ) -> tuple[float, tuple[Predicate, ...], tuple[Predicate, ...]]:
    """(A/B weight or NaN, branch segment tests, branch entry tests) of path ``j``."""
    if isinstance(step, Split):
        w = step.paths[j].weight
        return (math.nan if w is None else float(w)), (), ()
    if isinstance(step, Branch) and j < len(step.cases):
        return math.nan, step.cases[j].segment, step.cases[j].entry
    return math.nan, (), ()


def _reacts_to(rule: Rule) -> frozenset[str]:
    journey = rule.journey
    assert journey is not None
    names = {c.event for c in rule.when} | set(rule.exclude) | {x.event for x in journey.exits}
    entry = journey.entry
    if isinstance(entry, Inactivity):
        names |= set(entry.events)
    elif isinstance(entry, CatalogEntry):
        names |= {"purchase_completed"}
        names |= {"product_view"} if entry.viewed else set()
        names |= {"add_to_cart"} if entry.carted else set()
    for _, _, step in iter_steps(journey.steps):
        if isinstance(step, WaitUntil):
            names |= set(step.events)
    return frozenset(names)
