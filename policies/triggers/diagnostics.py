"""Segment diagnostics: can each rule fire on the subscribers the engine was given?

A rule can be valid and still never fire because of the data: its segment tests a
column the subscriber table lacks, or values no subscriber has, or no subscriber passes
all its tests together. Rule loading cannot know (the table is open, docs/domain.md);
the engine can, once it has a table. :class:`SegmentWatch` remembers what the engine has
seen -- which segment columns some table had, which ``equals``/``in`` values some
subscriber had -- and :func:`diagnose` turns that and the number of subscribers in each
segment into one row per rule (:meth:`TriggerEngine.diagnostics
<policies.triggers.TriggerEngine.diagnostics>`) with a warning text, which the engine
also issues as a :class:`~policies.errors.RuleWarning`.

Everything here depends only on the tables given and the rules, not on the engine
implementation, so both engines report the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.checks import did_you_mean
from policies.triggers.ruleset import Predicate, RuleSet, segment_mask

__all__ = ["DIAGNOSTIC_COLUMNS", "SegmentWatch", "diagnose"]

#: Columns of :meth:`TriggerEngine.diagnostics`, one row per rule.
DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "in_segment", "missing_columns", "unseen_values", "warning",
)


def _wanted(p: Predicate) -> tuple[Any, ...]:
    if p.op == "in":
        return tuple(p.value)
    if p.op == "equals":
        return (p.value,)
    return ()


@dataclass
class SegmentWatch:
    """What the engine has seen of the columns and values its rules' segments test.

    Attributes
    ----------
    columns : set of str
        Every column of every subscriber table given so far (for "did you mean").
    values : set of (str, value)
        ``(column, v)`` for each ``equals``/``in`` value ``v`` of a segment that some
        subscriber row given so far had.
    warned : dict of str to str
        The warning last issued per rule id (a warning is issued again only when it
        changes).
    """

    columns: set[str] = field(default_factory=set)
    values: set[tuple[str, Any]] = field(default_factory=set)
    warned: dict[str, str] = field(default_factory=dict)

    @classmethod
    def everything_seen(cls, rules: RuleSet) -> SegmentWatch:
        """A watch that has seen every segment column and value (for engines restored
        from checkpoints written before the watch existed: no false alarms)."""
        watch = cls()
        for rule in rules.rules:
            for p in rule.segment:
                watch.columns.add(p.column)
                watch.values.update((p.column, v) for v in _wanted(p))
        return watch

    def observe(self, rules: RuleSet, df: pd.DataFrame) -> None:
        """Remember the columns of ``df`` and the segment values its rows have."""
        self.columns.update(str(c) for c in df.columns)
        for rule in rules.rules:
            for p in rule.segment:
                if p.column not in df.columns:
                    continue
                for v in _wanted(p):
                    key = (p.column, v)
                    if key not in self.values and segment_mask(
                            df, (Predicate(p.column, "equals", v),)).any():
                        self.values.add(key)

    def new_warnings(self, table: pd.DataFrame) -> list[str]:
        """Warnings of ``table`` (:func:`diagnose`) not issued before for their rule."""
        out = []
        for rule_id, text in table["warning"].items():
            if text and self.warned.get(str(rule_id)) != text:
                out.append(str(text))
            self.warned[str(rule_id)] = str(text)
        return out


def diagnose(rules: RuleSet, watch: SegmentWatch, in_segment: Sequence[int] | np.ndarray,
             n_subscribers: int) -> pd.DataFrame:
    """One row per rule (index ``rule``, columns :data:`DIAGNOSTIC_COLUMNS`).

    ``in_segment`` is the number of subscribers currently passing each rule's segment,
    out of the ``n_subscribers`` the engine knows. A rule warns (``warning``) when it
    cannot fire: a segment column no table had; else an ``equals``/``in`` test none of
    whose values any subscriber had; else no subscriber passing the whole segment now.
    ``unseen_values`` lists every value no subscriber had, also of tests that other
    values pass (informational: with a documented vocabulary such a value is valid, just
    absent from this table). A rule without a segment never warns; nor does any rule
    while the engine knows no subscriber.
    """
    rows = []
    for rule, count in zip(rules.rules, in_segment, strict=True):
        missing = sorted({p.column for p in rule.segment} - watch.columns)
        present = [p for p in rule.segment if p.column not in missing]
        unseen = [f"{p.column}={v!r}" for p in present for v in _wanted(p)
                  if (p.column, v) not in watch.values]
        dead = [p for p in present if _wanted(p)
                and not any((p.column, v) in watch.values for v in _wanted(p))]
        text = ""
        if rule.segment and n_subscribers:
            if missing:
                hints = "".join(did_you_mean(c, sorted(watch.columns)) for c in missing)
                text = (f"its segment tests {', '.join(map(repr, missing))}, a column no "
                        f"subscriber table given to the engine has{hints}")
            elif dead:
                text = (f"no subscriber has {_describe(dead)} (of {n_subscribers:,} "
                        "subscribers)")
            elif int(count) == 0:
                text = (f"none of the {n_subscribers:,} subscribers passes its segment "
                        f"({_describe(rule.segment)})")
            if text:
                text = f"rule {rule.id!r} cannot fire: {text}"
        rows.append((int(count), ", ".join(missing), ", ".join(unseen), text))
    df = pd.DataFrame(rows, columns=list(DIAGNOSTIC_COLUMNS),
                      index=pd.Index(rules.ids, name="rule"))
    df["in_segment"] = df["in_segment"].astype(np.int64)
    return df


def _describe(segment: Sequence[Predicate]) -> str:
    ops = {"min": ">=", "max": "<=", "equals": "=", "in": "in"}
    return ", ".join(
        f"{p.column} {ops[p.op]} {list(p.value) if p.op == 'in' else p.value!r}"
        for p in segment)
