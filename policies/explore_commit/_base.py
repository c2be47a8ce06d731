"""What the explore-then-commit policies share: the test split, the latched decision, state.

A policy of this family runs a test (each row gets arm ``a`` with probability ``w_a``,
the normalized ``weights``) until it *decides*; the decision is latched in its state
(``phase``, ``winner``, ``decided_at``) and never revisited. After a decision on a winner,
every row whose decision time is at or after ``decided_at`` (every row, when the caller
gives no times) gets the winner with propensity 1; rows before it keep the test split.
The rule is per row, so the same rows give the same arms however they are cut into
``select`` calls (when no ``update`` falls between the calls). Subclasses say when to
decide (:meth:`ExploreThenCommit._decide`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from policies import checks
from policies.base import ArmTallyPolicy, check_arm_names, check_number
from policies.errors import PolicyError
from policies.explore_commit.win_probability import win_probabilities

__all__ = ["PHASES", "ExploreThenCommit", "duration_seconds"]

#: ``testing``: the split runs; ``winner``: committed to ``winner``; ``mix``: decided to
#: keep the split for good (no winner).
PHASES: tuple[str, ...] = ("testing", "winner", "mix")


def duration_seconds(name: str, value: Any) -> int:
    """Seconds of a duration parameter: an int > 0 or a string like ``'2d'``; PolicyError."""
    if isinstance(value, str):
        try:
            seconds = checks.check_duration(name, value, error=PolicyError)
        except PolicyError:
            raise checks.expected(PolicyError, name, "a duration like '2d' or whole seconds > 0",
                                  value) from None
        if seconds > 0:
            return seconds
    elif checks.is_int(value) and value > 0:
        return int(value)
    raise checks.expected(PolicyError, name, "a duration like '2d' or whole seconds > 0", value)


class ExploreThenCommit(ArmTallyPolicy):
    """Base of :class:`~policies.explore_commit.AutoWinner` and
    :class:`~policies.explore_commit.WinningPath` (see the module docstring).

    State, besides the per-arm ``counts`` (observations) and ``reward_sums`` (successes):
    ``started_at`` (earliest decision time of the first non-empty ``select`` with times,
    or None), ``phase`` (:data:`PHASES`), ``winner`` (arm index, -1 if none),
    ``decided_at`` (decision time from which the decision applies, or None: from the call
    that made it on) and ``significant`` (whether the decision met the rule's test).
    """

    reward_type: str = "binary"
    exact_propensities: ClassVar[bool] = True
    weights: Sequence[float] | None
    started_at: int | None
    phase: str
    winner: int
    decided_at: int | None
    significant: bool

    # ------------------------------------------------------------- set-up and state
    def _check_split(self) -> None:
        names = check_arm_names(self.arm_names)
        w = self.weights
        if w is None:
            return
        if isinstance(w, str) or not isinstance(w, Sequence | np.ndarray) or len(w) != len(names):
            raise PolicyError(f"weights: expected {len(names)} numbers, got {checks.show(w)}")
        for i, v in enumerate(w):
            check_number(f"weights[{i}]", v, low=0.0, low_open=True)

    def reset(self) -> None:
        super().reset()
        self.started_at = None
        self.phase = "testing"
        self.winner = -1
        self.decided_at = None
        self.significant = False

    def _get_state(self) -> dict[str, Any]:
        return {**super()._get_state(), "started_at": self.started_at, "phase": self.phase,
                "winner": self.winner, "decided_at": self.decided_at,
                "significant": self.significant}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        for key in ("started_at", "phase", "winner", "decided_at", "significant"):
            if key not in state:
                raise PolicyError(f"state['{key}']: missing")
        started, decided = state["started_at"], state["decided_at"]
        for key, v in (("started_at", started), ("decided_at", decided)):
            if v is not None and not checks.is_int(v):
                raise checks.expected(PolicyError, f"state['{key}']", "int seconds or None", v)
        phase = checks.check_choice("state['phase']", state["phase"], PHASES, error=PolicyError)
        winner = checks.check_int("state['winner']", state["winner"], low=-1,
                                  high=self.n_arms - 1, error=PolicyError)
        if (phase == "winner") != (winner >= 0):
            raise PolicyError(f"state['winner']: expected an arm index exactly when phase is "
                              f"'winner', got phase {phase!r} and winner {winner}")
        significant = checks.check_bool("state['significant']", state["significant"],
                                        error=PolicyError)
        super()._set_state(state)
        self.started_at = None if started is None else int(started)
        self.phase, self.winner = phase, winner
        self.decided_at = None if decided is None else int(decided)
        self.significant = significant

    # ------------------------------------------------------------------ read-outs
    def split(self) -> np.ndarray:
        """Test assignment probability of each arm, (K,) (normalized ``weights``)."""
        w = (np.ones(self.n_arms) if self.weights is None
             else np.asarray(self.weights, dtype=np.float64))
        return w / w.sum()

    def arm_probabilities(self) -> np.ndarray:
        """Probability of each arm in the current phase, (K,): the split while testing
        (or mixing), one-hot on the winner after a decision for one. A decision that is
        due (a window or deadline passed) is taken only by the next ``select``."""
        if self.phase == "winner":
            p = np.zeros(self.n_arms)
            p[self.winner] = 1.0
            return p
        return self.split()

    def rates(self) -> np.ndarray:
        """Observed success rate of each arm, (K,); NaN for arms without observations."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.reward_sums / np.maximum(self.counts, 1),
                            np.nan)

    def win_probabilities(self) -> np.ndarray:
        """``P(arm is best)`` under ``Beta(1 + successes, 1 + failures)`` posteriors, (K,)
        (:func:`~policies.explore_commit.win_probabilities`)."""
        return win_probabilities(self.reward_sums, self.counts - self.reward_sums)

    # ------------------------------------------------------------------ decisions
    def _decide(self, now: np.ndarray | None) -> None:
        """Latch a decision when the rule says so (subclasses); ``now`` are the call's times."""
        raise NotImplementedError

    def _commit(self, phase: str, winner: int, at: int | None, significant: bool) -> None:
        self.phase, self.winner, self.decided_at = phase, winner, at
        self.significant = significant

    def _select_at(self, contexts: np.ndarray | None, rng: np.random.Generator,
                   subscribers: np.ndarray | None, n: int,
                   now: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if n and now is not None and self.started_at is None:
            self.started_at = int(now.min())
        if n and self.phase == "testing":
            self._decide(now)
        p = self.split()
        u = rng.random(n)
        arms = np.minimum(np.searchsorted(np.cumsum(p), u, side="right"),
                          self.n_arms - 1).astype(np.int64)
        props = p[arms]
        if self.phase == "winner":
            won = (np.ones(n, dtype=bool) if now is None or self.decided_at is None
                   else now >= self.decided_at)
            arms[won] = self.winner
            props[won] = 1.0
        return arms, props
