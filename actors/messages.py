"""The messages between shards, the learner and the driver: small typed columnar records.

Per tick each shard returns a :class:`TickOutput` (its :class:`Choices`, the emails the
policy must decide, and its :class:`Rewards`, the emails whose reward window closed);
the learner answers every shard at once with :class:`Arms`. At the end each shard hands
the driver its :class:`ShardResult`. All columns are plain
numpy arrays of one length ``n`` (contexts: ``(n, d)`` with ``d =
len(policies.features.FEATURE_NAMES)``), so a message pickles to a few array buffers
and Ray ships them out of band. Times are seconds since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np

__all__ = ["Arms", "Choices", "Rewards", "ShardResult", "TickOutput"]


class _Rows:
    """Records stored column-wise, one row per email (``email_id`` is every record's key)."""

    email_id: np.ndarray

    def __len__(self) -> int:
        return len(self.email_id)

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        """The rows of ``parts`` one after the other (at least one part; a None column
        stays None)."""
        out: dict[str, np.ndarray | None] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            cols = [getattr(p, f.name) for p in parts]
            out[f.name] = None if any(c is None for c in cols) else np.concatenate(cols)
        return cls(**out)


@dataclass(frozen=True)
class Choices(_Rows):
    """Emails that became due in a tick and whose arm the policy chooses.

    Attributes
    ----------
    email_id, subscriber, source : ndarray of int64, shape (n,)
        Email id (:func:`actors.emails.email_id`), recipient, source code (0 campaign,
        ``r + 1`` rule ``r``).
    due : ndarray of int64, shape (n,)
        When the email became due, seconds since the epoch.
    context : ndarray of float64, shape (n, d), or None
        The recipients' feature vectors (contextual policies only).
    entered_at, step : ndarray of int64, shape (n,), or None
        The trigger id's parts (:attr:`actors.outbox.Outbox.cols`): a rule send's entry
        time and journey node (-1 without steps); a campaign email's due time and -1.
    """

    email_id: np.ndarray
    subscriber: np.ndarray
    due: np.ndarray
    source: np.ndarray
    context: np.ndarray | None = None
    entered_at: np.ndarray | None = None
    step: np.ndarray | None = None



@dataclass(frozen=True)
class Rewards(_Rows):
    """Policy-decided emails whose reward window closed in a tick.

    Attributes
    ----------
    email_id, subscriber, arm : ndarray of int64, shape (n,)
        Email id, recipient, chosen arm (index into the run's arm names).
    time : ndarray of int64, shape (n,)
        Delivery time, seconds since the epoch.
    reward : ndarray of float64, shape (n,)
        Observed reward (0/1 for clicks and orders, currency units for revenue).
    context : ndarray of float64, shape (n, d), or None
        The context the arm was chosen with (contextual policies only).
    """

    email_id: np.ndarray
    subscriber: np.ndarray
    time: np.ndarray
    arm: np.ndarray
    reward: np.ndarray
    context: np.ndarray | None = None



@dataclass(frozen=True)
class Arms(_Rows):
    """The learner's answer for one tick: an arm per chosen email, canonical order.

    Attributes
    ----------
    email_id, arm : ndarray of int64, shape (n,)
        Email id and chosen arm (index into the run's arm names).
    propensity : ndarray of float64, shape (n,)
        Probability with which the policy chose that arm.
    """

    email_id: np.ndarray
    arm: np.ndarray
    propensity: np.ndarray

    @staticmethod
    def empty() -> Arms:
        """No emails."""
        z = np.zeros(0, np.int64)
        return Arms(z, z, np.zeros(0))


@dataclass(frozen=True)
class TickOutput:
    """What one shard returns for one tick.

    Attributes
    ----------
    tick : int
        The tick.
    choices : Choices
        Emails of this tick the policy must decide (answered ``decision_lag_ticks``
        ticks later).
    rewards : Rewards
        Policy-decided emails whose reward window closed by the tick's end.
    n_events : int
        World events of the tick.
    n_sent : int
        Emails delivered at the tick's start.
    """

    tick: int
    choices: Choices
    rewards: Rewards
    n_events: int
    n_sent: int


@dataclass(frozen=True)
class ShardResult:
    """What one shard hands the driver at the end of a run (:meth:`ShardCore.finish`).

    Attributes
    ----------
    start, stop : int
        The shard's subscriber ids ``[start, stop)``.
    counts : ndarray of int64
        Metric counters, shape ``MetricsLayout.counts_shape`` (money in cents).
    truth : ndarray of int64
        Ground-truth sums, shape ``MetricsLayout.truth_shape`` (fixed point).
    decisions : dict of str -> ndarray, or None
        The decision log's columns (None unless decisions are recorded).
    events : EventBatch or None
        Every world event (None unless events are recorded).
    n_events, n_emails : int
        World events and delivered emails.
    peak_rss : int
        Peak resident memory of the shard's process, bytes.
    cpu_s : float
        CPU seconds of the shard (since it was built or restored in this process).
    engine_stats : pandas.DataFrame or None
        The trigger engine's per-rule counters (None without rules).
    subscriber_books, subscriber_table : pandas.DataFrame or None
        Per-subscriber counts and truth
        (:meth:`actors.subscriber_books.SubscriberBooks.frame`) and the subscriber table
        at the start of the run (None unless subscribers are recorded).
    journeys : ndarray of int64 or None
        :attr:`actors.journey_book.JourneyBook.counts` (None without journeys).
    """

    start: int
    stop: int
    counts: np.ndarray
    truth: np.ndarray
    decisions: dict[str, np.ndarray] | None
    events: Any
    n_events: int
    n_emails: int
    peak_rss: int
    cpu_s: float
    engine_stats: Any
    subscriber_books: Any = None
    subscriber_table: Any = None
    journeys: Any = None
