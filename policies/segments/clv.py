"""Customer lifetime value: BG/NBD for repeat purchases, Gamma-Gamma for spend.

Maximum likelihood with scipy (no BTYD library: ``lifetimes`` is unmaintained, ``btyd``
an unmaintained beta fork of it, ``pymc-marketing`` brings PyMC; the two likelihoods are
a few lines each).

* **BG/NBD** (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while
  alive a customer buys as a Poisson process of rate ``lambda ~ Gamma(r, alpha)``; after
  each purchase they drop out with probability ``p ~ Beta(a, b)``. Data per customer:
  ``x`` repeat purchases, ``t_x`` the time of the last one and ``T`` the age, both from
  the first purchase, in one time unit (e.g. weeks).
* **Gamma-Gamma** (Fader and Hardie 2013, "The Gamma-Gamma model of monetary value"):
  a customer's spends are Gamma(p, nu) with ``nu ~ Gamma(q, gamma)``, independent of the
  transaction process; fitted on customers with ``x > 0`` from their mean spend ``m_x``.

:func:`rfm_summary` builds ``(x, t_x, T, m_x)`` from an event log up to ``now`` (purchases
on one UTC day count as one, like the published CDNOW summaries); :func:`clv` combines the
two models into a discounted value over a horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, hyp1f1, hyp2f1

from policies.checks import check_number
from policies.errors import TriggerLabValueError
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch

__all__ = ["BetaGeo", "GammaGamma", "clv", "fit_beta_geo", "fit_gamma_gamma",
           "rfm_summary"]

DAY_S = 86_400


@dataclass(frozen=True)
class BetaGeo:
    """Fitted BG/NBD parameters (``r``, ``alpha`` in time units, ``a``, ``b``) and the
    maximized log-likelihood."""

    r: float
    alpha: float
    a: float
    b: float
    loglik: float = float("nan")

    def loglik_each(self, x: Any, t_x: Any, T: Any) -> np.ndarray:
        """Log-likelihood of every customer (FHL 2005, eq. 6)."""
        return _bg_loglik(np.array([self.r, self.alpha, self.a, self.b]), *_xtt(x, t_x, T))

    def _odds_dead(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """``delta(x>0) a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            d = self.a / (self.b + x - 1) * ((self.alpha + T) / (self.alpha + t_x)) ** (
                self.r + x)
        return np.where(x > 0, d, 0.0)

    def p_alive(self, x: Any, t_x: Any, T: Any) -> np.ndarray:
        """Probability that each customer is still alive at ``T``."""
        x, t_x, T = _xtt(x, t_x, T)
        return 1.0 / (1.0 + self._odds_dead(x, t_x, T))

    def expected_purchases(self, t: float, x: Any, t_x: Any, T: Any) -> np.ndarray:
        """Expected purchases in ``(T, T + t]`` given the history (FHL 2005, eq. 10)."""
        x, t_x, T = _xtt(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        with np.errstate(over="ignore", invalid="ignore"):
            f = hyp2f1(r + x, b + x, a + b + x - 1, z)
        # near the Poisson limit (r, alpha huge at a fixed rate) the Gauss function
        # overflows: use its confluent limit 2F1(A, B; C; z) -> 1F1(B; C; A z) as A -> inf
        limit = ~np.isfinite(f)
        if limit.any():
            f = np.where(limit, hyp1f1(b + x, a + b + x - 1, (r + x) * z), f)
        tail = 1.0 - np.exp((r + x) * np.log1p(-z)) * f
        return head * tail / (1.0 + self._odds_dead(x, t_x, T))


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters (``p``, ``q``, ``gamma`` in currency) and the
    maximized log-likelihood."""

    p: float
    q: float
    gamma: float
    loglik: float = float("nan")

    def expected_spend(self, x: Any, m_x: Any) -> np.ndarray:
        """Expected mean spend per purchase given ``x`` purchases of mean ``m_x``
        (the population mean ``p gamma / (q - 1)`` where ``x == 0``)."""
        x = np.asarray(x, np.float64)
        m = np.nan_to_num(np.asarray(m_x, np.float64))
        return self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)


def _xtt(x: Any, t_x: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(v, np.float64) for v in (x, t_x, T)]
    xa, ta, Ta = np.broadcast_arrays(*arrays)
    bad = ~(np.isfinite(xa) & np.isfinite(ta) & np.isfinite(Ta) & (xa >= 0) & (ta >= 0)
            & (ta <= Ta))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise TriggerLabValueError(
            f"x, t_x, T: expected x >= 0 and 0 <= t_x <= T, got x={xa.ravel()[i]}, "
            f"t_x={ta.ravel()[i]}, T={Ta.ravel()[i]} (customer {i})")
    return xa, ta, Ta


def _bg_loglik(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
               ) -> np.ndarray:
    r, alpha, a, b = theta
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a3 = (betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - betaln(a, b)
              - (r + x) * np.log(alpha + t_x))
    return a1 + np.where(x > 0, np.logaddexp(a2, a3), a2)


def _fit(neg: Any, k: int) -> tuple[np.ndarray, float]:
    # imported here: scipy.optimize takes ~0.2 s to import, and every shard process
    # imports this package (policies.segments.dynamic) without fitting a model
    from scipy.optimize import minimize

    best = None
    for start in (np.zeros(k), np.full(k, 0.5), np.full(k, -0.5)):
        res = minimize(neg, start, method="Nelder-Mead",
                       options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000,
                                "maxfev": 40_000})
        res = minimize(neg, res.x, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return np.exp(best.x), -float(best.fun)


def fit_beta_geo(x: Any, t_x: Any, T: Any, *, penalizer: float = 0.0) -> BetaGeo:
    """Maximum-likelihood BG/NBD fit (parameters on the log scale; several starts).

    ``penalizer`` adds ``penalizer * sum(params**2)`` to the negative log-likelihood
    (0: plain maximum likelihood, as published).
    """
    xa, ta, Ta = _xtt(x, t_x, T)
    if xa.size == 0:
        raise TriggerLabValueError("x: expected at least one customer, got none")
    pen = check_number("penalizer", penalizer, error=TriggerLabValueError, low=0)
    scale = xa.size

    def neg(log_theta: np.ndarray) -> float:
        theta = np.exp(log_theta)
        value = -float(np.sum(_bg_loglik(theta, xa, ta, Ta))) / scale
        return value + pen * float(np.sum(theta**2))

    theta, ll = _fit(neg, 4)
    r, alpha, a, b = map(float, theta)
    return BetaGeo(r, alpha, a, b, loglik=ll * scale)


def fit_gamma_gamma(x: Any, m_x: Any, *, penalizer: float = 0.0) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma fit on the customers with ``x > 0`` (mean spend
    ``m_x > 0`` each; others are ignored)."""
    xa = np.asarray(x, np.float64)
    ma = np.asarray(m_x, np.float64)
    if xa.shape != ma.shape:
        raise TriggerLabValueError(f"m_x: expected the shape of x {xa.shape}, got {ma.shape}")
    keep = xa > 0
    xa, ma = xa[keep], ma[keep]
    if xa.size == 0:
        raise TriggerLabValueError("x: expected customers with repeat purchases, got none")
    if not bool(np.all(np.isfinite(ma) & (ma > 0))):
        raise TriggerLabValueError("m_x: expected a mean spend > 0 for every customer with "
                                   "x > 0")
    pen = check_number("penalizer", penalizer, error=TriggerLabValueError, low=0)

    def neg(log_theta: np.ndarray) -> float:
        p, q, g = np.exp(log_theta)
        ll = (gammaln(p * xa + q) - gammaln(p * xa) - gammaln(q) + q * np.log(g)
              + (p * xa - 1) * np.log(ma) + p * xa * np.log(xa)
              - (p * xa + q) * np.log(g + ma * xa))
        return -float(np.mean(ll)) + pen * float(np.sum(np.exp(log_theta) ** 2))

    theta, ll = _fit(neg, 3)
    p, q, g = map(float, theta)
    return GammaGamma(p, q, g, loglik=ll * xa.size)


def rfm_summary(events: EventBatch, now: int, *, time_unit_days: float = 7.0
                ) -> pd.DataFrame:
    """Per purchaser up to ``now``: ``x`` (repeat purchase days), ``t_x`` and ``T`` (time
    units from the first purchase day to the last one and to ``now``) and ``m_x`` (mean
    revenue of the repeat purchase days; 0 if none).

    Purchases on the same UTC day are one transaction whose value is their summed
    ``revenue`` (missing revenue counts 0). Index ``subscriber``.
    """
    if not isinstance(events, EventBatch):
        raise TriggerLabValueError(f"events: expected an EventBatch, got "
                                   f"{type(events).__name__}")
    unit = check_number("time_unit_days", time_unit_days, error=TriggerLabValueError, low=0,
                        low_open=True) * DAY_S
    sel = (events.type == EVENT_TYPES.code("purchase_completed")) & (events.time <= now)
    df = pd.DataFrame({"subscriber": events.subscriber[sel],
                       "day": events.time[sel] // DAY_S,
                       "revenue": np.nan_to_num(events.column("revenue")[sel])})
    daily = df.groupby(["subscriber", "day"], sort=True)["revenue"].sum().reset_index()
    g = daily.groupby("subscriber", sort=True)
    first = g["day"].min()
    n_days = g["day"].size()
    total = g["revenue"].sum()
    first_rev = daily.loc[g["day"].idxmin(), ["subscriber", "revenue"]].set_index(
        "subscriber")["revenue"]
    x = (n_days - 1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_x = np.where(x > 0, (total - first_rev) / x.where(x > 0, 1), 0.0)
    return pd.DataFrame({
        "x": x,
        "t_x": (g["day"].max() - first) * DAY_S / unit,
        "T": (now - first * DAY_S) / unit,
        "m_x": m_x,
    }, index=pd.Index(first.index.to_numpy(np.int64), name="subscriber"))


def clv(beta_geo: BetaGeo, gamma_gamma: GammaGamma, summary: pd.DataFrame, *,
        periods: int = 12, period_units: float = 30 / 7, discount: float = 0.01
        ) -> pd.Series:
    """Discounted expected revenue over ``periods`` periods of ``period_units`` time
    units each (default: 12 months of 30 days in weeks), ``discount`` per period.

    ``sum_i (E[purchases by i] - E[purchases by i-1]) E[spend] / (1 + discount)^i``
    per customer of ``summary`` (columns ``x``, ``t_x``, ``T``, ``m_x``), as a Series
    named ``clv`` (currency).
    """
    x, t_x, T = summary["x"], summary["t_x"], summary["T"]
    spend = gamma_gamma.expected_spend(x, summary["m_x"])
    value = np.zeros(len(summary))
    prev = np.zeros(len(summary))
    for i in range(1, periods + 1):
        cum = beta_geo.expected_purchases(i * period_units, x, t_x, T)
        value += (cum - prev) * spend / (1.0 + discount) ** i
        prev = cum
    return pd.Series(value, index=summary.index, name="clv")
