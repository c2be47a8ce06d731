"""Common random numbers for bandit benchmarks: a per-arm "reward tape".

The stack-of-rewards model (Lattimore & Szepesvari, *Bandit Algorithms*, sec. 4.6): for
each arm ``a`` an infinite sequence ``tape[a][0], tape[a][1], ...`` of independent
Bernoulli(``probs[a]``) outcomes is fixed before the run; the ``k``-th pull of arm ``a``
(pulls counted in round order, and within a batch in row order) receives ``tape[a][k]``.
This gives the same reward distribution as drawing a fresh reward per pull, but two
policies (or two libraries) run on the same tape see the same outcome whenever they pull
an arm for the same time, so their regrets are positively correlated and their
per-seed difference is a paired comparison with a much smaller variance.

The tape of arm ``a`` for seed ``s`` is ``np.random.default_rng([s, 2, a]).random() <
probs[a]``, one uniform per pull. It is drawn lazily, ``chunk`` uniforms at a time, and
consumed entries are dropped, so memory is ``O(K * (chunk + batch))`` whatever the
horizon. Generator streams concatenate (``random(m)`` then ``random(n)`` equals
``random(m + n)``), so the outcomes depend neither on ``chunk`` nor on how the rounds are
cut into batches (hypothesis test in ``tests/experiments/test_reward_tape.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RewardTape", "reward_tape_reference"]


def _arm_rng(seed: int, arm: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2, arm])


class RewardTape:
    """Per-arm pre-drawn Bernoulli rewards for one seed; see the module docstring.

    Parameters
    ----------
    probs : (K,) array of float
        Success probability of each arm, in [0, 1].
    seed : int
        Non-negative seed; arm ``a`` draws from ``np.random.default_rng([seed, 2, a])``.
    chunk : int
        Number of uniforms drawn per arm whenever its buffer runs out (>= 1).
    """

    def __init__(self, probs: np.ndarray, seed: int, chunk: int = 1 << 16) -> None:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 1 or p.size == 0 or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"probs: expected a non-empty 1-d array in [0, 1], got {probs!r}")
        if int(chunk) != chunk or chunk < 1:
            raise ValueError(f"chunk: expected an integer >= 1, got {chunk!r}")
        self.probs = p
        self.chunk = int(chunk)
        self._rngs = [_arm_rng(seed, a) for a in range(p.size)]
        self._buffers = [np.empty(0, dtype=bool) for _ in range(p.size)]
        self.pulls = np.zeros(p.size, dtype=np.int64)   #: pulls consumed so far, per arm

    def _take(self, arm: int, count: int) -> np.ndarray:
        """The next ``count`` outcomes of ``arm``'s tape (bool, (count,))."""
        buf = self._buffers[arm]
        if buf.size < count:
            fresh = self._rngs[arm].random(max(self.chunk, count - buf.size))
            buf = np.concatenate([buf, fresh < self.probs[arm]])
        self._buffers[arm] = buf[count:]
        self.pulls[arm] += count
        return buf[:count]

    def rewards(self, arms: np.ndarray) -> np.ndarray:
        """Rewards (float64 0/1, shape (n,)) of the pulls ``arms`` (int, (n,)), in row order.

        Row ``i`` pulling arm ``a`` gets the next unused entry of ``a``'s tape: rows are
        grouped by arm with a stable sort, each group takes a contiguous slice.
        """
        arms = np.asarray(arms)
        k = self.probs.size
        if (arms.ndim != 1 or arms.dtype.kind not in "iu"
                or (arms.size and (arms.min() < 0 or arms.max() >= k))):
            raise ValueError(f"arms: expected a 1-d array of ints in [0, {k}), got {arms!r}")
        out = np.empty(arms.size, dtype=np.float64)
        if arms.size == 0:
            return out
        counts = np.bincount(arms, minlength=k)
        order = np.argsort(arms, kind="stable")
        out[order] = np.concatenate([self._take(a, int(c)) for a, c in enumerate(counts)])
        return out


def reward_tape_reference(probs: np.ndarray, seed: int, arms: np.ndarray) -> np.ndarray:
    """Reference of :class:`RewardTape`: whole tapes drawn upfront, one pull at a time.

    ``arms`` (n,) is the whole sequence of pulls in round order; returns their rewards
    (float64, (n,)).
    """
    probs = np.asarray(probs, dtype=np.float64)
    tapes = [_arm_rng(seed, a).random(len(arms)) < probs[a] for a in range(probs.size)]
    used = [0] * probs.size
    out = []
    for a in arms:
        out.append(float(tapes[a][used[a]]))
        used[a] += 1
    return np.array(out, dtype=np.float64)
