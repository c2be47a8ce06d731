"""Keyed policy draws: a row's arm depends on (seed, key) and the policy, not on the
batch it is drawn in."""

from __future__ import annotations

import numpy as np
import pytest

from actors.registry import make_policy
from policies.errors import PolicyError
from policies.keyed import keyed_generator, select_keyed

KEYS = [f"cart_abandonment_24h:{s}:{1_767_000_000 + 37 * s}" for s in range(60)]
POLICIES = [
    ("thompson", {"arm_names": ["a", "b", "c"]}),
    ("epsilon_greedy", {"arm_names": ["a", "b"], "epsilon": 0.3}),
    ("softmax", {"arm_names": ["a", "b", "c"]}),
    ("ab", {"arms": ["a", "b"]}),
    ("exp3", {"arm_names": ["a", "b", "c"]}),
]


@pytest.mark.parametrize(("name", "params"), POLICIES)
def test_arms_do_not_depend_on_batching_or_order(name, params) -> None:
    policy = make_policy(name, params, decides="subject_style", reward="click", seed=4)
    subs = np.arange(len(KEYS), dtype=np.int64)
    now = np.full(len(KEYS), 1_767_100_000, np.int64)
    arms, props = select_keyed(policy, KEYS, 9, subscribers=subs, now=now)
    assert ((props > 0) & (props <= 1)).all()
    perm = np.random.default_rng(1).permutation(len(KEYS))
    a2, p2 = select_keyed(policy, [KEYS[i] for i in perm], 9, subscribers=subs[perm],
                          now=now[perm])
    assert a2.tolist() == arms[perm].tolist() and p2.tolist() == props[perm].tolist()
    for lo in range(0, len(KEYS), 7):    # in batches of 7
        a3, p3 = select_keyed(policy, KEYS[lo:lo + 7], 9, subscribers=subs[lo:lo + 7],
                              now=now[lo:lo + 7])
        assert a3.tolist() == arms[lo:lo + 7].tolist()
        assert p3.tolist() == props[lo:lo + 7].tolist()
    # the row's own generator, as the module docstring defines it
    a4, p4 = policy.select(None, keyed_generator(9, KEYS[5]), subscribers=subs[5:6], n=1,
                           now=now[5:6])
    assert a4[0] == arms[5]
    if name == "thompson":      # exact propensity instead of select's Monte-Carlo estimate
        assert props[5] == policy.exact_arm_probabilities()[arms[5]]
    else:
        assert p4[0] == props[5]


def test_the_seed_and_the_key_choose() -> None:
    policy = make_policy("epsilon_greedy", {"arm_names": ["a", "b"], "epsilon": 1.0},
                         decides="subject_style", reward="click", seed=0)
    by_seed = [select_keyed(policy, KEYS, s, n=len(KEYS))[0].tolist() for s in range(3)]
    assert by_seed[0] != by_seed[1] != by_seed[2]
    u = [keyed_generator(0, k).random() for k in KEYS]
    assert len(set(u)) == len(KEYS)
    assert keyed_generator(0, "x:1:2").random() == keyed_generator(0, "x:1:2").random()


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((KEYS[:2], -1), {}, "seed: expected an integer >= 0"),
    ((KEYS[:2], 1.5), {}, "seed: expected an integer"),
    (([1, 2], 0), {}, "key: expected a str, got int"),
    ((KEYS[:2], 0), {"n": 3}, "n: expected len"),
    ((KEYS[:2], 0), {"subscribers": np.arange(3)}, r"subscribers: expected 2 rows"),
    ((KEYS[:2], 0), {"now": np.arange(1)}, r"now: expected 2 rows"),
])
def test_bad_arguments(args, kwargs, match) -> None:
    policy = make_policy("thompson", {"arm_names": ["a", "b"]}, decides="subject_style",
                         reward="click", seed=0)
    with pytest.raises(PolicyError, match=match):
        select_keyed(policy, *args, **kwargs)


@pytest.mark.parametrize("name", ["thompson", "discounted_thompson", "sliding_window_thompson"])
def test_beta_thompson_keyed_arm_is_first_draw_and_propensity_exact(name) -> None:
    """Fast path: the arm ``policy.select`` draws first from the keyed generator, and
    the exact (quadrature) probability of that arm as its propensity."""
    from policies.bandits import beta_max_probabilities_quadrature
    policy = make_policy(name, {"arm_names": ["a", "b", "c"]}, decides="subject_style",
                         reward="click", seed=4)
    rng = np.random.default_rng(5)
    arms_fb = rng.integers(0, 3, 300)
    policy.update(arms_fb, (rng.random(300) < np.array([0.1, 0.3, 0.2])[arms_fb]).astype(float))
    arms, props = select_keyed(policy, KEYS, 9)
    for i, key in enumerate(KEYS):
        a, _ = policy.select(None, keyed_generator(9, key), n=1)
        assert arms[i] == a[0]
    exact = beta_max_probabilities_quadrature(*policy.posterior())
    np.testing.assert_array_equal(props, exact[arms])


def test_a_reused_stream_starts_each_key_afresh() -> None:
    """select_keyed reuses one generator: what a row drew before (here a 32-bit draw,
    which leaves half a word buffered) does not leak into the next key's draws."""
    from policies.keyed import _KeyedStream

    stream = _KeyedStream(5)
    for key in KEYS[:10]:
        g = stream.at(key)
        g.integers(0, 2**32, size=3, dtype=np.uint32)
        g.standard_normal(2)
    for key in KEYS[10:20]:
        got = stream.at(key)
        first = (got.integers(0, 2**32, size=3, dtype=np.uint32).tolist(), got.random(4).tolist())
        fresh = keyed_generator(5, key)
        assert first == (fresh.integers(0, 2**32, size=3, dtype=np.uint32).tolist(),
                         fresh.random(4).tolist())
        stream.at(key).integers(0, 2**32, dtype=np.uint32)     # an odd number of halves
    with pytest.raises(PolicyError, match=r"seed: expected an integer below 2\*\*128"):
        keyed_generator(2**128, "k")
