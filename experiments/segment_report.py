"""Words, tables and the forest plot of the per-segment analysis
(:mod:`experiments.segments`): the report's "Effects by segment" section, its terminal
lines, and ``segments_<column>.png``.

Every sentence is computed from the numbers of :class:`~experiments.segments.SegmentAnalysis`
printed beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.segments import SegmentAnalysis
from experiments.spec import METRICS

__all__ = ["CORRECTION_NAMES", "forest_plot", "plot_file", "segment_blocks",
           "segment_headline", "segment_sentences", "write_segment_plots"]

#: How the report names each multiple-testing correction.
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}


def _per_email(metric: str) -> bool:
    return METRICS[metric].denominator == "sends"


def _diff(metric: str, v: float) -> str:
    """A difference in the metric's units, signed (percentage points per email)."""
    if v is None or not np.isfinite(v):
        return "n/a"
    if _per_email(metric):
        return f"{100 * v:+.2f} pp"
    return f"{v:+.3f}" if METRICS[metric].money else f"{v:+.4f}"


def _level(metric: str, v: float) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    if _per_email(metric):
        return f"{100 * v:.2f}%"
    return f"{v:.3f}" if METRICS[metric].money else f"{v:.4f}"


def _p(v: float) -> str:
    return f"{v:.2g}" if v is not None and np.isfinite(v) else "n/a"


def _list(metric: str, rows: pd.DataFrame, col: str = "diff") -> str:
    return ", ".join(f"{r['segment']} ({_diff(metric, r[col])})" for _, r in rows.iterrows())


def plot_file(column: str) -> str:
    """File name of the forest plot of ``column``."""
    return f"segments_{column}.png"


def segment_sentences(a: SegmentAnalysis, arm: str) -> list[str]:
    """The findings for one arm vs control, in words, from ``a``'s numbers."""
    e = a.effects[a.effects["arm"] == arm]
    t = a.tests[a.tests["arm"] == arm].iloc[0]
    label, m = METRICS[a.metric].label, a.metric
    corr = CORRECTION_NAMES.get(a.correction, a.correction)
    out: list[str] = []
    if np.isfinite(t["q_p_value"]):
        differs = t["q_p_value"] < a.alpha
        out.append(
            f"Interaction test: Cochran's Q = {t['q']:.1f} on {int(t['df'])} degrees of "
            f"freedom (p = {_p(t['q_p_value'])}, I² = {100 * t['i_squared']:.0f}%): "
            + (f"the effect of {arm} on {label} differs between {a.column} segments."
               if differs else
               f"no evidence at the {a.alpha:g} level that the effect of {arm} on {label} "
               f"differs between {a.column} segments."))
    else:
        out.append(f"Interaction test: fewer than two {a.column} segments have an effect "
                   "with a standard error, so there is no test.")
    sig = e["significant"] == True  # noqa: E712
    pos, neg = e[sig & (e["diff"] > 0)], e[sig & (e["diff"] < 0)]
    n_other = len(e) - len(pos) - len(neg)
    head = (f"The effect changes sign (adjusted with {corr} across the {len(e)} segments): "
            if len(pos) and len(neg) else f"Adjusted with {corr} across the {len(e)} segments: ")
    parts = []
    if len(pos):
        parts.append(f"significantly positive in {_list(m, pos)}")
    if len(neg):
        parts.append(f"significantly negative in {_list(m, neg)}")
    parts.append(f"not significant in {'the other ' if len(pos) + len(neg) else ''}"
                 f"{n_other} segment{'s' if n_other != 1 else ''}")
    out.append(head + "; ".join(parts) + ".")
    rest = e[e["differs_from_rest"] == True]  # noqa: E712
    out.append("Segment vs rest (each segment's effect minus the effect on everybody else, "
                f"adjusted with {corr}): "
                + (f"differs in {_list(m, rest, 'vs_rest_diff')}." if len(rest)
                   else "no segment differs significantly from the rest."))
    if t["true_positive"] + t["true_negative"] > 0:
        sent = (f"Ground truth: the simulator's true difference is positive in "
                f"{int(t['true_positive'])} segment(s) and negative in "
                f"{int(t['true_negative'])} (from {_diff(m, t['true_min'])} to "
                f"{_diff(m, t['true_max'])}); the estimate has the true sign in "
                f"{int(t['sign_agrees'])} of {len(e)} segments and its interval covers the true "
                f"difference in {int(t['covered'])} of {len(e)}.")
        called = pd.concat([pos, neg])
        if len(called):
            wrong = called[np.sign(called["diff"]) != np.sign(called["true_diff"])]
            sent += (" Every segment called significant has a true difference of the same "
                     "sign." if len(wrong) == 0 else
                     f" {len(wrong)} of {len(called)} segment(s) called significant have a "
                     f"true difference of the other sign: {_list(m, wrong, 'true_diff')}.")
        out.append(sent)
    return out


def segment_blocks(analyses: list[SegmentAnalysis], plots: set[str]) -> list[tuple]:
    """The report's "Effects by segment" section (blocks of :mod:`experiments.report`)."""
    if not analyses:
        return []
    first = analyses[0]
    corr = CORRECTION_NAMES.get(first.correction, first.correction)
    b: list[tuple] = [("h2", "Effects by segment"), ("p", (
        f"The effect on {METRICS[first.metric].label} vs {first.control} per segment of the "
        "subscriber table at the start of the run (before any email; numbers by quantile "
        f"bins). p-values of all segments x arms of a column are adjusted with {corr}. "
        "\"vs rest\" is the segment's effect minus the effect on all other subscribers; the "
        "interaction test asks whether all segments have the same effect. \"true diff\" is "
        "the simulator's true difference over the same subscribers, on the basis of the "
        "main table's truth column (for per-subscriber metrics the email-caused part)."))]
    for a in analyses:
        m = a.metric
        for arm in a.effects["arm"].unique():
            e = a.effects[a.effects["arm"] == arm]
            b.append(("h3", f"{a.column}: {arm} vs {a.control}"))
            for s in segment_sentences(a, arm):
                b.append(("p", s))
            rows = [[r["segment"], f"{int(r['subscribers']):,}", _level(m, r["control_estimate"]),
                     _diff(m, r["diff"]),
                     f"{_diff(m, r['diff_ci_low'])} to {_diff(m, r['diff_ci_high'])}"
                     if np.isfinite(r["diff_ci_low"]) else "n/a",
                     _p(r["p_adjusted"]), _diff(m, r["vs_rest_diff"]),
                     _p(r["vs_rest_p_adjusted"]), _diff(m, r["true_diff"])]
                    for _, r in e.iterrows()]
            b.append(("table", ["segment", "subscribers", f"{a.control}", "diff",
                                f"{100 * (1 - a.alpha):.0f}% CI", "p (adj.)", "vs rest",
                                "vs rest p (adj.)", "true diff"], rows))
        if plot_file(a.column) in plots:
            b.append(("img", plot_file(a.column), f"effects by {a.column}"))
    return b


def segment_headline(analyses: list[SegmentAnalysis]) -> list[str]:
    """One terminal line per (column, arm): the interaction test, the significant
    segments by sign, and the truth's signs."""
    lines = []
    for a in analyses:
        for _, t in a.tests.iterrows():
            lines.append(
                f"by {a.column}, {t['arm']} vs {a.control}: Q p = {_p(t['q_p_value'])}; "
                f"significant + in {int(t['significant_positive'])}, - in "
                f"{int(t['significant_negative'])} of {int(t['segments'])} segments; truth + in "
                f"{int(t['true_positive'])}, - in {int(t['true_negative'])}; sign right in "
                f"{int(t['sign_agrees'])}")
    return lines


# ---------------------------------------------------------------------------
# forest plot


def forest_plot(a: SegmentAnalysis) -> Any:
    """Forest plot of ``a``: per segment the difference to control with its interval
    (filled: significant after correction), the true difference (red x), 0 and the
    effect over all segments (dashed). One panel per non-control arm."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    arms = list(a.effects["arm"].unique())
    k = len(a.segments)
    fig, axes = plt.subplots(1, len(arms), figsize=(6.4 * len(arms), 1.2 + 0.45 * k),
                             squeeze=False)
    unit = " (pp)" if _per_email(a.metric) else ""
    scale = 100.0 if _per_email(a.metric) else 1.0
    for ax, arm in zip(axes[0], arms, strict=True):
        e = a.effects[a.effects["arm"] == arm].reset_index(drop=True)
        y = np.arange(k)[::-1]
        d = e["diff"].to_numpy(float) * scale
        lo = e["diff_ci_low"].to_numpy(float) * scale
        hi = e["diff_ci_high"].to_numpy(float) * scale
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.plot(e["true_diff"].to_numpy(float) * scale, y, "x", color="tab:red", ms=8,
                mew=2, label="true difference", zorder=2)
        ax.errorbar(d[ok], y[ok], xerr=[d[ok] - lo[ok], hi[ok] - d[ok]], fmt="none",
                    ecolor="black", elinewidth=1.2, capsize=3, zorder=3)
        sig = (e["significant"] == True).to_numpy()  # noqa: E712
        if sig.any():
            ax.plot(d[sig], y[sig], "o", color="black", ms=5,
                    label="estimate (significant after correction)", zorder=4)
        if (~sig).any():
            ax.plot(d[~sig], y[~sig], "o", mfc="white", color="black", ms=5,
                    label="estimate", zorder=4)
        ax.axvline(0.0, color="gray", lw=1)
        overall = a.tests.loc[a.tests["arm"] == arm, "overall_diff"].iloc[0] * scale
        if np.isfinite(overall):
            ax.axvline(overall, color="tab:blue", lw=1, ls="--", label="all segments")
        ax.set_yticks(y)
        ax.set_yticklabels(list(a.segments))
        ax.set_ylim(-0.7, k - 0.3)
        ax.set_xlabel(f"{arm} minus {a.control}: {METRICS[a.metric].label}{unit}")
        ax.set_ylabel(a.column)
        ax.set_title(f"Effect by {a.column}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def write_segment_plots(analyses: list[SegmentAnalysis], out: str | Path) -> list[str]:
    """Save :func:`forest_plot` of every analysis into ``out``; returns the file names."""
    import matplotlib.pyplot as plt

    names = []
    for a in analyses:
        fig = forest_plot(a)
        name = plot_file(a.column)
        fig.savefig(Path(out) / name, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        names.append(name)
    return names
