"""The experiment report: renders ``report.md`` and ``report.html`` and the terminal
headline from the analysis of a run.

The numbers come from :mod:`experiments.analysis` (:func:`~experiments.analysis.summarize`:
one row per arm x metric, ``summary.csv``; :func:`~experiments.analysis.srm_checks`;
:func:`~experiments.analysis.recommend`) and :mod:`experiments.regret`; the statistical
methods are described there. This module only words and lays them out:
:func:`recommendation` (sentences), :func:`write_report` (Markdown and HTML),
:func:`headline` (terminal lines) and :func:`rerender` (rewrite a run folder's files).

``summarize``, ``srm_checks``, ``analysis_kind`` and ``LOWER_IS_BETTER`` are re-exported
from :mod:`experiments.analysis` for existing callers.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.analysis import (
    LOWER_IS_BETTER,
    SUMMARY_COLUMNS,
    analysis_kind,
    guardrail_breaches,
    recommend,
    srm_checks,
    summarize,
)
from experiments.regret import policy_table
from experiments.results import Results
from experiments.rule_checks import rule_warnings
from experiments.segment_report import (
    plot_file,
    segment_blocks,
    segment_headline,
    write_segment_plots,
)
from experiments.segments import SegmentAnalysis, segment_analyses, write_segment_tables
from experiments.spec import METRICS, ExperimentSpec

__all__ = ["LOWER_IS_BETTER", "SUMMARY_COLUMNS", "analysis_kind", "headline",
           "recommendation", "render_html", "render_markdown", "rerender", "srm_checks",
           "summarize", "write_report"]


# ---------------------------------------------------------------------------
# recommendation


#: What the caused part leaves out (said beside holdout metrics' truth).
_LATER = (" (it leaves out what an email's order changes later, such as fewer organic orders "
          "after a purchase: the estimate can run below it)")

def _fmt_value(metric: str, v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    if METRICS[metric].kind == "proportion" and metric != "orders":
        return f"{100 * v:.2f}%"
    if METRICS[metric].money:
        return f"{v:.3f}"
    return f"{v:.4f}"


def _pct(v: float, signed: bool = True) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%"


def _improves(metric: str, diff: float) -> bool:
    """Whether an estimated difference to control is in the metric's good direction."""
    if not np.isfinite(diff):
        return False
    return diff < 0 if metric in LOWER_IS_BETTER else diff > 0


def recommendation(summary: pd.DataFrame, spec: ExperimentSpec) -> list[str]:
    """The recommendation in plain words (sentences), from the primary metric.

    The decision is :func:`experiments.analysis.recommend`'s: an arm is recommended over
    control only when its adjusted p-value is below ``alpha`` in the good direction;
    ties go to the largest estimated improvement. The last sentence compares the call
    with the simulator's ground truth.
    """
    rec = recommend(summary, spec)
    metric, control, chosen = rec.metric, rec.control, rec.chosen
    label = METRICS[metric].label
    alpha = spec.alpha
    out: list[str] = []
    if rec.winner is not None:
        best = rec.winner
        out.append(
            f"Recommendation: switch to **{chosen}**. It changed {label} by "
            f"{_pct(best['lift'])} vs {control} ({_fmt_value(metric, best['estimate'])} vs "
            f"{_fmt_value(metric, rec.control_estimate)}; "
            f"{100 * (1 - alpha):.0f}% CI of the lift {_pct(best['lift_ci_low'])} to "
            f"{_pct(best['lift_ci_high'])}, adjusted p = {best['p_adjusted']:.2g}, "
            f"chance to beat control {_pct(best['prob_beat_control'], False)}).")
    elif rec.closest is not None:
        lead = rec.closest
        out.append(
            f"Recommendation: keep **{control}**. No arm beat it on {label} at the "
            f"{alpha:g} level after correction; the closest, {lead['arm']}, differs by "
            f"{_pct(lead['lift'])} (adjusted p = {_num(lead['p_adjusted'])}, chance to "
            f"beat control {_pct(lead['prob_beat_control'], False)})."
            + (" A larger or longer experiment is needed to detect an effect of that size."
               if _improves(metric, lead["diff"]) else
               " No arm's estimate is an improvement on control."))
    if rec.losers:
        names = ", ".join(rec.losers)
        out.append(f"Significantly worse than {control} on {label}: {names}.")
    for g in rec.guardrails:
        what = "unsubscribes" if g["metric"] == "unsubscribes" else METRICS[g["metric"]].label
        out.append(f"Caution: {chosen} also {'raised' if g['diff'] > 0 else 'lowered'} "
                   f"{what} by {_pct(g['lift'])} (adjusted p = {g['p_adjusted']:.2g}).")
    if rec.best_true is not None:
        verdict = ("agrees with" if rec.best_true == chosen else "differs from")
        out.append(
            f"Ground truth: in the simulator the best arm on {label} is "
            f"**{rec.best_true}**; the recommendation {verdict} it.")
    return out


def _num(v: Any) -> str:
    return f"{v:.2g}" if v is not None and np.isfinite(v) else "n/a"


# ---------------------------------------------------------------------------
# rendering


def _blocks(res: Results, summary: pd.DataFrame, plots: Sequence[str],
            segments: list[SegmentAnalysis] | None = None,
            segment_plots: set[str] | None = None) -> list[tuple]:
    spec = res.spec
    b: list[tuple] = [("h1", f"Experiment: {spec.name}")]
    if spec.description:
        b.append(("p", spec.description.strip()))
    b.append(("h2", "Recommendation"))
    for sentence in recommendation(summary, spec):
        b.append(("p", sentence))
    b.append(("h2", "Setup"))
    setup = [
        f"Population: {spec.subscribers:,} subscribers, preset `{spec.preset}`"
        + (f" with overrides {dict(spec.preset_overrides)}" if spec.preset_overrides else ""),
        f"Duration: {spec.days:g} simulated days, tick {spec.tick_seconds} s; "
        f"{spec.replications} replication(s), seeds "
        f"{', '.join(str(spec.replication_seed(r)) for r in range(spec.replications))} "
        + ("(every arm of a replication shares its seed: common random numbers)"
           if spec.common_random_numbers else
           "for the first arm; the other arms have independent seeds (no common random "
           "numbers, so per-subscriber comparisons are paired by day only)"),
        f"Control arm: `{spec.control_arm}`; primary metric: {METRICS[spec.primary].unit}",
        f"Tests: two-sided, alpha = {spec.alpha:g}, p-values adjusted with "
        f"{spec.correction} across all {int(summary['p_value'].notna().sum())} comparisons",
    ]
    b.append(("ul", setup))
    b.append(("table", ["arm", "what changes"], [[a.name, _describe_arm(a)] for a in spec.arms]))
    cannot_fire = rule_warnings(spec)
    if cannot_fire:
        b.append(("h2", "Rule warnings"))
        b.append(("p", "These rules are valid but cannot fire on the simulated population "
                  "(as drawn at the start of replication 0), so no arm measures what they "
                  "would do:"))
        b.append(("ul", cannot_fire))
    b.append(("h2", "Results"))
    for metric in spec.metrics:
        md = METRICS[metric]
        s = summary[summary["metric"] == metric]
        ci = f"{100 * (1 - spec.alpha):.0f}% CI"
        # a site-wide metric counts every order, organic ones included, while the
        # simulator knows only the email-caused part: that column is named for what it
        # holds, never "truth" beside an estimate on another basis
        site = md.scope == "site"
        header = ["arm", md.label, ci, "lift vs control", f"lift {ci}", "p (adj.)",
                  "P(beat control)", "true email-caused part" if site else "truth",
                  "true lift"]
        rows = []
        for _, r in s.iterrows():
            rows.append([
                r["arm"] + (" (control)" if r["is_control"] else ""),
                _fmt_value(metric, r["estimate"]),
                f"{_fmt_value(metric, r['ci_low'])} to {_fmt_value(metric, r['ci_high'])}"
                if np.isfinite(r["ci_low"]) else "n/a",
                "" if r["is_control"] else _pct(r["lift"]),
                "" if r["is_control"] else
                (f"{_pct(r['lift_ci_low'])} to {_pct(r['lift_ci_high'])}"
                 if np.isfinite(r["lift_ci_low"]) else "n/a"),
                "" if r["is_control"] else _num(r["p_adjusted"]),
                "" if r["is_control"] else _pct(r["prob_beat_control"], False),
                _fmt_value(metric, r["true_value"]),
                "" if r["is_control"] else _pct(r["true_lift"]),
            ])
        b.append(("h3", f"{md.unit[0].upper()}{md.unit[1:]}"))
        b.append(("table", header, rows))
        method = s["method"].dropna().iloc[0] if s["method"].notna().any() else ""
        note = f"Method: {method}."
        if site:
            note += (" The estimate counts all orders (organic included); the column "
                     "\"true email-caused part\" is the simulator's expected email-caused "
                     "(incremental) part per subscriber, not a truth of the estimate's level. "
                     "The true lift is the difference of those parts to control (organic "
                     "orders cancel in a difference on the same subscribers) relative to "
                     "control's observed level.")
        elif metric == "incremental_orders":
            note += (" Truth column: the simulator's expected email-caused (incremental) "
                     "part per subscriber, the quantity the estimate measures" + _LATER
                     + "; the true lift is its difference to control relative to control's "
                     "observed level.")
        elif metric == "incremental_orders_per_email":
            note += (" Estimate: treatment minus holdout orders per subscriber, times the "
                     "treatment group's subscribers per email sent to it. Truth column: the "
                     "simulator's expected email-caused orders per email sent, the quantity "
                     "the estimate measures" + _LATER + ".")
        cov = s["ci_covers_truth"].dropna()
        if len(cov):
            note += (f" The interval of the difference covered the true difference for "
                     f"{int(sum(bool(v) for v in cov))} of {len(cov)} arm(s).")
        b.append(("p", note))
    if spec.guardrails:
        b += _guardrail_blocks(res, summary)
    if segments:
        b += segment_blocks(segments, segment_plots or set())
    pol = policy_table(res)
    if len(pol):
        b.append(("h2", "Policies"))
        rows = []
        for _, p in pol.iterrows():
            regret, sends = p["regret"], p["sends"]
            rows.append([p["arm"], p["policy"], p["decides"], p["best_variant"],
                         _pct(p["best_share"], False), f"{regret:.1f}",
                         f"{1000 * regret / sends:.2f}" if sends else "n/a"])
        b.append(("table", ["arm", "policy", "decides", "true best variant",
                            "share of sends to it", "expected regret (reward units)",
                            "regret per 1,000 emails"], rows))
        b.append(("p", "Regret: expected reward lost against always sending the true best "
                  "variant, summed over the emails of a replication (mean over replications)."))
    if res.journeys is not None:
        from experiments.journey_report import journey_blocks

        b += journey_blocks(res)
    if res.commits is not None and (res.commits["phase"] != "").any():
        from experiments.auto_winner import auto_winner_blocks, auto_winner_table

        b += auto_winner_blocks(auto_winner_table(res.commits, res.metrics, res.arms), spec.reward)
    if res.decisions is not None:
        from experiments.combinations import combination_blocks

        b += combination_blocks(res)
    b.append(("h2", "Sample ratio checks"))
    checks = srm_checks(res)
    if checks:
        b.append(("table", ["arm", "split", "observed", "expected", "p-value", "mismatch"],
                  [[c["arm"], c["split"], c["observed"], c["expected_share"],
                    _num(c["p_value"]), "YES" if c["mismatch"] else "no"] for c in checks]))
    else:
        b.append(("p", "No randomized split inside the arms (no holdout, no A/B policy); "
                  "arms share one population by design, so there is nothing to check."))
    if plots:
        b.append(("h2", "Plots"))
        for p in plots:
            b.append(("img", p, p.removesuffix(".png").replace("_", " ")))
    b.append(("p", "Files: metrics.parquet (tidy counts), truth.parquet (ground truth), "
              "summary.csv (these tables); reopen with "
              "`experiments.Results.load(run_dir)`."))
    return b


def _guardrail_blocks(res: Results, summary: pd.DataFrame) -> list[tuple]:
    """The "Guardrails" section: every arm against control on each guardrail metric."""
    spec = res.spec
    rows, worse = [], []
    for metric in spec.guardrails:
        s = summary[(summary["metric"] == metric) & ~summary["is_control"]]
        for _, r in s.iterrows():
            breach = metric in {g["metric"] for g in guardrail_breaches(summary, spec,
                                                                        r["arm"])}
            better = r["significant"] is True and _improves(metric, r["diff"])
            verdict = "WORSE" if breach else ("better" if better else "no significant change")
            if breach:
                worse.append(f"{r['arm']} ({METRICS[metric].label})")
            rows.append([r["arm"], METRICS[metric].label, _fmt_value(metric, r["estimate"]),
                         _pct(r["lift"]), _num(r["p_adjusted"]), verdict,
                         _fmt_value(metric, r["true_value"])])
    text = ("Guardrail metrics must not get worse than control: "
            + (f"significantly worse: {', '.join(worse)}." if worse else
               "no arm made one significantly worse at the "
               f"{spec.alpha:g} level after correction."))
    return [("h2", "Guardrails"), ("p", text),
            ("table", ["arm", "guardrail", "estimate", "lift vs control", "p (adj.)",
                       "verdict", "truth"], rows)]


def _describe_arm(arm: Any) -> str:
    parts = []
    for rid, over in arm.rules.items():
        parts.append(f"{rid}: " + ", ".join(f"{k} {v}" for k, v in over.items()))
    if arm.disable:
        parts.append("disabled: " + ", ".join(arm.disable))
    for k, v in arm.settings.items():
        parts.append(f"{k}: {'none' if v is None else v}")
    if arm.policy is not None:
        params = {k: v for k, v in arm.policy.params.items()}
        parts.append(f"policy {arm.policy.name} decides {arm.policy.decides} "
                     f"({arm.policy.scope}) {params}")
    if arm.holdout:
        parts.append(f"holdout {arm.holdout:.0%}")
    if arm.campaign != "inherit":
        parts.append("campaign: none" if arm.campaign is None else
                     f"campaign every {arm.campaign.every_days} d at {arm.campaign.local_hour}h"
                     f" ({arm.campaign.subject_style}"
                     + (f", {arm.campaign.incentive:.0%} discount" if arm.campaign.incentive
                        else "") + ")")
    return "; ".join(parts) or "as the experiment"


def render_markdown(blocks: list[tuple]) -> str:
    """Blocks -> Markdown text."""
    out: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out.append(f"# {blk[1]}\n")
        elif kind == "h2":
            out.append(f"## {blk[1]}\n")
        elif kind == "h3":
            out.append(f"### {blk[1]}\n")
        elif kind == "p":
            out.append(f"{blk[1]}\n")
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in blk[1]) + "\n")
        elif kind == "table":
            header, rows = blk[1], blk[2]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |"
                      for r in rows]
            out.append("\n".join(lines) + "\n")
        elif kind == "img":
            out.append(f"![{blk[2]}]({blk[1]})\n")
    return "\n".join(out)


def _inline_html(text: str) -> str:
    s = html.escape(text)
    parts = s.split("**")
    s = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = s.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[tuple], title: str) -> str:
    """Blocks -> a self-contained HTML page (images referenced next to it)."""
    body: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(blk[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(blk[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in blk[1])
                        + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in blk[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in r)
                           + "</tr>" for r in blk[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(f'<figure><img src="{html.escape(blk[1])}" alt="{html.escape(blk[2])}">'
                        f"<figcaption>{html.escape(blk[2])}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;"
             "padding:0 1rem;color:#222}table{border-collapse:collapse;margin:0.5rem 0 1rem}"
             "th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:right}"
             "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}"
             "img{max-width:100%}code{background:#f3f3f3;padding:0 0.2rem}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(res: Results, run_dir: str | Path, *, summary: pd.DataFrame | None = None,
                 segments: list[SegmentAnalysis] | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir`` (PNG plots found there are
    embedded). ``segments``: the per-segment analyses (computed when the spec lists
    ``analysis.segments`` and they are not given). Returns the two paths."""
    d = Path(run_dir)
    if summary is None:
        summary = summarize(res)
    if segments is None and res.spec.segments:
        segments = segment_analyses(res)
    from experiments.plots import PLOT_FILES, extra_plot_files

    plots = [p for p in (*PLOT_FILES, *extra_plot_files(res)) if (d / p).exists()]
    seg_plots = {plot_file(a.column) for a in segments or []
                 if (d / plot_file(a.column)).exists()}
    blocks = _blocks(res, summary, plots, segments, seg_plots)
    md, page = d / "report.md", d / "report.html"
    md.write_text(render_markdown(blocks), encoding="utf-8")
    page.write_text(render_html(blocks, f"Experiment: {res.spec.name}"), encoding="utf-8")
    return md, page


def headline(res: Results, summary: pd.DataFrame | None = None,
             segments: list[SegmentAnalysis] | None = None) -> list[str]:
    """Plain-text lines for a terminal: the experiment, the recommendation, the truth check,
    the primary metric per arm and, with ``analysis.segments``, one line per segment
    column and arm (:func:`experiments.segment_report.segment_headline`)."""
    if summary is None:
        summary = summarize(res)
    spec = res.spec
    lines = [f"{spec.name}: {len(spec.arms)} arms x {spec.replications} replication(s), "
             f"{spec.subscribers:,} subscribers, {spec.days:g} days"]
    lines += [s.replace("**", "") for s in recommendation(summary, spec)]
    metric = spec.primary
    s = summary[summary["metric"] == metric]
    # for site-wide metrics the simulator knows only the email-caused part exactly
    truth_label = "true email-caused part" if METRICS[metric].scope == "site" else "truth"
    lines.append(f"{METRICS[metric].label} per arm (estimate [CI], lift vs control, "
                 f"{truth_label}):")
    for _, r in s.iterrows():
        ci = (f"[{_fmt_value(metric, r['ci_low'])}, {_fmt_value(metric, r['ci_high'])}]"
              if np.isfinite(r["ci_low"]) else "[n/a]")
        lift = "control" if r["is_control"] else f"lift {_pct(r['lift'])}"
        lines.append(f"  {r['arm']:<18} {_fmt_value(metric, r['estimate']):>9} {ci:<22} "
                     f"{lift:<14} {truth_label} {_fmt_value(metric, r['true_value'])}")
    pol = [a.name for a in spec.arms if a.policy is not None]
    if pol:
        unit = {"click": "clicks", "order": "orders", "revenue": "currency units"}[spec.reward]
        regret = s.set_index("arm")["regret"]
        lines.append(f"expected regret ({unit} lost vs always the true best variant, per "
                     "replication): " + ", ".join(f"{a} {regret[a]:.1f}" for a in pol))
    if res.spec.segments and res.subscriber_metrics is not None:
        lines += segment_headline(segments if segments is not None
                                  else segment_analyses(res))
    return lines


def rerender(res: Results, *, plots: bool = True) -> pd.DataFrame:
    """Rewrite summary.csv, report.md/html (and the PNGs) of a loaded run folder.

    Files are written to a temporary directory inside the run folder and moved into
    place one by one, so an error leaves the previous files intact.
    """
    import os
    import shutil
    import tempfile

    if res.run_dir is None:
        raise ValueError("run_dir: expected results loaded from a run folder, got None")
    d = Path(res.run_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".rerender-", dir=d))
    try:
        summary = summarize(res)
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        segments = segment_analyses(res) if res.spec.segments else []
        write_segment_tables(segments, tmp)
        if plots:
            from experiments.plots import PLOT_FILES, extra_plot_files, write_plots

            for name in [*PLOT_FILES, *extra_plot_files(res),
                         *(plot_file(a.column) for a in segments)]:
                if (d / name).exists():
                    shutil.copy2(d / name, tmp / name)
            write_plots(res, tmp, summary)
            write_segment_plots(segments, tmp)
        write_report(res, tmp, summary=summary, segments=segments)
        for f in sorted(tmp.iterdir()):
            os.replace(f, d / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
