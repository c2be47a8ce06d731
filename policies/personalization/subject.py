"""Subject-line features and a learned subject-variant picker.

:func:`subject_features` computes the subject features of docs/domain.md; the
:class:`LearnedSubjectPicker` fits a scikit-learn logistic regression on logged
outcomes over those features (plus their interaction with subscriber engagement) and
picks the variant with the best predicted engagement, exploring with probability
``epsilon`` so that every propensity stays positive (and exact).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import (
    SUBJECT_STYLES,
    Policy,
    check_arm_names,
    check_number,
    state_array,
)
from policies.errors import PolicyError
from policies.features import FEATURE_NAMES, feature_index

__all__ = [
    "SUBJECT_FEATURE_NAMES",
    "SUBJECT_TEMPLATES",
    "LearnedSubjectPicker",
    "render_subject",
    "subject_features",
]

#: Subject-line template of each style; ``{topic}`` and ``{first_name}`` are filled in.
SUBJECT_TEMPLATES: dict[str, str] = {
    "plain": "{topic}",
    "first_name": "{first_name}, {topic}",
    "dont_miss": "Don't Miss: {topic}",
    "limited_time": "Limited Time: save on {topic}",
    "learn": "Learn: how to choose {topic}",
    "question": "Looking for {topic}?",
}

PROMO_WORDS = ("free", "save", "discount", "sale")
URGENCY_WORDS = ("urgent", "limited", "deadline", "expires")

#: Columns of :func:`subject_features`.
SUBJECT_FEATURE_NAMES: tuple[str, ...] = (
    "length", "word_count", "uppercase_ratio", "punctuation_ratio", "non_ascii_ratio",
    "has_first_name", "engagement", "promo_words", "urgency_words", "is_question",
)


def render_subject(style: str, topic: str = "new arrivals picked for you",
                   first_name: str = "Alex") -> str:
    """The subject line of ``style`` (one of SUBJECT_TEMPLATES) about ``topic``."""
    if style not in SUBJECT_TEMPLATES:
        raise PolicyError(f"style: expected one of {list(SUBJECT_TEMPLATES)}, got {style!r}")
    return SUBJECT_TEMPLATES[style].format(topic=topic, first_name=first_name)


def subject_features(subjects: Sequence[str], engagement: np.ndarray | Sequence[float],
                     first_name: str = "Alex") -> np.ndarray:
    """The subject features of docs/domain.md, (n, 10) float64, columns SUBJECT_FEATURE_NAMES.

    ``length`` in characters, ``word_count`` in words, ratios are fractions of the
    characters, ``promo_words``/``urgency_words`` are counts of the word lists in docs/domain.md,
    ``engagement`` is the subscriber's engagement score (probability-like, [0, 1]).
    ``is_question`` is 1 when the subject contains a question mark.

    >>> subject_features(["Don't Miss: sale!"], [0.2])[0, :2].tolist()
    [17.0, 3.0]
    """
    e = np.asarray(engagement, dtype=np.float64)
    if e.shape != (len(subjects),):
        raise PolicyError(f"engagement: expected shape ({len(subjects)},), got {e.shape}")
    out = np.zeros((len(subjects), len(SUBJECT_FEATURE_NAMES)))
    for i, s in enumerate(subjects):
        n = max(len(s), 1)
        words = [w.strip(string.punctuation).lower() for w in s.split()]
        out[i] = (
            len(s), len(s.split()), sum(c.isupper() for c in s) / n,
            sum(c in string.punctuation for c in s) / n, sum(ord(c) > 127 for c in s) / n,
            float(bool(first_name) and first_name.lower() in s.lower()), e[i],
            sum(w in PROMO_WORDS for w in words), sum(w in URGENCY_WORDS for w in words),
            float("?" in s),
        )
    return out


@dataclass(eq=False)
class LearnedSubjectPicker(Policy):
    """Pick the subject style with the best predicted click probability, epsilon-greedy.

    Logged outcomes are aggregated by (style, engagement bin): ``trials`` and
    ``successes`` (K, n_bins). A logistic regression (scikit-learn, lbfgs,
    deterministic) is fitted on those cells with sample weights over the features
    ``[subject features, engagement x subject features]`` of the style's rendered
    subject at the bin's centre engagement; it is refitted lazily after updates.

    Parameters
    ----------
    arm_names : sequence of str
        Styles (keys of SUBJECT_TEMPLATES); default all six.
    epsilon : float
        Exploration probability in (0, 1]; propensity
        ``epsilon / K + (1 - epsilon) [a best] / (number of best)`` is exact.
    topic : str
        Topic the subject lines are rendered with (sets lengths, word counts).
    n_bins : int
        Engagement bins of the aggregated log.
    C : float
        Inverse L2 regularization strength of the logistic regression (> 0).
    """

    arm_names: Sequence[str] = SUBJECT_STYLES
    epsilon: float = 0.1
    topic: str = "new arrivals picked for you"
    n_bins: int = 10
    C: float = 1.0
    reward_type = "binary"
    trials: np.ndarray = field(init=False, repr=False)
    successes: np.ndarray = field(init=False, repr=False)
    _scores: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        names = check_arm_names(self.arm_names)
        unknown = [a for a in names if a not in SUBJECT_TEMPLATES]
        if unknown:
            raise PolicyError(f"arm_names: expected styles in {list(SUBJECT_TEMPLATES)}, "
                              f"got {unknown}")
        check_number("epsilon", self.epsilon, low=0.0, high=1.0, low_open=True)
        check_number("n_bins", self.n_bins, low=1, integer=True)
        check_number("C", self.C, low=0.0, low_open=True)
        if not isinstance(self.topic, str):
            raise PolicyError(f"topic: expected a string, got {self.topic!r}")
        self.reset()

    @property
    def n_features(self) -> int:
        """Width of the standard context matrix (len(FEATURE_NAMES))."""
        return len(FEATURE_NAMES)

    def reset(self) -> None:
        self.trials = np.zeros((self.n_arms, int(self.n_bins)))
        self.successes = np.zeros((self.n_arms, int(self.n_bins)))
        self._scores = None

    def _bins(self, contexts: np.ndarray) -> np.ndarray:
        e = contexts[:, feature_index("engagement_score")]
        return np.clip((e * self.n_bins).astype(np.int64), 0, int(self.n_bins) - 1)

    def design(self, engagement: np.ndarray) -> np.ndarray:
        """Model inputs of every (style, engagement) pair: (K * len(engagement), 19)."""
        e = np.asarray(engagement, dtype=np.float64)
        subjects = [render_subject(a, self.topic) for a in self.arm_names]
        rows = []
        for s in subjects:
            f = subject_features([s] * len(e), e)
            rows.append(np.hstack([f, f[:, [j for j in range(f.shape[1]) if j != 6]]
                                   * e[:, None]]))
        return np.vstack(rows)

    def predicted_engagement(self) -> np.ndarray:
        """Predicted click probability of each style in each engagement bin, (K, n_bins).

        All equal (0.5) while the log holds fewer than two outcome classes.
        """
        if self._scores is None:
            k, b = self.n_arms, int(self.n_bins)
            s, t = self.successes.ravel(), self.trials.ravel()
            if s.sum() <= 0 or (t - s).sum() <= 0:
                self._scores = np.full((k, b), 0.5)
            else:
                centres = (np.arange(b) + 0.5) / b
                x = self.design(centres)
                x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
                keep_s, keep_f = s > 0, (t - s) > 0
                xx = np.vstack([x[keep_s], x[keep_f]])
                yy = np.r_[np.ones(keep_s.sum()), np.zeros(keep_f.sum())]
                ww = np.r_[s[keep_s], (t - s)[keep_f]]
                from sklearn.linear_model import LogisticRegression  # slow import: only here

                model = LogisticRegression(C=float(self.C), max_iter=500)
                model.fit(xx, yy, sample_weight=ww / ww.mean())
                # round so that numerically equal predictions tie exactly
                self._scores = np.round(model.predict_proba(x)[:, 1], 12).reshape(k, b)
        return self._scores

    def _probabilities(self, bins: np.ndarray) -> np.ndarray:
        scores = self.predicted_engagement()[:, bins].T        # (n, K)
        best = scores == scores.max(axis=1, keepdims=True)
        k = self.n_arms
        return self.epsilon / k + (1 - self.epsilon) * best / best.sum(axis=1, keepdims=True)

    def _select(self, contexts, rng, subscribers, n):
        p = self._probabilities(self._bins(contexts))
        cum = np.cumsum(p, axis=1)
        u = rng.random(n) * cum[:, -1]
        arms = np.minimum((cum < u[:, None]).sum(axis=1), self.n_arms - 1).astype(np.int64)
        return arms, p[np.arange(n), arms]

    def _update(self, arms, rewards, contexts, subscribers):
        bins = self._bins(contexts)
        np.add.at(self.trials, (arms, bins), 1.0)
        np.add.at(self.successes, (arms, bins), rewards)
        self._scores = None

    def _get_state(self) -> dict[str, Any]:
        return {"trials": self.trials, "successes": self.successes}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        shape = (self.n_arms, int(self.n_bins))
        t = state_array(state, "trials", shape, nonnegative=True)
        s = state_array(state, "successes", shape, nonnegative=True)
        if (s > t).any():
            raise PolicyError("state['successes']: expected at most state['trials'] per cell")
        self.trials, self.successes, self._scores = t, s, None
