"""How well a score ranks subscribers by uplift, read from a randomized send/holdout sample.

Rows are sorted by score, highest first. For the top ``k`` rows let ``N_T``, ``N_C`` be
the numbers sent and held out and ``Y_T``, ``Y_C`` the sums of their outcomes.

* :func:`qini_curve` -- Radcliffe's **Qini curve** ``Q(k) = Y_T - Y_C N_T / N_C``: the
  incremental outcome of sending to the top ``k`` (the held-out rows' outcome scaled to
  the sent count), and the **uplift curve** ``U(k) = (Y_T / N_T - Y_C / N_C) k``. A term
  whose denominator is 0 counts 0 (as scikit-uplift does). Tied scores are one step: the
  curve has a point only where the score changes (and at ``k = 0``), so the order of
  tied rows does not matter.
* :func:`qini_area` -- the area between the Qini curve and the **random line** (the
  straight line from ``(0, 0)`` to ``(N, Q(N))``, what targeting at random earns),
  over the share targeted, per subscriber of the sample: in the outcome's unit per
  subscriber, 0 for a score no better than random. (No "perfect" curve exists for a
  non-binary outcome, so the area is not divided by one; compare areas on one sample.)
* :func:`uplift_by_decile` -- sent minus held-out mean outcome in each tenth of the
  ranking (by rank, top first; ties are split by row order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from policies.checks import check_int, check_vector, fail
from policies.errors import TriggerLabValueError

__all__ = ["qini_area", "qini_curve", "uplift_by_decile"]

_E = TriggerLabValueError
#: Columns of :func:`qini_curve`.
CURVE_COLUMNS = ("n", "share", "n_treated", "n_control", "outcome_treated",
                 "outcome_control", "qini", "uplift")


def _inputs(score: Any, treated: Any, outcome: Any) -> tuple[np.ndarray, ...]:
    s = check_vector("score", score, "number", error=_E)
    if not len(s):
        raise fail(_E, "score", "expected at least one row, got none")
    t = check_vector("treated", treated, "bool", error=_E, n=len(s), per="score")
    y = check_vector("outcome", outcome, "number", error=_E, n=len(s), per="score")
    return s, t, y


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)


def qini_curve(score: Any, treated: Any, outcome: Any) -> pd.DataFrame:
    """The Qini and uplift curves of ``score`` on a randomized sample.

    Parameters
    ----------
    score : array of float, shape (n,)
        Higher means target first (e.g. :meth:`UpliftModel.score`).
    treated : array of bool, shape (n,)
        Sent (True) or held out.
    outcome : array of float, shape (n,)

    Returns
    -------
    DataFrame
        One row per point (``k = 0`` first, then the end of each run of equal scores):
        ``n`` (rows targeted), ``share`` (n / N), ``n_treated``, ``n_control``,
        ``outcome_treated``, ``outcome_control`` (sums), ``qini`` and ``uplift``
        (outcome units, totals over the targeted rows).
    """
    s, t, y = _inputs(score, treated, outcome)
    order = np.argsort(-s, kind="stable")
    s, t, y = s[order], t[order], y[order]
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    nt = np.cumsum(t)[ends].astype(np.float64)
    nc = np.cumsum(~t)[ends].astype(np.float64)
    yt = np.cumsum(np.where(t, y, 0.0))[ends]
    yc = np.cumsum(np.where(t, 0.0, y))[ends]
    k = (ends + 1).astype(np.float64)
    qini = yt - _ratio(yc * nt, nc)
    uplift = (_ratio(yt, nt) - _ratio(yc, nc)) * k
    cols = [k, k / len(s), nt, nc, yt, yc, qini, uplift]
    out = pd.DataFrame({c: np.concatenate([[0.0], v]) for c, v in zip(CURVE_COLUMNS, cols,
                                                                       strict=True)})
    return out.astype({"n": np.int64, "n_treated": np.int64, "n_control": np.int64})


def qini_area(curve: pd.DataFrame) -> float:
    """Area between a :func:`qini_curve` and its random line, per subscriber (outcome
    units per subscriber; positive: better than random)."""
    if not isinstance(curve, pd.DataFrame) or not set(CURVE_COLUMNS) <= set(curve.columns):
        raise _E("curve: expected a DataFrame from qini_curve")
    x = curve["share"].to_numpy(np.float64)
    n = float(curve["n"].iloc[-1])
    if len(x) < 2 or n <= 0:
        raise _E("curve: expected at least one row targeted")
    q = curve["qini"].to_numpy(np.float64) / n
    gap = q - x * q[-1]
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(x)) / 2.0)


def uplift_by_decile(score: Any, treated: Any, outcome: Any, *, bins: int = 10,
                     truth: Any = None) -> pd.DataFrame:
    """Observed uplift in each of ``bins`` equal parts of the ranking (top first).

    Returns a frame indexed by ``bin`` (0 = highest scores): ``n``, ``n_treated``,
    ``n_control``, ``mean_treated``, ``mean_control`` (NaN for an empty group),
    ``uplift`` (their difference), ``score`` (mean), and ``truth`` (mean of ``truth``,
    e.g. the true incremental outcome of each row) when it is given.
    """
    s, t, y = _inputs(score, treated, outcome)
    bins = check_int("bins", bins, error=_E, low=1, high=len(s))
    rank = np.empty(len(s), np.int64)
    rank[np.argsort(-s, kind="stable")] = np.arange(len(s))
    b = rank * bins // len(s)
    df = pd.DataFrame({"bin": b, "t": t, "y": y, "score": s})
    if truth is not None:
        df["truth"] = check_vector("truth", truth, "number", error=_E, n=len(s),
                                   per="score")
    g = df.groupby("bin")
    out = pd.DataFrame({
        "n": g.size(),
        "n_treated": g["t"].sum().astype(np.int64),
        "n_control": (~df["t"]).groupby(df["bin"]).sum().astype(np.int64),
        "mean_treated": df["y"].where(df["t"]).groupby(df["bin"]).mean(),
        "mean_control": df["y"].where(~df["t"]).groupby(df["bin"]).mean(),
        "score": g["score"].mean(),
    })
    out.insert(5, "uplift", out["mean_treated"] - out["mean_control"])
    if truth is not None:
        out["truth"] = g["truth"].mean()
    return out
