"""A/B assignment: stable, independent across salts, holdout, split within sampling error."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from policies.ab import ABTest, hash_unit, hash_unit_reference, salt_key

IDS = np.arange(200_000, dtype=np.int64)


@given(ids=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40),
       salt=st.text(min_size=1, max_size=12))
def test_vectorized_hash_matches_reference(ids: list[int], salt: str) -> None:
    got = hash_unit(np.array(ids, dtype=np.int64), salt)
    np.testing.assert_array_equal(got, [hash_unit_reference(i, salt) for i in ids])


def test_salt_key_is_blake2b() -> None:
    assert salt_key("exp-1") == int.from_bytes(
        __import__("hashlib").blake2b(b"exp-1", digest_size=8).digest(), "little")
    assert salt_key("exp-1") != salt_key("exp-2")


def test_hash_is_uniform_on_consecutive_ids() -> None:
    u = hash_unit(IDS, "uniformity")
    assert ((u >= 0) & (u < 1)).all()
    counts = np.bincount((u * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > 0.001
    assert stats.kstest(u, "uniform").pvalue > 0.001


def test_split_matches_configured_ratios() -> None:
    ab = ABTest(["control", "a", "b"], salt="subject-test-7", weights=[2, 1, 1], holdout=0.1)
    arms, props = ab.select(None, np.random.default_rng(0), subscribers=IDS)
    expected = np.array([0.45, 0.225, 0.225, 0.1])
    counts = np.bincount(arms, minlength=4)
    assert stats.chisquare(counts, expected * len(IDS)).pvalue > 0.001
    np.testing.assert_allclose(props, expected[arms])
    assert ab.arm_names == ("control", "a", "b", "holdout")


def test_a_chi_square_test_can_detect_a_wrong_split() -> None:
    """The split test has power: a 50/50 assignment fails against 52/48 ratios."""
    arms, _ = ABTest(["c", "t"], salt="power").select(None, np.random.default_rng(0),
                                                      subscribers=IDS)
    counts = np.bincount(arms, minlength=2)
    assert stats.chisquare(counts, np.array([0.52, 0.48]) * len(IDS)).pvalue < 1e-6


def test_assignment_is_stable_for_life() -> None:
    ab = ABTest(["c", "t"], salt="exp-life")
    first = ab.assign(IDS[:5000])
    rng = np.random.default_rng(1)
    for _ in range(3):   # any order, any batch, any rng, a rebuilt policy, after updates
        order = rng.permutation(5000)
        again, _ = ABTest(["c", "t"], salt="exp-life").select(
            None, rng, subscribers=IDS[:5000][order])
        np.testing.assert_array_equal(again, first[order])
        ab.update(first[:100], rng.integers(0, 2, 100), subscribers=IDS[:100])
    np.testing.assert_array_equal(ab.assign(IDS[:5000]), first)


def test_experiments_with_different_salts_are_independent() -> None:
    a = ABTest(["c", "t"], salt="exp-A").assign(IDS)
    b = ABTest(["x", "y", "z"], salt="exp-B").assign(IDS)
    table = np.zeros((2, 3))
    np.add.at(table, (a, b), 1)
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert 0.45 < (a == 1).mean() < 0.55


def test_holdout_is_nested_and_only_holdout_changes() -> None:
    """Growing the holdout moves subscribers only into the holdout, never between arms."""
    small = ABTest(["c", "t"], salt="exp-H", holdout=0.05).assign(IDS)
    large = ABTest(["c", "t"], salt="exp-H", holdout=0.10).assign(IDS)
    assert ((small == 2) <= (large == 2)).all()
    assert abs((large == 2).mean() - 0.10) < 0.005


def test_update_counts_by_arm() -> None:
    ab = ABTest(["c", "t"], salt="s")
    ab.update(["c", "t", "t"], [1, 0, 1], subscribers=np.array([1, 2, 3]))
    np.testing.assert_array_equal(ab.counts, [1, 2])
    np.testing.assert_array_equal(ab.reward_sums, [1, 1])
