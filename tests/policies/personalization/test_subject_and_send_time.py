"""Subject features, the learned subject picker and send-time optimization."""

from __future__ import annotations

import numpy as np

from policies.base import SUBJECT_STYLES
from policies.features import FEATURE_NAMES, feature_index
from policies.personalization import (
    SUBJECT_FEATURE_NAMES,
    FixedHourPolicy,
    LearnedSubjectPicker,
    SendTimeOptimizer,
    render_subject,
    subject_features,
)


def test_subject_features_values() -> None:
    subjects = ["Don't Miss: FREE shipping ends!", "Alex, looking for a sale? 🎉",
                "Limited Time: urgent deadline"]
    f = subject_features(subjects, [0.2, 0.8, 0.5], first_name="Alex")
    col = {n: f[:, i] for i, n in enumerate(SUBJECT_FEATURE_NAMES)}
    np.testing.assert_array_equal(col["length"], [31, 27, 29])
    np.testing.assert_array_equal(col["word_count"], [5, 6, 4])
    np.testing.assert_allclose(col["uppercase_ratio"], [6 / 31, 1 / 27, 2 / 29])
    np.testing.assert_allclose(col["punctuation_ratio"], [3 / 31, 2 / 27, 1 / 29])
    np.testing.assert_allclose(col["non_ascii_ratio"], [0, 1 / 27, 0])
    np.testing.assert_array_equal(col["has_first_name"], [0, 1, 0])
    np.testing.assert_array_equal(col["engagement"], [0.2, 0.8, 0.5])
    np.testing.assert_array_equal(col["promo_words"], [1, 1, 0])
    np.testing.assert_array_equal(col["urgency_words"], [0, 0, 3])
    np.testing.assert_array_equal(col["is_question"], [0, 1, 0])
    assert render_subject("learn", "rain jackets") == "Learn: how to choose rain jackets"


def _contexts(engagement: np.ndarray) -> np.ndarray:
    x = np.zeros((len(engagement), len(FEATURE_NAMES)))
    x[:, 0] = 1.0
    x[:, feature_index("engagement_score")] = engagement
    return x


def test_learned_subject_picker_finds_the_best_style_per_engagement() -> None:
    """True click rates: 'dont_miss' best for low engagement, 'first_name' for high."""
    styles = list(SUBJECT_STYLES)

    def ctr(arms: np.ndarray, e: np.ndarray) -> np.ndarray:
        base = 0.02 + 0.02 * e
        lift = np.where(arms == styles.index("dont_miss"), 0.04 * (1 - e), 0.0)
        lift += np.where(arms == styles.index("first_name"), 0.04 * e, 0.0)
        return base + lift

    pol = LearnedSubjectPicker(epsilon=0.2)
    rng, env = np.random.default_rng(0), np.random.default_rng(1)
    for _ in range(40):
        e = env.random(2000)
        arms, props = pol.select(_contexts(e), rng)
        pol.update(arms, (env.random(2000) < ctr(arms, e)).astype(float), _contexts(e))
    e = np.array([0.05, 0.15, 0.85, 0.95])
    arms, props = pol.select(_contexts(np.repeat(e, 2000)), rng)
    greedy = [np.bincount(arms[i * 2000:(i + 1) * 2000], minlength=6).argmax() for i in range(4)]
    assert [styles[g] for g in greedy] == ["dont_miss", "dont_miss", "first_name", "first_name"]
    # exact epsilon-greedy propensities: 0.2 / 6 + 0.8 for the greedy arm
    assert np.isclose(props[arms == greedy[0]][:2000].max(), 0.2 / 6 + 0.8)


def _response(hours: np.ndarray, peak: np.ndarray) -> np.ndarray:
    d = np.abs(hours - peak) % 24
    d = np.minimum(d, 24 - d)
    return 0.03 + 0.25 * np.exp(-0.5 * (d / 1.5) ** 2)


def test_send_time_optimizer_beats_fixed_hour() -> None:
    n = 1000
    ids = np.arange(5000, 5000 + n, dtype=np.int64)
    env = np.random.default_rng(7)
    peak = env.integers(0, 24, n)
    sto, fixed = SendTimeOptimizer(epsilon=0.1), FixedHourPolicy(hour=10)
    rng = np.random.default_rng(8)
    rates = {"sto": [], "fixed": []}
    for _ in range(40):                              # 40 emails per subscriber
        for name, pol in (("sto", sto), ("fixed", fixed)):
            hours, props = pol.select(None, rng, subscribers=ids)
            clicks = (env.random(n) < _response(hours, peak)).astype(float)
            pol.update(hours, clicks, subscribers=ids)
            rates[name].append(clicks.mean())
    late_sto, late_fixed = np.mean(rates["sto"][-10:]), np.mean(rates["fixed"][-10:])
    assert late_sto > 1.5 * late_fixed, (late_sto, late_fixed)
    best = sto.hour_scores(ids).argmax(axis=1)
    d = np.abs(best - peak) % 24
    assert (np.minimum(d, 24 - d) <= 2).mean() > 0.6
    # unseen subscribers fall back to the population rate: every hour roughly equal
    arms, props = sto.select(None, rng, subscribers=np.arange(10**6, 10**6 + 5000))
    assert props.min() > 0.0 and len(np.unique(arms)) == 24


def test_send_time_state_grows_with_new_subscribers_and_round_trips() -> None:
    sto = SendTimeOptimizer()
    sto.update([3, 4], [1, 0], subscribers=np.array([20, 10]))
    sto.update([3], [1], subscribers=np.array([15]))
    np.testing.assert_array_equal(sto.ids, [10, 15, 20])
    assert sto.sends[2, 3] == 1 and sto.engaged[2, 3] == 1 and sto.sends[0, 4] == 1
    other = SendTimeOptimizer()
    other.load_state_dict(sto.state_dict())
    np.testing.assert_array_equal(other.hour_scores(np.array([10, 20, 99])),
                                  sto.hour_scores(np.array([10, 20, 99])))
