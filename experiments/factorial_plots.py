"""Plots of a factorial test (:class:`experiments.stats.factorial.FactorialAnalysis`).

* :func:`interaction_plot` -- the fitted mean of each level of one factor across the
  levels of another (averaged over the rest), with intervals; non-parallel lines are an
  interaction. True means are drawn dashed when known.
* :func:`effects_plot` -- every main effect and two-way interaction with its interval,
  significant ones (after the correction) filled, the truth marked.

Both return a matplotlib Figure (Agg backend, no display needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments._pyplot import pyplot
from experiments.stats.factorial import FactorialAnalysis
from policies.errors import StatsInputError

__all__ = ["effects_plot", "interaction_plot"]

_DPI = 110


def _factor_levels(analysis: FactorialAnalysis, name: str) -> list[str]:
    cols = [c for c in analysis.cells.columns
            if c not in ("units", "observed", "fitted", "ci_low", "ci_high", "truth")]
    if name not in cols:
        raise StatsInputError(f"factor {name!r}: expected one of {cols}")
    return list(dict.fromkeys(analysis.cells.sort_index()[name].tolist()))


def interaction_plot(analysis: FactorialAnalysis, factor: str, across: str) -> Any:
    """Fitted mean per level of ``factor`` (one line each) across the levels of
    ``across``, averaged uniformly over the other factors' cells; bars: the mean of the
    cells' interval half-widths (a guide, not a joint interval)."""
    lines, xs = _factor_levels(analysis, factor), _factor_levels(analysis, across)
    if factor == across:
        raise StatsInputError("interaction_plot: factor and across must differ")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=_DPI)
    cells = analysis.cells
    pos = np.arange(len(xs))
    for k, level in enumerate(lines):
        sel = cells[cells[factor] == level]
        g = sel.groupby(across, sort=False)
        mean = g["fitted"].mean().reindex(xs)
        half = ((g["ci_high"].mean() - g["ci_low"].mean()) / 2).reindex(xs)
        color = f"C{k}"
        ax.errorbar(pos, mean, yerr=half, marker="o", capsize=3, color=color,
                    label=f"{factor} = {level}")
        if "truth" in cells.columns:
            ax.plot(pos, g["truth"].mean().reindex(xs), ls="--", color=color, alpha=0.7)
    ax.set_xticks(pos, xs)
    ax.set_xlabel(across)
    ax.set_ylabel(f"mean outcome ({analysis.model} fit)")
    title = f"{factor} x {across}"
    if "truth" in cells.columns:
        title += " (dashed: truth)"
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def effects_plot(analysis: FactorialAnalysis) -> Any:
    """Each contrast's estimate and 1 - alpha interval (filled: significant after the
    correction), the truth (or, for a fraction, the truth with aliases) as a red x."""
    e = analysis.effects
    if not len(e):
        raise StatsInputError("effects_plot: the analysis has no contrasts")
    plt = pyplot()
    labels = [f"{a} ({lv})" if a != lv else a for a, lv in zip(e["effect"], e["level"],
                                                               strict=True)]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(e) + 1.4), dpi=_DPI)
    y = np.arange(len(e))[::-1]
    ax.hlines(y, e["ci_low"], e["ci_high"], color="0.3")
    sig = e["significant"].to_numpy(bool)
    ax.scatter(e["estimate"][sig], y[sig], color="C0", zorder=3, label="significant")
    ax.scatter(e["estimate"][~sig], y[~sig], facecolor="white", edgecolor="C0", zorder=3,
               label="not significant")
    truth = "truth_with_aliases" if "truth_with_aliases" in e.columns else None
    if truth is not None:
        aliased = bool((e["aliased_with"] != "").any())
        ax.scatter(e[truth], y, marker="x", color="C3", zorder=4,
                   label="truth with aliases" if aliased else "truth")
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"effect on the mean outcome\n({round(100 * (1 - analysis.alpha))} % "
                  f"interval; {analysis.correction} over {len(e)} contrasts)")
    ax.legend(frameon=False, fontsize=8, loc="best")
    fig.tight_layout()
    return fig
