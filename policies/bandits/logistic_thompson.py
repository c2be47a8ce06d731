"""Logistic Thompson sampling with a Laplace approximation (Chapelle & Li 2011)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from policies.bandits._common import gaussian_max_probability
from policies.base import Policy, check_arm_names, check_number, state_array
from policies.errors import PolicyError

__all__ = ["LogisticThompson"]


@dataclass(eq=False)
class LogisticThompson(Policy):
    """Per-arm Bayesian logistic regression, posterior by Laplace approximation.

    Each arm keeps a Gaussian posterior ``N(m_a, P_a^-1)`` over its weights. A batch of
    feedback is absorbed by finding the MAP of (Gaussian prior from the previous
    posterior) x (logistic likelihood of the batch) with Newton's method, then
    ``P_a += X^T diag(p (1 - p)) X`` at the MAP (online Laplace approximation). Because
    each batch is a Bayesian update, delayed and reordered batches give approximately
    (not exactly) the same posterior.

    Selection samples the score ``x . w_a ~ N(x . m_a, v^2 x^T P_a^-1 x)`` per row and
    arm (the sigmoid is monotone, so the arg max of scores is the arg max of click
    probabilities); propensities use the quadrature of
    :class:`~policies.bandits.LinearThompson`.

    Parameters
    ----------
    arm_names : sequence of str
    n_features : int
    prior_precision : float
        Precision (> 0) of the initial N(0, I / prior_precision) prior.
    v : float
        Posterior scale (> 0) at selection.
    newton_steps : int
        Maximum Newton iterations per update batch.
    quadrature_step : float
        Largest trapezoid spacing (in standard deviations, (0, 1]) of the propensity
        estimate, see :func:`~policies.bandits.gaussian_max_probability`.
    """

    arm_names: Sequence[str]
    n_features: int
    prior_precision: float = 1.0
    v: float = 1.0
    newton_steps: int = 20
    quadrature_step: float = 0.5
    reward_type = "binary"
    exact_propensities: ClassVar[bool] = False
    mean: np.ndarray = field(init=False, repr=False)
    precision: np.ndarray = field(init=False, repr=False)
    cov: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_arm_names(self.arm_names)
        check_number("n_features", self.n_features, low=1, integer=True)
        check_number("prior_precision", self.prior_precision, low=0.0, low_open=True)
        check_number("v", self.v, low=0.0, low_open=True)
        check_number("newton_steps", self.newton_steps, low=1, integer=True)
        check_number("quadrature_step", self.quadrature_step, low=0.0, high=1.0,
                      low_open=True)
        self.reset()

    def reset(self) -> None:
        k, d = self.n_arms, int(self.n_features)
        self.mean = np.zeros((k, d))
        self.precision = np.tile(self.prior_precision * np.eye(d), (k, 1, 1))
        self.cov = np.tile(np.eye(d) / self.prior_precision, (k, 1, 1))

    def _refresh(self, a: int) -> None:
        inv = np.linalg.inv(self.precision[a])
        self.cov[a] = 0.5 * (inv + inv.T)

    def predict_proba(self, contexts: np.ndarray) -> np.ndarray:
        """Click probability at the posterior mean, (n, K)."""
        return expit(np.asarray(contexts, dtype=np.float64) @ self.mean.T)

    def _select(self, contexts, rng, subscribers, n):
        mean = contexts @ self.mean.T
        width = np.empty_like(mean)
        for a in range(self.n_arms):
            width[:, a] = np.einsum("nd,nd->n", contexts @ self.cov[a], contexts)
        sd = self.v * np.sqrt(np.maximum(width, 0.0)) + 1e-12
        samples = mean + sd * rng.standard_normal(mean.shape)
        arms = samples.argmax(axis=1)
        return arms, gaussian_max_probability(mean, sd, arms, self.quadrature_step)

    def _update(self, arms, rewards, contexts, subscribers):
        assert contexts is not None
        for a in np.unique(arms):
            sel = arms == a
            x, y = contexts[sel], rewards[sel]
            m0, p0 = self.mean[a], self.precision[a]
            w = m0.copy()
            for _ in range(int(self.newton_steps)):
                p = expit(x @ w)
                grad = p0 @ (w - m0) + x.T @ (p - y)
                hess = p0 + (x * (p * (1 - p))[:, None]).T @ x
                step = np.linalg.solve(hess, grad)
                w -= step
                if np.abs(step).max() < 1e-8:
                    break
            p = expit(x @ w)
            self.mean[a] = w
            self.precision[a] = p0 + (x * (p * (1 - p))[:, None]).T @ x
            self._refresh(int(a))

    def _get_state(self) -> dict[str, Any]:
        return {"mean": self.mean, "precision": self.precision}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        k, d = self.n_arms, int(self.n_features)
        mean = state_array(state, "mean", (k, d))
        prec = state_array(state, "precision", (k, d, d))
        for a in range(k):
            if not np.allclose(prec[a], prec[a].T) or np.linalg.eigvalsh(prec[a]).min() <= 0:
                raise PolicyError(f"state['precision'][{a}]: expected a symmetric "
                                  "positive-definite matrix")
        self.mean, self.precision = mean, prec
        for a in range(k):
            self._refresh(a)
