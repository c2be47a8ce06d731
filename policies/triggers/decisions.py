"""Decisions of the trigger engine as a columnar batch.

Each row is one decision about one trigger instance:

* ``kind`` -- ``fire`` (send now), ``cancel`` (exit criterion, superseded, or out of
  retry attempts), ``expire`` (could not be sent before entry + expire) or ``suppress``
  (over the frequency cap);
* ``time`` -- when the decision takes effect (for a fire: the send time), seconds UTC;
* ``entered_at`` -- when the subscriber entered the rule;
* ``attempt`` -- 1 for the first send, k + 1 for the retry after the k-th failure;
* ``trigger_id`` -- ``"<rule>:<subscriber>:<entered_at>"``: deterministic, so a replay
  yields the same ids, and a failure report can be mapped back to its instance.

Journeys (docs/journeys.md) add, per row, ``step`` (the node of the compiled journey, -1
for plain rules), ``path`` (the index of the path a branch, wait-until or split took, -1)
``propensity`` (1.0 unless a split chose) and ``entry_key`` (the journey instance's entry
key: the value of the column its exits and goal ``match`` on, for a catalog entry the
product; -1 when none), the kinds ``exit``, ``skip``, ``branch``
and ``split`` (:data:`JOURNEY_KINDS`), and trigger ids
``"<rule>:<subscriber>:<entered_at>:<step>"`` for rows of a journey step. A batch of a
rule set without journeys (``steps`` is None) looks exactly as before: ``to_pandas`` and
``counts`` show only the plain columns and kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from policies.errors import TriggerLabError


class TriggerIdError(TriggerLabError, ValueError):
    """A malformed or unknown trigger id, or mismatched decision batches."""

__all__ = ["ALL_KINDS", "JOURNEY_KINDS", "KINDS", "Decisions", "StepNames", "TriggerIdError",
           "parse_journey_trigger_id", "parse_trigger_id", "trigger_id"]

#: Decision kinds of plain rules in code order (code = position).
KINDS: tuple[str, ...] = ("fire", "cancel", "expire", "suppress")
#: Kinds only journeys emit (codes follow :data:`KINDS`): the journey ended by an exit
#: criterion or step, a send skipped by smart sending, the path a branch or wait-until
#: took, the path a split chose.
JOURNEY_KINDS: tuple[str, ...] = ("exit", "skip", "branch", "split")
#: Every kind, in code order.
ALL_KINDS: tuple[str, ...] = KINDS + JOURNEY_KINDS

#: Per rule, per node of its compiled journey: ``(YAML label, path names)``; an empty
#: tuple for a plain rule.
StepNames = tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]

_COLUMNS = ("subscriber", "rule", "kind", "time", "entered_at", "attempt")
_JOURNEY_COLUMNS = ("step", "path", "propensity", "entry_key")


def trigger_id(rule: str, subscriber: int, entered_at: int, step: int = -1) -> str:
    """The deterministic id of the instance of ``rule`` entered by ``subscriber``; with
    ``step >= 0``, of that step (node) of a journey instance.

    >>> trigger_id("cart_abandonment_24h", 7, 1700000000)
    'cart_abandonment_24h:7:1700000000'
    >>> trigger_id("cart_series", 7, 1700000000, 3)
    'cart_series:7:1700000000:3'
    """
    base = f"{rule}:{int(subscriber)}:{int(entered_at)}"
    return base if step < 0 else f"{base}:{int(step)}"


def parse_journey_trigger_id(value: str) -> tuple[str, int, int, int]:
    """``(rule, subscriber, entered_at, step)`` of a trigger id (step -1 for a plain
    rule's id); :class:`TriggerIdError` if malformed.

    >>> parse_journey_trigger_id("cart_series:7:1700000000:3")
    ('cart_series', 7, 1700000000, 3)
    >>> parse_journey_trigger_id("cart_abandonment_24h:7:1700000000")
    ('cart_abandonment_24h', 7, 1700000000, -1)
    """
    text = str(value)
    parts = text.rsplit(":", 3)
    try:
        if len(parts) == 4 and not parts[0].lstrip("-").isdigit():
            # a rule id is an identifier, so 4 parts with a non-number first is a step id
            step = int(parts[3])
            if step < 0:
                raise ValueError
            return parts[0], int(parts[1]), int(parts[2]), step
        rule, sub, entered = text.rsplit(":", 2)
        return rule, int(sub), int(entered), -1
    except ValueError:
        raise TriggerIdError(
            "trigger_id: expected '<rule>:<subscriber>:<entered_at>' or "
            f"'<rule>:<subscriber>:<entered_at>:<step>', got {value!r}"
        ) from None


def parse_trigger_id(value: str) -> tuple[str, int, int]:
    """``(rule, subscriber, entered_at)`` of a trigger id, plain or of a journey step
    (:func:`parse_journey_trigger_id` also gives the step); ``TriggerIdError`` if
    malformed."""
    rule, sub, entered, _ = parse_journey_trigger_id(value)
    return rule, sub, entered


@dataclass(frozen=True, eq=False)
class Decisions:
    """A batch of decisions: equally long numpy arrays plus the rule ids they refer to.

    Parameters
    ----------
    subscriber, time, entered_at : ndarray of int64, shape (n,)
    rule : ndarray of int64, shape (n,)
        Index into ``rule_ids``.
    kind : ndarray of int64, shape (n,)
        Index into :data:`ALL_KINDS` (plain rules: :data:`KINDS`).
    attempt : ndarray of int64, shape (n,)
    rule_ids : tuple of str
    step, path : ndarray of int64, shape (n,), optional
        Journey node and chosen path index (-1: none); default all -1.
    propensity : ndarray of float64, shape (n,), optional
        Probability of the split choice the row depends on (default all 1.0).
    entry_key : ndarray of int64, shape (n,), optional
        The journey instance's entry key (the value of the column its exits and goal
        ``match`` on; a catalog entry's product), -1 when none; default all -1.
    steps : StepNames, optional
        Labels and path names of each rule's journey nodes; None for a rule set without
        journeys (then the batch shows only the plain columns and kinds).
    """

    subscriber: np.ndarray
    rule: np.ndarray
    kind: np.ndarray
    time: np.ndarray
    entered_at: np.ndarray
    attempt: np.ndarray
    rule_ids: tuple[str, ...]
    step: np.ndarray = None  # type: ignore[assignment]
    path: np.ndarray = None  # type: ignore[assignment]
    propensity: np.ndarray = None  # type: ignore[assignment]
    steps: StepNames | None = None
    entry_key: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = len(self.subscriber)
        for name, fill, dtype in (("step", -1, np.int64), ("path", -1, np.int64),
                                  ("propensity", 1.0, np.float64),
                                  ("entry_key", -1, np.int64)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, fill, dtype))

    @property
    def journeys(self) -> bool:
        """Whether the rule set has journeys (the batch then has the journey columns)."""
        return self.steps is not None

    @classmethod
    def empty(cls, rule_ids: Sequence[str], steps: StepNames | None = None) -> Decisions:
        """No decisions."""
        z = np.zeros(0, np.int64)
        return cls(z, z, z, z, z, z, tuple(rule_ids), steps=steps)

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple], rule_ids: Sequence[str], steps: StepNames | None = None,
    ) -> Decisions:
        """Build from ``(subscriber, rule_index, kind_code, time, entered_at, attempt)``
        tuples, optionally followed by ``(step, path, propensity)`` and ``entry_key``."""
        listed = [tuple(r) + (-1, -1, 1.0, -1)[len(r) - 6:] for r in rows]
        ints = np.array([r[:8] + r[9:] for r in listed], np.int64).reshape(-1, 9)
        props = np.array([r[8] for r in listed], np.float64)
        c = [np.ascontiguousarray(ints[:, j]) for j in range(9)]
        return cls(c[0], c[1], c[2], c[3], c[4], c[5], tuple(rule_ids), c[6], c[7], props,
                   steps, c[8])

    @classmethod
    def concat(cls, parts: Sequence[Decisions], rule_ids: Sequence[str] | None = None) -> Decisions:
        """Concatenate batches that refer to the same rules."""
        if not parts:
            return cls.empty(rule_ids or ())
        ids = parts[0].rule_ids
        if any(p.rule_ids != ids or p.steps != parts[0].steps for p in parts):
            raise TriggerIdError("Decisions.concat: batches refer to different rule sets")
        cols = [np.concatenate([getattr(p, name) for p in parts])
                for name in _COLUMNS + _JOURNEY_COLUMNS]
        return cls(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], ids, cols[6],
                   cols[7], cols[8], parts[0].steps, cols[9])

    def __len__(self) -> int:
        return len(self.subscriber)

    def __getitem__(self, key: slice | np.ndarray) -> Decisions:
        return Decisions(
            self.subscriber[key], self.rule[key], self.kind[key], self.time[key],
            self.entered_at[key], self.attempt[key], self.rule_ids, self.step[key],
            self.path[key], self.propensity[key], self.steps, self.entry_key[key],
        )

    def sorted(self) -> Decisions:
        """Rows ordered by time, subscriber, rule, entered_at, step, kind, attempt (rows
        equal in all of them keep their order)."""
        return self[sort_order(self)]

    @property
    def trigger_id(self) -> np.ndarray:
        """Trigger ids as an object array of str, shape (n,)."""
        ids = self.rule_ids
        return np.array(
            [
                f"{ids[r]}:{s}:{e}" if k < 0 else f"{ids[r]}:{s}:{e}:{k}"
                for r, s, e, k in zip(
                    self.rule.tolist(), self.subscriber.tolist(), self.entered_at.tolist(),
                    self.step.tolist(), strict=True,
                )
            ],
            dtype=object,
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this batch can hold: :data:`KINDS`, plus :data:`JOURNEY_KINDS` with
        journeys."""
        return ALL_KINDS if self.journeys else KINDS

    def of_kind(self, kind: str) -> Decisions:
        """Only the rows of one kind (``fire``, ``cancel``, ``expire``, ``suppress``, and
        for journeys ``exit``, ``skip``, ``branch``, ``split``)."""
        if kind not in ALL_KINDS:
            raise TriggerIdError(f"kind: expected one of {', '.join(ALL_KINDS)}, got {kind!r}")
        return self[self.kind == ALL_KINDS.index(kind)]

    def counts(self) -> pd.DataFrame:
        """Number of decisions per rule (rows, in rule order) and kind (columns)."""
        kinds = self.kinds
        table = np.zeros((len(self.rule_ids), len(kinds)), np.int64)
        np.add.at(table, (self.rule, self.kind), 1)
        return pd.DataFrame(table, index=pd.Index(self.rule_ids, name="rule"), columns=list(kinds))

    def to_pandas(self) -> pd.DataFrame:
        """Columns trigger_id, subscriber, rule, kind, time, entered_at, attempt; with
        journeys also step, step_label (the node's YAML path, "" for plain rules), path,
        path_name ("" when none), propensity and entry_key."""
        empty = np.array([], dtype=object)
        out = pd.DataFrame(
            {
                "trigger_id": self.trigger_id,
                "subscriber": self.subscriber,
                "rule": np.array(self.rule_ids, dtype=object)[self.rule] if len(self) else empty,
                "kind": np.array(ALL_KINDS, dtype=object)[self.kind] if len(self) else empty,
                "time": self.time,
                "entered_at": self.entered_at,
                "attempt": self.attempt,
            }
        )
        if self.steps is None:
            return out
        names = self.steps
        labels, path_names = [], []
        for r, k, p in zip(self.rule.tolist(), self.step.tolist(), self.path.tolist(),
                           strict=True):
            node = names[r][k] if k >= 0 else ("", ())
            labels.append(node[0])
            path_names.append(node[1][p] if p >= 0 else "")
        out["step"] = self.step
        out["step_label"] = np.array(labels, dtype=object)
        out["path"] = self.path
        out["path_name"] = np.array(path_names, dtype=object)
        out["propensity"] = self.propensity
        out["entry_key"] = self.entry_key
        return out

    def equals(self, other: Decisions) -> bool:
        """Same rows in the same order, referring to the same rule ids."""
        return self.rule_ids == other.rule_ids and self.steps == other.steps and all(
            np.array_equal(getattr(self, n), getattr(other, n))
            for n in _COLUMNS + _JOURNEY_COLUMNS
        )

    def __repr__(self) -> str:
        counts = {k: int(np.sum(self.kind == i)) for i, k in enumerate(self.kinds)}
        return f"Decisions(n={len(self)}, {counts})"


def sort_order(d: Decisions) -> np.ndarray:
    """The stable order of :meth:`Decisions.sorted`, as ``np.lexsort`` of the seven keys
    gives it. When times span less than 2**31 s and subscriber ids are in [0, 2**32),
    (time, subscriber) packed in one int64 are sorted first (the engines emit nearly
    sorted rows: a fast stable sort), then only the rows sharing a (time, subscriber)
    with another are ordered by the other five keys."""
    t, s = d.time, d.subscriber
    n = len(t)
    if n < 2:
        return np.arange(n)
    t0 = t.min()
    if t.max() - t0 >= 2**31 or s.min() < 0 or s.max() >= 2**32:
        return np.lexsort((d.attempt, d.kind, d.step, d.entered_at, d.rule, s, t))
    key = ((t - t0) << 32) | s
    order = np.argsort(key, kind="stable")
    k = key[order]
    same = k[1:] == k[:-1]
    if not same.any():
        return order
    tied = np.zeros(n, bool)
    tied[1:] |= same
    tied[:-1] |= same
    pos = np.flatnonzero(tied)
    rows = order[pos]
    group = np.cumsum(np.r_[True, ~same])[pos]
    within = np.lexsort((d.attempt[rows], d.kind[rows], d.step[rows], d.entered_at[rows],
                         d.rule[rows], group))
    order[pos] = rows[within]
    return order
