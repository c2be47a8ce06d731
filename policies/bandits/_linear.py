"""Per-arm ridge-regression state shared by LinUCB and linear Thompson sampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import Policy, check_arm_names, check_number, check_reward_type, state_array
from policies.errors import PolicyError

__all__ = ["RidgeArmsPolicy"]


@dataclass(eq=False)
class RidgeArmsPolicy(Policy):
    """Disjoint per-arm ridge regressions ``A_a = ridge I + sum x x^T``, ``b_a = sum r x``.

    Parameters
    ----------
    arm_names : sequence of str
    n_features : int
        Context width ``d``.
    ridge : float
        L2 regularization (> 0), the prior precision of each arm's weights.
    reward_type : {"binary", "real"}
    """

    arm_names: Sequence[str]
    n_features: int
    ridge: float = 1.0
    reward_type: str = "binary"
    A: np.ndarray = field(init=False, repr=False)
    b: np.ndarray = field(init=False, repr=False)
    A_inv: np.ndarray = field(init=False, repr=False)
    theta: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_arm_names(self.arm_names)
        check_number("n_features", self.n_features, low=1, integer=True)
        check_number("ridge", self.ridge, low=0.0, low_open=True)
        check_reward_type(self.reward_type)
        self.reset()

    def reset(self) -> None:
        k, d = self.n_arms, int(self.n_features)
        self.A = np.tile(self.ridge * np.eye(d), (k, 1, 1))
        self.b = np.zeros((k, d))
        self._refresh(np.arange(k))

    def _refresh(self, arms: np.ndarray) -> None:
        if not hasattr(self, "A_inv"):
            self.A_inv = np.empty_like(self.A)
            self.theta = np.empty_like(self.b)
        for a in arms:
            inv = np.linalg.inv(self.A[a])
            self.A_inv[a] = 0.5 * (inv + inv.T)
            self.theta[a] = self.A_inv[a] @ self.b[a]

    def score_moments(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``x . theta_a`` and width ``sqrt(x^T A_a^-1 x)`` per row and arm, (n, K) each."""
        mean = contexts @ self.theta.T
        width = np.empty_like(mean)
        for a in range(self.n_arms):
            z = contexts @ self.A_inv[a]
            width[:, a] = np.einsum("nd,nd->n", z, contexts)
        return mean, np.sqrt(np.maximum(width, 0.0))

    def _update(self, arms, rewards, contexts, subscribers):
        assert contexts is not None
        touched = np.unique(arms)
        for a in touched:
            sel = arms == a
            x = contexts[sel]
            self.A[a] += x.T @ x
            self.b[a] += x.T @ rewards[sel]
        self._refresh(touched)

    def _get_state(self) -> dict[str, Any]:
        return {"A": self.A, "b": self.b}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        k, d = self.n_arms, int(self.n_features)
        A = state_array(state, "A", (k, d, d))
        b = state_array(state, "b", (k, d))
        for a in range(k):
            if not np.allclose(A[a], A[a].T) or np.linalg.eigvalsh(A[a]).min() <= 0:
                raise PolicyError(f"state['A'][{a}]: expected a symmetric positive-definite "
                                  "matrix")
        self.A, self.b = A, b
        self._refresh(np.arange(k))
