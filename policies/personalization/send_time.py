"""Send-time optimization: learn each subscriber's best send hour, vs a fixed hour.

Arms are the 24 local delivery hours ``HOUR_NAMES = ("h00", ..., "h23")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import Policy, check_number, check_reward_type, state_array
from policies.errors import PolicyError

__all__ = ["HOUR_NAMES", "FixedHourPolicy", "SendTimeOptimizer"]

HOUR_NAMES: tuple[str, ...] = tuple(f"h{h:02d}" for h in range(24))


def _circular_smooth(x: np.ndarray, bandwidth: float) -> np.ndarray:
    """Smooth (n, 24) hour counts with a circular Gaussian kernel of ``bandwidth`` hours."""
    if bandwidth == 0:
        return x
    d = np.minimum(np.arange(24), 24 - np.arange(24))
    kern = np.exp(-0.5 * (d / bandwidth) ** 2)
    # circulant matrix: out[:, h] = sum_j x[:, j] * kern[(h - j) % 24]
    idx = (np.arange(24)[:, None] - np.arange(24)[None, :]) % 24
    return x @ kern[idx].T


class _SendHourPolicy(Policy):
    """A policy whose arms are the 24 local delivery hours (:data:`HOUR_NAMES`)."""

    @property
    def arm_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return HOUR_NAMES


@dataclass(eq=False)
class SendTimeOptimizer(_SendHourPolicy):
    """Per-subscriber epsilon-greedy choice of the send hour.

    For each subscriber the engagement probability at hour ``h`` is estimated as
    ``(c_sh + k g_h) / (n_sh + k)``, where ``n_sh`` / ``c_sh`` are the subscriber's sends
    and engagements (opens or clicks) at that hour, smoothed over neighbouring hours
    with a circular Gaussian kernel, and ``g_h`` is the population rate at hour ``h``
    (shrinkage towards the population for subscribers with little history). The best
    hour is played with probability ``1 - epsilon``; ties broken uniformly; propensity
    exact. Needs ``subscribers=`` in ``select`` and ``update``.

    Parameters
    ----------
    epsilon : float
        Exploration probability in (0, 1].
    prior_strength : float
        ``k``: pseudo-sends (> 0) of the population prior per hour.
    bandwidth : float
        Kernel width in hours (>= 0; 0 = no smoothing).
    reward_type : {"binary", "real"}
    """

    epsilon: float = 0.1
    prior_strength: float = 2.0
    bandwidth: float = 1.0
    reward_type: str = "binary"
    requires_subscribers = True
    ids: np.ndarray = field(init=False, repr=False)
    sends: np.ndarray = field(init=False, repr=False)
    engaged: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, low=0.0, high=1.0, low_open=True)
        check_number("prior_strength", self.prior_strength, low=0.0, low_open=True)
        check_number("bandwidth", self.bandwidth, low=0.0, high=12.0)
        check_reward_type(self.reward_type)
        self.reset()

    def reset(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.sends = np.zeros((0, 24))
        self.engaged = np.zeros((0, 24))

    def _rows(self, subscribers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.ids, subscribers)
        pos_c = np.minimum(pos, max(len(self.ids) - 1, 0))
        known = (len(self.ids) > 0) & (self.ids[pos_c] == subscribers) if len(self.ids) else \
            np.zeros(len(subscribers), dtype=bool)
        return pos_c, known

    def population_rate(self) -> np.ndarray:
        """Population engagement rate per hour (24,), add-one smoothed."""
        return (self.engaged.sum(0) + 1.0) / (self.sends.sum(0) + 2.0)

    def hour_scores(self, subscribers: np.ndarray) -> np.ndarray:
        """Estimated engagement probability per subscriber and hour, (n, 24)."""
        subscribers = np.asarray(subscribers, dtype=np.int64)
        n = len(subscribers)
        pos, known = self._rows(subscribers)
        sends = np.zeros((n, 24))
        engaged = np.zeros((n, 24))
        if known.any():
            sends[known] = self.sends[pos[known]]
            engaged[known] = self.engaged[pos[known]]
        g = self.population_rate()
        k = self.prior_strength
        sends = _circular_smooth(sends, self.bandwidth)
        engaged = _circular_smooth(engaged, self.bandwidth)
        return np.round((engaged + k * g) / (sends + k), 12)

    def _select(self, contexts, rng, subscribers, n):
        scores = self.hour_scores(subscribers)
        best = scores == scores.max(axis=1, keepdims=True)
        p = self.epsilon / 24 + (1 - self.epsilon) * best / best.sum(axis=1, keepdims=True)
        cum = np.cumsum(p, axis=1)
        u = rng.random(n) * cum[:, -1]
        arms = np.minimum((cum < u[:, None]).sum(axis=1), 23).astype(np.int64)
        return arms, p[np.arange(n), arms]

    def _update(self, arms, rewards, contexts, subscribers):
        assert subscribers is not None
        new = np.setdiff1d(np.unique(subscribers), self.ids)
        if new.size:
            at = np.searchsorted(self.ids, new)
            self.ids = np.insert(self.ids, at, new)
            self.sends = np.insert(self.sends, at, 0.0, axis=0)
            self.engaged = np.insert(self.engaged, at, 0.0, axis=0)
        pos = np.searchsorted(self.ids, subscribers)
        np.add.at(self.sends, (pos, arms), 1.0)
        np.add.at(self.engaged, (pos, arms), rewards)

    def _get_state(self) -> dict[str, Any]:
        return {"ids": self.ids, "sends": self.sends, "engaged": self.engaged}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        ids = state_array(state, "ids", (-1,), dtype=np.int64)
        m = len(ids)
        if m == 0:
            self.reset()
            return
        sends = state_array(state, "sends", (m, 24), nonnegative=True)
        engaged = state_array(state, "engaged", (m, 24), nonnegative=True)
        if m and (np.diff(ids) <= 0).any():
            raise PolicyError("state['ids']: expected strictly increasing subscriber ids")
        self.ids, self.sends, self.engaged = ids, sends, engaged


@dataclass(eq=False)
class FixedHourPolicy(_SendHourPolicy):
    """Baseline: send every email at the same local ``hour`` (0..23); propensity 1."""

    hour: int = 10
    reward_type: str = "binary"
    counts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_number("hour", self.hour, low=0, high=23, integer=True)
        check_reward_type(self.reward_type)
        self.reset()

    def reset(self) -> None:
        self.counts = np.zeros(24, dtype=np.int64)

    def _select(self, contexts, rng, subscribers, n):
        return np.full(n, int(self.hour), dtype=np.int64), np.ones(n)

    def _update(self, arms, rewards, contexts, subscribers):
        self.counts += np.bincount(arms, minlength=24)

    def _get_state(self) -> dict[str, Any]:
        return {"counts": self.counts}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.counts = state_array(state, "counts", (24,), nonnegative=True, dtype=np.int64)
