"""Which partition a subscriber's events go to: a fixed 64-bit hash of the id.

The hash is plain integer arithmetic (splitmix64's finalizer), the same in every
process, platform and run, so a subscriber always reaches the same partition and hence
the same engine shard; it is the in-process load test's ``hash`` partitioning too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from policies.checks import show
from policies.errors import TriggerLabValueError

__all__ = ["mix64", "partition_of"]

#: Salt of the partition hash (changing it moves every subscriber).
PARTITION_SALT = 0x5EED_5A4D


def mix64(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 finalizer of ``x ^ salt``: uint64 array, shape of ``x``."""
    z = np.asarray(x).astype(np.uint64) ^ np.uint64(salt)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def partition_of(subscriber: Any, partitions: int) -> np.ndarray:
    """Partition of each subscriber id: int64 array in ``[0, partitions)``, shape of
    ``subscriber`` (int64 ids).

    >>> partition_of([7, 8, 9], 4).tolist()
    [2, 1, 2]
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int | np.integer) \
            or partitions < 1:
        raise TriggerLabValueError(f"partitions: expected an int >= 1, got {show(partitions)}")
    ids = np.asarray(subscriber, np.int64)
    return (mix64(ids, PARTITION_SALT) % np.uint64(partitions)).astype(np.int64)
