"""Combinations of email elements: the elements' names and levels, and the arm names of
policies that choose a combination (:class:`~policies.bandits.FactorizedThompson`,
:class:`~policies.explore_commit.OneAtATime`).

An arm's name is its levels joined by ``:`` in element order, and arms come in standard
order (the first element varies slowest): arm ``i`` has level ``i // radix[e] % size[e]``
of element ``e``, ``radix[e]`` the product of the later elements' sizes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policies.base import check_arm_names
from policies.errors import PolicyError

__all__ = ["check_elements", "combination_names", "radix"]


def check_elements(elements: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``elements`` as ((name, levels), ...): a mapping or a sequence of pairs, at least
    two elements, distinct names, each with at least two distinct levels."""
    if isinstance(elements, Mapping):
        pairs = list(elements.items())
    elif isinstance(elements, Sequence) and not isinstance(elements, str):
        pairs = list(elements)
    else:
        raise PolicyError(f"elements: expected a mapping of element name to levels, got "
                          f"{elements!r}")
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise PolicyError(f"elements[{i}]: expected (name, levels), got {pair!r}")
        name, levels = pair
        if not isinstance(name, str) or not name or ":" in name:
            raise PolicyError(f"elements[{i}]: expected a non-empty name without ':', got "
                              f"{name!r}")
        levels = check_arm_names(levels, f"elements[{name!r}]")
        bad = [lv for lv in levels if ":" in lv]
        if bad:
            raise PolicyError(f"elements[{name!r}]: levels must not contain ':', got {bad}")
        out.append((name, levels))
    if len(out) < 2:
        raise PolicyError(f"elements: expected at least 2 elements, got {len(out)}")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise PolicyError(f"elements: repeated element name in {names}")
    return tuple(out)


def combination_names(elements: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    """Arm names of every combination, in standard order."""
    return tuple(":".join(c) for c in itertools.product(*(lv for _, lv in elements)))


def radix(elements: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, radix)``, int64 (n_elements,): each element's number of levels and the arm
    index step of one of its levels."""
    sizes = np.array([len(lv) for _, lv in elements], np.int64)
    step = np.array([int(np.prod(sizes[i + 1:])) for i in range(len(sizes))], np.int64)
    return sizes, step
