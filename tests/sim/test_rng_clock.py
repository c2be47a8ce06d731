"""Keyed Philox randomness (known answers, fast == reference, keying) and SimClock."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.errors import SpecError
from sim.clock import SimClock
from sim.rng import PURPOSES, KeyedRandom, check_seed, philox4x32, philox4x32_reference

# Random123 known-answer vectors for philox4x32-10 (kat_vectors).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_reference_matches_random123_known_answers(counter, key, expected) -> None:
    assert philox4x32_reference(counter, key) == expected


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_vectorized_matches_known_answers(counter, key, expected) -> None:
    out = philox4x32(*(np.array([c], np.uint64) for c in counter), key)
    assert tuple(int(o[0]) for o in out) == expected


word = st.integers(0, 2**32 - 1)


@given(st.lists(st.tuples(word, word, word, word), min_size=1, max_size=20), word, word)
def test_vectorized_equals_reference(counters, k0, k1) -> None:
    cols = [np.array([c[i] for c in counters], np.uint64) for i in range(4)]
    fast = philox4x32(*cols, (k0, k1))
    for j, c in enumerate(counters):
        assert tuple(int(f[j]) for f in fast) == philox4x32_reference(c, (k0, k1))


_SUB = st.one_of(st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**48 - 1]), st.integers(0, 2**48 - 1))
_I64 = st.one_of(st.sampled_from([0, -1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, -(2**63)]),
                 st.integers(-(2**63), 2**63 - 1))


@settings(max_examples=200, deadline=None)
@given(seed=st.one_of(st.sampled_from([0, 2**63 - 1]), st.integers(0, 2**63 - 1)),
       subs=st.lists(_SUB, min_size=0, max_size=12),
       step=st.one_of(_I64, st.just("array")), index=st.one_of(_I64, st.just("array")),
       purpose=st.one_of(st.sampled_from([0, 0xFFFF, 0x1FFFF]), st.integers(0, 2**20)),
       k=st.integers(0, 25), data=st.data())
def test_compiled_bits_and_uniforms_equal_the_numpy_reference(seed, subs, step, index,
                                                             purpose, k, data) -> None:
    rng = KeyedRandom(seed)
    sub = np.array(subs, np.int64)
    n = len(sub)
    if step == "array":
        step = np.array(data.draw(st.lists(_I64, min_size=n, max_size=n)), np.int64)
    if index == "array":
        index = np.array(data.draw(st.lists(_I64, min_size=n, max_size=n)), np.int64)
    bits = rng.bits(sub, step, purpose, k=k, index=index)
    ref = rng._bits_reference(sub, step, purpose, k=k, index=index)
    assert bits.dtype == ref.dtype == np.uint64 and bits.shape == ref.shape == (n, k)
    np.testing.assert_array_equal(bits, ref)
    u = rng.uniforms(sub, step, purpose, k=k, index=index)
    uref = rng._uniforms_reference(sub, step, purpose, k=k, index=index)
    assert u.dtype == uref.dtype == np.float64 and u.shape == uref.shape == (n, k)
    assert u.tobytes() == np.ascontiguousarray(uref).tobytes()


@settings(max_examples=100, deadline=None)
@given(word, word, word, word, word, word)
def test_compiled_kernel_equals_the_reference_at_any_key(c0, c1, c2, c3, k0, k1) -> None:
    """The compiled cipher against the plain-Python spec, keys and counters anywhere in
    their 32-bit range (c1 and c3 as the layout builds them: purpose and index bits)."""
    from sim.rng import _keyed_bits

    out = np.empty((1, 8), np.uint64)
    sub = c0 | (c1 & 0xFFFF) << 32
    _keyed_bits(np.array([sub], np.int64), np.array([c2], np.int64),
                np.array([c3 >> 8], np.int64), c1 >> 16, k0, k1, out)
    for g in range(2):
        counter = (c0, c1, c2, ((c3 >> 8) << 8) | g)
        assert tuple(int(w) for w in out[0, 4 * g: 4 * g + 4]) == philox4x32_reference(
            counter, (k0, k1))


def test_compiled_tables_reject_mismatched_keys() -> None:
    rng = KeyedRandom(3)
    with pytest.raises(ValueError, match="step"):
        rng.uniforms(np.arange(3), np.arange(2), 1, k=2)
    with pytest.raises(ValueError, match="index"):
        rng.bits(np.arange(3), 1, 1, k=2, index=np.arange(4))


def test_uniforms_depend_only_on_their_key() -> None:
    rng = KeyedRandom(11)
    ids = np.arange(1000, dtype=np.int64)
    whole = rng.uniforms(ids, 5, PURPOSES["daily"], k=7)
    part = rng.uniforms(ids[[999, 3, 500]], 5, PURPOSES["daily"], k=7)
    np.testing.assert_array_equal(part, whole[[999, 3, 500]])
    assert whole.shape == (1000, 7)
    assert ((whole > 0) & (whole < 1)).all()
    # different step, purpose, index or seed: different numbers
    assert not np.array_equal(whole, rng.uniforms(ids, 6, PURPOSES["daily"], k=7))
    assert not np.array_equal(whole, rng.uniforms(ids, 5, PURPOSES["session"], k=7))
    assert not np.array_equal(whole, rng.uniforms(ids, 5, PURPOSES["daily"], k=7, index=1))
    assert not np.array_equal(whole, KeyedRandom(12).uniforms(ids, 5, PURPOSES["daily"], k=7))


def test_uniforms_are_uniform_and_uncorrelated() -> None:
    u = KeyedRandom(3).uniforms(np.arange(200_000, dtype=np.int64), 1, 1, k=4)
    assert abs(u.mean() - 0.5) < 0.002
    assert abs(u.var() - 1 / 12) < 0.001
    c = np.corrcoef(u.T)
    assert np.abs(c[np.triu_indices(4, 1)]).max() < 0.01
    hist = np.histogram(u[:, 0], bins=20, range=(0, 1))[0]
    expected = len(u) / 20
    chi2 = ((hist - expected) ** 2 / expected).sum()
    assert chi2 < 45  # 19 dof: p < 1e-4


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (None, r"seed: expected an integer >= 0 \(a seed is required\), got None"),
        (-1, r"seed: expected an integer in \[0, 2\*\*63\), got -1"),
        (1.5, r"seed: expected an integer >= 0, got 1.5"),
        ("7", r"seed: expected an integer >= 0, got '7'"),
        (True, r"seed: expected an integer >= 0, got True"),
    ],
)
def test_bad_seeds(seed, message) -> None:
    with pytest.raises(SpecError, match=message):
        check_seed(seed)
    with pytest.raises(SpecError, match=message):
        KeyedRandom(seed)


def test_clock_now_is_read_only_and_advances_by_step() -> None:
    clock = SimClock(start=1000, step=900)
    assert clock.now == 1000
    with pytest.raises(AttributeError):
        clock.now = 5  # type: ignore[misc]
    assert clock.advance() == (1000, 1900)
    assert clock.advance() == (1900, 2800)
    assert (clock.now, clock.ticks, clock.step, clock.start) == (2800, 2, 900, 1000)
    assert SimClock(0, step=3600).advance() == (0, 3600)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 0, "step": 0}, r"step: expected a positive number of seconds, got 0"),
        ({"start": 0, "step": -5}, r"step: expected a positive number of seconds, got -5"),
        ({"start": 0, "step": 1.5}, r"step: expected a positive number of seconds, got 1.5"),
        ({"start": "now", "step": 900}, r"start: expected int seconds since the epoch"),
    ],
)
def test_clock_bad_input(kwargs, message) -> None:
    with pytest.raises(SpecError, match=message):
        SimClock(**kwargs)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**62), lo=st.integers(0, 20_000), width=st.integers(0, 9000),
       step=st.integers(0, 2**32 - 1), k=st.integers(1, 5))
def test_dense_uniforms_do_not_depend_on_the_range_asked(seed, lo, width, step, k) -> None:
    rng = KeyedRandom(seed)
    whole = rng.dense_uniforms(0, 30_000, step, PURPOSES["daily"], k)
    part = rng.dense_uniforms(lo, lo + width, step, PURPOSES["daily"], k)
    np.testing.assert_array_equal(part, whole[lo : lo + width])
    assert ((whole > 0) & (whole < 1)).all()


def test_dense_uniforms_are_keyed_by_step_purpose_and_seed() -> None:
    rng = KeyedRandom(5)
    base = rng.dense_uniforms(100, 9000, 7, PURPOSES["daily"], 2)
    assert abs(base.mean() - 0.5) < 0.01
    for other in (rng.dense_uniforms(100, 9000, 8, PURPOSES["daily"], 2),
                  rng.dense_uniforms(100, 9000, 7, PURPOSES["session_count"], 2),
                  KeyedRandom(6).dense_uniforms(100, 9000, 7, PURPOSES["daily"], 2)):
        assert abs(np.corrcoef(base.ravel(), other.ravel())[0, 1]) < 0.03
