"""The reference engine with journeys: one event at a time, plain Python — the executable
spec of docs/journeys.md ("Semantics: the engine contract").

:class:`JourneyCore` is the reference core (``engine="reference"``). Plain rules keep the
code and meaning of :class:`~policies.triggers._reference.ReferenceCore`; journey rules
(rules with ``steps``) run their compiled program (:func:`compile_journey`) here.

Per subscriber and journey rule the engine keeps at most one running :class:`Cursor` (the
node it waits at, when that wait ends, the entry time, key and properties), at most one
:class:`RetrySlot` (a failed send to retry) and the latest send (for failure reports).
At time ``t`` the order is (contract point 1): everything due at or before ``t`` — plain
sends, journey waits ending, wait-until time-outs, postponed sends, retries, inactivity
timers — in due order, ties by priority, rule order, node; then the event: exits
(``exclude`` and exit criteria), wait-until matches, then entries. Steps that take no
time (send, branch, split, exit) run at once when the journey reaches them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.ab import keyed_unit, salt_key
from policies.base import Policy
from policies.errors import TriggerLabValueError
from policies.event_schema import EVENT_TYPES, column_kind
from policies.events import EventBatch
from policies.features import subscriber_features
from policies.triggers._reference import (
    CANCEL,
    EXPIRE,
    FIRE,
    STAT_NAMES,
    SUPPRESS,
    Instance,
    ReferenceCore,
    SubscriberState,
    local_quiet_end,
)
from policies.triggers.catalog import CatalogBatch
from policies.triggers.decisions import (
    ALL_KINDS,
    Decisions,
    StepNames,
    TriggerIdError,
    parse_journey_trigger_id,
    trigger_id,
)
from policies.triggers.journeys import (
    KIND_EXIT,
    KIND_SEND,
    KIND_SPLIT,
    KIND_WAIT,
    KIND_WAIT_UNTIL,
    WAIT_SINCE,
    AttributeEntry,
    CatalogEntry,
    Inactivity,
    JourneyProgram,
    compile_journey,
)
from policies.triggers.ruleset import Rule, RuleSet

EXIT, SKIP, BRANCH, SPLIT = (ALL_KINDS.index(k) for k in ("exit", "skip", "branch", "split"))
_SINCE_ENTRY, _SINCE_SEND = WAIT_SINCE.index("entry"), WAIT_SINCE.index("last_send")
#: Products remembered per subscriber for catalog audiences (the least recently viewed or
#: carted is forgotten first).
CATALOG_MEMORY = 8

Row = tuple[int, int, int, int, int, int, int, int, float, int]


@dataclass
class Cursor:
    """A running journey instance: entered at ``entry``, waiting at ``node`` until ``due``.

    ``reached``: when ``node`` was reached; ``key``: the entry key (None: missing);
    ``props``: the entry properties; ``last_send``: time of the journey's last send;
    ``propensity``: that of the last split passed; ``seen_entry`` / ``seen_send``: the
    wait-until nodes whose events happened since the entry / since the last send.
    """

    entry: int
    key: int | None
    props: dict[str, Any]
    node: int = 0
    due: int = 0
    reached: int = 0
    last_send: int | None = None
    propensity: float = 1.0
    seen_entry: set[int] = field(default_factory=set)
    seen_send: set[int] = field(default_factory=set)


@dataclass
class RetrySlot:
    """A failed journey send to retry at ``due`` (attempt ``attempt``)."""

    entry: int
    node: int
    due: int
    attempt: int
    reached: int
    key: int | None
    propensity: float


@dataclass
class JourneySend:
    """The latest send of one journey rule to one subscriber (for failure reports)."""

    entry: int
    node: int
    attempt: int
    time: int
    reached: int
    key: int | None
    propensity: float
    failed: bool = False


@dataclass
class Product:
    """A product in a subscriber's catalog-audience memory (times in s, None: never)."""

    product: int
    viewed: int | None = None
    carted: int | None = None
    bought: int | None = None


@dataclass
class JourneyState:
    """What the engine remembers about one subscriber for its journeys."""

    cursors: dict[int, Cursor] = field(default_factory=dict)
    retries: dict[int, RetrySlot] = field(default_factory=dict)
    last_send: dict[int, JourneySend] = field(default_factory=dict)
    last_entry: dict[int, int] = field(default_factory=dict)
    ended: dict[int, int] = field(default_factory=dict)
    activity: dict[int, int] = field(default_factory=dict)
    lapse_used: dict[int, int] = field(default_factory=dict)
    first_seen: int | None = None
    products: list[Product] = field(default_factory=list)


def step_names(rules: RuleSet) -> StepNames | None:
    """Labels and path names of each rule's journey nodes (None without journeys)."""
    if all(r.journey is None for r in rules.rules):
        return None
    out: list[tuple[tuple[str, tuple[str, ...]], ...]] = []
    for r in rules.rules:
        if r.journey is None:
            out.append(())
            continue
        p = compile_journey(r)
        out.append(tuple(
            (p.labels[i], tuple(p.path_names[p.first_path[i]:p.first_path[i] + p.n_paths[i]]))
            for i in range(len(p))))
    return tuple(out)


def _entry_key(rule: Rule) -> str | None:
    """The journey's entry key column: the one ``match`` of its exits and goal, else for a
    catalog entry ``product_id`` (the product the alert is about), else None."""
    j = rule.journey
    assert j is not None
    keys = [x.match for x in j.exits if x.match] + ([j.goal.match] if j.goal and j.goal.match
                                                     else [])
    if keys:
        return keys[0]
    return "product_id" if isinstance(j.entry, CatalogEntry) else None


class JourneyCore(ReferenceCore):
    """Reference core for rule sets with or without journeys (see the module docstring)."""

    def __init__(self, rules: RuleSet, subscribers: pd.DataFrame,
                 policies: Mapping[str, Policy] | None = None, seed: int = 0) -> None:
        self.programs: dict[int, JourneyProgram] = {
            r: compile_journey(rule) for r, rule in enumerate(rules.rules)
            if rule.journey is not None}
        self.step_names = step_names(rules)
        self.policies = dict(policies or {})
        self.seed = seed
        self.keys = {r: _entry_key(rules.rules[r]) for r in self.programs}
        self.journeys: dict[int, JourneyState] = {}
        super().__init__(rules, subscribers)
        for prog in self.programs.values():
            self.relevant |= prog.event_types
        windows = [rules.settings.smart_sending or 0] + [
            int(w) for p in self.programs.values() for w in p.smart_sending]
        self.send_memory = max([self.send_memory, *windows])
        self.inactive = [r for r in self.programs
                         if isinstance(rules.rules[r].journey.entry, Inactivity)]  # type: ignore[union-attr]
        self.catalog_rules = [r for r in self.programs
                              if isinstance(rules.rules[r].journey.entry, CatalogEntry)]  # type: ignore[union-attr]
        self._check_policies()

    @classmethod
    def restore(cls, core: Mapping[str, Any]) -> JourneyCore:
        """A core from its ``__dict__`` (a checkpoint); a plain :class:`ReferenceCore`'s
        (written before journeys, whose rule sets have none) gets empty journey state."""
        self = cls.__new__(cls)
        self.__dict__.update(core)
        if "programs" not in core:
            self.programs, self.step_names, self.policies, self.seed = {}, None, {}, 0
            self.keys, self.journeys, self.inactive, self.catalog_rules = {}, {}, [], []
        return self

    def _check_policies(self) -> None:
        for r, prog in self.programs.items():
            for node, name in enumerate(prog.policy):
                if name is None:
                    continue
                where = f"rules[{r}] {self.rules.rules[r].id!r} {prog.labels[node]}.split.policy"
                pol = self.policies.get(name)
                if pol is None:
                    given = ", ".join(sorted(self.policies)) or "none"
                    raise TriggerLabValueError(f"{where}: unknown policy {name!r}; given: {given}")
                if not isinstance(pol, Policy):
                    raise TriggerLabValueError(
                        f"policies[{name!r}]: expected a Policy, got {type(pol).__name__}")
                if pol.n_arms != prog.n_paths[node]:
                    raise TriggerLabValueError(
                        f"{where}: policy {name!r} has {pol.n_arms} arms, the split "
                        f"{prog.n_paths[node]} paths")

    # -- state helpers ------------------------------------------------------------

    def state(self, sub: int) -> tuple[SubscriberState, JourneyState]:
        return (self.subs.setdefault(sub, SubscriberState()),
                self.journeys.setdefault(sub, JourneyState()))

    def row(self, sub: int, r: int, kind: int, t: int, entry: int, attempt: int = 1,
            node: int = -1, path: int = -1, propensity: float = 1.0,
            key: int | None = None) -> Row:
        """One decision row; ``key`` is the journey instance's entry key (None or
        negative: none, -1 in the row)."""
        return (sub, r, kind, t, entry, attempt, node, path, propensity,
                -1 if key is None or key < 0 else key)

    # -- processing ----------------------------------------------------------------

    def process(self, batch: EventBatch, until: int | None,
                catalog: CatalogBatch | None = None) -> Decisions:
        out: list[Any] = []
        names = EVENT_TYPES.names
        data = {name: col.tolist() for name, col in batch.columns.items()}
        categorical = {name for name in data if column_kind(name) == "int"}
        cat = catalog if catalog is not None else CatalogBatch.empty()
        times = batch.time.tolist()
        c = 0  # next catalog event; at equal times catalog events come after
        for i, (sub, t, code) in enumerate(
            zip(batch.subscriber.tolist(), times, batch.type.tolist(), strict=True)
        ):
            while c < len(cat) and cat.time[c] < t:
                self.catalog_event(cat, c, out)
                c += 1
            if sub not in self.attrs:
                continue  # unknown subscribers: ignored
            if self.inactive:
                js = self.state(sub)[1]
                if js.first_seen is None:
                    js.first_seen = t  # an inactivity clock may start at the first event
            if names[code] not in self.relevant:
                continue  # event types no rule mentions: ignored
            values = {}
            for name, col in data.items():
                v = col[i]
                missing = v < 0 if name in categorical else v != v
                values[name] = None if missing else v
            self.decide_due(sub, t, out)
            self.handle_event(sub, t, names[code], values, out)
        while c < len(cat):
            self.catalog_event(cat, c, out)
            c += 1
        if until is not None:
            subs = set(self.subs) | set(self.journeys)
            if any(self.rules.rules[r].journey.entry.since_attribute  # type: ignore[union-attr]
                   for r in self.inactive):
                subs |= set(self.attrs)  # a timer may start at an attribute, before any event
            for sub in sorted(subs):
                self.decide_due(sub, until, out)
        return self.finish(out)

    def decide_due(self, sub: int, t: int, out: list) -> None:
        """Contract point 1: decide everything of ``sub`` due at or before ``t``, one item
        at a time in (due, -priority, rule, node) order."""
        while True:
            item = self.next_due(sub)
            if item is None or item[0] > t:
                return
            due, _, r, _, what = item
            st, js = self.state(sub)
            if what == "plain":
                self.decide(sub, st, r, due, out)
            elif what == "retry":
                self.retry_send(sub, r, js.retries[r], due, out)
            elif what == "cursor":
                self.resume(sub, r, js.cursors[r], due, out)
            else:
                self.inactivity_entry(sub, r, due, out)

    def next_due(self, sub: int) -> tuple[int, int, int, int, str] | None:
        items: list[tuple[int, int, int, int, str]] = []
        rules = self.rules.rules
        st = self.subs.get(sub)
        if st is not None:
            items += [(inst.due, -rules[r].priority, r, -1, "plain")
                      for r, inst in st.pending.items()]
        js = self.journeys.get(sub)
        if js is not None:
            items += [(x.due, -rules[r].priority, r, x.node, "retry")
                      for r, x in js.retries.items()]
            items += [(x.due, -rules[r].priority, r, x.node, "cursor")
                      for r, x in js.cursors.items()]
        for r in self.inactive:
            due = self.inactivity_due(sub, r)
            if due is not None:
                items.append((due, -rules[r].priority, r, -2, "timer"))
        return min(items) if items else None

    # -- events ----------------------------------------------------------------------

    def handle_event(self, sub: int, t: int, etype: str, values: dict[str, Any],
                     out: list) -> None:
        """Contract point 1, the event's part: exits, wait-until matches, entries."""
        st, js = self.state(sub)
        rules = self.rules.rules
        for r, rule in enumerate(rules):  # exits (plain: exclude cancels)
            if rule.journey is None:
                if etype in rule.exclude and r in st.pending:
                    inst = st.pending.pop(r)
                    out.append(self.row(sub, r, CANCEL, t, inst.entry, inst.attempt))
            else:
                self.exit_on_event(sub, r, rule, js, t, etype, values, out)
        st.recent.append((t, etype, values))
        st.recent = [e for e in st.recent if e[0] > t - self.horizon]
        code = EVENT_TYPES.code(etype)
        for r, prog in self.programs.items():  # wait-until matches
            cur = js.cursors.get(r)
            if cur is None:
                continue
            matched = {node for node in np.flatnonzero(prog.kind == KIND_WAIT_UNTIL).tolist()
                       if code < 64 and int(prog.events[node]) >> code & 1
                       and all(p.matches(values.get(p.column)) for p in prog.where[node])}
            cur.seen_entry |= matched
            cur.seen_send |= matched
            if prog.kind[cur.node] == KIND_WAIT_UNTIL and cur.node in matched:
                self.take_path(sub, r, cur, cur.node, 0, t, out)  # happened
        for r in self.inactive:  # activity restarts inactivity clocks
            if etype in rules[r].journey.entry.events:  # type: ignore[union-attr]
                js.activity[r] = t
        if self.catalog_rules:
            self.remember_product(js, t, etype, values)
        for r, rule in enumerate(rules):  # entries
            if not any(c.event == etype for c in rule.when):
                continue
            if rule.journey is None:
                if self.enters(sub, st, r, rule, t):
                    st.pending[r] = Instance(entry=t, due=t + rule.delay)
                    self.counts[rule.id]["entered"] += 1
            elif self.conditions_hold(st, rule, t):
                self.try_enter(sub, r, t, dict(values), out)

    def exit_on_event(self, sub: int, r: int, rule: Rule, js: JourneyState, t: int,
                      etype: str, values: dict[str, Any], out: list) -> None:
        """``exclude`` and exit criteria end the running journey (kind ``exit``) and
        cancel a pending retry of its sends (kind ``cancel``)."""
        assert rule.journey is not None
        key_col = self.keys[r]

        def ends(key: int | None) -> bool:
            if etype in rule.exclude:
                return True
            for x in rule.journey.exits:  # type: ignore[union-attr]
                if x.event != etype or not all(p.matches(values.get(p.column)) for p in x.where):
                    continue
                if x.match is None:
                    return True
                value = values.get(key_col) if key_col else None
                if key is not None and value is not None and value == key:
                    return True
            return False

        cur = js.cursors.get(r)
        if cur is not None and ends(cur.key):
            out.append(self.row(sub, r, EXIT, t, cur.entry, 1, cur.node, -1, cur.propensity,
                                cur.key))
            self.end(js, r, t)
        retry = js.retries.get(r)
        if retry is not None and ends(retry.key):
            del js.retries[r]
            out.append(self.row(sub, r, CANCEL, t, retry.entry, retry.attempt, retry.node, -1,
                                retry.propensity, retry.key))

    # -- entries -----------------------------------------------------------------------

    def try_enter(self, sub: int, r: int, t: int, props: dict[str, Any], out: list) -> None:
        """Contract point 3: enter journey ``r`` at ``t`` unless one is running, the segment
        does not match, re-entry forbids it, or the subscriber entered it at this second."""
        rule = self.rules.rules[r]
        js = self.state(sub)[1]
        if r in js.cursors or js.last_entry.get(r) == t or not self.in_segment(sub, rule):
            return
        if rule.reentry == "once" and r in js.last_entry:
            return
        if rule.reentry == "cooldown" and r in js.ended and t < js.ended[r] + rule.cooldown:
            return
        key_col = self.keys[r]
        key = props.get(key_col) if key_col else None
        cur = Cursor(entry=t, key=None if key is None else int(key), props=props)
        js.cursors[r] = cur
        js.last_entry[r] = t
        self.counts[rule.id]["entered"] += 1
        self.run(sub, r, cur, 0, t, out)

    def inactivity_due(self, sub: int, r: int) -> int | None:
        """When the inactivity entry of rule ``r`` is due for ``sub`` (None: never)."""
        entry = self.rules.rules[r].journey.entry  # type: ignore[union-attr]
        assert isinstance(entry, Inactivity)
        js = self.journeys.get(sub)
        t0 = js.activity.get(r) if js is not None else None
        if t0 is None and entry.since_attribute is not None:
            value = self.attrs.get(sub, {}).get(entry.since_attribute)
            if isinstance(value, int | float | np.integer | np.floating) and not (
                    isinstance(value, bool) or math.isnan(value)):
                t0 = int(value)
        if t0 is None and js is not None:
            t0 = js.first_seen
        if t0 is None or (js is not None and js.lapse_used.get(r) == t0):
            return None
        return t0 + entry.duration

    def inactivity_entry(self, sub: int, r: int, due: int, out: list) -> None:
        js = self.state(sub)[1]
        t0 = due - self.rules.rules[r].journey.entry.duration  # type: ignore[union-attr]
        js.lapse_used[r] = t0  # one entry (attempt) per lapse
        self.try_enter(sub, r, due, {}, out)

    def update_attributes(self, df: pd.DataFrame, at: int | None = None) -> Decisions:
        """Insert or replace attributes; with ``at``, attribute entries (contract point 9):
        a subscriber who did not pass an attribute entry's tests before and does now
        enters at ``at``."""
        before = {int(s): self.attrs.get(int(s)) for s in df.index.tolist()}
        super().update_subscribers(df)
        out: list[Any] = []
        if at is None:
            return self.finish(out)
        rules = self.rules.rules
        attribute_rules = [r for r in self.programs
                           if isinstance(rules[r].journey.entry, AttributeEntry)]  # type: ignore[union-attr]
        for sub in sorted(before):
            for r in attribute_rules:
                tests = rules[r].journey.entry.segment  # type: ignore[union-attr]
                old, new = before[sub], self.attrs[sub]
                if (old is None or not all(p.matches(old.get(p.column)) for p in tests)) and all(
                        p.matches(new.get(p.column)) for p in tests):
                    self.try_enter(sub, r, at, {}, out)
        return self.finish(out)

    # -- catalog -------------------------------------------------------------------------

    def remember_product(self, js: JourneyState, t: int, etype: str,
                         values: dict[str, Any]) -> None:
        """Contract point 8: the last :data:`CATALOG_MEMORY` products viewed or carted."""
        product = values.get("product_id")
        if product is None or etype not in ("product_view", "add_to_cart",
                                             "purchase_completed"):
            return
        found = next((p for p in js.products if p.product == product), None)
        if etype == "purchase_completed":
            if found is not None:
                found.bought = t
            return
        if found is None:
            found = Product(int(product))
        else:
            js.products.remove(found)
        js.products.append(found)  # most recently viewed or carted last
        if etype == "product_view":
            found.viewed = t
        else:
            found.carted = t
        del js.products[:-CATALOG_MEMORY]

    def catalog_event(self, cat: CatalogBatch, i: int, out: list) -> None:
        """Fan catalog event ``i`` out to the subscribers who viewed or carted its product
        within the audience windows and have not bought it since."""
        t, etype, product = int(cat.time[i]), cat.type_name(i), int(cat.product_id[i])
        props = cat.properties(i)
        rules = [r for r in self.catalog_rules
                 if self.rules.rules[r].journey.entry.event == etype  # type: ignore[union-attr]
                 and all(p.matches(props.get(p.column))
                         for p in self.rules.rules[r].journey.entry.where)]  # type: ignore[union-attr]
        if not rules:
            return
        for sub in sorted(self.journeys):
            js = self.journeys[sub]
            memo = next((p for p in js.products if p.product == product), None)
            if memo is None:
                continue
            self.decide_due(sub, t, out)
            for r in rules:
                entry = self.rules.rules[r].journey.entry  # type: ignore[union-attr]
                assert isinstance(entry, CatalogEntry)
                if any(when is not None and t - when < window
                       and (memo.bought is None or memo.bought < when)
                       for when, window in ((memo.viewed, entry.viewed),
                                            (memo.carted, entry.carted)) if window):
                    self.try_enter(sub, r, t, dict(props), out)

    # -- running a journey ---------------------------------------------------------------

    def resume(self, sub: int, r: int, cur: Cursor, t: int, out: list) -> None:
        """The wait at ``cur.node`` ends at ``t``: a wait goes on, a wait-until times out,
        a postponed send is tried again."""
        prog = self.programs[r]
        kind = prog.kind[cur.node]
        if kind == KIND_WAIT:
            self.run(sub, r, cur, int(prog.next[cur.node]), t, out)
        elif kind == KIND_WAIT_UNTIL:
            self.take_path(sub, r, cur, cur.node, 1, t, out)  # timed out
        else:
            self.continue_send(sub, r, cur, t, out)

    def take_path(self, sub: int, r: int, cur: Cursor, node: int, path: int, t: int,
                  out: list) -> None:
        """Record the path a branch or wait-until took (kind ``branch``) and run it."""
        prog = self.programs[r]
        out.append(self.row(sub, r, BRANCH, t, cur.entry, 1, node, path, cur.propensity,
                            cur.key))
        self.run(sub, r, cur, int(prog.path_start[prog.first_path[node] + path]), t, out)

    def run(self, sub: int, r: int, cur: Cursor, node: int, t: int, out: list) -> None:
        """Run from ``node`` at ``t`` through the steps that take no time, until the journey
        waits (wait, wait-until, postponed send) or ends."""
        prog = self.programs[r]
        js = self.journeys[sub]
        while True:
            if node < 0:
                self.end(js, r, t)  # the last step is done
                return
            cur.node, cur.reached = node, t
            kind = prog.kind[node]
            if kind == KIND_WAIT:
                cur.due = t + int(prog.arg[node])
                return
            if kind == KIND_WAIT_UNTIL:
                cur.due = t + int(prog.arg[node])
                since = prog.since[node]
                if (since == _SINCE_ENTRY and node in cur.seen_entry) or (
                        since == _SINCE_SEND and node in cur.seen_send):
                    self.take_path(sub, r, cur, node, 0, t, out)  # happened before the step
                return
            if kind == KIND_SEND:
                if not self.continue_send(sub, r, cur, t, out, then_run=False):
                    return  # postponed by quiet hours
                node = int(prog.next[node])
                continue
            if kind == KIND_EXIT:
                out.append(self.row(sub, r, EXIT, t, cur.entry, 1, node, -1, cur.propensity,
                                    cur.key))
                self.end(js, r, t)
                return
            path, propensity = self.choose(sub, r, cur, node) if kind == KIND_SPLIT else (
                self.branch_case(sub, r, cur, node), cur.propensity)
            if kind == KIND_SPLIT:
                cur.propensity = propensity
                out.append(self.row(sub, r, SPLIT, t, cur.entry, 1, node, path, propensity,
                                    cur.key))
            else:
                out.append(self.row(sub, r, BRANCH, t, cur.entry, 1, node, path,
                                    cur.propensity, cur.key))
            node = int(prog.path_start[prog.first_path[node] + path])

    def end(self, js: JourneyState, r: int, t: int) -> None:
        del js.cursors[r]
        js.ended[r] = t

    def branch_case(self, sub: int, r: int, cur: Cursor, node: int) -> int:
        """The first case whose tests hold: ``segment`` on the attributes now, ``entry`` on
        the entry properties (``else``, last, has none)."""
        prog = self.programs[r]
        attrs = self.attrs.get(sub, {})
        first, n = int(prog.first_path[node]), int(prog.n_paths[node])
        for j in range(n):
            if all(p.matches(attrs.get(p.column)) for p in prog.path_segment[first + j]) and all(
                    p.matches(cur.props.get(p.column)) for p in prog.path_entry[first + j]):
                return j
        raise AssertionError("a branch ends with an else")  # pragma: no cover

    def choose(self, sub: int, r: int, cur: Cursor, node: int) -> tuple[int, float]:
        """Contract point 7: the path of a split and its propensity."""
        prog = self.programs[r]
        rule_id = self.rules.rules[r].id
        first, n = int(prog.first_path[node]), int(prog.n_paths[node])
        name = prog.policy[node]
        if name is None:
            u = keyed_unit(sub, f"{rule_id}:{node}", cur.entry)
            weights = prog.path_weight[first:first + n]
            j = min(int(np.searchsorted(np.cumsum(weights), u, side="right")), n - 1)
            return j, float(weights[j])
        policy = self.policies[name]
        rng = np.random.default_rng(
            [self.seed, salt_key(trigger_id(rule_id, sub, cur.entry)), node])
        contexts = None
        if getattr(policy, "n_features", None) is not None:
            contexts = subscriber_features(pd.DataFrame([self.attrs[sub]]))
        arms, props = policy.select(contexts, rng, subscribers=np.array([sub], np.int64), n=1)
        return int(arms[0]), float(props[0])

    def continue_send(self, sub: int, r: int, cur: Cursor, t: int, out: list,
                      then_run: bool = True) -> bool:
        """Contract point 2: the send at ``cur.node``, tried at ``t``. Returns False when
        quiet hours postpone it (the cursor waits at the send until their end); otherwise
        the send fired, expired, was skipped or suppressed, and (``then_run``) the journey
        goes on at ``t``."""
        prog = self.programs[r]
        node = cur.node
        st, js = self.state(sub)
        settings = self.rules.settings
        send_at = self.quiet_end(sub, t)
        expire = int(prog.expire[node])
        row = (cur.entry, 1, node, -1, cur.propensity, cur.key)
        if expire >= 0 and send_at > cur.reached + expire:
            out.append(self.row(sub, r, EXPIRE, t, *row))
        elif send_at > t:
            cur.due = send_at
            return False
        else:
            smart = int(prog.smart_sending[node])
            window = (settings.smart_sending or 0) if smart < 0 else smart
            st.sends = [s for s in st.sends if s > t - self.send_memory]
            if window and any(s > t - window for s in st.sends):
                out.append(self.row(sub, r, SKIP, t, *row))
            elif self.capped(st, t):
                out.append(self.row(sub, r, SUPPRESS, t, *row))
            else:
                st.sends.append(t)
                js.last_send[r] = JourneySend(cur.entry, node, 1, t, cur.reached, cur.key,
                                              cur.propensity)
                cur.last_send = t
                cur.seen_send.clear()
                out.append(self.row(sub, r, FIRE, t, *row))
        if then_run:
            self.run(sub, r, cur, int(prog.next[node]), t, out)
        return True

    def quiet_end(self, sub: int, t: int) -> int:
        q = self.rules.settings.quiet_hours
        return t if q is None else local_quiet_end(t, self.utc_offset(sub), q.start, q.end)

    def capped(self, st: SubscriberState, t: int) -> bool:
        cap = self.rules.settings.frequency_cap
        return cap is not None and sum(s > t - cap.per for s in st.sends) >= cap.max

    # -- retries -------------------------------------------------------------------------

    def retry_send(self, sub: int, r: int, slot: RetrySlot, t: int, out: list) -> None:
        """Contract point 4: a retry is a plain send of the same step (quiet hours, the
        send's ``expire`` from reaching the step, the cap; no smart sending)."""
        st, js = self.state(sub)
        send_at = self.quiet_end(sub, t)
        expire = int(self.programs[r].expire[slot.node])
        row = (slot.entry, slot.attempt, slot.node, -1, slot.propensity, slot.key)
        if expire >= 0 and send_at > slot.reached + expire:
            out.append(self.row(sub, r, EXPIRE, t, *row))
        elif send_at > t:
            slot.due = send_at
            return
        elif self.capped(st, t):
            out.append(self.row(sub, r, SUPPRESS, t, *row))
        else:
            st.sends.append(t)
            js.last_send[r] = JourneySend(slot.entry, slot.node, slot.attempt, t, slot.reached,
                                          slot.key, slot.propensity)
            out.append(self.row(sub, r, FIRE, t, *row))
        del js.retries[r]

    def failure_targets(self, ids: list[str]) -> list[tuple[Any, ...]]:
        """``(rule index, subscriber, entry, attempt, send time, node, propensity, entry
        key)`` of each reported id as the engine stands now (node -1 for plain rules; attempt
        negative when already reported failed); ``TriggerIdError`` for an id that is not
        the latest send of its rule to its subscriber. Changes nothing."""
        targets: list[tuple[Any, ...]] = []
        for tid in ids:
            rule_id, sub, entry, node = parse_journey_trigger_id(tid)
            if rule_id not in self.rules.ids:
                raise TriggerIdError(f"trigger_id {tid!r}: unknown rule {rule_id!r}")
            r = self.rules.ids.index(rule_id)
            if r not in self.programs:
                if node >= 0:
                    raise TriggerIdError(f"trigger_id {tid!r}: rule {rule_id!r} has no steps")
                targets.extend((*t, -1, 1.0, None) for t in super().failure_targets([tid]))
                continue
            js = self.journeys.get(sub)
            last = js.last_send.get(r) if js is not None else None
            if last is None or (last.entry, last.node) != (entry, node):
                raise TriggerIdError(f"trigger_id {tid!r}: not the latest send of rule "
                                     f"{rule_id!r} to subscriber {sub}")
            targets.append((r, sub, entry, -last.attempt if last.failed else last.attempt,
                            last.time, node, last.propensity, last.key))
        return targets

    def report_failures(self, targets: Sequence[tuple[Any, ...]], now: int) -> Decisions:
        """Contract point 5 (plain rules) and journeys' point 4 for
        :meth:`failure_targets` taken before everything due by ``now`` was decided: the
        failed send of a journey is retried in the rule's retry slot while the journey
        moves on; after the last attempt, or when the slot is taken, it is cancelled. A
        send that a newer send of its rule superseded in between is cancelled."""
        plain = [t[:5] for t in targets if t[5] < 0]
        parts = [super().report_failures(plain, now)] if plain else []
        out: list[Any] = []
        retry = self.rules.settings.retry
        superseded: set[tuple[int, int, int, int]] = set()
        for r, sub, entry, attempt, time, node, prop, key in (t for t in targets if t[5] >= 0):
            rule_id = self.rules.ids[r]
            js = self.journeys[sub]
            st = self.subs[sub]
            last = js.last_send[r]
            if (last.entry, last.node) != (entry, node):
                if attempt < 0 or (r, sub, entry, node) in superseded:
                    continue  # this failure was already reported
                superseded.add((r, sub, entry, node))
                self.count_failure(rule_id, st, time)
                out.append(self.row(sub, r, CANCEL, now, entry, attempt, node, -1, prop, key))
                continue
            if last.failed:
                continue  # this failure was already reported
            last.failed = True
            self.count_failure(rule_id, st, last.time)
            k = last.attempt
            if k >= retry.max_attempts or r in js.retries:
                out.append(self.row(sub, r, CANCEL, now, entry, k, node, -1, last.propensity,
                                    last.key))
            else:
                js.retries[r] = RetrySlot(entry, node, now + retry.backoff * k, k + 1,
                                          last.reached, last.key, last.propensity)
                self.counts[rule_id]["retried"] += 1
        parts.append(self.finish(out))
        return Decisions.concat(parts).sorted()

    def count_late(self, batch: EventBatch) -> None:
        """Count dropped late events: once in total, and against every rule that refers
        to their type."""
        self.n_late += len(batch)
        names = EVENT_TYPES.names
        for code in batch.type.tolist():
            for r, rule in enumerate(self.rules.rules):
                prog = self.programs.get(r)
                if (names[code] in prog.event_types if prog is not None else
                        names[code] in rule.exclude or any(c.event == names[code]
                                                           for c in rule.when)):
                    self.counts[rule.id]["late"] += 1

    def stats_array(self) -> np.ndarray:
        """As :meth:`ReferenceCore.stats_array`, with a journey rule's running instances
        and pending retries counted as ``pending``."""
        stats = super().stats_array()
        col = STAT_NAMES.index("pending")
        for js in self.journeys.values():
            for r in (*js.cursors, *js.retries):
                stats[r, col] += 1
        return stats

    def n_pending(self) -> int:
        """Plain pending instances, running journeys and pending journey retries."""
        return super().n_pending() + sum(
            len(js.cursors) + len(js.retries) for js in self.journeys.values())

