"""win_probabilities: P(arm best) under Beta posteriors, against slow references."""

from __future__ import annotations

import numpy as np
import pytest
from etc_reference import p_second_beats_first, win_probabilities_quad
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.errors import PolicyError
from policies.explore_commit import win_probabilities


@st.composite
def tallies(draw: st.DrawFn, max_arms: int = 4, max_n: int = 5000
            ) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(2, max_arms))
    n = np.array(draw(st.lists(st.integers(0, max_n), min_size=k, max_size=k)), dtype=float)
    frac = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k)))
    s = np.floor(n * frac * draw(st.sampled_from([1.0, 0.2, 0.02])))
    return s, n - s


@settings(max_examples=60, deadline=None)
@given(tallies())
def test_agrees_with_adaptive_quadrature(t: tuple[np.ndarray, np.ndarray]) -> None:
    s, f = t
    fast = win_probabilities(s, f)
    np.testing.assert_allclose(fast, win_probabilities_quad(s, f), rtol=0, atol=1e-7)
    assert abs(fast.sum() - 1.0) < 1e-8


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(0, 600), st.integers(0, 600)),
       st.tuples(st.integers(0, 6000), st.integers(0, 6000)))
def test_two_arms_agree_with_the_exact_sum(s: tuple[int, int], f: tuple[int, int]) -> None:
    p = win_probabilities(np.array(s, float), np.array(f, float))
    assert p[1] == pytest.approx(p_second_beats_first(s, f), abs=1e-7)


@pytest.mark.parametrize(("s", "f", "expected"), [
    ([0, 0], [0, 0], [0.5, 0.5]),                         # two uniforms
    ([0, 0, 0], [0, 0, 0], [1 / 3] * 3),
    ([5] * 10, [95] * 10, [0.1] * 10),                     # symmetric: 1/K each
    # Beta(1, 1e6 + 1) vs Beta(1, 11): P = 11 / (11 + 1e6 + 1) (closed form for Beta(1, b));
    # a narrow arm beside a wide one, where quadrature over one arm's support misses it
    ([0, 0], [1e6, 10], [11 / (1e6 + 12), 1 - 11 / (1e6 + 12)]),
    ([0, 0], [0, 3], [0.8, 0.2]),                         # Beta(1,1) vs Beta(1,4): 4/5
])
def test_closed_forms(s: list[float], f: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(win_probabilities(s, f), expected, rtol=0, atol=1e-9)


def test_is_deterministic_and_does_not_touch_its_inputs() -> None:
    s, f = np.array([40.0, 55.0, 47.0]), np.array([960.0, 945.0, 953.0])
    before = (s.copy(), f.copy())
    a, b = win_probabilities(s, f), win_probabilities(s, f)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s, before[0])
    np.testing.assert_array_equal(f, before[1])


@pytest.mark.parametrize(("s", "f", "message"), [
    ([1], [1], r"successes: expected a 1-d array of at least 2 counts, got shape \(1,\)"),
    ([[1, 2]], [[1, 2]], r"successes: expected a 1-d array of at least 2 counts"),
    ([1, -1], [1, 1], r"successes: expected finite non-negative counts, got \[-1.0\]"),
    ([1, 1], [1, np.nan], r"failures: expected finite non-negative counts, got \[nan\]"),
    ([1, 1], [1, 1, 1], r"failures: expected shape \(2,\) like successes, got \(3,\)"),
])
def test_bad_counts(s: list, f: list, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        win_probabilities(s, f)
