"""``Decisions.sorted`` gives exactly the stable order of ``np.lexsort`` over time,
subscriber, rule, entered_at, step, kind and attempt, whichever way it sorts (a packed
(time, subscriber) key when times span less than 2**31 s and ids are in [0, 2**32), the
seven keys otherwise)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.triggers.decisions import Decisions, sort_order


def _lexsorted(d: Decisions) -> np.ndarray:
    return np.lexsort((d.attempt, d.kind, d.step, d.entered_at, d.rule, d.subscriber, d.time))


def _batch(rng: np.random.Generator, n: int, times: np.ndarray, subs: np.ndarray) -> Decisions:
    """``n`` rows with few distinct values per key (many ties), propensities numbering the
    rows so that a change in the order of equal rows shows."""
    pick = lambda values: rng.choice(np.asarray(values, np.int64), n)  # noqa: E731
    return Decisions(pick(subs), pick([0, 1, 2]), pick(range(8)), pick(times),
                     pick([5, 6]), pick([1, 2]), ("a", "b", "c"), pick([-1, 0, 3]),
                     pick([-1, 0, 1]), np.arange(n, dtype=np.float64), steps=((), (), ()))


#: (event times, subscriber ids): packed keys, and each reason for the seven-key sort.
RANGES: list[tuple[list[int], list[int]]] = [
    ([1_700_000_000, 1_700_000_001, 1_700_003_600], [0, 1, 7, 2**32 - 1]),
    ([946_684_800, 946_684_800 + 2**31 - 1], [3, 4]),  # the widest packed span
    ([946_684_800, 946_684_800 + 2**31], [3, 4]),  # too wide: seven keys
    ([1_700_000_000, 1_700_000_005], [-5, 2]),  # a negative id
    ([1_700_000_000, 1_700_000_005], [2**32, 2]),  # an id beyond 32 bits
    ([1_700_000_000], [9]),  # everything tied but the other keys
]


@pytest.mark.parametrize(("times", "subs"), RANGES)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300))
def test_the_order_is_the_stable_seven_key_lexsort(times: list[int], subs: list[int], seed: int,
                                                   n: int) -> None:
    d = _batch(np.random.default_rng(seed), n, np.array(times), np.array(subs))
    expected = _lexsorted(d)
    assert np.array_equal(sort_order(d), expected)
    got = d.sorted()
    assert np.array_equal(got.propensity, d.propensity[expected])  # equal rows keep order


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_batches(n: int) -> None:
    d = _batch(np.random.default_rng(n), n, np.array([10, 5]), np.array([1, 0]))
    assert np.array_equal(sort_order(d), _lexsorted(d))


def test_an_already_sorted_batch_keeps_its_order(**_: Any) -> None:
    d = _batch(np.random.default_rng(1), 500, np.arange(1_700_000_000, 1_700_000_050),
               np.arange(20))
    once = d.sorted()
    assert np.array_equal(sort_order(once), np.arange(len(once)))
