"""The reference trigger engine: one event at a time, plain Python — the executable spec.

Every rule of the contract (``engine.py``) is written out here as directly as possible;
the fast engine (``_fast.py``) must produce exactly the same decisions. Time ordering,
lateness and ``until`` checks are done by :class:`~policies.triggers.engine.TriggerEngine`
before a batch reaches :meth:`ReferenceCore.process`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.event_schema import EVENT_TYPES, column_kind
from policies.events import EventBatch
from policies.triggers.decisions import KINDS, Decisions, TriggerIdError, parse_trigger_id
from policies.triggers.ruleset import Rule, RuleSet

FIRE, CANCEL, EXPIRE, SUPPRESS = (KINDS.index(k) for k in ("fire", "cancel", "expire", "suppress"))
#: Columns of :meth:`TriggerEngine.stats` (defined in the contract, ``engine.py``).
STAT_NAMES = (
    "entered", "fired", "cancelled", "expired", "suppressed", "pending", "failed", "retried",
    "late",
)
#: The stored per-rule counters (``pending`` is read from the state instead).
COUNTER_NAMES = tuple(name for name in STAT_NAMES if name != "pending")
_KIND_STAT = {FIRE: "fired", CANCEL: "cancelled", EXPIRE: "expired", SUPPRESS: "suppressed"}


@dataclass
class Instance:
    """A pending trigger instance: entered at ``entry``, to be decided at ``due``."""

    entry: int
    due: int
    attempt: int = 1


@dataclass
class LastFire:
    """The latest send of one rule to one subscriber (for cooldown and failure reports)."""

    entry: int
    attempt: int
    time: int
    failed: bool = False


@dataclass
class SubscriberState:
    """Everything the engine remembers about one subscriber."""

    recent: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    pending: dict[int, Instance] = field(default_factory=dict)
    last_fire: dict[int, LastFire] = field(default_factory=dict)
    sends: list[int] = field(default_factory=list)


def local_quiet_end(t: int, offset_minutes: int, start: int, end: int) -> int:
    """``t`` if it is outside quiet hours [start, end) local time, else the end of them.

    ``start``/``end`` are minutes after midnight; the subscriber's local time is
    ``t + 60 * offset_minutes``.
    """
    second_of_day = (t + 60 * offset_minutes) % 86400
    if start < end:
        quiet = start * 60 <= second_of_day < end * 60
    else:
        quiet = second_of_day >= start * 60 or second_of_day < end * 60
    if not quiet:
        return t
    return t + (end * 60 - second_of_day) % 86400


class ReferenceCore:
    """Event-at-a-time engine over dicts; see the contract in ``engine.py``."""

    def __init__(self, rules: RuleSet, subscribers: pd.DataFrame) -> None:
        self.rules = rules
        self.attrs: dict[int, dict[str, Any]] = {}
        self.subs: dict[int, SubscriberState] = {}
        self.counts = {r.id: dict.fromkeys(COUNTER_NAMES, 0) for r in rules.rules}
        self.n_late = 0  # late events dropped, each once
        self.horizon = max(r.window for r in rules.rules)
        cap = rules.settings.frequency_cap
        #: How long past sends are remembered (s): the cap's ``per`` (journeys: longer).
        self.send_memory = cap.per if cap is not None else 0
        self.relevant = {c.event for r in rules.rules for c in r.when} | {
            e for r in rules.rules for e in r.exclude
        }
        self.update_subscribers(subscribers)

    # -- subscribers ----------------------------------------------------------

    def update_subscribers(self, df: pd.DataFrame) -> None:
        """Insert or replace the attributes of the subscribers in ``df``."""
        for sub, row in zip(df.index.tolist(), df.to_dict("records"), strict=True):
            self.attrs[int(sub)] = row

    def in_segment(self, sub: int, rule: Rule) -> bool:
        attrs = self.attrs.get(sub)
        if attrs is None:
            return False
        return all(p.matches(attrs.get(p.column)) for p in rule.segment)

    def utc_offset(self, sub: int) -> int:
        value = self.attrs.get(sub, {}).get("utc_offset_minutes")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return 0
        return int(value)

    # -- processing -----------------------------------------------------------

    def process(self, batch: EventBatch, until: int | None) -> Decisions:
        out: list[tuple[int, int, int, int, int, int]] = []
        names = EVENT_TYPES.names
        data = {name: col.tolist() for name, col in batch.columns.items()}
        categorical = {name for name in data if column_kind(name) == "int"}
        for i, (sub, t, code) in enumerate(
            zip(batch.subscriber.tolist(), batch.time.tolist(), batch.type.tolist(), strict=True)
        ):
            if sub not in self.attrs or names[code] not in self.relevant:
                continue  # unknown subscribers and event types no rule mentions: ignored
            values = {}
            for name, col in data.items():
                v = col[i]
                missing = v < 0 if name in categorical else v != v  # as the fast one
                values[name] = None if missing else v
            self.decide_due(sub, t, out)
            self.handle_event(sub, t, names[code], values, out)
        if until is not None:
            for sub in list(self.subs):
                self.decide_due(sub, until, out)
        return self.finish(out)

    def finish(self, out: list[tuple[int, int, int, int, int, int]]) -> Decisions:
        for _, r, kind, *_rest in out:
            if kind in _KIND_STAT:
                self.counts[self.rules.rules[r].id][_KIND_STAT[kind]] += 1
        return Decisions.from_rows(out, self.rules.ids, getattr(self, "step_names", None)).sorted()

    def handle_event(
        self, sub: int, t: int, etype: str, values: dict[str, Any], out: list
    ) -> None:
        """Semantics 2-3: exclusions cancel pending instances, then entries are checked."""
        st = self.subs.setdefault(sub, SubscriberState())
        for r, rule in enumerate(self.rules.rules):
            if etype in rule.exclude and r in st.pending:
                inst = st.pending.pop(r)
                out.append((sub, r, CANCEL, t, inst.entry, inst.attempt))
        if etype in self.relevant:
            st.recent.append((t, etype, values))
        st.recent = [e for e in st.recent if e[0] > t - self.horizon]
        for r, rule in enumerate(self.rules.rules):
            if any(c.event == etype for c in rule.when) and self.enters(sub, st, r, rule, t):
                st.pending[r] = Instance(entry=t, due=t + rule.delay)
                self.counts[rule.id]["entered"] += 1

    def enters(self, sub: int, st: SubscriberState, r: int, rule: Rule, t: int) -> bool:
        if not self.conditions_hold(st, rule, t):
            return False
        if r in st.pending or not self.in_segment(sub, rule):
            return False
        last = st.last_fire.get(r)
        if rule.reentry == "once" and last is not None:
            return False
        if rule.reentry == "cooldown" and last is not None:
            return t >= last.time + rule.cooldown
        return True

    def conditions_hold(self, st: SubscriberState, rule: Rule, t: int) -> bool:
        """Every condition of ``rule.when`` holds at ``t`` and no ``exclude`` event lies in
        the rule's window (the event at ``t`` is already in ``st.recent``)."""
        for cond in rule.when:
            matching = [
                e
                for e in st.recent
                if e[1] == cond.event
                and e[0] > t - cond.within
                and all(p.matches(e[2].get(p.column)) for p in cond.where)
            ]
            if len(matching) < cond.count:
                return False
        return not any(e[1] in rule.exclude and e[0] > t - rule.window for e in st.recent)

    def decide_due(self, sub: int, t: int, out: list) -> None:
        """Semantics 1 and 4: decide every pending instance of ``sub`` due at or before t."""
        st = self.subs.get(sub)
        if st is None:
            return
        while st.pending:
            due = min(inst.due for inst in st.pending.values())
            if due > t:
                return
            group = [r for r, inst in st.pending.items() if inst.due == due]
            group.sort(key=lambda r: (-self.rules.rules[r].priority, r))
            for r in group:
                self.decide(sub, st, r, due, out)

    def decide(self, sub: int, st: SubscriberState, r: int, due: int, out: list) -> None:
        rule = self.rules.rules[r]
        inst = st.pending[r]
        settings = self.rules.settings
        send_at = due
        if settings.quiet_hours is not None:
            q = settings.quiet_hours
            send_at = local_quiet_end(due, self.utc_offset(sub), q.start, q.end)
        if send_at > inst.entry + rule.expire:
            del st.pending[r]
            out.append((sub, r, EXPIRE, due, inst.entry, inst.attempt))
            return
        if send_at > due:
            inst.due = send_at  # postponed past quiet hours, still pending
            return
        cap = settings.frequency_cap
        if cap is not None:
            st.sends = [s for s in st.sends if s > due - self.send_memory]
            if sum(s > due - cap.per for s in st.sends) >= cap.max:
                del st.pending[r]
                out.append((sub, r, SUPPRESS, due, inst.entry, inst.attempt))
                return
        del st.pending[r]
        st.sends.append(due)
        st.last_fire[r] = LastFire(inst.entry, inst.attempt, due)
        out.append((sub, r, FIRE, due, inst.entry, inst.attempt))

    # -- failures ---------------------------------------------------------------

    def failure_targets(self, ids: list[str]) -> list[tuple[int, ...]]:
        """``(rule index, subscriber, entry, attempt, send time)`` of each reported id, as
        the engine stands now; ``TriggerIdError`` for an id that is not the latest send of
        its rule to its subscriber. Changes nothing."""
        targets: list[tuple[int, ...]] = []
        for tid in ids:
            rule_id, sub, entry = parse_trigger_id(tid)
            if rule_id not in self.rules.ids:
                raise TriggerIdError(f"trigger_id {tid!r}: unknown rule {rule_id!r}")
            r = self.rules.ids.index(rule_id)
            st = self.subs.get(sub)
            last = st.last_fire.get(r) if st is not None else None
            if st is None or last is None or last.entry != entry:
                raise TriggerIdError(
                    f"trigger_id {tid!r}: not the latest send of rule {rule_id!r} "
                    f"to subscriber {sub}"
                )
            targets.append((r, sub, entry, -last.attempt if last.failed else last.attempt,
                            last.time))
        return targets

    def report_failures(self, targets: Sequence[tuple[int, ...]],
                        now: int) -> Decisions:
        """Semantics 5 for :meth:`failure_targets` taken before everything due by ``now``
        was decided. A send superseded by a newer send of its rule in between is
        cancelled (the newer instance was pending when the failure happened)."""
        out: list[tuple[int, int, int, int, int, int]] = []
        retry = self.rules.settings.retry
        superseded: set[tuple[int, int, int]] = set()
        for r, sub, entry, attempt, time in targets:
            rule_id = self.rules.rules[r].id
            st = self.subs[sub]
            last = st.last_fire[r]
            if last.entry != entry:
                if attempt < 0 or (r, sub, entry) in superseded:
                    continue  # this failure was already reported
                superseded.add((r, sub, entry))
                self.count_failure(rule_id, st, time)
                out.append((sub, r, CANCEL, now, entry, attempt))
                continue
            if last.failed:
                continue  # this failure was already reported
            last.failed = True
            self.count_failure(rule_id, st, last.time)
            k = last.attempt
            if k >= retry.max_attempts or r in st.pending:
                out.append((sub, r, CANCEL, now, entry, k))
            else:
                st.pending[r] = Instance(entry=entry, due=now + retry.backoff * k, attempt=k + 1)
                self.counts[rule_id]["retried"] += 1
        return self.finish(out)

    def count_failure(self, rule_id: str, st: SubscriberState, time: int) -> None:
        """Count a reported failure of the send made at ``time``; a failed send does not
        count toward the cap."""
        self.counts[rule_id]["failed"] += 1
        if time in st.sends:
            st.sends.remove(time)

    def count_late(self, batch: EventBatch) -> None:
        """Count dropped late events: once in total, and against every rule that refers
        to their type."""
        self.n_late += len(batch)
        names = EVENT_TYPES.names
        for code in batch.type.tolist():
            for rule in self.rules.rules:
                if names[code] in rule.exclude or any(c.event == names[code] for c in rule.when):
                    self.counts[rule.id]["late"] += 1

    def n_pending(self) -> int:
        return sum(len(st.pending) for st in self.subs.values())

    def n_subscribers(self) -> int:
        return len(self.attrs)

    def segment_counts(self) -> np.ndarray:
        """Subscribers passing each rule's segment now (rule order)."""
        return np.array([sum(self.in_segment(s, rule) for s in self.attrs)
                         for rule in self.rules.rules], np.int64)

    def stats_array(self) -> np.ndarray:
        pending = dict.fromkeys(range(len(self.rules.rules)), 0)
        for st in self.subs.values():
            for r in st.pending:
                pending[r] += 1
        return np.array(
            [
                [pending[r] if k == "pending" else self.counts[rule.id][k] for k in STAT_NAMES]
                for r, rule in enumerate(self.rules.rules)
            ],
            np.int64,
        ).reshape(len(self.rules.rules), len(STAT_NAMES))
