"""LinUCB with disjoint linear models (Li et al. 2010)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.bandits._linear import RidgeArmsPolicy
from policies.base import argmax_random_ties, check_number

__all__ = ["LinUCB", "linucb_scores_reference"]


@dataclass(eq=False)
class LinUCB(RidgeArmsPolicy):
    """LinUCB: play ``argmax_a x . theta_a + alpha * sqrt(x^T A_a^-1 x)``.

    Parameters
    ----------
    arm_names : sequence of str
    n_features : int
        Context width ``d``.
    alpha : float
        Width of the confidence bound (>= 0).
    ridge : float
        L2 regularization (> 0).
    reward_type : {"binary", "real"}

    Notes
    -----
    Deterministic given the state except for ties, broken uniformly: the propensity
    ``1 / (number of maximal arms in the row)`` is exact.
    """

    alpha: float = 1.0

    def __post_init__(self) -> None:
        check_number("alpha", self.alpha, low=0.0)
        super().__post_init__()

    def scores(self, contexts: np.ndarray) -> np.ndarray:
        """Upper confidence bound of each arm in each row, (n, K)."""
        mean, width = self.score_moments(contexts)
        return mean + self.alpha * width

    def _select(self, contexts, rng, subscribers, n):
        arms, ties = argmax_random_ties(self.scores(contexts), rng)
        return arms, 1.0 / ties


def linucb_scores_reference(A: np.ndarray, b: np.ndarray, alpha: float,
                            contexts: np.ndarray) -> np.ndarray:
    """Row-by-row, arm-by-arm reference of :meth:`LinUCB.scores` (np.linalg.solve)."""
    n, k = contexts.shape[0], A.shape[0]
    out = np.empty((n, k))
    for i in range(n):
        x = contexts[i]
        for a in range(k):
            theta = np.linalg.solve(A[a], b[a])
            out[i, a] = x @ theta + alpha * np.sqrt(x @ np.linalg.solve(A[a], x))
    return out
