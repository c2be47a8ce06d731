"""Multi-armed and contextual bandits behind the :class:`~policies.base.Policy` interface.

Context-free: :class:`EpsilonGreedy`, :class:`UCB1`, :class:`BetaThompson`,
:class:`GaussianThompson`, :class:`Softmax`, :class:`EXP3`; non-stationary:
:class:`DiscountedThompson`, :class:`SlidingWindowThompson`. Contextual (over
:func:`policies.features.subscriber_features`): :class:`LinUCB`, :class:`LinearThompson`,
:class:`LogisticThompson`. Over combinations of several email elements:
:class:`FactorizedThompson`.
"""

from policies.bandits._common import gaussian_max_probability
from policies.bandits.epsilon_greedy import EpsilonGreedy
from policies.bandits.exp3 import EXP3, Softmax
from policies.bandits.factorized import FactorizedThompson
from policies.bandits.lin_thompson import LinearThompson
from policies.bandits.linucb import LinUCB
from policies.bandits.logistic_thompson import LogisticThompson
from policies.bandits.nonstationary import DiscountedThompson, SlidingWindowThompson
from policies.bandits.thompson import (
    BetaThompson,
    GaussianThompson,
    beta_max_probabilities,
    beta_max_probabilities_quadrature,
)
from policies.bandits.ucb import UCB1

__all__ = [
    "EXP3",
    "UCB1",
    "BetaThompson",
    "DiscountedThompson",
    "EpsilonGreedy",
    "FactorizedThompson",
    "GaussianThompson",
    "LinUCB",
    "LinearThompson",
    "LogisticThompson",
    "SlidingWindowThompson",
    "Softmax",
    "beta_max_probabilities",
    "beta_max_probabilities_quadrature",
    "gaussian_max_probability",
]
