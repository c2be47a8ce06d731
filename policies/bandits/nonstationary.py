"""Thompson sampling for drifting click rates: discounted and sliding-window posteriors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.bandits.thompson import _BetaCounts, _BetaPosterior, _check_beta_prior
from policies.base import check_number, state_array
from policies.errors import PolicyError

__all__ = ["DiscountedThompson", "SlidingWindowThompson"]


@dataclass(eq=False)
class DiscountedThompson(_BetaCounts):
    """Beta-Bernoulli Thompson sampling whose evidence decays geometrically.

    Each observation received multiplies all earlier evidence by ``discount``
    (Raj & Kalyani 2017). A batch of ``m`` observations multiplies earlier evidence by
    ``discount**m`` and adds the batch with weight 1 (order inside a batch is unknown
    under delayed feedback). The effective memory is about ``1 / (1 - discount)``
    observations.

    Parameters
    ----------
    arm_names : sequence of str
    discount : float
        Per-observation decay in (0, 1].
    prior_alpha, prior_beta : float
        Beta prior pseudo-counts (> 0); the prior itself does not decay.
    n_propensity_draws : int
        As in :class:`~policies.bandits.BetaThompson`.
    """

    arm_names: Sequence[str]
    discount: float = 0.999
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    n_propensity_draws: int = 1000
    successes: np.ndarray = field(init=False, repr=False)
    failures: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_beta_prior(self)
        check_number("discount", self.discount, low=0.0, high=1.0, low_open=True)
        self.reset()

    def _update(self, arms, rewards, contexts, subscribers):
        decay = float(self.discount) ** len(arms)
        s = np.bincount(arms, weights=rewards, minlength=self.n_arms)
        self.successes = decay * self.successes + s
        self.failures = decay * self.failures + np.bincount(arms, minlength=self.n_arms) - s


@dataclass(eq=False)
class SlidingWindowThompson(_BetaPosterior):
    """Beta-Bernoulli Thompson sampling over the last ``window`` observations received.

    Parameters
    ----------
    arm_names : sequence of str
    window : int
        Number of most recent observations (in order of arrival) kept.
    prior_alpha, prior_beta : float
    n_propensity_draws : int

    Notes
    -----
    State is a ring buffer of (arm, reward) of length ``window`` plus running
    per-arm sums, kept equal to the buffer's contents.
    """

    arm_names: Sequence[str]
    window: int = 10_000
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    n_propensity_draws: int = 1000
    buffer_arms: np.ndarray = field(init=False, repr=False)
    buffer_rewards: np.ndarray = field(init=False, repr=False)
    filled: int = field(init=False, repr=False)
    position: int = field(init=False, repr=False)
    successes: np.ndarray = field(init=False, repr=False)
    trials: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_beta_prior(self)
        check_number("window", self.window, low=1, integer=True)
        self.reset()

    def reset(self) -> None:
        self.buffer_arms = np.zeros(self.window, dtype=np.int64)
        self.buffer_rewards = np.zeros(self.window)
        self.filled = 0
        self.position = 0
        self.successes = np.zeros(self.n_arms)
        self.trials = np.zeros(self.n_arms)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior Beta parameters ``(alpha, beta)`` from the window, each (K,)."""
        return (self.prior_alpha + self.successes,
                self.prior_beta + self.trials - self.successes)

    def _update(self, arms, rewards, contexts, subscribers):
        w = self.window
        if len(arms) > w:
            arms, rewards = arms[-w:], rewards[-w:]
        m = len(arms)
        slots = (self.position + np.arange(m)) % w
        n_evict = max(0, self.filled + m - w)
        if n_evict:
            # the oldest entries sit at position, position+1, ... once the buffer is full
            start = (self.position - self.filled) % w
            old = (start + np.arange(n_evict)) % w
            self.successes -= np.bincount(self.buffer_arms[old],
                                          weights=self.buffer_rewards[old], minlength=self.n_arms)
            self.trials -= np.bincount(self.buffer_arms[old], minlength=self.n_arms)
        self.buffer_arms[slots] = arms
        self.buffer_rewards[slots] = rewards
        self.successes += np.bincount(arms, weights=rewards, minlength=self.n_arms)
        self.trials += np.bincount(arms, minlength=self.n_arms)
        self.position = int((self.position + m) % w)
        self.filled = min(w, self.filled + m)
        # guard against float drift from repeated add/subtract
        np.maximum(self.successes, 0.0, out=self.successes)

    def _get_state(self) -> dict[str, Any]:
        return {"buffer_arms": self.buffer_arms, "buffer_rewards": self.buffer_rewards,
                "filled": self.filled, "position": self.position}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        w = self.window
        arms = state_array(state, "buffer_arms", (w,), nonnegative=True, dtype=np.int64)
        rewards = state_array(state, "buffer_rewards", (w,))
        for key in ("filled", "position"):
            check_number(f"state['{key}']", state.get(key), low=0, high=w, integer=True)
        if (arms >= self.n_arms).any():
            raise PolicyError(f"state['buffer_arms']: expected indices < {self.n_arms}")
        self.buffer_arms, self.buffer_rewards = arms, rewards
        self.filled, self.position = int(state["filled"]), int(state["position"]) % w
        start = (self.position - self.filled) % w
        live = (start + np.arange(self.filled)) % w
        self.successes = np.bincount(arms[live], weights=rewards[live],
                                     minlength=self.n_arms).astype(np.float64)
        self.trials = np.bincount(arms[live], minlength=self.n_arms).astype(np.float64)
