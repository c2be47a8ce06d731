"""Scalar rounding for the plain-Python reference samplers.

The references (``sample_reference``, ``realize_sessions_reference``) specify the
vectorized samplers one email or session at a time, and tests require the two to agree
exactly. Python's ``math.log``/``math.exp`` differ from numpy's kernels in the last bit
on a few percent of inputs, and Python's ``round`` is correctly rounded while
``np.round`` scales by ``10**decimals`` first: at a rare half-cent boundary either
difference flips the rounded money value by a cent. The references therefore call
``np.log``/``np.exp`` (numpy's scalar path runs the same kernel as its array path) and
round with :func:`np_round`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["np_round"]


def np_round(x: float, decimals: int) -> float:
    """``x`` rounded to ``decimals`` places exactly as ``np.round`` rounds an array.

    >>> np_round(2.675, 2), round(2.675, 2)
    (2.68, 2.67)
    """
    return float(np.round(np.float64(x), decimals))
