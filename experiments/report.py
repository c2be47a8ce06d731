"""The experiment report: per-arm estimates with intervals, lift vs control, corrected
p-values, Bayesian chance to beat control, SRM checks, the simulator's ground truth next
to every estimate, and a recommendation in plain words.

:func:`summarize` computes the numbers (one row per arm x metric; ``summary.csv``);
:func:`write_report` renders ``report.md`` and ``report.html`` from them.

Statistics (``alpha`` and the correction come from the spec's ``analysis``):

* **per-email metrics** (opens, clicks, attributed orders per email sent): counts pooled
  over replications; per arm a Wilson interval; vs control the two-proportion z-test
  (:func:`experiments.stats.proportions_ztest`: difference with a Wald interval,
  relative lift with the Katz log-ratio interval) and the Beta-Binomial probability of
  beating control (:func:`experiments.stats.prob_beat_control`, uniform priors). Arms
  send different emails, so these comparisons are unpaired.
* **per-subscriber metrics** (orders, revenue, unsubscribes per subscriber): every arm
  of a replication simulates the same subscribers with the same random numbers, so the
  arm-minus-control difference of each (replication, day) block is a paired
  observation. The difference over the run is ``days x mean(block differences)`` with a
  t interval on ``blocks - 1`` degrees of freedom; P(beat control) is its Student-t
  posterior (flat prior). This assumes day blocks are roughly independent (an email's
  effect lands within a day or two); per-arm levels use a Wilson interval for counts
  and the same block t interval for revenue.
* **incremental orders vs a holdout**: treatment minus holdout orders per subscriber,
  Poisson variances of the counts.
* p-values of all (arm, metric) comparisons are adjusted together (Holm by default).
* **ground truth** (from the simulator's expected values of the emails actually sent):
  per-email rates are ``expected_* / sends``; orders per subscriber compare the
  expected email-caused (incremental) orders per subscriber; revenue per subscriber the
  expected email revenue scaled by the incremental share of orders; regret is the
  expected reward lost against the best variant for each email.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from experiments.results import Results, metric_counts
from experiments.spec import METRICS, ExperimentSpec

__all__ = ["LOWER_IS_BETTER", "analysis_kind", "headline", "recommendation", "render_html",
           "render_markdown", "rerender", "srm_checks", "summarize", "write_report"]

#: Metrics where a decrease is an improvement.
LOWER_IS_BETTER: frozenset[str] = frozenset({"unsubscribes"})

SUMMARY_COLUMNS = (
    "metric", "arm", "is_control", "estimate", "ci_low", "ci_high", "numerator",
    "denominator", "diff", "diff_ci_low", "diff_ci_high", "lift", "lift_ci_low",
    "lift_ci_high", "p_value", "p_adjusted", "significant", "prob_beat_control",
    "true_value", "true_diff", "true_lift", "ci_covers_truth", "regret", "method",
)


def _wilson(x: float, n: float, alpha: float) -> tuple[float, float]:
    if n <= 0:
        return (math.nan, math.nan)
    z = st.norm.ppf(1 - alpha / 2)
    p = x / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / den
    return (centre - half, centre + half)


def _truth_table(res: Results) -> pd.DataFrame:
    """Per arm (summed over replications): truth sums over the treatment emails."""
    spec = res.spec
    t = res.truth
    t = t[(t["group"] == "treatment") & (t["source"] != "site")]
    if spec.sources:
        t = t[t["source"].isin(list(spec.sources))]
    cols = ["sends", "expected_opens", "expected_clicks", "expected_orders", "expected_revenue",
            "expected_incremental_orders", "expected_regret"]
    cols = [c for c in cols if c in t.columns]
    g = t.groupby("arm", sort=False)[cols].sum()
    return g.reindex([a.name for a in spec.arms]).fillna(0.0)


def _true_values(res: Results, counts: pd.DataFrame) -> pd.DataFrame:
    """true_value per (metric, arm) and whether it is a level or an email-caused part."""
    spec = res.spec
    tt = _truth_table(res)
    reps = spec.replications
    rows = []
    for name in spec.metrics:
        c = counts[counts["metric"] == name].groupby("arm", sort=False)[
            ["numerator", "denominator"]].sum()
        for arm in tt.index:
            t = tt.loc[arm]
            subs = float(c.loc[arm, "denominator"]) if arm in c.index else math.nan
            sends = float(t.get("sends", 0.0))
            val, kind = math.nan, "level"
            with np.errstate(divide="ignore", invalid="ignore"):
                if name == "opens" and sends > 0:
                    val = t["expected_opens"] / sends
                elif name == "clicks" and sends > 0:
                    val = t["expected_clicks"] / sends
                elif name == "attributed_orders" and sends > 0:
                    val = t["expected_orders"] / sends
                elif name == "attributed_revenue" and subs > 0:
                    val = t["expected_revenue"] / subs
                elif name == "orders" and subs > 0:
                    val, kind = t["expected_incremental_orders"] / subs, "caused"
                elif name == "revenue_per_recipient" and subs > 0:
                    share = (t["expected_incremental_orders"] / t["expected_orders"]
                             if t["expected_orders"] > 0 else 0.0)
                    val, kind = t["expected_revenue"] * share / subs, "caused"
                elif name == "incremental_orders" and subs > 0:
                    val, kind = t["expected_incremental_orders"] / subs, "caused"
            rows.append({"metric": name, "arm": arm, "true_value": float(val), "kind": kind,
                         "regret": float(t.get("expected_regret", math.nan)) / reps})
    return pd.DataFrame(rows)


def analysis_kind(metric: str) -> str:
    """``"per_email"`` (z-test on pooled counts), ``"paired"`` (per-subscriber metric,
    paired over replication x day blocks) or ``"holdout"`` (Poisson difference)."""
    m = METRICS[metric]
    if m.scope == "holdout":
        return "holdout"
    return "per_email" if m.denominator == "sends" else "paired"


def summarize(res: Results) -> pd.DataFrame:
    """One row per (metric, arm): the numbers of the report (and of ``summary.csv``).

    Columns: ``metric, arm, is_control, estimate, ci_low, ci_high, numerator,
    denominator`` (summed over replications; the estimate is numerator / denominator),
    ``diff, diff_ci_low, diff_ci_high`` (arm minus control, metric units), ``lift,
    lift_ci_low, lift_ci_high`` (diff relative to control's estimate), ``p_value,
    p_adjusted, significant, prob_beat_control`` (probability that the arm is better than
    control in the metric's good direction), ``true_value, true_diff, true_lift,
    ci_covers_truth`` (simulator ground truth), ``regret`` (expected reward lost by the
    arm's policy per replication), ``method``.

    Methods (see the module docstring): per-email metrics use the two-proportion z-test
    on pooled counts; per-subscriber metrics compare arms on the same subscribers
    (common random numbers), so the arm-minus-control difference of each (replication,
    day) block is a paired observation: ``diff = days x mean(block differences)`` with
    a t interval on ``B - 1`` degrees of freedom (``B`` blocks), P(beat) its Student-t
    posterior; incremental orders vs a holdout use Poisson variances of the four counts.
    """
    spec = res.spec
    alpha = spec.alpha
    control = spec.control_arm
    counts = metric_counts(res.metrics, spec)
    daily = metric_counts(res.metrics, spec, by_day=True)
    truth = _true_values(res, counts).set_index(["metric", "arm"])
    rows: list[dict[str, Any]] = []
    for name in spec.metrics:
        kind = analysis_kind(name)
        sign = -1.0 if name in LOWER_IS_BETTER else 1.0
        c = counts[counts["metric"] == name]
        dd = daily[daily["metric"] == name]
        ctrl = c[c["arm"] == control]
        xc, nc = float(ctrl["numerator"].sum()), float(ctrl["denominator"].sum())
        for arm in res.arms:
            a = c[c["arm"] == arm]
            x, n = float(a["numerator"].sum()), float(a["denominator"].sum())
            row: dict[str, Any] = {"metric": name, "arm": arm, "is_control": arm == control,
                                   "numerator": x, "denominator": n,
                                   "estimate": x / n if n > 0 else math.nan}
            if kind == "per_email":
                row["ci_low"], row["ci_high"] = _wilson(x, n, alpha)
                row["method"] = "two-proportion z-test on pooled counts (unpaired)"
                if arm != control:
                    row.update(_compare_proportions(xc, nc, x, n, alpha, sign))
            elif kind == "paired":
                if "revenue" in name:
                    row["ci_low"], row["ci_high"] = _block_interval(dd[dd["arm"] == arm], alpha)
                else:
                    row["ci_low"], row["ci_high"] = _wilson(min(x, n), n, alpha)
                row["method"] = ("paired t-test over replication x day blocks ("
                                 + ("common random numbers)" if spec.common_random_numbers
                                    else "independent worlds per arm: paired by day only)"))
                if arm != control:
                    row.update(_compare_paired(dd[dd["arm"] == control], dd[dd["arm"] == arm],
                                               alpha, sign, row_estimate(rows, name, control)))
            else:
                hx = float(a["holdout_numerator"].sum())
                hn = float(a["holdout_denominator"].sum())
                row["estimate"] = (x / n - hx / hn) if n > 0 and hn > 0 else math.nan
                se = _poisson_se_incremental(a)
                z = st.norm.ppf(1 - alpha / 2)
                row["ci_low"], row["ci_high"] = row["estimate"] - z * se, row["estimate"] + z * se
                row["method"] = "treatment minus holdout, Poisson variances of the counts"
                if arm != control:
                    row.update(_compare_holdout(ctrl, a, alpha, sign,
                                                row_estimate(rows, name, control)))
            t = truth.loc[(name, arm)]
            tc = truth.loc[(name, control)]
            row["true_value"] = t["true_value"]
            row["regret"] = t["regret"]
            if arm != control:
                td = t["true_value"] - tc["true_value"]
                row["true_diff"] = td
                if t["kind"] == "level":
                    row["true_lift"] = (t["true_value"] / tc["true_value"] - 1
                                        if tc["true_value"] > 0 else math.nan)
                else:
                    ce = row_estimate(rows, name, control)
                    row["true_lift"] = td / ce if ce and ce > 0 else math.nan
                lo, hi = row.get("diff_ci_low", math.nan), row.get("diff_ci_high", math.nan)
                row["ci_covers_truth"] = (bool(lo <= td <= hi) if np.isfinite([lo, hi, td]).all()
                                          else None)
            rows.append(row)
    df = pd.DataFrame(rows)
    for col in SUMMARY_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    p = df["p_value"].to_numpy(dtype=float)
    ok = np.isfinite(p)
    adj = np.full(len(df), np.nan)
    if ok.any():
        from experiments.stats import adjust_pvalues

        adj[ok] = adjust_pvalues(p[ok], spec.correction)
    df["p_adjusted"] = adj
    df["significant"] = [bool(v < alpha) if np.isfinite(v) else None for v in adj]
    df["is_control"] = df["is_control"].astype(bool)
    return df[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def row_estimate(rows: list[dict[str, Any]], metric: str, arm: str) -> float:
    """The estimate already computed for (metric, arm) in ``rows`` (NaN if absent)."""
    for r in rows:
        if r["metric"] == metric and r["arm"] == arm:
            return float(r.get("estimate", math.nan))
    return math.nan


def _compare_proportions(xc: float, nc: float, x: float, n: float, alpha: float,
                         sign: float) -> dict[str, Any]:
    from experiments.stats import prob_beat_control, proportions_ztest

    out: dict[str, Any] = {}
    if nc <= 0 or n <= 0 or (xc + x) <= 0 or (xc + x) >= (nc + n):
        return out
    r = proportions_ztest(xc, nc, x, n, alpha=alpha)
    out.update(diff=r.effect, diff_ci_low=r.ci_low, diff_ci_high=r.ci_high,
               lift=r.relative_lift, lift_ci_low=r.lift_ci_low, lift_ci_high=r.lift_ci_high,
               p_value=r.p_value)
    pb = float(prob_beat_control(round(xc), round(nc), round(x), round(n)))
    out["prob_beat_control"] = pb if sign > 0 else 1.0 - pb
    return out


def _blocks_of(d: pd.DataFrame) -> pd.Series:
    return d.set_index(["replication", "day"])["value"].sort_index()


def _block_interval(d: pd.DataFrame, alpha: float) -> tuple[float, float]:
    """t interval of ``days x mean(block values)`` (a per-subscriber level)."""
    y = _blocks_of(d).dropna()
    b = len(y)
    if b < 2:
        return (math.nan, math.nan)
    days = y.groupby(level=0).size().max()
    est = float(y.groupby(level=0).sum().mean())
    se = float(days * y.std(ddof=1) / math.sqrt(b))
    q = st.t.ppf(1 - alpha / 2, b - 1)
    return (est - q * se, est + q * se)


def _compare_paired(ctrl: pd.DataFrame, arm: pd.DataFrame, alpha: float, sign: float,
                    control_estimate: float) -> dict[str, Any]:
    d = (_blocks_of(arm) - _blocks_of(ctrl)).dropna()
    b = len(d)
    if b < 2:
        return {}
    days = d.groupby(level=0).size().max()
    diff = float(d.groupby(level=0).sum().mean())
    se = float(days * d.std(ddof=1) / math.sqrt(b))
    q = st.t.ppf(1 - alpha / 2, b - 1)
    lo, hi = diff - q * se, diff + q * se
    if se > 0:
        tstat = diff / se
        p = float(2 * st.t.sf(abs(tstat), b - 1))
        pb = float(st.t.cdf(sign * tstat, b - 1))
    else:
        p = 1.0 if diff == 0 else 0.0
        pb = 0.5 if diff == 0 else float(sign * diff > 0)
    out: dict[str, Any] = {"diff": diff, "diff_ci_low": lo, "diff_ci_high": hi, "p_value": p,
                           "prob_beat_control": pb}
    if control_estimate and control_estimate > 0:
        out.update(lift=diff / control_estimate, lift_ci_low=lo / control_estimate,
                   lift_ci_high=hi / control_estimate)
    return out


def _poisson_se_incremental(a: pd.DataFrame) -> float:
    x, n = float(a["numerator"].sum()), float(a["denominator"].sum())
    xh, nh = float(a["holdout_numerator"].sum()), float(a["holdout_denominator"].sum())
    if n <= 0 or nh <= 0:
        return math.nan
    return math.sqrt(x / n**2 + xh / nh**2)


def _compare_holdout(ctrl: pd.DataFrame, a: pd.DataFrame, alpha: float, sign: float,
                     control_estimate: float) -> dict[str, Any]:
    def est(df: pd.DataFrame) -> float:
        n, hn = float(df["denominator"].sum()), float(df["holdout_denominator"].sum())
        if n <= 0 or hn <= 0:
            return math.nan
        return float(df["numerator"].sum()) / n - float(df["holdout_numerator"].sum()) / hn

    diff = est(a) - est(ctrl)
    se = math.hypot(_poisson_se_incremental(a), _poisson_se_incremental(ctrl))
    if not (np.isfinite(diff) and np.isfinite(se) and se > 0):
        return {}
    z = st.norm.ppf(1 - alpha / 2)
    lo, hi = diff - z * se, diff + z * se
    out: dict[str, Any] = {"diff": diff, "diff_ci_low": lo, "diff_ci_high": hi,
                           "p_value": float(2 * st.norm.sf(abs(diff / se))),
                           "prob_beat_control": float(st.norm.cdf(sign * diff / se))}
    if control_estimate and control_estimate > 0:
        out.update(lift=diff / control_estimate, lift_ci_low=lo / control_estimate,
                   lift_ci_high=hi / control_estimate)
    return out


# ---------------------------------------------------------------------------
# SRM


def srm_checks(res: Results) -> list[dict[str, Any]]:
    """Sample-ratio-mismatch checks of the randomized splits inside arms.

    Holdouts (treatment vs holdout subscribers against ``1 - h : h``) and fixed-split
    ``ab`` policies (sends per variant against the configured weights; emails, not
    subscribers, so a mismatch may also mean the variants changed who gets emails).
    Arms themselves are not randomized: they share the population (common random
    numbers).
    """
    from experiments.stats import srm_test

    out: list[dict[str, Any]] = []
    mt = res.metrics
    site = mt[(mt["source"] == "site") & (mt["metric"] == "subscribers")]
    for arm in res.spec.arms:
        if arm.holdout > 0:
            s = site[site["arm"] == arm.name]
            daily = s.groupby(["replication", "group", "day"])["value"].sum()
            size = daily.groupby(level=[0, 1]).max().groupby(level=1).sum()
            tr, ho = float(size.get("treatment", 0.0)), float(size.get("holdout", 0.0))
            if tr + ho > 0:
                r = srm_test([round(tr), round(ho)], [1 - arm.holdout, arm.holdout])
                out.append({"arm": arm.name, "split": "treatment / holdout subscribers",
                            "observed": f"{tr:.0f} / {ho:.0f}",
                            "expected_share": f"{1 - arm.holdout:.0%} / {arm.holdout:.0%}",
                            "p_value": r.p_value, "mismatch": r.mismatch})
        if arm.policy is not None and arm.policy.name == "ab":
            pol = arm.policy.params
            names = list(pol.get("arms", []))
            weights = list(pol.get("weights") or [1.0] * len(names))
            e = mt[(mt["arm"] == arm.name) & (mt["metric"] == "sends") & (mt["source"] != "site")
                   & (mt["group"] == "treatment")]
            sends = e.groupby("variant")["value"].sum().reindex(names).fillna(0.0)
            if sends.sum() > 0 and len(names) >= 2:
                r = srm_test(np.round(sends.to_numpy()).astype(int), weights)
                total = sum(weights)
                out.append({"arm": arm.name, "split": "A/B sends per variant",
                            "observed": " / ".join(f"{v:.0f}" for v in sends),
                            "expected_share": " / ".join(f"{w / total:.0%}" for w in weights),
                            "p_value": r.p_value, "mismatch": r.mismatch})
    return out


# ---------------------------------------------------------------------------
# recommendation


def _fmt_value(metric: str, v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    if METRICS[metric].kind == "proportion" and metric != "orders":
        return f"{100 * v:.2f}%"
    if "revenue" in metric:
        return f"{v:.3f}"
    return f"{v:.4f}"


def _pct(v: float, signed: bool = True) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%"


def _good(metric: str, diff: float) -> bool:
    return diff < 0 if metric in LOWER_IS_BETTER else diff > 0


def recommendation(summary: pd.DataFrame, spec: ExperimentSpec) -> list[str]:
    """The recommendation in plain words (sentences), from the primary metric.

    An arm is recommended over control only when its adjusted p-value is below
    ``alpha`` in the good direction; ties go to the largest estimated improvement.
    The last sentence compares the call with the simulator's ground truth.
    """
    metric = spec.primary
    label = METRICS[metric].label
    alpha = spec.alpha
    control = spec.control_arm
    s = summary[summary["metric"] == metric]
    others = s[~s["is_control"]]
    wins = others[(others["significant"] == True) & others["diff"].map(  # noqa: E712
        lambda d: _good(metric, d) if np.isfinite(d) else False)]
    losses = others[(others["significant"] == True) & others["diff"].map(  # noqa: E712
        lambda d: not _good(metric, d) if np.isfinite(d) else False)]
    out: list[str] = []
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    if len(wins):
        best = wins.loc[(sign * wins["diff"]).idxmax()]
        chosen = best["arm"]
        out.append(
            f"Recommendation: switch to **{chosen}**. It changed {label} by "
            f"{_pct(best['lift'])} vs {control} ({_fmt_value(metric, best['estimate'])} vs "
            f"{_fmt_value(metric, s[s['is_control']]['estimate'].iloc[0])}; "
            f"{100 * (1 - alpha):.0f}% CI of the lift {_pct(best['lift_ci_low'])} to "
            f"{_pct(best['lift_ci_high'])}, adjusted p = {best['p_adjusted']:.2g}, "
            f"chance to beat control {_pct(best['prob_beat_control'], False)}).")
    else:
        chosen = control
        if len(others):
            lead = others.loc[(sign * others["diff"].fillna(-np.inf * sign)).idxmax()]
            out.append(
                f"Recommendation: keep **{control}**. No arm beat it on {label} at the "
                f"{alpha:g} level after correction; the closest, {lead['arm']}, differs by "
                f"{_pct(lead['lift'])} (adjusted p = {_num(lead['p_adjusted'])}, chance to "
                f"beat control {_pct(lead['prob_beat_control'], False)}). A larger or longer "
                "experiment is needed to detect an effect of that size.")
    if len(losses):
        names = ", ".join(losses["arm"])
        out.append(f"Significantly worse than {control} on {label}: {names}.")
    guard = summary[(summary["metric"] == "unsubscribes") & (summary["arm"] == chosen)]
    if chosen != control and len(guard) and guard["significant"].iloc[0] is True \
            and guard["diff"].iloc[0] > 0:
        out.append(f"Caution: {chosen} also raised unsubscribes by "
                   f"{_pct(guard['lift'].iloc[0])} (adjusted p = "
                   f"{guard['p_adjusted'].iloc[0]:.2g}).")
    truth = s.set_index("arm")["true_value"]
    if truth.notna().any():
        best_true = (truth * sign).idxmax()
        verdict = ("agrees with" if best_true == chosen else "differs from")
        out.append(
            f"Ground truth: in the simulator the best arm on {label} is **{best_true}**; "
            f"the recommendation {verdict} it.")
    return out


def _num(v: Any) -> str:
    return f"{v:.2g}" if v is not None and np.isfinite(v) else "n/a"


# ---------------------------------------------------------------------------
# rendering


def _blocks(res: Results, summary: pd.DataFrame, plots: Sequence[str]) -> list[tuple]:
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
    b.append(("h2", "Results"))
    for metric in spec.metrics:
        md = METRICS[metric]
        s = summary[summary["metric"] == metric]
        ci = f"{100 * (1 - spec.alpha):.0f}% CI"
        header = ["arm", md.label, ci, "lift vs control", f"lift {ci}", "p (adj.)",
                  "P(beat control)", "truth", "true lift"]
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
        if metric in ("orders", "revenue_per_recipient", "incremental_orders"):
            note += (" Truth column: the simulator's expected email-caused (incremental) "
                     "part per subscriber; the true lift is its difference to control "
                     "relative to control's observed level.")
        cov = s["ci_covers_truth"].dropna()
        if len(cov):
            note += (f" The interval of the difference covered the true difference for "
                     f"{int(sum(bool(v) for v in cov))} of {len(cov)} arm(s).")
        b.append(("p", note))
    pol = [a for a in spec.arms if a.policy is not None]
    if pol:
        b.append(("h2", "Policies"))
        rows = []
        truth = res.truth[(res.truth["group"] == "treatment") & (res.truth["source"] != "site")]
        for a in pol:
            assert a.policy is not None
            t = truth[(truth["arm"] == a.name) & (truth["variant"] != "")]
            regret = float(t["expected_regret"].sum()) / spec.replications \
                if "expected_regret" in t else math.nan
            sends = float(t["sends"].sum()) / spec.replications if "sends" in t else math.nan
            best = (t.groupby("best_arm")["sends"].sum().idxmax()
                    if "best_arm" in t and len(t) else "")
            share = _best_share(res, a.name, best)
            rows.append([a.name, a.policy.name, a.policy.decides, best, _pct(share, False),
                         f"{regret:.1f}", f"{1000 * regret / sends:.2f}" if sends else "n/a"])
        b.append(("table", ["arm", "policy", "decides", "true best variant",
                            "share of sends to it", "expected regret (reward units)",
                            "regret per 1,000 emails"], rows))
        b.append(("p", "Regret: expected reward lost against always sending the true best "
                  "variant, summed over the emails of a replication (mean over replications)."))
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


def _best_share(res: Results, arm: str, best: str) -> float:
    mt = res.metrics
    e = mt[(mt["arm"] == arm) & (mt["metric"] == "sends") & (mt["source"] != "site")
           & (mt["group"] == "treatment")]
    total = float(e["value"].sum())
    return float(e.loc[e["variant"] == best, "value"].sum()) / total if total else math.nan


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
                     f" ({arm.campaign.subject_style})")
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


def write_report(res: Results, run_dir: str | Path, *, summary: pd.DataFrame | None = None
                 ) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir`` (PNG plots found there are
    embedded). Returns the two paths."""
    d = Path(run_dir)
    if summary is None:
        summary = summarize(res)
    from experiments.plots import PLOT_FILES

    plots = [p for p in PLOT_FILES if (d / p).exists()]
    blocks = _blocks(res, summary, plots)
    md, page = d / "report.md", d / "report.html"
    md.write_text(render_markdown(blocks), encoding="utf-8")
    page.write_text(render_html(blocks, f"Experiment: {res.spec.name}"), encoding="utf-8")
    return md, page


def headline(res: Results, summary: pd.DataFrame | None = None) -> list[str]:
    """Plain-text lines for a terminal: the experiment, the recommendation, the truth check
    and the primary metric per arm."""
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
        if plots:
            from experiments.plots import PLOT_FILES, write_plots

            for name in PLOT_FILES:
                if (d / name).exists():
                    shutil.copy2(d / name, tmp / name)
            write_plots(res, tmp, summary)
        write_report(res, tmp, summary=summary)
        for f in sorted(tmp.iterdir()):
            os.replace(f, d / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
