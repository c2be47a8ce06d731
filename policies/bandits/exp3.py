"""Softmax (Boltzmann) exploration and EXP3 (adversarial bandit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.bandits._common import ArmStatsPolicy
from policies.base import Policy, check_arm_names, check_number, check_reward_type, state_array
from policies.errors import PolicyError

__all__ = ["EXP3", "Softmax", "sample_categorical"]


def sample_categorical(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws (int64) from the categorical distribution ``p`` (K,) by inversion.

    One uniform per draw; the reference is ``searchsorted(cumsum(p), u, 'right')``.
    """
    cum = np.cumsum(p)
    u = rng.random(n) * cum[-1]
    return np.minimum(np.searchsorted(cum, u, side="right"), len(p) - 1).astype(np.int64)


@dataclass(eq=False)
class Softmax(ArmStatsPolicy):
    """Boltzmann exploration: ``P(a) proportional to exp(mean_a / temperature)``.

    Parameters
    ----------
    arm_names : sequence of str
    temperature : float
        > 0, in reward units: small values exploit, large values explore.
    initial_value : float
        Mean assumed for arms never observed.
    reward_type : {"binary", "real"}

    Notes
    -----
    Propensities are exact: the softmax probability of the chosen arm.
    """

    temperature: float = 0.1
    initial_value: float = 0.0

    def __post_init__(self) -> None:
        check_number("temperature", self.temperature, low=0.0, low_open=True)
        check_number("initial_value", self.initial_value)
        super().__post_init__()

    def arm_probabilities(self) -> np.ndarray:
        """Exact selection probability of each arm, (K,)."""
        z = self.means(default=self.initial_value) / self.temperature
        e = np.exp(z - z.max())
        return e / e.sum()

    def _select(self, contexts, rng, subscribers, n):
        p = self.arm_probabilities()
        arms = sample_categorical(p, n, rng)
        return arms, p[arms]


@dataclass(eq=False)
class EXP3(Policy):
    """EXP3 (Auer et al. 2002) for rewards in [0, 1].

    Parameters
    ----------
    arm_names : sequence of str
    gamma : float
        Uniform-exploration share in (0, 1]; ``P = (1 - gamma) w / sum(w) + gamma / K``.
    reward_type : {"binary", "real"}
        Real rewards must lie in [0, 1].

    Notes
    -----
    Propensities are exact. The importance-weighted update ``log w_a += gamma * r / (p_a K)``
    should use the probability at selection time: pass ``propensities=`` to
    :meth:`update` (delayed feedback); otherwise the current probabilities are used.
    Weights are kept in log space.
    """

    arm_names: Sequence[str]
    gamma: float = 0.1
    reward_type: str = "binary"
    log_weights: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_arm_names(self.arm_names)
        check_number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        check_reward_type(self.reward_type)
        self.reset()

    def reset(self) -> None:
        self.log_weights = np.zeros(self.n_arms)

    def arm_probabilities(self) -> np.ndarray:
        """Exact selection probability of each arm, (K,)."""
        w = np.exp(self.log_weights - self.log_weights.max())
        return (1.0 - self.gamma) * w / w.sum() + self.gamma / self.n_arms

    def _select(self, contexts, rng, subscribers, n):
        p = self.arm_probabilities()
        arms = sample_categorical(p, n, rng)
        return arms, p[arms]

    def update(self, arms: Any, rewards: Any, contexts: np.ndarray | None = None, *,
               subscribers: np.ndarray | None = None,
               propensities: Any = None) -> None:
        """As :meth:`Policy.update`; ``propensities`` (m,) are those returned by select."""
        a = self._check_arms(arms)
        r = self._check_rewards(rewards, len(a))
        if ((r < 0) | (r > 1)).any():
            raise PolicyError(f"rewards: expected values in [0, 1] for EXP3, got "
                              f"{r[(r < 0) | (r > 1)][:3].tolist()}")
        self._check_inputs(contexts, subscribers, len(a), what="update")
        if propensities is None:
            p = self.arm_probabilities()[a]
        else:
            p = np.asarray(propensities, dtype=np.float64)
            if p.shape != a.shape or not np.isfinite(p).all() or ((p <= 0) | (p > 1)).any():
                raise PolicyError(f"propensities: expected {len(a)} probabilities in (0, 1], "
                                  f"got shape {p.shape}")
        self._update_weighted(a, r / p)

    def _update_weighted(self, arms: np.ndarray, rhat: np.ndarray) -> None:
        self.log_weights += self.gamma / self.n_arms * np.bincount(
            arms, weights=rhat, minlength=self.n_arms)
        self.log_weights -= self.log_weights.max()

    def _update(self, arms, rewards, contexts, subscribers):
        self._update_weighted(arms, rewards / self.arm_probabilities()[arms])

    def _get_state(self) -> dict[str, Any]:
        return {"log_weights": self.log_weights}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.log_weights = state_array(state, "log_weights", (self.n_arms,))
