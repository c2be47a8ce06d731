"""Thompson sampling over combinations of email elements, one posterior per element.

A multivariate test sends every combination of several elements' levels (subject style x
content layout x call to action); a bandit over the combinations as separate arms has to
try each one. :class:`FactorizedThompson` instead keeps one Beta posterior per level of
each element, fitted on every email that carried the level whatever the other elements
were, and chooses each element's level by its own Thompson draw. It learns with
``sum(levels)`` posteriors instead of ``prod(levels)``, under the model that the elements'
effects add up: an interaction (a level that is best only together with another
element's level) is averaged over the other elements' current choices, so the
combination it settles on is the best one by the elements' marginal effects, which can
differ from the best cell when interactions are strong (docs/multivariate.md).

The elements' draws are independent given the posteriors, so a combination's propensity
is the product of each element's probability of choosing its level, computed exactly
(to quadrature accuracy) by
:func:`~policies.bandits.thompson.beta_max_probabilities_quadrature`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from policies.bandits.thompson import beta_max_probabilities_quadrature, beta_thompson_argmax
from policies.base import Policy, check_number, state_array
from policies.combinations import check_elements, combination_names, radix

__all__ = ["FactorizedThompson"]


@dataclass(eq=False)
class FactorizedThompson(Policy):
    """Beta-Bernoulli Thompson sampling per element; arms are the combinations.

    Parameters
    ----------
    elements : mapping of str to sequence of str, or sequence of (name, levels)
        The elements in order, each with two or more levels. Arm names are the levels of
        a combination joined by ``:`` (``"urgency:story:save"``), in standard order (the
        first element varies slowest): arm ``i`` has level ``i // prod(later sizes) %
        size`` of each element.
    prior_alpha, prior_beta : float
        Beta prior pseudo-counts (> 0) of every level's successes and failures.

    Notes
    -----
    Updates add counts, so they commute: any batching or order of the same feedback
    gives the same state.
    """

    elements: Any
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    reward_type = "binary"
    exact_propensities: ClassVar[bool] = True
    successes: np.ndarray = field(init=False, repr=False)
    failures: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._elements = check_elements(self.elements)
        check_number("prior_alpha", self.prior_alpha, low=0.0, low_open=True)
        check_number("prior_beta", self.prior_beta, low=0.0, low_open=True)
        self._sizes, self._radix = radix(self._elements)
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)[:-1]]).astype(np.int64)
        self._arm_names = combination_names(self._elements)
        self.reset()

    @property
    def arm_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._arm_names

    @property
    def element_names(self) -> list[str]:
        return [n for n, _ in self._elements]

    def levels_of(self, arms: np.ndarray) -> np.ndarray:
        """Level index of each element in each arm, int64 (n, n_elements)."""
        arms = np.asarray(arms, np.int64)
        return (arms[:, None] // self._radix[None, :]) % self._sizes[None, :]

    def reset(self) -> None:
        self.successes = np.zeros(int(self._sizes.sum()))
        self.failures = np.zeros(int(self._sizes.sum()))
        self._probs: list[np.ndarray] | None = None  # level_probabilities() until an update

    def posterior(self, element: int) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters ``(alpha, beta)`` of element ``element``'s levels."""
        sl = slice(self._offsets[element], self._offsets[element] + self._sizes[element])
        return self.prior_alpha + self.successes[sl], self.prior_beta + self.failures[sl]

    def level_probabilities(self) -> list[np.ndarray]:
        """Per element, the probability that its Thompson draw chooses each level
        (computed once per posterior: about 1 ms an element)."""
        if self._probs is None:
            self._probs = [beta_max_probabilities_quadrature(*self.posterior(e))
                           for e in range(len(self._sizes))]
        return [p.copy() for p in self._probs]

    def exact_arm_probabilities(self) -> np.ndarray:
        """Probability of every combination (the product of its levels'), (n_arms,)."""
        out = np.ones(1)
        for p in self.level_probabilities():
            out = np.outer(out, p).ravel()
        return out

    def _select(self, contexts, rng, subscribers, n):
        arms = np.zeros(n, np.int64)
        props = np.ones(n)
        for e, p in enumerate(self.level_probabilities()):
            levels = beta_thompson_argmax(*self.posterior(e), n, rng)
            arms += levels * self._radix[e]
            props *= p[levels]
        return arms, np.maximum(props, np.finfo(np.float64).tiny)

    def _update(self, arms, rewards, contexts, subscribers):
        idx = (self.levels_of(arms) + self._offsets).ravel()  # every element's level
        r = np.repeat(rewards, len(self._sizes))
        s = np.bincount(idx, weights=r, minlength=self.successes.size)
        self.successes += s
        self.failures += np.bincount(idx, minlength=self.successes.size) - s
        self._probs = None

    def _get_state(self) -> dict[str, Any]:
        return {"successes": self.successes, "failures": self.failures}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        k = int(self._sizes.sum())
        s = state_array(state, "successes", (k,), nonnegative=True)
        f = state_array(state, "failures", (k,), nonnegative=True)
        self.successes, self.failures = s, f
        self._probs = None
