"""Two-sample nonparametric bootstrap, vectorized over resamples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from experiments.stats._validate import _short, check_alpha, check_choice, sample
from experiments.stats.results import BootstrapResult
from policies.errors import StatsInputError

__all__ = ["BUILTIN_STATISTICS", "bootstrap_ci"]

Statistic = Callable[[np.ndarray, np.ndarray], Any]


def _mean_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b.mean(axis=-1) - a.mean(axis=-1)


def _median_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.median(b, axis=-1) - np.median(a, axis=-1)


def _relative_lift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return b.mean(axis=-1) / a.mean(axis=-1) - 1.0


BUILTIN_STATISTICS: dict[str, Statistic] = {
    "mean_diff": _mean_diff,
    "median_diff": _median_diff,
    "relative_lift": _relative_lift,
}

# Resample at most this many values per chunk (a, b together), to bound memory (~32 MB).
_CHUNK_VALUES = 4_000_000


def bootstrap_ci(a: Any, b: Any, statistic: str | Statistic = "mean_diff",
                 n_resamples: int = 2000, rng: np.random.Generator | None = None,
                 alpha: float = 0.05, method: str = "percentile") -> BootstrapResult:
    r"""Bootstrap confidence interval for any two-sample statistic.

    Each replicate resamples ``a`` and ``b`` independently with replacement (sizes kept),
    as in an A/B test where the arms are independent samples.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Control and treatment observations.
    statistic : {"mean_diff", "median_diff", "relative_lift"} or callable
        A callable ``statistic(a, b)`` must reduce the **last** axis: given arrays of
        shape ``(r, n_a)`` and ``(r, n_b)`` it returns shape ``(r,)`` (numpy reductions with
        ``axis=-1`` do this), so all replicates of a chunk are computed in one call.
        ``mean_diff`` is ``mean(b) - mean(a)``; ``relative_lift`` is ``mean(b)/mean(a) - 1``.
    n_resamples : int >= 10
    rng : numpy.random.Generator
        Required: the source of the resampling indices.
    alpha : float in (0, 1)
    method : {"percentile", "basic"}
        ``percentile``: :math:`[q_{\alpha/2}, q_{1-\alpha/2}]` of the replicates;
        ``basic``: :math:`[2\hat\theta - q_{1-\alpha/2}, 2\hat\theta - q_{\alpha/2}]`.

    Returns
    -------
    BootstrapResult
    """
    alpha = check_alpha(alpha)
    method = check_choice(method, "method", ("percentile", "basic"))
    if not isinstance(rng, np.random.Generator):
        raise StatsInputError(f"rng: expected a numpy.random.Generator, got {_short(rng)}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 10:
        raise StatsInputError(f"n_resamples: expected an integer >= 10, got {_short(n_resamples)}")
    if isinstance(statistic, str):
        fn = BUILTIN_STATISTICS.get(statistic)
        if fn is None:
            raise StatsInputError(
                f"statistic: expected one of {sorted(BUILTIN_STATISTICS)} or a callable, got "
                f"{statistic!r}"
            )
    elif callable(statistic):
        fn = statistic
    else:
        raise StatsInputError(f"statistic: expected a name or a callable, got {_short(statistic)}")
    xa = sample(a, "a")
    xb = sample(b, "b")
    effect = float(np.asarray(fn(xa[None, :], xb[None, :])).reshape(-1)[0])
    chunk = max(1, _CHUNK_VALUES // (xa.size + xb.size))
    reps = np.empty(int(n_resamples))
    for start in range(0, int(n_resamples), chunk):
        r = min(chunk, int(n_resamples) - start)
        ia = rng.integers(0, xa.size, size=(r, xa.size))
        ib = rng.integers(0, xb.size, size=(r, xb.size))
        out = np.asarray(fn(xa[ia], xb[ib]), dtype=np.float64)
        if out.shape != (r,):
            raise StatsInputError(
                f"statistic: expected the callable to reduce the last axis and return shape "
                f"({r},), got {out.shape}"
            )
        reps[start:start + r] = out
    q_lo, q_hi = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    if method == "basic":
        q_lo, q_hi = 2 * effect - q_hi, 2 * effect - q_lo
    return BootstrapResult(effect=effect, ci_low=float(q_lo), ci_high=float(q_hi),
                           standard_error=float(reps.std(ddof=1)), distribution=reps,
                           alpha=alpha, method=method)
