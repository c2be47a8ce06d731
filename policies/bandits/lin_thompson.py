"""Linear Thompson sampling (Agrawal & Goyal 2013) with disjoint per-arm models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from policies.bandits._common import gaussian_max_probability
from policies.bandits._linear import RidgeArmsPolicy
from policies.base import check_number

__all__ = ["LinearThompson"]


@dataclass(eq=False)
class LinearThompson(RidgeArmsPolicy):
    """Linear Thompson sampling: ``theta_a ~ N(A_a^-1 b_a, v^2 A_a^-1)``, play the best.

    Only the sampled score ``x . theta_a`` matters, and it is exactly
    ``N(x . theta_a, v^2 x^T A_a^-1 x)``, so each row draws K scalar normals instead of
    K d-dimensional vectors (same distribution, d times cheaper).

    Parameters
    ----------
    arm_names : sequence of str
    n_features : int
    v : float
        Posterior scale (> 0); larger explores more.
    ridge : float
    reward_type : {"binary", "real"}
    quadrature_step : float
        Largest trapezoid spacing (in standard deviations, (0, 1]) of the propensity
        estimate, see :func:`~policies.bandits.gaussian_max_probability`.
    """

    v: float = 0.5
    quadrature_step: float = 0.5
    exact_propensities: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_number("v", self.v, low=0.0, low_open=True)
        check_number("quadrature_step", self.quadrature_step, low=0.0, high=1.0,
                      low_open=True)
        super().__post_init__()

    def _select(self, contexts, rng, subscribers, n):
        mean, width = self.score_moments(contexts)
        sd = self.v * width + 1e-12
        samples = mean + sd * rng.standard_normal(mean.shape)
        arms = samples.argmax(axis=1)
        return arms, gaussian_max_probability(mean, sd, arms, self.quadrature_step)
