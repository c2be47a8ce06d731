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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from policies.errors import TriggerLabError


class TriggerIdError(TriggerLabError, ValueError):
    """A malformed or unknown trigger id, or mismatched decision batches."""

__all__ = ["KINDS", "Decisions", "TriggerIdError", "parse_trigger_id", "trigger_id"]

#: Decision kinds in code order (code = position).
KINDS: tuple[str, ...] = ("fire", "cancel", "expire", "suppress")


def trigger_id(rule: str, subscriber: int, entered_at: int) -> str:
    """The deterministic id of the instance of ``rule`` entered by ``subscriber``.

    >>> trigger_id("cart_abandonment_24h", 7, 1700000000)
    'cart_abandonment_24h:7:1700000000'
    """
    return f"{rule}:{int(subscriber)}:{int(entered_at)}"


def parse_trigger_id(value: str) -> tuple[str, int, int]:
    """``(rule, subscriber, entered_at)`` of a trigger id; ``ValueError`` if malformed."""
    try:
        rule, sub, entered = str(value).rsplit(":", 2)
        return rule, int(sub), int(entered)
    except ValueError:
        raise TriggerIdError(
            f"trigger_id: expected '<rule>:<subscriber>:<entered_at>', got {value!r}"
        ) from None


@dataclass(frozen=True, eq=False)
class Decisions:
    """A batch of decisions: equally long numpy arrays plus the rule ids they refer to.

    Parameters
    ----------
    subscriber, time, entered_at : ndarray of int64, shape (n,)
    rule : ndarray of int64, shape (n,)
        Index into ``rule_ids``.
    kind : ndarray of int64, shape (n,)
        Index into :data:`KINDS`.
    attempt : ndarray of int64, shape (n,)
    rule_ids : tuple of str
    """

    subscriber: np.ndarray
    rule: np.ndarray
    kind: np.ndarray
    time: np.ndarray
    entered_at: np.ndarray
    attempt: np.ndarray
    rule_ids: tuple[str, ...]

    @classmethod
    def empty(cls, rule_ids: Sequence[str]) -> Decisions:
        """No decisions."""
        z = np.zeros(0, np.int64)
        return cls(z, z, z, z, z, z, tuple(rule_ids))

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[int, int, int, int, int, int]], rule_ids: Sequence[str]
    ) -> Decisions:
        """Build from ``(subscriber, rule_index, kind_code, time, entered_at, attempt)``."""
        arr = np.array(list(rows), np.int64).reshape(-1, 6)
        c = [np.ascontiguousarray(arr[:, j]) for j in range(6)]
        return cls(c[0], c[1], c[2], c[3], c[4], c[5], tuple(rule_ids))

    @classmethod
    def concat(cls, parts: Sequence[Decisions], rule_ids: Sequence[str] | None = None) -> Decisions:
        """Concatenate batches that refer to the same rules."""
        if not parts:
            return cls.empty(rule_ids or ())
        ids = parts[0].rule_ids
        if any(p.rule_ids != ids for p in parts):
            raise TriggerIdError("Decisions.concat: batches refer to different rule sets")
        cols = [
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("subscriber", "rule", "kind", "time", "entered_at", "attempt")
        ]
        return cls(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], ids)

    def __len__(self) -> int:
        return len(self.subscriber)

    def __getitem__(self, key: slice | np.ndarray) -> Decisions:
        return Decisions(
            self.subscriber[key], self.rule[key], self.kind[key], self.time[key],
            self.entered_at[key], self.attempt[key], self.rule_ids,
        )

    def sorted(self) -> Decisions:
        """Rows ordered by time, subscriber, rule, entered_at, kind, attempt."""
        order = np.lexsort(
            (self.attempt, self.kind, self.entered_at, self.rule, self.subscriber, self.time)
        )
        return self[order]

    @property
    def trigger_id(self) -> np.ndarray:
        """Trigger ids as an object array of str, shape (n,)."""
        ids = self.rule_ids
        return np.array(
            [
                f"{ids[r]}:{s}:{e}"
                for r, s, e in zip(
                    self.rule.tolist(), self.subscriber.tolist(), self.entered_at.tolist(),
                    strict=True,
                )
            ],
            dtype=object,
        )

    def of_kind(self, kind: str) -> Decisions:
        """Only the rows of one kind (``fire``, ``cancel``, ``expire``, ``suppress``)."""
        return self[self.kind == KINDS.index(kind)]

    def counts(self) -> pd.DataFrame:
        """Number of decisions per rule (rows, in rule order) and kind (columns)."""
        table = np.zeros((len(self.rule_ids), len(KINDS)), np.int64)
        np.add.at(table, (self.rule, self.kind), 1)
        return pd.DataFrame(table, index=pd.Index(self.rule_ids, name="rule"), columns=list(KINDS))

    def to_pandas(self) -> pd.DataFrame:
        """Columns trigger_id, subscriber, rule, kind, time, entered_at, attempt."""
        return pd.DataFrame(
            {
                "trigger_id": self.trigger_id,
                "subscriber": self.subscriber,
                "rule": np.array(self.rule_ids, dtype=object)[self.rule]
                if len(self)
                else np.array([], dtype=object),
                "kind": np.array(KINDS, dtype=object)[self.kind]
                if len(self)
                else np.array([], dtype=object),
                "time": self.time,
                "entered_at": self.entered_at,
                "attempt": self.attempt,
            }
        )

    def equals(self, other: Decisions) -> bool:
        """Same rows in the same order, referring to the same rule ids."""
        return self.rule_ids == other.rule_ids and all(
            np.array_equal(getattr(self, n), getattr(other, n))
            for n in ("subscriber", "rule", "kind", "time", "entered_at", "attempt")
        )

    def __repr__(self) -> str:
        counts = {k: int(np.sum(self.kind == i)) for i, k in enumerate(KINDS)}
        return f"Decisions(n={len(self)}, {counts})"
