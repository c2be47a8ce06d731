"""Main effects and two-way interactions of a factorial test (docs/multivariate.md).

:func:`analyze_factorial` fits a regression of a per-unit outcome (an order, a click: 0/1;
or any number, such as revenue) on the levels of the factors of a
:class:`experiments.factorial.Design`, with statsmodels: a linear model with
heteroskedasticity-robust (HC1) standard errors, or a logistic model (GLM, binomial).
A full factorial is fitted with every interaction (the cell means: nothing assumed);
a fraction with the main effects and the two-way interactions it can estimate, each
standing for its alias class. Effects are contrasts of the fitted cell means, on the
outcome's scale, averaged uniformly over the cells of the full factorial:

* main effect of level ``l`` of factor ``f``: mean over the cells with ``f = l`` minus
  mean over those with ``f`` at its reference level;
* interaction of levels ``(l, m)`` of factors ``(f, g)``: the difference of differences
  ``mu(l, m) - mu(ref, m) - mu(l, ref) + mu(ref, ref)``, averaged over the other factors
  (how much more ``l`` helps when ``g = m`` than when ``g`` is at its reference).

Intervals are Wald intervals (the logistic model's by the delta method); p-values are
adjusted over all main-effect and interaction contrasts together
(:func:`experiments.stats.adjust_pvalues`). Given the true cell means (a simulator's),
each contrast's true value is reported beside it, and for a fraction also the true value
of what the estimate estimates (the effect plus its aliases).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from experiments.factorial import Design, full_factorial
from experiments.stats._validate import check_alpha, check_choice
from experiments.stats.frequentist import ADJUST_METHODS, adjust_pvalues
from policies.errors import StatsInputError

__all__ = ["FACTORIAL_MODELS", "FactorialAnalysis", "analyze_factorial"]

#: Regression models of :func:`analyze_factorial`.
FACTORIAL_MODELS: tuple[str, ...] = ("linear", "logistic")


@dataclass(frozen=True, eq=False)
class FactorialAnalysis:
    """Result of :func:`analyze_factorial`.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per contrast: ``effect`` (``subject`` or ``subject:content``), ``kind``
        (``main`` / ``interaction``), ``level`` (``urgency`` or ``urgency:discount``),
        ``aliased_with`` (a fraction's aliases up to two-way, by name), ``estimate``,
        ``standard_error``, ``ci_low``, ``ci_high`` (1 - alpha, unadjusted),
        ``p_value``, ``p_adjusted``, ``significant`` (``p_adjusted <= alpha``), and with
        the truth ``truth`` and ``truth_with_aliases``.
    cells : pandas.DataFrame
        One row per cell of the full factorial: the levels, ``units`` and ``observed``
        mean (NaN for cells outside a fraction), ``fitted`` with ``ci_low``/``ci_high``,
        and ``truth`` when given; sorted best fitted first.
    best : dict
        The cell with the highest fitted mean: ``levels`` (dict), ``fitted``, ``ci_low``,
        ``ci_high``; with the truth also its ``truth``, the ``true_best`` levels and
        ``true_best_value``.
    model, correction : str
    alpha : float
    units : int
    """

    effects: pd.DataFrame
    cells: pd.DataFrame
    best: dict[str, Any]
    model: str
    correction: str
    alpha: float
    units: int


def _dummies(design: Design, cells: np.ndarray,
             terms: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded columns of ``terms`` (an intercept first) for ``cells``."""
    cols = [np.ones(len(cells))]
    names = ["intercept"]
    for members in terms:
        for levels in itertools.product(*(range(1, len(design.factors[i].levels))
                                          for i in members)):
            col = np.ones(len(cells))
            for i, lv in zip(members, levels, strict=True):
                col = col * (cells[:, i] == lv)
            cols.append(col)
            names.append(":".join(f"{design.factors[i].name}={design.factors[i].levels[lv]}"
                                  for i, lv in zip(members, levels, strict=True)))
    return np.column_stack(cols), names


def _contrasts(design: Design, grid: np.ndarray, effects: Sequence[tuple[int, ...]]
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Weights over the full-factorial cells ``grid`` of each main-effect and interaction
    contrast of ``effects`` (rows), and their labels."""
    n = len(grid)
    rows, labels = [], []
    for members in effects:
        for levels in itertools.product(*(range(1, len(design.factors[i].levels))
                                          for i in members)):
            w = np.zeros(n)
            for signs in itertools.product((0, 1), repeat=len(members)):
                # signs[k] = 1: factor members[k] at the level, 0: at its reference
                sel = np.ones(n, bool)
                for i, lv, s in zip(members, levels, signs, strict=True):
                    sel &= grid[:, i] == (lv if s else 0)
                sign = (-1) ** (len(members) - sum(signs))
                w[sel] += sign / sel.sum()
            rows.append(w)
            labels.append({
                "effect": ":".join(design.factors[i].name for i in members),
                "kind": "main" if len(members) == 1 else "interaction",
                "level": ":".join(design.factors[i].levels[lv]
                                  for i, lv in zip(members, levels, strict=True)),
                "members": members})
    return np.array(rows).reshape(len(rows), n), labels


def _cell_codes(data: pd.DataFrame, design: Design) -> np.ndarray:
    """Level indices of every unit (n, k); clear errors for missing or unknown levels."""
    missing = [f.name for f in design.factors if f.name not in data.columns]
    if missing:
        raise StatsInputError(f"data: missing factor column(s) {missing}; got columns "
                              f"{list(map(str, data.columns))}")
    codes = np.empty((len(data), len(design.factors)), np.int64)
    for i, f in enumerate(design.factors):
        col = data[f.name].astype(object)
        lut = {v: k for k, v in enumerate(f.levels)}
        idx = col.map(lut)
        bad = idx.isna()
        if bad.any():
            odd = sorted({repr(v) for v in col[bad].tolist()})[:5]
            raise StatsInputError(f"data[{f.name!r}]: {int(bad.sum())} value(s) not among the "
                                  f"levels {list(f.levels)}: {', '.join(odd)}")
        codes[:, i] = idx.to_numpy(np.int64)
    return codes


def _cell_index(codes: np.ndarray, design: Design) -> np.ndarray:
    """Index of each row of level ``codes`` among the full factorial's cells (standard
    order: the first factor varies slowest)."""
    sizes = [len(f.levels) for f in design.factors]
    radix = np.array([int(np.prod(sizes[i + 1:])) for i in range(len(sizes))], np.int64)
    return codes @ radix


def _truth_means(truth: Any, design: Design, grid: np.ndarray) -> np.ndarray:
    """The true mean of every full-factorial cell from a frame with the factor columns
    and ``truth``."""
    if not isinstance(truth, pd.DataFrame) or "truth" not in truth.columns:
        raise StatsInputError("truth: expected a DataFrame with the factor columns and a "
                              f"'truth' column, got {type(truth).__name__}")
    codes = _cell_codes(truth, design)
    values = pd.to_numeric(truth["truth"], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise StatsInputError("truth['truth']: expected finite numbers")
    key = _cell_index(codes, design)
    out = np.full(len(grid), np.nan)
    if len(np.unique(key)) != len(key):
        raise StatsInputError("truth: a cell is listed twice")
    out[key] = values
    if np.isnan(out).any():
        raise StatsInputError(f"truth: {int(np.isnan(out).sum())} of the {len(grid)} cells "
                              "of the full factorial have no true value")
    return out


def _alias_truth(design: Design, grid: np.ndarray, mu: np.ndarray, members: tuple[int, ...],
                 level_contrast: np.ndarray) -> float:
    """For a two-level fraction: the true value of what the estimate of the effect
    ``members`` estimates, its own true contrast plus its aliases' (each alias's -1/+1
    coefficient, scaled as the effect's contrast is)."""
    x = 2.0 * grid - 1.0
    own = float(level_contrast @ mu)
    scale = 2.0 ** len(members)  # contrast = 2**order * coefficient in -1/+1 coding
    extra = 0.0
    for alias in design.aliases(members):
        extra += scale * float(np.mean(mu * np.prod(x[:, list(alias)], axis=1)))
    return own + extra


def analyze_factorial(data: pd.DataFrame, design: Design, outcome: str, *,
                      alpha: float = 0.05, correction: str = "holm", model: str = "linear",
                      truth: pd.DataFrame | None = None) -> FactorialAnalysis:
    """Main effects and two-way interactions of a factorial test, with the best cell.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit: a column per factor holding level names, and ``outcome``.
    design : Design
        What was tested; every unit's cell must be one of its cells.
    outcome : str
        The outcome column: finite numbers (0/1 for ``model="logistic"``).
    alpha : float
        Interval level 1 - alpha; a contrast is ``significant`` when its adjusted
        p-value is at most alpha.
    correction : {"holm", "bh", "bonferroni"}
        Multiple-testing correction over all contrasts.
    model : {"linear", "logistic"}
    truth : pandas.DataFrame, optional
        True mean outcome of every cell of the full factorial (factor columns and
        ``truth``), e.g. a simulator's.

    Raises
    ------
    StatsInputError
        Missing columns, unknown levels, non-finite outcomes (or not 0/1 for the
        logistic model), units outside the design, a design cell without units, fewer
        units than the model has parameters, or an incomplete truth.
    """
    import statsmodels.api as sm

    alpha = check_alpha(alpha)
    correction = check_choice(correction, "correction", ADJUST_METHODS)
    model = check_choice(model, "model", FACTORIAL_MODELS)
    if not isinstance(design, Design):
        raise StatsInputError(f"design: expected a Design, got {type(design).__name__}")
    if not isinstance(data, pd.DataFrame):
        raise StatsInputError(f"data: expected a DataFrame, got {type(data).__name__}")
    if outcome not in data.columns:
        raise StatsInputError(f"data: no outcome column {outcome!r}")
    y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(y).all():
        raise StatsInputError(f"data[{outcome!r}]: {int((~np.isfinite(y)).sum())} value(s) are "
                              "not finite numbers")
    if model == "logistic" and not np.isin(y, (0.0, 1.0)).all():
        raise StatsInputError(f"data[{outcome!r}]: the logistic model needs 0/1 outcomes")
    codes = _cell_codes(data, design)
    full = full_factorial(list(design.factors))
    grid = full.cells
    unit_key, cell_key = _cell_index(codes, design), _cell_index(design.cells, design)
    outside = ~np.isin(unit_key, cell_key)
    if outside.any():
        raise StatsInputError(f"data: {int(outside.sum())} unit(s) in cells outside the design")
    units = np.bincount(unit_key, minlength=len(grid))
    empty = [i for i in cell_key.tolist() if units[i] == 0]
    if empty:
        names = design.names
        first = ", ".join(f"{n}={design.factors[k].levels[grid[empty[0], k]]}"
                          for k, n in enumerate(names))
        raise StatsInputError(f"data: {len(empty)} cell(s) of the design have no units "
                              f"(first: {first})")
    k = len(design.factors)
    if design.is_full:
        terms = [m for r in range(1, k + 1) for m in itertools.combinations(range(k), r)]
        effects = [m for m in terms if len(m) <= 2]
        aliases: dict[tuple[int, ...], list[tuple[int, ...]]] = {m: [] for m in effects}
    else:
        est = design.estimable(2)
        terms = [m for m, _ in est]
        effects = terms
        aliases = {m: a for m, a in est}
    X, _ = _dummies(design, codes, terms)
    if len(y) <= X.shape[1]:
        raise StatsInputError(f"data: {len(y)} units for a model of {X.shape[1]} parameters")
    Xg, _ = _dummies(design, grid, terms)
    if model == "linear":
        fit = sm.OLS(y, X).fit(cov_type="HC1")
        beta, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
        fitted = Xg @ beta
        jac = Xg  # d fitted / d beta
    else:
        fit = sm.GLM(y, X, family=sm.families.Binomial()).fit()
        beta, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
        eta = Xg @ beta
        fitted = 1.0 / (1.0 + np.exp(-eta))
        jac = Xg * (fitted * (1.0 - fitted))[:, None]
    W, labels = _contrasts(design, grid, effects)
    est = W @ fitted
    G = W @ jac
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", G, cov, G), 0.0))
    z = _st.norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2.0 * _st.norm.sf(np.abs(est / se)), np.where(est == 0, 1.0, 0.0))
    p_adj = adjust_pvalues(p, correction) if len(p) else p
    table = pd.DataFrame({
        "effect": [lb["effect"] for lb in labels],
        "kind": [lb["kind"] for lb in labels],
        "level": [lb["level"] for lb in labels],
        "aliased_with": [", ".join(":".join(design.factors[i].name for i in a)
                                   for a in aliases[lb["members"]]) for lb in labels],
        "estimate": est, "standard_error": se, "ci_low": est - z * se, "ci_high": est + z * se,
        "p_value": p, "p_adjusted": p_adj, "significant": p_adj <= alpha})
    cell_se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", jac, cov, jac), 0.0))
    sums = np.bincount(unit_key, weights=y, minlength=len(grid))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(units > 0, sums / np.maximum(units, 1), np.nan)
    cells = full.frame()
    cells["units"] = units
    cells["observed"] = observed
    cells["fitted"] = fitted
    cells["ci_low"] = fitted - z * cell_se
    cells["ci_high"] = fitted + z * cell_se
    if truth is not None:
        mu = _truth_means(truth, design, grid)
        cells["truth"] = mu
        table["truth"] = W @ mu
        if design.is_full:
            table["truth_with_aliases"] = table["truth"]
        else:
            table["truth_with_aliases"] = [
                _alias_truth(design, grid, mu, lb["members"], W[i])
                for i, lb in enumerate(labels)]
    b = int(np.argmax(fitted))
    best: dict[str, Any] = {"levels": {f.name: f.levels[grid[b, i]]
                                       for i, f in enumerate(design.factors)},
                            "fitted": float(fitted[b]), "ci_low": float(cells["ci_low"].iat[b]),
                            "ci_high": float(cells["ci_high"].iat[b])}
    if truth is not None:
        tb = int(np.argmax(cells["truth"].to_numpy()))
        best["truth"] = float(cells["truth"].iat[b])
        best["true_best"] = {f.name: f.levels[grid[tb, i]] for i, f in enumerate(design.factors)}
        best["true_best_value"] = float(cells["truth"].iat[tb])
    cells = cells.sort_values("fitted", ascending=False, kind="stable")
    return FactorialAnalysis(effects=table, cells=cells, best=best, model=model,
                             correction=correction, alpha=alpha, units=len(y))
