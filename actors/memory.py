"""Where a shard's memory goes: bytes of numpy arrays and pandas frames reachable from
an object, and a shard's breakdown by part (:meth:`actors.ShardCore.memory`); handing
freed memory back to the operating system (:func:`release_free_memory`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["deep_nbytes", "release_free_memory"]


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


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (None elsewhere: musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    fn = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the operating system (glibc ``malloc_trim``).

    Arrays below glibc's mmap threshold (which rises up to 32 MiB as large arrays are
    freed) come from the heap, and their pages stay in the process after they are freed:
    on a 1 M-subscriber shard about 100-180 MB between two simulated days. A shard calls
    this once a simulated day. Returns whether anything could be done (False off glibc).
    Changes no value, only the resident memory."""
    fn = _malloc_trim()
    return bool(fn is not None and fn(0))
