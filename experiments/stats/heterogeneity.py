"""Heterogeneity of a treatment effect across disjoint segments.

* :func:`cochran_q` -- are the segment effects all equal? Cochran's Q, the
  inverse-variance weighted sum of squared deviations from the pooled effect, is
  chi-square with ``k - 1`` degrees of freedom under equal effects (independent, normal
  estimates); for disjoint segments of one randomized comparison it is the Wald test of
  the segment x treatment interaction. ``I^2 = max(0, (Q - df) / Q)`` is the share of the
  spread beyond sampling error (Higgins and Thompson, 2002).
* the segment-vs-rest test (each segment's effect against the effect on everybody
  else, as Statsig's differential impact detection does) is
  :func:`experiments.stats.normal_diff_test` of the two independent estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from policies.errors import StatsInputError

__all__ = ["CochranQResult", "cochran_q"]


@dataclass(frozen=True)
class CochranQResult:
    """Cochran's Q test (see :func:`cochran_q`).

    Attributes
    ----------
    statistic : Q, ``sum w_i (e_i - pooled)^2`` with ``w_i = 1 / se_i^2``.
    df : ``k - 1``, ``k`` the segments used (finite effect, standard error > 0).
    p_value : ``P(chi2_df >= Q)``; NaN with fewer than 2 segments.
    pooled : the inverse-variance weighted mean effect (units of the effects).
    i_squared : ``max(0, (Q - df) / Q)`` in [0, 1] (0 when Q is 0).
    n_segments : ``k``.
    """

    statistic: float
    df: int
    p_value: float
    pooled: float
    i_squared: float
    n_segments: int


def cochran_q(effects: Any, standard_errors: Any) -> CochranQResult:
    """Cochran's Q test that independent segment effects are all equal.

    Parameters
    ----------
    effects : array_like, shape (k,)
        Effect estimate per segment (any units).
    standard_errors : array_like, shape (k,)
        Their standard errors (same units). Segments with a non-finite effect or a
        standard error that is not finite and > 0 are left out (a zero standard error
        would get infinite weight).

    Returns
    -------
    CochranQResult

    Examples
    --------
    >>> r = cochran_q([1.0, -1.0], [0.5, 0.5])
    >>> round(r.statistic, 3), r.df, round(r.pooled, 3)
    (8.0, 1, 0.0)
    """
    e = np.asarray(effects, dtype=np.float64)
    s = np.asarray(standard_errors, dtype=np.float64)
    if e.ndim != 1 or s.shape != e.shape:
        raise StatsInputError(f"effects, standard_errors: expected two 1-D arrays of one "
                              f"length, got shapes {e.shape} and {s.shape}")
    ok = np.isfinite(e) & np.isfinite(s) & (s > 0)
    e, s = e[ok], s[ok]
    k = len(e)
    if k < 2:
        pooled = float(e[0]) if k == 1 else float("nan")
        return CochranQResult(float("nan"), max(k - 1, 0), float("nan"), pooled, float("nan"),
                              k)
    w = 1.0 / s**2
    pooled = float(np.sum(w * e) / np.sum(w))
    q = float(np.sum(w * (e - pooled) ** 2))
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return CochranQResult(q, df, float(sps.chi2.sf(q, df)), pooled, i2, k)
