"""Epsilon-greedy: explore uniformly with probability epsilon, else play the best mean."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.bandits._common import ArmStatsPolicy
from policies.base import check_number

__all__ = ["EpsilonGreedy", "epsilon_greedy_reference"]


@dataclass(eq=False)
class EpsilonGreedy(ArmStatsPolicy):
    """Epsilon-greedy over per-arm mean rewards.

    Parameters
    ----------
    arm_names : sequence of str
    epsilon : float
        Exploration probability in [0, 1].
    reward_type : {"binary", "real"}

    Notes
    -----
    Arms never observed count as best (mean ``+inf``) so that each arm is tried; ties
    among the best arms are broken uniformly. The propensity is exact:
    ``epsilon / K + (1 - epsilon) * [a is best] / (number of best arms)``.
    """

    epsilon: float = 0.1

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, low=0.0, high=1.0)
        super().__post_init__()

    def arm_probabilities(self) -> np.ndarray:
        """Exact probability of each arm at the next selection, (K,)."""
        m = self.means(default=np.inf)
        top = m == m.max()
        k = self.n_arms
        return self.epsilon / k + (1.0 - self.epsilon) * top / top.sum()

    def _select(self, contexts, rng, subscribers, n):
        m = self.means(default=np.inf)
        best = np.flatnonzero(m == m.max())
        u = rng.random(n)
        v = rng.random(n)
        explore = u < self.epsilon
        k = self.n_arms
        arms = np.where(explore, np.minimum((v * k).astype(np.int64), k - 1),
                        best[np.minimum((v * best.size).astype(np.int64), best.size - 1)])
        return arms.astype(np.int64), self.arm_probabilities()[arms]


def epsilon_greedy_reference(means: np.ndarray, epsilon: float, u: np.ndarray,
                             v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-by-row reference of :meth:`EpsilonGreedy.select` given its uniforms ``u, v``."""
    k = len(means)
    best = [a for a in range(k) if means[a] == max(means)]
    arms, props = [], []
    for ui, vi in zip(u, v, strict=True):
        a = min(int(vi * k), k - 1) if ui < epsilon else best[min(int(vi * len(best)),
                                                                   len(best) - 1)]
        arms.append(a)
        props.append(epsilon / k + (1 - epsilon) * (a in best) / len(best))
    return np.array(arms, dtype=np.int64), np.array(props)
