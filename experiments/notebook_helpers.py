"""Small plotting and table helpers for the notebooks in ``notebooks/``.

They complement :mod:`experiments.plots` (the run-folder plots) with the views an
analysis notebook needs: cumulative regret with its spread over replications,
estimates with confidence intervals next to the simulator's truth, per-segment
tables from a decision log, and load-test runs side by side. Every plotting function
returns a matplotlib Figure (Agg backend, like :mod:`experiments.plots`); display it
with ``IPython.display.display(fig)``. :func:`cumulative_regret` is
:func:`experiments.regret.cumulative_regret` and :func:`segment_summary`
:func:`experiments.tables.segment_summary`, both re-exported.

>>> import pandas as pd
>>> t = pd.DataFrame({"arm": ["a", "b"], "est": [1.0, 2.0], "lo": [0.5, 1.5],
...                   "hi": [1.5, 2.5]})
>>> fig = plot_intervals(t, estimate="est", low="lo", high="hi", xlabel="value")
>>> len(fig.axes)
1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from experiments._pyplot import pyplot
from experiments.regret import cumulative_regret
from experiments.tables import segment_summary

__all__ = [
    "cumulative_regret",
    "plot_cumulative_regret",
    "plot_intervals",
    "plot_loadtests",
    "plot_segments",
    "segment_summary",
]

_DPI = 100


def plot_cumulative_regret(res: Any, *, title: str | None = None) -> Any:
    """Cumulative expected regret per arm (mean line, min-max band over replications)."""
    plt = pyplot()
    cr = cumulative_regret(res)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=_DPI)
    for arm, a in cr.groupby("arm", sort=False):
        x = a["day"].to_numpy() + 1
        line, = ax.plot(x, a["mean"], marker="o", ms=3, label=str(arm))
        if res.spec.replications > 1:
            ax.fill_between(x, a["low"], a["high"], color=line.get_color(), alpha=0.15)
    unit = {"click": "clicks", "order": "orders", "revenue": "currency units"}[res.spec.reward]
    ax.set_xlabel("days since the start")
    ax.set_ylabel(f"cumulative regret ({unit} lost)")
    ax.set_title(title or "Expected reward lost against the best variant for each email")
    ax.grid(alpha=0.3)
    ax.legend(title="policy" + (" (band: min-max over replications)"
                                if res.spec.replications > 1 else ""), fontsize=8)
    fig.tight_layout()
    return fig


def plot_intervals(table: pd.DataFrame, *, estimate: str, low: str, high: str,
                   label: str = "arm", truth: str | None = None,
                   truth_label: str = "simulator truth",
                   reference: float | None = None, reference_label: str = "",
                   lines: Mapping[str, float] | None = None, xlabel: str = "",
                   title: str = "", scale: float = 1.0) -> Any:
    """Estimates with confidence intervals as dots and whiskers, one row per ``label``.

    Parameters
    ----------
    table : DataFrame
        One row per item; ``estimate``, ``low``, ``high`` name its columns (NaN bounds:
        the dot is drawn without whiskers).
    truth : str, optional
        Column with the simulator's true value, drawn as a red cross labelled
        ``truth_label``.
    reference : float, optional
        A vertical line (e.g. 0, or the control's value) labelled ``reference_label``.
    lines : mapping, optional
        More vertical lines, ``{label: x}``, drawn dashed.
    scale : float
        Multiply every value (e.g. 100 for percent, 1000 for per 1,000 subscribers).
    """
    plt = pyplot()
    t = table.reset_index(drop=True)
    y = np.arange(len(t))[::-1]
    est = t[estimate].to_numpy(float) * scale
    lo = t[low].to_numpy(float) * scale
    hi = t[high].to_numpy(float) * scale
    fig, ax = plt.subplots(figsize=(9.0, 0.9 + 0.55 * len(t)), dpi=_DPI)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(est[ok], y[ok], xerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="o",
                capsize=4, color="tab:blue", label="estimate, 95% CI")
    if (~ok).any():
        ax.plot(est[~ok], y[~ok], "o", color="tab:blue")
    if truth is not None:
        ax.plot(t[truth].to_numpy(float) * scale, y, "x", color="tab:red", ms=9, mew=2,
                label=truth_label)
    if reference is not None:
        ax.axvline(reference * scale, color="black", lw=0.8, label=reference_label or None)
    styles = iter(["--", ":", "-."])
    for name, x in (lines or {}).items():
        ax.axvline(x * scale, color="gray", ls=next(styles, "--"), lw=1.2, label=name)
    ax.set_yticks(y)
    ax.set_yticklabels(t[label].astype(str))
    ax.set_ylim(-0.7, len(t) - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_segments(table: pd.DataFrame, *, value: str = "truth", title: str = "",
                  ylabel: str = "", scale: float = 100.0, errors: str | None = None) -> Any:
    """Grouped bars: one group per segment, one bar per arm (from :func:`segment_summary`).

    ``value`` is the column drawn (``truth`` or ``observed``); ``errors`` an optional
    column of standard errors drawn as 95 % whiskers; values are multiplied by
    ``scale`` (100: percent).
    """
    plt = pyplot()
    wide = table[value].unstack()
    err = table[errors].unstack() * 1.96 if errors else None
    segs, arms = list(wide.index), list(wide.columns)
    x = np.arange(len(segs))
    width = 0.8 / max(len(arms), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(segs) + 2), 4.2), dpi=_DPI)
    for k, arm in enumerate(arms):
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, wide[arm].to_numpy() * scale, width,
               yerr=None if err is None else err[arm].to_numpy() * scale, capsize=2,
               label=str(arm))
    ax.set_xticks(x)
    ax.set_xticklabels([str(s) for s in segs], rotation=12 if len(segs) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_loadtests(results: Mapping[str, Any]) -> Any:
    """Load-test runs side by side: processed events/s, backlog and p99 latency per second.

    Parameters
    ----------
    results : mapping of name -> experiments.loadtest.LoadTestResult
        The runs to compare (their ``per_second`` tables); a killed shard is marked with
        a dashed vertical line.
    """
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), dpi=_DPI, sharex=True)
    for name, r in results.items():
        df = r.per_second
        x = df.index.to_numpy() + 0.5
        line, = axes[0].plot(x, df["processed"] / 1e3, drawstyle="steps-mid",
                             label=f"{name}: processed")
        if r.summary["target_rate"]:
            axes[0].plot(x, df["offered"] / 1e3, drawstyle="steps-mid", ls=":",
                         color=line.get_color(), label=f"{name}: offered")
        axes[1].plot(x, df["backlog"] / 1e3, drawstyle="steps-mid", color=line.get_color(),
                     label=name)
        axes[2].plot(x, df["p99_ms"], marker=".", color=line.get_color(), label=f"{name} p99")
        axes[2].plot(x, df["p50_ms"], ls="--", color=line.get_color(), alpha=0.6,
                     label=f"{name} p50")
        if r.recovery is not None:
            for ax in axes:
                ax.axvline(r.recovery["killed_at_s"], color=line.get_color(), ls="--", lw=1)
    axes[0].set_ylabel("thousand events / s (log)")
    axes[0].set_yscale("log")
    axes[0].set_title("Throughput per second (dotted: offered load)")
    axes[1].set_ylabel("backlog, thousand events (symlog)")
    axes[1].set_yscale("symlog", linthresh=1.0)
    axes[1].set_ylim(bottom=0)
    axes[1].set_title("Events offered but not yet processed")
    axes[2].set_ylabel("latency, ms (log)")
    axes[2].set_yscale("log")
    axes[2].set_title("Decision latency per second: p99 (solid) and p50 (dashed)")
    axes[2].set_xlabel("seconds since the start of the run")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
