"""Policy choices drawn from generators keyed by what is decided, not by batch or process.

A live service chooses the variant of each fired send where the trigger fired (an engine
shard), in batches whose make-up depends on how the stream was cut into messages and on
how many shards there are. To give the same arm and propensity whatever the batching,
and again after a crash and replay, each row draws from its own generator keyed by
``(seed, key)`` (the key is the send's trigger id): a PCG64 generator whose 128-bit
state and increment are the two halves of

    ``BLAKE2b-256(key as UTF-8, key=seed as 16 little-endian bytes, person=KEYED_PERSON)``

(the increment with its lowest bit set, as PCG64 requires). Setting that state on one
reused generator costs a hash and an assignment (about 8 us a row on a slow 2-core
machine; building a seeded ``default_rng`` per row costs about 80 us there).
:func:`select_keyed` calls ``policy.select`` once per row with that generator, so a
row's arm depends only on the policy's state, the seed, the key and the row's own
inputs (context, subscriber, decision time).

Beta-Bernoulli Thompson policies (``BetaThompson``, ``DiscountedThompson``,
``SlidingWindowThompson``) take a fast path with the same arms: the arm is still the
first draw of the row's generator (``policy.keyed_arm``), and the propensity is the
exact probability of that arm under the posterior
(:func:`~policies.bandits.beta_max_probabilities_quadrature`), computed once per
posterior (cached on its parameters, so once per policy version) instead of a
Monte-Carlo estimate per row.

>>> import numpy as np
>>> from policies.bandits import EpsilonGreedy
>>> p = EpsilonGreedy(arm_names=("a", "b"), epsilon=0.5)
>>> keys = ["cart_abandonment_24h:7:1700000000", "browse_abandonment:9:1700000300"]
>>> a1, p1 = select_keyed(p, keys, seed=3, n=2)
>>> a2, p2 = select_keyed(p, keys[::-1], seed=3, n=2)   # another order, same draws
>>> a1.tolist() == a2[::-1].tolist() and p1.tolist() == p2[::-1].tolist()
True
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from policies import checks
from policies.bandits.thompson import (
    _beta_split,
    _BetaPosterior,
    beta_max_probabilities_quadrature,
    beta_thompson_argmax_split,
)
from policies.base import Policy
from policies.errors import PolicyError

__all__ = ["KEYED_PERSON", "keyed_generator", "select_keyed"]

#: BLAKE2b personalization of the keyed hash (the purpose: policy choices).
KEYED_PERSON = b"triggerlab.arm"


class _KeyedStream:
    """One PCG64 generator whose state is set for each row's ``(seed, key)``."""

    def __init__(self, seed: int) -> None:
        checks.check_int("seed", seed, error=PolicyError, low=0)
        if seed >= 2**128:
            raise PolicyError(f"seed: expected an integer below 2**128, got {seed}")
        self._salt = int(seed).to_bytes(16, "little")
        self._bits = np.random.PCG64(0)
        self.generator = np.random.Generator(self._bits)

    def at(self, key: str) -> np.random.Generator:
        """The generator, at the start of ``key``'s stream."""
        if not isinstance(key, str):
            raise PolicyError(f"key: expected a str, got {type(key).__name__}")
        d = hashlib.blake2b(key.encode("utf-8"), digest_size=32, key=self._salt,
                            person=KEYED_PERSON).digest()
        self._bits.state = {"bit_generator": "PCG64",
                            "state": {"state": int.from_bytes(d[:16], "little"),
                                      "inc": int.from_bytes(d[16:], "little") | 1},
                            "has_uint32": 0, "uinteger": 0}
        return self.generator


def keyed_generator(seed: int, key: str) -> np.random.Generator:
    """A new generator at the start of the stream of the row keyed ``key`` under
    ``seed`` (see the module docstring)."""
    return _KeyedStream(seed).at(key)


def select_keyed(policy: Policy, keys: Sequence[str], seed: int, *,
                 contexts: np.ndarray | None = None, subscribers: np.ndarray | None = None,
                 now: np.ndarray | None = None, n: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``policy.select`` for each row with the row's keyed generator.

    Parameters
    ----------
    policy : Policy
        Its state is read, not changed.
    keys : sequence of str, length n
        One key per row (trigger ids).
    seed : int
        >= 0.
    contexts : ndarray of shape (n, d), optional
    subscribers : int64 ndarray of shape (n,), optional
    now : int64 ndarray of shape (n,), optional
        Decision times, seconds since the epoch.
    n : int, optional
        Must equal ``len(keys)`` when given.

    Returns
    -------
    arms : int64 ndarray (n,)
    propensities : float64 ndarray (n,)
    """
    m = len(keys)
    if n is not None and n != m:
        raise PolicyError(f"n: expected len(keys) = {m}, got {n}")
    for name, arr in (("contexts", contexts), ("subscribers", subscribers), ("now", now)):
        if arr is not None and len(arr) != m:
            raise PolicyError(f"{name}: expected {m} rows (one per key), got {len(arr)}")
    arms = np.empty(m, np.int64)
    props = np.empty(m, np.float64)
    stream = _KeyedStream(seed)
    if isinstance(policy, _BetaPosterior) and m:
        alpha, beta = policy.posterior()
        probs, split = _exact_beta_probabilities(policy)
        for i, key in enumerate(keys):   # = policy.keyed_arm(stream.at(key)), split once
            arms[i] = beta_thompson_argmax_split(alpha, beta, split, 1, stream.at(key))[0]
        props[:] = probs[arms]
        return arms, props
    for i, key in enumerate(keys):
        a, p = policy.select(
            None if contexts is None else contexts[i:i + 1], stream.at(key),
            subscribers=None if subscribers is None else subscribers[i:i + 1], n=1,
            now=None if now is None else now[i:i + 1])
        arms[i], props[i] = a[0], p[0]
    return arms, props


#: Posteriors whose exact arm probabilities are cached (most recent last).
_CACHE_SIZE = 64
_cache: OrderedDict[bytes, tuple[np.ndarray, Any]] = OrderedDict()


def _exact_beta_probabilities(policy: _BetaPosterior) -> tuple[np.ndarray, Any]:
    """Exact arm probabilities of ``policy``'s posterior and its sampler split, cached
    on the posterior's parameters."""
    a, b = policy.posterior()
    key = np.asarray(a, np.float64).tobytes() + np.asarray(b, np.float64).tobytes()
    hit = _cache.get(key)
    if hit is None:
        probs = beta_max_probabilities_quadrature(a, b)
        probs.setflags(write=False)
        hit = (probs, _beta_split(np.asarray(a, np.float64), np.asarray(b, np.float64)))
        _cache[key] = hit
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return hit
