"""UCB1: play the arm with the highest upper confidence bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.bandits._common import ArmStatsPolicy
from policies.base import argmax_random_ties, check_number

__all__ = ["UCB1", "ucb1_reference"]


@dataclass(eq=False)
class UCB1(ArmStatsPolicy):
    """UCB1 (Auer et al. 2002): index ``mean + c * sqrt(ln N / n_a)``.

    Parameters
    ----------
    arm_names : sequence of str
    c : float
        Exploration scale (> 0); ``sqrt(2)`` is the classic choice for rewards in [0, 1].
        For real-valued rewards scale it to the reward range.
    reward_type : {"binary", "real"}

    Notes
    -----
    Arms never observed have index ``+inf``. The index does not change inside a
    batch, so every row of a batch picks among the same maximal arms, ties broken
    uniformly: the propensity ``1 / (number of maximal arms)`` is exact.
    """

    c: float = float(np.sqrt(2.0))

    def __post_init__(self) -> None:
        check_number("c", self.c, low=0.0, low_open=True)
        super().__post_init__()

    def index(self) -> np.ndarray:
        """UCB index of each arm (K,); ``inf`` for arms never observed."""
        total = self.counts.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = self.c * np.sqrt(np.log(max(total, 1.0)) / self.counts)
        return np.where(self.counts > 0, self.means() + bonus, np.inf)

    def _select(self, contexts, rng, subscribers, n):
        idx = self.index()
        arms, ties = argmax_random_ties(np.broadcast_to(idx, (n, self.n_arms)), rng)
        return arms, 1.0 / ties


def ucb1_reference(counts: np.ndarray, sums: np.ndarray, c: float,
                   u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-by-row reference of UCB1 selection given the tie-breaking uniforms ``u``."""
    total = max(float(sum(counts)), 1.0)
    index = [sums[a] / counts[a] + c * np.sqrt(np.log(total) / counts[a]) if counts[a] > 0
             else np.inf for a in range(len(counts))]
    best = [a for a in range(len(counts)) if index[a] == max(index)]
    arms = [best[min(int(ui * len(best)), len(best) - 1)] for ui in u]
    return np.array(arms, dtype=np.int64), np.full(len(u), 1.0 / len(best))
