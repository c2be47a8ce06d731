"""Fixed-split and multi-arm A/B tests with deterministic salted-hash assignment.

A subscriber's arm is a pure function of ``(salt, subscriber id)``: it keeps its arm for
the life of the experiment, on any machine and any shard, and experiments with different
salts are assigned independently. The hash is SplitMix64's finalizer applied twice to
``id XOR key(salt)``, where ``key(salt)`` is the first 8 bytes of ``blake2b(salt)``;
the top 53 bits give a uniform number ``u`` in [0, 1). A holdout takes ``u < holdout``;
the rest is split by the cumulative weights. :func:`hash_unit_reference` is the plain
Python reference the vectorized :func:`hash_unit` is tested against.

:func:`keyed_unit` is the same hash keyed by a salt *and* an int counter (the key is
``mix(key(salt) XOR counter)``), so that many units of one salt and different counters
(journey splits: rule and node fixed, the entry time varying) cost no string hashing and
can be computed inside compiled code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from policies.base import ArmTallyPolicy, check_arm_names, check_number, check_reward_type
from policies.errors import PolicyError

__all__ = ["ABTest", "hash_unit", "hash_unit_reference", "keyed_unit", "salt_key"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def salt_key(salt: str) -> int:
    """64-bit key of an experiment salt: the first 8 bytes of ``blake2b(salt)``."""
    return int.from_bytes(hashlib.blake2b(salt.encode("utf-8"), digest_size=8).digest(), "little")


def _mix_ref(z: int) -> int:
    z = (z + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def hash_unit_reference(subscriber: int, salt: str) -> float:
    """Reference (plain Python) hash of one subscriber id to a float in [0, 1)."""
    h = _mix_ref(_mix_ref((int(subscriber) & _MASK) ^ salt_key(salt)))
    return (h >> 11) * 2.0**-53


def keyed_unit(subscriber: int, salt: str, counter: int) -> float:
    """The unit in [0, 1) of ``subscriber`` for the key ``(salt, counter)``: as
    :func:`hash_unit_reference` with the salt's key replaced by
    ``mix(key(salt) XOR counter)`` (SplitMix64's finalizer; int64 wrapped to 64 bits).

    >>> 0 <= keyed_unit(7, "rule:3", 1_700_000_000) < 1
    True
    """
    key = _mix_ref(salt_key(salt) ^ (int(counter) & _MASK))
    h = _mix_ref(_mix_ref((int(subscriber) & _MASK) ^ key))
    return (h >> 11) * 2.0**-53


def _mix(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def hash_unit(subscribers: np.ndarray, salt: str) -> np.ndarray:
    """Vectorized hash of int64 subscriber ids (n,) to floats in [0, 1) (n,)."""
    z = np.asarray(subscribers, dtype=np.int64).view(np.uint64) ^ np.uint64(salt_key(salt))
    with np.errstate(over="ignore"):
        h = _mix(_mix(z))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(eq=False)
class ABTest(ArmTallyPolicy):
    """A fixed A/B (or multi-arm) split with an optional holdout group.

    Parameters
    ----------
    arms : sequence of str
        Arm names of the test, e.g. ``("control", "treatment")``.
    salt : str
        Experiment identifier; different salts give independent assignments.
    weights : sequence of float, optional
        Relative share of each arm (normalized; default equal shares).
    holdout : float
        Fraction of subscribers (probability in [0, 1)) held out; they get the extra
        arm ``holdout_name`` (send nothing).
    holdout_name : str
        Name of the holdout arm, appended to ``arm_names`` when ``holdout > 0``.
    reward_type : {"binary", "real"}

    Notes
    -----
    Assignment is deterministic per subscriber; the propensity reported is the
    configured probability of the assigned arm over the hash (i.e. over subscribers),
    which is what off-policy estimators need. ``update`` only keeps per-arm counts
    (``n``, reward sums) for reporting.
    """

    arms: Sequence[str]
    salt: str
    weights: Sequence[float] | None = None
    holdout: float = 0.0
    holdout_name: str = "holdout"
    reward_type: str = "binary"
    requires_subscribers = True
    counts: np.ndarray = field(init=False, repr=False)
    reward_sums: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = check_arm_names(self.arms, "arms")
        if not isinstance(self.salt, str) or not self.salt:
            raise PolicyError(f"salt: expected a non-empty string, got {self.salt!r}")
        check_number("holdout", self.holdout, low=0.0, high=1.0, high_open=True)
        check_reward_type(self.reward_type)
        if self.holdout > 0 and self.holdout_name in names:
            raise PolicyError(
                f"holdout_name: expected a name not in arms, got {self.holdout_name!r}")
        if self.weights is not None:
            w = self.weights
            if (isinstance(w, str) or not isinstance(w, Sequence | np.ndarray)
                    or len(w) != len(names)):
                raise PolicyError(f"weights: expected {len(names)} numbers, got {w!r}")
            for i, v in enumerate(w):
                check_number(f"weights[{i}]", v, low=0.0, low_open=True)
        self.reset()

    @property
    def arm_names(self) -> tuple[str, ...]:  # type: ignore[override]
        names = tuple(self.arms)
        return (*names, self.holdout_name) if self.holdout > 0 else names

    def probabilities(self) -> np.ndarray:
        """Assignment probability of each arm in ``arm_names`` (sums to 1)."""
        k = len(self.arms)
        w = np.ones(k) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        p = (1.0 - self.holdout) * w / w.sum()
        return np.append(p, self.holdout) if self.holdout > 0 else p

    def assign(self, subscribers: np.ndarray) -> np.ndarray:
        """Arm index (int64, (n,)) of each subscriber id; a pure function of (salt, id)."""
        u = hash_unit(np.asarray(subscribers, dtype=np.int64), self.salt)
        p = self.probabilities()
        # order: test arms first, holdout (last arm) takes the bottom of [0, 1)
        k = len(self.arms)
        cum = self.holdout + np.cumsum(p[:k])
        idx = np.searchsorted(cum, u, side="right").astype(np.int64)
        idx = np.minimum(idx, k - 1)
        if self.holdout > 0:
            idx[u < self.holdout] = k
        return idx

    def _select(self, contexts: np.ndarray | None, rng: np.random.Generator,
                subscribers: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        assert subscribers is not None
        arms = self.assign(subscribers)
        return arms, self.probabilities()[arms]
