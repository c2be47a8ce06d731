"""Klaviyo-style automatic winner: test until a variant's win probability is high enough.

Klaviyo's flow A/B tests (docs/domain.md, "Automatic winners") call a variation
statistically significant once at least 500 recipients received each variation and one
variation has a win probability of at least 90 %; with automatic winner selection the
test then ends and that variation is sent to everyone after. :class:`AutoWinner` is that
rule with both numbers as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import check_number
from policies.errors import PolicyError
from policies.explore_commit._base import ExploreThenCommit, duration_seconds

__all__ = ["AutoWinner"]

#: Win probabilities within this of the largest count as tied (lowest index wins).
_TIE = 1e-12


@dataclass(eq=False)
class AutoWinner(ExploreThenCommit):
    """Split by ``weights`` until one variant is the winner with probability ``win_probability``.

    Parameters
    ----------
    arm_names : sequence of str
        The variants.
    min_recipients : int
        Observations (rewards received through ``update``) every variant needs before a
        winner can be declared (>= 1; Klaviyo: 500).
    win_probability : float
        Threshold in (0.5, 1) on ``P(variant is best)`` (Klaviyo: 0.9), computed under
        independent ``Beta(1 + successes, 1 + failures)`` posteriors of the rates
        (:func:`~policies.explore_commit.win_probabilities`; accurate to ~1e-9).
    weights : sequence of float, optional
        Relative share of each variant while testing (default equal).
    end_after : int or str, optional
        Klaviyo's "end the test on a date": seconds (or a duration like ``'14d'``) after
        the first decision; from then on, if no variant was significant, the variant with
        the highest win probability wins (ties: the lowest index). Default: no end, keep
        testing until a variant is significant.

    Notes
    -----
    At the start of each ``select`` the policy checks the rule on what ``update`` has
    delivered so far: if every variant has ``>= min_recipients`` observations and one has
    win probability ``>= win_probability``, it commits to it for this and every later row
    (propensity 1). Otherwise rows are split by ``weights`` (propensity ``w_a``), except,
    with ``end_after``, rows at or after ``started_at + end_after``, which commit to the
    leader. ``select`` needs ``now=`` only when ``end_after`` is set. Rewards are binary
    (opens, clicks, orders: Klaviyo's winning metrics are rates).
    """

    arm_names: Sequence[str]
    min_recipients: int = 500
    win_probability: float = 0.9
    weights: Sequence[float] | None = None
    end_after: int | str | None = None
    counts: np.ndarray = field(init=False, repr=False)
    reward_sums: np.ndarray = field(init=False, repr=False)
    started_at: int | None = field(init=False, repr=False)
    phase: str = field(init=False, repr=False)
    winner: int = field(init=False, repr=False)
    decided_at: int | None = field(init=False, repr=False)
    significant: bool = field(init=False, repr=False)
    _cache: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._check_split()
        check_number("min_recipients", self.min_recipients, low=1, integer=True)
        check_number("win_probability", self.win_probability, low=0.5, high=1.0,
                     low_open=True, high_open=True)
        if self.end_after is not None:
            duration_seconds("end_after", self.end_after)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._cache = None

    def win_probabilities(self) -> np.ndarray:
        """``P(arm is best)`` per arm, (K,), cached until the tallies change."""
        key = (self.counts.tobytes(), self.reward_sums.tobytes())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, super().win_probabilities())
        return self._cache[1].copy()

    def significant_winner(self) -> int:
        """The variant meeting the rule now (index), or -1 (see the class Notes)."""
        if (self.counts < self.min_recipients).any():
            return -1
        p = self.win_probabilities()
        best = int(np.argmax(p))
        return best if p[best] >= self.win_probability else -1

    def _decide(self, now: np.ndarray | None) -> None:
        best = self.significant_winner()
        if best >= 0:
            self._commit("winner", best, None if now is None else int(now.min()), True)
            return
        if self.end_after is None:
            return
        if now is None:
            raise PolicyError("now: AutoWinner with end_after needs the decision time "
                              "(int seconds since the epoch), got None")
        assert self.started_at is not None
        late = now >= self.started_at + duration_seconds("end_after", self.end_after)
        if late.any():
            p = self.win_probabilities()
            leader = int(np.flatnonzero(p >= p.max() - _TIE)[0])
            self._commit("winner", leader, int(now[late].min()), False)
