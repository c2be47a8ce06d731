"""Where a shard's memory goes: bytes of numpy arrays and pandas frames reachable from
an object, and a shard's breakdown by part (:meth:`actors.ShardCore.memory`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["deep_nbytes"]


def deep_nbytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of the numpy arrays (their allocated buffers, each counted once, views by
    their base) and pandas frames (deep) reachable from ``obj`` through dicts, lists,
    tuples, sets, dataclasses and instance ``__dict__``; Python objects themselves are
    not counted (the arrays hold a shard's state)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if base is not obj:
            return deep_nbytes(base, seen)
        return int(obj.nbytes)
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        usage = obj.memory_usage(deep=True)
        return int(usage.sum() if isinstance(usage, pd.Series) else usage)
    if isinstance(obj, dict):
        return sum(deep_nbytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(deep_nbytes(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(deep_nbytes(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    state = getattr(obj, "__dict__", None)
    return deep_nbytes(state, seen) if isinstance(state, dict) else 0
