"""One element at a time: the sequence of A/B tests a marketer runs without a multivariate
test.

Test the first element's levels (the other elements at their first level) until each
level has ``sends_per_level`` observed rewards, keep the level with the highest observed
rate, then test the second element's levels with the first fixed at its winner, and so
on; after the last element send the combination of the winners to everyone. It needs
``sum(levels)`` test cells instead of ``prod(levels)``, but it only ever compares levels
of one element against the others' current choice: an interaction (a level that wins
only with another element's level not yet chosen) can lead it to a combination that is
not the best cell (docs/multivariate.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from policies import checks
from policies.base import ArmTallyPolicy, check_number
from policies.combinations import check_elements, combination_names, radix
from policies.errors import PolicyError

__all__ = ["OneAtATime"]


@dataclass(eq=False)
class OneAtATime(ArmTallyPolicy):
    """Sequential one-element A/B tests over combinations of email elements.

    Parameters
    ----------
    elements : mapping of str to sequence of str, or sequence of (name, levels)
        The elements in the order they are tested, each with two or more levels; arm
        names are the combinations (levels joined by ``:``, standard order, as
        :class:`~policies.bandits.FactorizedThompson`). An element's first level is its
        level while earlier elements are tested.
    sends_per_level : int
        Observed rewards (``update`` rows) each level of the element under test needs
        before the test ends (>= 1).

    Notes
    -----
    State: per-arm ``counts`` and ``reward_sums``, ``phase`` (index of the element under
    test; the number of elements when every test is over) and ``chosen`` (each element's
    level: the winner of its test, the first level before it). A test ends at the start
    of the first ``select`` after its levels all reached ``sends_per_level``
    observations of their test cells (the combinations with every other element at its
    ``chosen`` level); the winner is the level with the highest observed rate (ties: the
    first). While testing, a row gets each level with probability 1 / levels; after the
    last test, the chosen combination with probability 1. Rewards are binary.
    """

    elements: Any
    sends_per_level: int = 500
    reward_type = "binary"
    exact_propensities: ClassVar[bool] = True
    counts: np.ndarray = field(init=False, repr=False)
    reward_sums: np.ndarray = field(init=False, repr=False)
    phase: int = field(init=False, repr=False)
    chosen: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._elements = check_elements(self.elements)
        check_number("sends_per_level", self.sends_per_level, low=1, integer=True)
        self._sizes, self._radix = radix(self._elements)
        self._arm_names = combination_names(self._elements)
        self.reset()

    @property
    def arm_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._arm_names

    def reset(self) -> None:
        super().reset()
        self.phase = 0
        self.chosen = np.zeros(len(self._sizes), np.int64)

    def test_cells(self) -> np.ndarray:
        """Arms of the current test: the element under test at each of its levels, the
        others at their ``chosen`` level, int64 (levels,); empty when testing is over."""
        if self.phase >= len(self._sizes):
            return np.zeros(0, np.int64)
        base = int(self.chosen @ self._radix - self.chosen[self.phase] * self._radix[self.phase])
        return base + np.arange(self._sizes[self.phase]) * self._radix[self.phase]

    def committed_arm(self) -> int | None:
        """The combination sent to everyone after the last test, or None before."""
        return None if self.phase < len(self._sizes) else int(self.chosen @ self._radix)

    def arm_probabilities(self) -> np.ndarray:
        """Probability of each arm now, (K,) (before a test that is due ends)."""
        p = np.zeros(self.n_arms)
        cells = self.test_cells()
        if len(cells):
            p[cells] = 1.0 / len(cells)
        else:
            p[self.committed_arm()] = 1.0
        return p

    def _advance(self) -> None:
        while self.phase < len(self._sizes):
            cells = self.test_cells()
            n = self.counts[cells]
            if (n < self.sends_per_level).any():
                return
            rates = self.reward_sums[cells] / n
            self.chosen[self.phase] = int(np.flatnonzero(rates == rates.max())[0])
            self.phase += 1

    def _select(self, contexts, rng, subscribers, n):
        if n:
            self._advance()
        cells = self.test_cells()
        if not len(cells):
            return np.full(n, self.committed_arm(), np.int64), np.ones(n)
        pick = rng.integers(0, len(cells), n)
        return cells[pick].astype(np.int64), np.full(n, 1.0 / len(cells))

    def _get_state(self) -> dict[str, Any]:
        return {**super()._get_state(), "phase": self.phase, "chosen": self.chosen}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        for key in ("phase", "chosen"):
            if key not in state:
                raise PolicyError(f"state['{key}']: missing")
        phase = checks.check_int("state['phase']", state["phase"], low=0,
                                 high=len(self._sizes), error=PolicyError)
        chosen = np.asarray(state["chosen"])
        if (chosen.shape != self._sizes.shape or chosen.dtype.kind not in "iu"
                or (chosen < 0).any() or (chosen >= self._sizes).any()):
            raise PolicyError(f"state['chosen']: expected a level index per element "
                              f"(sizes {self._sizes.tolist()}), got {chosen.tolist()}")
        super()._set_state(state)
        self.phase, self.chosen = phase, chosen.astype(np.int64)
