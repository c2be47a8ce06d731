"""PNG plots of an experiment (matplotlib, Agg backend, no display needed).

* ``metric_over_time.png`` -- the primary metric per day and cumulated to date, per arm;
* ``lift.png`` -- lift vs control with confidence intervals per metric, truth marked;
* ``allocation.png`` -- share of emails per policy variant per day (arms with a policy);
* ``regret.png`` -- cumulative expected regret per day (arms with a policy);
* ``funnel.png`` -- sends, opens, clicks and orders per 1,000 subscribers, per arm.

Each function takes :class:`~experiments.results.Results` and returns a matplotlib
Figure (or None when it does not apply); :func:`write_plots` saves them all. The numbers
come from :mod:`experiments.tables`, :mod:`experiments.analysis` (the summary) and
:mod:`experiments.regret`
(:func:`daily_regret` is re-exported from there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments._pyplot import pyplot
from experiments.regret import daily_regret, regret_curves
from experiments.results import Results
from experiments.spec import METRICS
from experiments.tables import FUNNEL_STAGES, allocation_shares, funnel_table, rate_over_time

__all__ = ["PLOT_FILES", "allocation", "daily_regret", "funnel", "lift", "metric_over_time",
           "regret", "write_plots"]

PLOT_FILES = ("metric_over_time.png", "lift.png", "allocation.png", "regret.png", "funnel.png",
              "auto_winner.png")


def extra_plot_files(res: Results) -> list[str]:
    """The run folder's plots besides :data:`PLOT_FILES`: journey flowcharts and the
    factorial analyses of combination arms."""
    from experiments.combinations import combination_plot_files

    return [*journey_plot_files(res), *combination_plot_files(res)]


def journey_plot_files(res: Results) -> list[str]:
    """The journey flowcharts a run folder of ``res`` has (``journey_<rule>.png``)."""
    if res.spec.rules is None:
        return []
    from policies.triggers import load_rules

    return [f"journey_{r.id}.png" for r in load_rules(res.spec.rules).rules
            if r.journey is not None]
_DPI = 110


def _scale(metric: str) -> tuple[float, str]:
    m = METRICS[metric]
    if m.kind == "proportion" and m.denominator == "sends":
        return 100.0, "%"
    if m.denominator == "subscribers" and not m.money:
        return 1000.0, " per 1,000 subscribers"
    return 1.0, ""


def _ylabel(metric: str) -> str:
    m = METRICS[metric]
    _factor, suffix = _scale(metric)
    if suffix == "%":
        return f"{m.label} (% of emails sent)"
    if suffix:
        return f"{m.label.replace(' per subscriber', '')}{suffix}"
    return f"{m.label} (currency units per subscriber)"


def _integer_days(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def metric_over_time(res: Results, metric: str | None = None) -> Any:
    """The metric per day and cumulated to date, one line per arm (pooled replications)."""
    plt = pyplot()
    metric = metric or res.spec.primary
    rates = rate_over_time(res, metric)
    factor, _ = _scale(metric)
    per_subscriber = METRICS[metric].denominator == "subscribers"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=_DPI)
    for arm, a in rates.groupby("arm", sort=False):
        days = a["day"].to_numpy()
        daily = a["daily"] * factor
        cum = a["to_date"] * factor
        style = "--" if arm == res.spec.control_arm else "-"
        ok = np.isfinite(daily.to_numpy())
        axes[0].plot(days[ok], daily.to_numpy()[ok], style, marker="o", ms=3, label=arm)
        axes[1].plot(days, cum.to_numpy(), style, marker="o", ms=3, label=arm)
    ylabel = _ylabel(metric)
    axes[0].set_title(f"{METRICS[metric].label}: per day")
    axes[1].set_title(f"{METRICS[metric].label}: "
                      + ("cumulative to date" if per_subscriber else "to date"))
    for ax in axes:
        ax.set_xlabel("day of the experiment (simulated days)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        _integer_days(ax)
    axes[1].legend(title="arm (dashed: control)", fontsize=8)
    fig.tight_layout()
    return fig


def lift(res: Results, summary: pd.DataFrame | None = None) -> Any:
    """Lift vs control (%) with confidence intervals, one panel per metric."""
    plt = pyplot()
    if summary is None:
        summary = res.summary()
    metrics = list(res.spec.metrics)
    others = [a for a in res.arms if a != res.spec.control_arm]
    n = len(metrics)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 0.6 + 0.55 * len(others) * rows
                                                  + 1.4 * rows), dpi=_DPI, squeeze=False)
    alpha = res.spec.alpha
    for k, metric in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        s = summary[(summary["metric"] == metric) & (~summary["is_control"])].set_index("arm")
        y = np.arange(len(others))
        est = 100 * s.reindex(others)["lift"].to_numpy(float)
        lo = 100 * s.reindex(others)["lift_ci_low"].to_numpy(float)
        hi = 100 * s.reindex(others)["lift_ci_high"].to_numpy(float)
        tl = 100 * s.reindex(others)["true_lift"].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(est[ok], y[ok], xerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="o",
                    capsize=4, color="tab:blue", label=f"estimate, {100 * (1 - alpha):.0f}% CI")
        no_ci = ~ok & np.isfinite(est)
        if no_ci.any():
            ax.plot(est[no_ci], y[no_ci], "o", color="tab:gray", label="estimate (no CI)")
        if np.isfinite(tl).any():
            ax.plot(tl, y, "x", color="tab:red", ms=9, mew=2, label="simulator truth")
        for yi in y[~np.isfinite(est)]:
            ax.annotate("no data (no emails)", (0, yi), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=7, color="gray")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(others)
        ax.set_ylim(-0.7, len(others) - 0.3)
        ax.set_xlabel(f"lift vs {res.spec.control_arm} (%)")
        ax.set_title(METRICS[metric].label)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.tight_layout()
    return fig


def allocation(res: Results) -> Any:
    """Share of each day's emails per policy variant (days with sends), one panel per arm
    with a policy."""
    plt = pyplot()
    pol = [a for a in res.spec.arms if a.policy is not None]
    if not pol:
        return None
    fig, axes = plt.subplots(1, len(pol), figsize=(5.2 * len(pol), 4), dpi=_DPI, squeeze=False)
    for ax, arm in zip(axes[0], pol, strict=True):
        share = allocation_shares(res, arm.name) * 100
        bottom = np.zeros(len(share))
        policy = arm.policy
        assert policy is not None
        hours = policy.decides == "send_hour"
        cmap = plt.get_cmap("twilight" if hours else "tab10")
        for k, variant in enumerate(share.columns):
            vals = share[variant].to_numpy()
            color = (cmap(int(str(variant).lstrip("h")) / 24.0) if hours
                     else cmap(k % 10))
            ax.bar(share.index.to_numpy(), vals, 0.8, bottom=bottom, label=variant,
                   color=color, edgecolor="white", linewidth=0.3)
            bottom += vals
        _integer_days(ax)
        ax.set_ylim(0, 100)
        ax.set_xlabel("day of the experiment (simulated days)")
        ax.set_ylabel("share of the day's emails (%)")
        ax.set_title(f"{arm.name}: {policy.name} ({policy.decides})")
        if len(share.columns) > 8:
            handles, labels = ax.get_legend_handles_labels()
            top = share.sum().sort_values(ascending=False).index[:8]
            keep = [i for i, lab in enumerate(labels) if lab in set(top)]
            ax.legend([handles[i] for i in keep], [labels[i] for i in keep],
                      title="variant (top 8)", fontsize=7, loc="upper left",
                      bbox_to_anchor=(1.0, 1.0))
            continue
        ax.legend(title="variant", fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def auto_winner(res: Results) -> Any:
    """False-winner rate and regret of each arm (:mod:`experiments.auto_winner`), when an
    arm's policy is an automatic-winner rule; else None."""
    from experiments.auto_winner import auto_winner_figure, auto_winner_table

    if res.commits is None or not (res.commits["phase"] != "").any():
        return None
    table = auto_winner_table(res.commits, res.metrics, res.arms)
    return auto_winner_figure(table, res.spec.reward, pyplot())


def regret(res: Results) -> Any:
    """Cumulative expected regret per day, one line per arm with a policy."""
    plt = pyplot()
    curves = regret_curves(res)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=_DPI)
    for arm, cum in curves.items():
        ax.plot(cum.index.to_numpy(), cum.to_numpy(), marker="o", ms=3, label=arm)
    unit = {"click": "clicks", "order": "orders", "revenue": "currency units"}[res.spec.reward]
    ax.set_xlabel("day of the experiment (simulated days)")
    ax.set_ylabel(f"cumulative expected regret ({unit} lost)")
    _integer_days(ax)
    ax.set_title("Regret vs always sending the true best variant")
    ax.grid(alpha=0.3)
    ax.legend(title="arm", fontsize=8)
    fig.tight_layout()
    return fig


def funnel(res: Results) -> Any:
    """Sends, opens, clicks and attributed orders per 1,000 subscribers, per arm."""
    plt = pyplot()
    table = funnel_table(res)
    stages = list(FUNNEL_STAGES)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(res.arms) + 3), 4.4), dpi=_DPI)
    width = 0.8 / len(stages)
    x = np.arange(len(res.arms))
    for k, stage in enumerate(stages):
        vals = table[stage].to_numpy(dtype=float) * 1000
        bars = ax.bar(x + (k - (len(stages) - 1) / 2) * width, np.where(vals > 0, vals, np.nan),
                      width, label=stage)
        for rect, v in zip(bars, vals, strict=True):
            if np.isfinite(v) and v > 0:
                ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.3g}",
                            (rect.get_x() + rect.get_width() / 2, v),
                            ha="center", va="bottom", fontsize=6)
    for xi, arm in zip(x, res.arms, strict=True):
        if not table.loc[arm, "any_emails"]:
            ax.annotate("no emails sent", (xi, 0.5), xycoords=("data", "axes fraction"),
                        ha="center", fontsize=8, color="gray")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(res.arms, rotation=15 if len(res.arms) > 4 else 0)
    ax.set_xlabel("arm")
    ax.set_ylabel("per 1,000 subscribers (log scale)")
    which = ", ".join(res.spec.sources) + " emails" if res.spec.sources else "all emails"
    ax.set_title(f"Email funnel per arm\n({which}; responses attributed within the reward "
                 "window)", fontsize=10)
    ax.set_xlim(-0.6, len(res.arms) - 0.4)
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_plots(res: Results, out: str | Path, summary: pd.DataFrame | None = None
                ) -> list[Path]:
    """Save every applicable plot as PNG into ``out``; returns the paths written."""
    plt = pyplot()
    out = Path(out)
    figs = {
        "metric_over_time.png": metric_over_time(res),
        "lift.png": lift(res, summary),
        "allocation.png": allocation(res),
        "regret.png": regret(res),
        "funnel.png": funnel(res),
        "auto_winner.png": auto_winner(res),
    }
    if res.spec.arms and any(a.policy is not None and a.policy.decides == "combination"
                             for a in res.spec.arms):
        from experiments.combinations import combination_figures

        figs.update(combination_figures(res))
    written = []
    if res.spec.rules is not None:   # each journey of the spec's rules as a flowchart
        from experiments.journey_diagram import write_journey_diagrams
        from experiments.journey_report import diagram_counts, journey_rules
        from policies.triggers import load_rules

        counts = {r.id: c for r in journey_rules(res)
                  for c in [diagram_counts(res, r)] if c is not None}
        written += write_journey_diagrams(load_rules(res.spec.rules), out, counts)
    for name, fig in figs.items():
        if fig is None:
            continue
        path = out / name
        fig.savefig(path, format="png", metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written
