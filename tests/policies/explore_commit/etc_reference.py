"""Slow references for the explore-then-commit tests (imported by them)."""

from __future__ import annotations

import numpy as np
from scipy import integrate, special, stats


def win_probabilities_quad(successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
    """``P(arm a best)`` under ``Beta(1 + s, 1 + f)`` by adaptive quadrature, one arm at a time.

    ``scipy.integrate.quad`` of ``g_a(x) prod_{b != a} G_b(x)`` over arm ``a``'s
    ``[Q(1e-13), Q(1 - 1e-13)]``, told where every arm's mass lies (its 1e-6, 1 %, 50 %,
    99 % and 1 - 1e-6 quantiles), so that a narrow arm is not stepped over.
    """
    alpha = 1.0 + np.asarray(successes, dtype=np.float64)
    beta = 1.0 + np.asarray(failures, dtype=np.float64)
    k = alpha.size
    marks = np.concatenate([stats.beta.ppf([1e-6, 0.01, 0.5, 0.99, 1 - 1e-6], alpha[b], beta[b])
                            for b in range(k)])
    out = np.empty(k)
    for a in range(k):
        others = [b for b in range(k) if b != a]

        def f(x: float, a: int = a, others: list[int] = others) -> float:
            val = stats.beta.pdf(x, alpha[a], beta[a])
            for b in others:
                val *= special.betainc(alpha[b], beta[b], x)
            return float(val)

        lo, hi = stats.beta.ppf([1e-13, 1 - 1e-13], alpha[a], beta[a])
        points = sorted({float(m) for m in marks if lo < m < hi})
        out[a] = integrate.quad(f, lo, hi, points=points or None, limit=500,
                                epsabs=1e-13, epsrel=1e-11)[0]
    return out


def p_second_beats_first(s: tuple[int, int], f: tuple[int, int]) -> float:
    """Exact ``P(X_1 > X_0)`` for ``X_i ~ Beta(1 + s_i, 1 + f_i)`` with integer counts:
    ``sum_{i < a1} B(a0 + i, b0 + b1) / ((b1 + i) B(1 + i, b1) B(a0, b0))``."""
    a0, b0, a1, b1 = 1 + s[0], 1 + f[0], 1 + s[1], 1 + f[1]
    i = np.arange(a1, dtype=np.float64)
    terms = np.exp(special.betaln(a0 + i, b0 + b1) - np.log(b1 + i) - special.betaln(1 + i, b1)
                   - special.betaln(a0, b0))
    return float(terms.sum())
