"""Explore-then-commit policies: the automatic-winner rules ESPs apply to A/B tests.

:class:`AutoWinner` (Klaviyo: commit once every variant has enough recipients and one has
a high enough win probability) and :class:`WinningPath` (Braze Canvas: test for a fixed
window, then send every later user the best path). Both split by weights while testing
(exact propensities), latch their decision in their state, and take decision times from
the caller (``select(..., now=)``). :class:`OneAtATime` is the marketer's sequence of
one-element A/B tests over combinations of email elements. :func:`win_probabilities` is
the deterministic ``P(variant is best)`` under Beta posteriors. What each ESP does, with
its sources: docs/domain.md, "Automatic winners".
"""

from policies.explore_commit._base import PHASES, ExploreThenCommit
from policies.explore_commit.auto_winner import AutoWinner
from policies.explore_commit.one_at_a_time import OneAtATime
from policies.explore_commit.win_probability import win_probabilities
from policies.explore_commit.winning_path import FALLBACKS, WinningPath, leader_significant

__all__ = [
    "FALLBACKS",
    "PHASES",
    "AutoWinner",
    "ExploreThenCommit",
    "OneAtATime",
    "WinningPath",
    "leader_significant",
    "win_probabilities",
]
