"""Braze-style Winning Path: test for a fixed window, then send everyone after the winner.

In a Braze Canvas Experiment Path with Winning Path turned on (docs/domain.md,
"Automatic winners"), users entering during the Experiment Window are split over the
paths by the path percentages; the window begins when the first user enters the step;
after it, every later user goes down the path with the highest conversion rate. If no
path won with statistical significance (Braze: Pearson chi-squared, p < 0.05), the
default is still to send the best-performing path; the alternative keeps sending the
mix of paths. :class:`WinningPath` is that rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from policies import checks
from policies.base import check_number
from policies.errors import PolicyError
from policies.explore_commit._base import ExploreThenCommit, duration_seconds

__all__ = ["FALLBACKS", "WinningPath", "leader_significant"]

#: ``best``: without a significant winner send the best-performing path anyway (Braze's
#: default); ``mix``: keep the split for good.
FALLBACKS: tuple[str, ...] = ("best", "mix")


def leader_significant(counts: np.ndarray, successes: np.ndarray, leader: int,
                       alpha: float) -> bool:
    """Whether arm ``leader``'s rate beats every other arm's in a 2x2 Pearson chi-squared
    test (1 degree of freedom, no continuity correction) at level ``alpha``.

    An arm pair with an empty margin (no observations, or no successes or no failures in
    both) gives no evidence: not significant. Arrays are (K,).
    """
    n = np.asarray(counts, dtype=np.float64)
    s = np.asarray(successes, dtype=np.float64)
    others = np.array([b for b in range(n.size) if b != leader], dtype=np.int64)
    a, b = s[leader], n[leader] - s[leader]                 # leader: successes, failures
    c, d = s[others], n[others] - s[others]
    total = a + b + c + d
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if (margins <= 0).any():
        return False
    chi2 = total * (a * d - b * c) ** 2 / margins
    p = special.chdtrc(1.0, chi2)
    better = a / (a + b) > c / (c + d)
    return bool((better & (p < alpha)).all())


@dataclass(eq=False)
class WinningPath(ExploreThenCommit):
    """Split by ``weights`` during ``experiment_window``, then commit to the best path.

    Parameters
    ----------
    arm_names : sequence of str
        The paths (variants).
    experiment_window : int or str
        How long the test runs: seconds, or a duration like ``'2d'``, from the first
        decision (the earliest ``now`` of the first non-empty ``select``).
    weights : sequence of float, optional
        Relative share of each path during the test (Braze's path percentages; default
        equal).
    fallback : {"best", "mix"}
        Without a significant winner at the end of the window: ``"best"`` (Braze's
        default) sends the best-performing path anyway, ``"mix"`` keeps the split.
    alpha : float
        Level of the significance test (:func:`leader_significant`), in (0, 1); Braze:
        0.05.

    Notes
    -----
    ``select`` needs ``now=``. Rows before ``started_at + experiment_window`` are split
    (propensity ``w_a``). The first ``select`` with a row at or after that time decides,
    from what ``update`` has delivered by then: the winner is the path with the highest
    observed rate (paths without observations rank last; ties: the lowest index); that
    row's time is ``decided_at``, and it and every later row get the winner (propensity
    1), or the split under ``fallback="mix"`` when the winner is not significant. The
    decision is final. Rewards are binary (conversions: opens, clicks, orders).
    """

    arm_names: Sequence[str]
    experiment_window: int | str
    weights: Sequence[float] | None = None
    fallback: str = "best"
    alpha: float = 0.05
    requires_time = True
    counts: np.ndarray = field(init=False, repr=False)
    reward_sums: np.ndarray = field(init=False, repr=False)
    started_at: int | None = field(init=False, repr=False)
    phase: str = field(init=False, repr=False)
    winner: int = field(init=False, repr=False)
    decided_at: int | None = field(init=False, repr=False)
    significant: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._check_split()
        duration_seconds("experiment_window", self.experiment_window)
        checks.check_choice("fallback", self.fallback, FALLBACKS, error=PolicyError)
        check_number("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        self.reset()

    def window_end(self) -> int | None:
        """End of the test (seconds since the epoch), or None before the first decision."""
        if self.started_at is None:
            return None
        return self.started_at + duration_seconds("experiment_window", self.experiment_window)

    def best(self) -> int:
        """The path with the highest observed rate (unobserved paths last; ties: lowest)."""
        r = np.nan_to_num(self.rates(), nan=-1.0)
        return int(np.flatnonzero(r == r.max())[0])

    def _decide(self, now: np.ndarray | None) -> None:
        assert now is not None                 # requires_time: the base class checked it
        end = self.window_end()
        assert end is not None
        late = now >= end
        if not late.any():
            return
        at = int(now[late].min())
        best = self.best()
        significant = leader_significant(self.counts, self.reward_sums, best, self.alpha)
        if significant or self.fallback == "best":
            self._commit("winner", best, at, significant)
        else:
            self._commit("mix", -1, at, False)
