"""The per-arm analysis of an experiment run: the numbers the report states, computed from
the run's tidy tables (no rendering here; :mod:`experiments.report` words them).

* :func:`summarize` -- one row per arm x metric: estimate, interval, difference and lift
  vs control, raw and adjusted p-values, chance to beat control, the simulator's ground
  truth (``summary.csv``);
* :func:`srm_checks` -- sample-ratio checks of the randomized splits inside arms;
* :func:`recommend` -- which arm the primary metric supports (the report words it).

The tidy-table sums it starts from (:func:`~experiments.tables.metric_counts`, re-exported
here) are in :mod:`experiments.tables`; regret curves and the policy table in
:mod:`experiments.regret`.

Statistics (``alpha`` and the correction come from the spec's ``analysis``; the tests
themselves are in :mod:`experiments.stats`):

* **per-email metrics** (opens, clicks, attributed orders per email sent): counts pooled
  over replications; per arm a Wilson interval; vs control the two-proportion z-test
  (:func:`experiments.stats.proportions_ztest`: p-value, relative lift with the Katz
  log-ratio interval; the difference's interval is Newcombe's hybrid score interval,
  :func:`experiments.stats.newcombe_diff_interval`, which holds its coverage on few
  events) and the Beta-Binomial probability of beating control
  (:func:`experiments.stats.prob_beat_control`, uniform priors). Arms send different
  emails, so these comparisons are unpaired.
* **per-subscriber metrics** (orders, revenue, unsubscribes per subscriber): every arm
  of a replication simulates the same subscribers with the same random numbers, so the
  arm-minus-control difference of each (replication, day) block is a paired
  observation (:func:`experiments.stats.block_ttest`): the difference over the run is
  ``days x mean(block differences)`` with a t interval on ``blocks - 1`` degrees of
  freedom; P(beat control) is its Student-t posterior (flat prior). When every block
  difference is equal (no order differed), a count metric's interval is the exact Poisson
  bound of 0 discordant events, ``+-(-ln(alpha/2)) / subscribers``, and a revenue metric
  has none (a point interval would claim certainty). This assumes day
  blocks are roughly independent (an email's effect lands within a day or two); per-arm
  levels use a Wilson interval for counts and the same block t interval for revenue.
* **incremental orders vs a holdout**: treatment minus holdout orders per subscriber,
  Poisson variances of the counts (:func:`experiments.stats.poisson_rate_diff`); arms
  compared with :func:`experiments.stats.normal_diff_test`. **Per email**
  (``incremental_orders_per_email``) the same difference times the treatment group's
  subscribers per email sent to it (interval and standard error scaled alike: the number
  of emails is fixed given who was treated); its truth is the expected email-caused
  orders per email sent.
* p-values of all (arm, metric) comparisons are adjusted together (Holm by default).
* **ground truth** (from the simulator's expected values of the emails actually sent,
  on the basis the estimate counts, docs/domain.md "Ground truth"): per-email rates are
  ``expected_* / sends``, responses within the reward window and the run;
  orders per subscriber compare the expected email-caused (incremental) orders per
  subscriber landing before the run's end; revenue per subscriber those orders times the
  mean value of the attributed orders; regret is the expected reward (within the reward
  window) lost against the best variant for each email.

Functions take a run's tables as :class:`experiments.Results` (anything with ``spec``,
``metrics``, ``truth`` and ``arms``, see :class:`experiments.tables.RunTables`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from experiments.metrics import PER_EMAIL_HOLDOUT
from experiments.spec import METRICS, ExperimentSpec
from experiments.stats import (
    adjust_pvalues,
    block_ttest,
    newcombe_diff_interval,
    normal_diff_test,
    poisson_rate_diff,
    prob_beat_control,
    proportions_ztest,
    srm_test,
    wilson_interval,
)
from experiments.tables import RunTables, metric_counts

__all__ = ["LOWER_IS_BETTER", "SUMMARY_COLUMNS", "Recommendation", "analysis_kind",
           "guardrail_breaches", "guardrail_metrics",
           "metric_counts", "recommend", "srm_checks", "summarize", "true_values",
           "truth_value"]

#: Metrics where a decrease is an improvement.
LOWER_IS_BETTER: frozenset[str] = frozenset({"unsubscribes"})

#: Columns of :func:`summarize` (and ``summary.csv``), in order.
SUMMARY_COLUMNS = (
    "metric", "arm", "is_control", "estimate", "ci_low", "ci_high", "numerator",
    "denominator", "diff", "diff_ci_low", "diff_ci_high", "lift", "lift_ci_low",
    "lift_ci_high", "p_value", "p_adjusted", "significant", "prob_beat_control",
    "true_value", "true_diff", "true_lift", "ci_covers_truth", "regret", "method",
)


# ---------------------------------------------------------------------------
# ground truth


def _truth_table(res: RunTables) -> pd.DataFrame:
    """Per arm (summed over replications): truth sums over the treatment emails, and
    ``holdout_incremental_orders``: the email-caused orders of the holdout group's emails
    (a holdout gets no triggered mail, but campaigns reach it too)."""
    spec = res.spec
    t = res.truth
    t = t[t["source"] != "site"]
    if spec.sources:
        t = t[t["source"].isin(list(spec.sources))]
    cols = ["sends", "expected_opens", "expected_clicks", "expected_orders", "expected_revenue",
            "expected_incremental_orders", "expected_regret", "expected_margin",
            "expected_unsubscribes"]
    cols = [c for c in cols if c in t.columns]
    arms = [a.name for a in spec.arms]
    g = t[t["group"] == "treatment"].groupby("arm", sort=False)[cols].sum()
    g = g.reindex(arms).fillna(0.0)
    h = t[t["group"] == "holdout"].groupby("arm", sort=False)["expected_incremental_orders"]
    g["holdout_incremental_orders"] = h.sum().reindex(arms).fillna(0.0)
    return g


def true_values(res: RunTables, counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The simulator's true value of every (metric, arm).

    Parameters
    ----------
    res : Results
    counts : DataFrame, optional
        :func:`metric_counts` of the run (computed when not given); gives the subscribers.

    Returns
    -------
    DataFrame
        Columns ``metric, arm, true_value`` (metric units; NaN when the arm sent nothing),
        ``kind`` (``"level"``: the metric itself; ``"caused"``: the email-caused part of a
        per-subscriber metric) and ``regret`` (expected reward lost by the arm's emails
        against the best variant, per replication, reward units).
    """
    spec = res.spec
    if counts is None:
        counts = metric_counts(res.metrics, spec)
    tt = _truth_table(res)
    reps = spec.replications
    rows = []
    for name in spec.metrics:
        cols = ["numerator", "denominator"] + (["holdout_denominator"]
                                               if METRICS[name].scope == "holdout" else [])
        c = counts[counts["metric"] == name].groupby("arm", sort=False)[cols].sum()
        for arm in tt.index:
            t = tt.loc[arm]
            subs = float(c.loc[arm, "denominator"]) if arm in c.index else math.nan
            held = (float(c.loc[arm, "holdout_denominator"])
                    if "holdout_denominator" in c.columns and arm in c.index else math.nan)
            val, kind = truth_value(name, t, subs, held)
            rows.append({"metric": name, "arm": arm, "true_value": float(val), "kind": kind,
                         "regret": float(t.get("expected_regret", math.nan)) / reps})
    return pd.DataFrame(rows)


def truth_value(name: str, t: Any, subs: float, held: float = math.nan
                ) -> tuple[float, str]:
    """The simulator's true value of metric ``name`` from truth sums ``t``.

    Parameters
    ----------
    name : str
        A key of :data:`~experiments.spec.METRICS`.
    t : mapping
        Sums over the treatment group's emails: ``sends`` and the ``expected_*`` columns
        of the truth table (a row of it, or the same sums over some subscribers).
    subs : float
        Treatment-group subscribers the sums are over (NaN if unknown).
    held : float
        Holdout-group subscribers (holdout metrics): their emails' caused orders,
        ``t["holdout_incremental_orders"]``, per holdout subscriber are subtracted, as the
        estimate (treatment minus holdout) subtracts their orders.

    Returns
    -------
    value : float
        In the metric's units; NaN without emails (per-email metrics), without
        subscribers, or when the sums lack the metric's column (tables written before
        it existed).
    kind : {"level", "caused"}
        ``"level"``: the metric itself; ``"caused"``: the email-caused part of a
        per-subscriber metric (organic orders cancel in a difference between arms on the
        same subscribers).
    """
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
        elif name == "attributed_margin" and subs > 0 and "expected_margin" in t:
            val = t["expected_margin"] / subs
        elif name == "unsubscribes" and subs > 0 and "expected_unsubscribes" in t:
            val = t["expected_unsubscribes"] / subs
        elif name == "orders" and subs > 0:
            val, kind = t["expected_incremental_orders"] / subs, "caused"
        elif name == "revenue_per_recipient" and subs > 0:
            share = (t["expected_incremental_orders"] / t["expected_orders"]
                     if t["expected_orders"] > 0 else 0.0)
            val, kind = t["expected_revenue"] * share / subs, "caused"
        elif name in ("incremental_orders", "incremental_orders_per_email") and subs > 0:
            caused = t["expected_incremental_orders"] / subs
            if held > 0:
                caused -= t.get("holdout_incremental_orders", 0.0) / held
            if name == "incremental_orders":
                val, kind = caused, "caused"
            elif sends > 0:
                val = caused * subs / sends
    return float(val), kind


# ---------------------------------------------------------------------------
# per arm x metric


def analysis_kind(metric: str) -> str:
    """``"per_email"`` (z-test on pooled counts), ``"paired"`` (per-subscriber metric,
    paired over replication x day blocks) or ``"holdout"`` (Poisson difference)."""
    m = METRICS[metric]
    if m.scope == "holdout":
        return "holdout"
    return "per_email" if m.denominator == "sends" else "paired"


def summarize(res: RunTables) -> pd.DataFrame:
    """One row per (metric, arm): the numbers of the report (and of ``summary.csv``).

    Parameters
    ----------
    res : Results

    Returns
    -------
    DataFrame, shape (len(spec.metrics) * len(spec.arms), len(SUMMARY_COLUMNS))
        Columns ``metric, arm, is_control, estimate, ci_low, ci_high, numerator,
        denominator`` (summed over replications; the estimate is numerator / denominator,
        in the metric's units), ``diff, diff_ci_low, diff_ci_high`` (arm minus control,
        metric units), ``lift, lift_ci_low, lift_ci_high`` (diff relative to control's
        estimate), ``p_value, p_adjusted, significant, prob_beat_control`` (probability
        that the arm is better than control in the metric's good direction),
        ``true_value, true_diff, true_lift, ci_covers_truth`` (simulator ground truth),
        ``regret`` (expected reward lost by the arm's policy per replication), ``method``.
        Control rows and comparisons without data hold NaN.

    Notes
    -----
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
    truth = true_values(res, counts).set_index(["metric", "arm"])
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
                if METRICS[name].money:
                    row["ci_low"], row["ci_high"] = _block_interval(dd[dd["arm"] == arm], alpha)
                else:
                    row["ci_low"], row["ci_high"] = _wilson(min(x, n), n, alpha)
                row["method"] = ("paired t-test over replication x day blocks ("
                                 + ("common random numbers)" if spec.common_random_numbers
                                    else "independent worlds per arm: paired by day only)"))
                if arm != control:
                    row.update(_compare_paired(dd[dd["arm"] == control], dd[dd["arm"] == arm],
                                               alpha, sign, _row_estimate(rows, name, control),
                                               n if METRICS[name].kind == "proportion"
                                               else None))
            else:
                per_email = name in PER_EMAIL_HOLDOUT
                inc = _incremental(a, alpha, per_email)
                row["estimate"] = inc.effect if inc is not None else math.nan
                row["ci_low"], row["ci_high"] = ((inc.ci_low, inc.ci_high) if inc is not None
                                                 else (math.nan, math.nan))
                row["method"] = "treatment minus holdout, Poisson variances of the counts"
                if arm != control:
                    row.update(_compare_holdout(ctrl, a, alpha, sign,
                                                _row_estimate(rows, name, control), per_email))
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
                    ce = _row_estimate(rows, name, control)
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
        adj[ok] = adjust_pvalues(p[ok], spec.correction)
    df["p_adjusted"] = adj
    df["significant"] = [bool(v < alpha) if np.isfinite(v) else None for v in adj]
    df["is_control"] = df["is_control"].astype(bool)
    return df[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def _row_estimate(rows: list[dict[str, Any]], metric: str, arm: str) -> float:
    """The estimate already computed for (metric, arm) in ``rows`` (NaN if absent)."""
    for r in rows:
        if r["metric"] == metric and r["arm"] == arm:
            return float(r.get("estimate", math.nan))
    return math.nan


def _wilson(x: float, n: float, alpha: float) -> tuple[float, float]:
    """Wilson interval of ``x / n``; NaN when there are no trials."""
    if n <= 0:
        return (math.nan, math.nan)
    low, high = wilson_interval(x, n, alpha)
    return (float(low), float(high))


def _with_lift(out: dict[str, Any], control_estimate: float) -> dict[str, Any]:
    """Add the lift (difference relative to control's level) and its interval."""
    if control_estimate and control_estimate > 0:
        out.update(lift=out["diff"] / control_estimate,
                   lift_ci_low=out["diff_ci_low"] / control_estimate,
                   lift_ci_high=out["diff_ci_high"] / control_estimate)
    return out


def _compare_proportions(xc: float, nc: float, x: float, n: float, alpha: float,
                         sign: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if nc <= 0 or n <= 0 or (xc + x) <= 0 or (xc + x) >= (nc + n):
        return out
    r = proportions_ztest(xc, nc, x, n, alpha=alpha)
    # the difference's interval is Newcombe's (from the two Wilson intervals): the Wald
    # interval of the z-test collapses on few events (0/23 has no variance) and covered
    # the true difference too rarely at small sizes
    lo, hi = newcombe_diff_interval(round(xc), round(nc), round(x), round(n), alpha)
    out.update(diff=r.effect, diff_ci_low=float(lo), diff_ci_high=float(hi),
               lift=r.relative_lift, lift_ci_low=r.lift_ci_low, lift_ci_high=r.lift_ci_high,
               p_value=r.p_value)
    pb = float(prob_beat_control(round(xc), round(nc), round(x), round(n)))
    out["prob_beat_control"] = pb if sign > 0 else 1.0 - pb
    return out


def _blocks_of(d: pd.DataFrame) -> pd.Series:
    return d.set_index(["replication", "day"])["value"].sort_index()


def _block_matrix(y: pd.Series) -> np.ndarray:
    """(replication, day) block values -> array, one row per replication (NaN: missing)."""
    return y.unstack().to_numpy(dtype=float)


def _block_interval(d: pd.DataFrame, alpha: float) -> tuple[float, float]:
    """t interval of ``days x mean(block values)`` (a per-subscriber level)."""
    y = _blocks_of(d).dropna()
    if len(y) < 2:
        return (math.nan, math.nan)
    r = block_ttest(_block_matrix(y), alpha)
    return (r.ci_low, r.ci_high)


def _compare_paired(ctrl: pd.DataFrame, arm: pd.DataFrame, alpha: float, sign: float,
                    control_estimate: float, subscribers: float | None = None) -> dict[str, Any]:
    """Paired block t comparison. When every block difference is equal (no variation,
    typically no order differed between the arms) the t interval is a point, which claims
    a certainty the data do not have: a count metric (``subscribers`` given: the arm's
    summed denominator) then gets the exact Poisson bound of 0 discordant events,
    ``+-(-ln(alpha / 2)) / subscribers`` around the difference, not below minus the
    control's estimate plus that bound; other metrics no interval."""
    d = (_blocks_of(arm) - _blocks_of(ctrl)).dropna()
    if len(d) < 2:
        return {}
    r = block_ttest(_block_matrix(d), alpha)
    out: dict[str, Any] = {"diff": r.effect, "diff_ci_low": r.ci_low, "diff_ci_high": r.ci_high,
                           "p_value": r.p_value,
                           "prob_beat_control": r.prob_positive if sign > 0 else r.prob_negative}
    if not r.standard_error > 0:
        if subscribers is not None and subscribers > 0:
            half = -math.log(alpha / 2) / subscribers
            low = r.effect - half
            # the arm's rate cannot fall below 0, so the difference is at least minus the
            # control's true rate, which is at most its estimate + the same Poisson bound
            # (clipping at minus the estimate excluded a true drop from 0 observed events)
            if np.isfinite(control_estimate):
                low = max(low, -(control_estimate + half))
            out.update(diff_ci_low=low, diff_ci_high=r.effect + half)
        else:
            out.update(diff_ci_low=math.nan, diff_ci_high=math.nan)
    return _with_lift(out, control_estimate)


def per_email(r: Any, subscribers: float, sends: float) -> Any:
    """A treatment-minus-holdout result per subscriber (a ZTestResult) as per email sent:
    the difference, its interval and standard error times ``subscribers / sends`` (the
    number of emails is fixed by the design given who was treated: only the orders are
    random); None without emails."""
    if sends <= 0:
        return None
    k = subscribers / sends
    return dataclasses.replace(r, effect=r.effect * k, ci_low=r.ci_low * k,
                               ci_high=r.ci_high * k, standard_error=r.standard_error * k)


def _incremental(a: pd.DataFrame, alpha: float, per_email_sent: bool = False) -> Any:
    """Treatment minus holdout rate of one arm (a :class:`~experiments.stats.ZTestResult`),
    None without subscribers in either group; with ``per_email_sent``, per email of the
    ``sends`` column (:func:`per_email`)."""
    x, n = float(a["numerator"].sum()), float(a["denominator"].sum())
    xh, nh = float(a["holdout_numerator"].sum()), float(a["holdout_denominator"].sum())
    if n <= 0 or nh <= 0:
        return None
    r = poisson_rate_diff(xh, nh, x, n, alpha=alpha)
    return per_email(r, n, float(a["sends"].sum())) if per_email_sent else r


def _compare_holdout(ctrl: pd.DataFrame, a: pd.DataFrame, alpha: float, sign: float,
                     control_estimate: float, per_email: bool = False) -> dict[str, Any]:
    ra, rc = _incremental(a, alpha, per_email), _incremental(ctrl, alpha, per_email)
    if ra is None or rc is None:
        return {}
    r = normal_diff_test(rc.effect, rc.standard_error, ra.effect, ra.standard_error,
                         alpha=alpha)
    if not (np.isfinite(r.effect) and np.isfinite(r.standard_error) and r.standard_error > 0):
        return {}
    out: dict[str, Any] = {"diff": r.effect, "diff_ci_low": r.ci_low, "diff_ci_high": r.ci_high,
                           "p_value": r.p_value,
                           "prob_beat_control": r.prob_positive if sign > 0 else r.prob_negative}
    return _with_lift(out, control_estimate)


# ---------------------------------------------------------------------------
# sample ratio checks


def srm_checks(res: RunTables) -> list[dict[str, Any]]:
    """Sample-ratio-mismatch checks of the randomized splits inside arms.

    Holdouts (treatment vs holdout subscribers against ``1 - h : h``) and fixed-split
    ``ab`` policies (sends per variant against the configured weights; emails, not
    subscribers, so a mismatch may also mean the variants changed who gets emails).
    Arms themselves are not randomized: they share the population (common random
    numbers).

    Returns
    -------
    list of dict
        One per check: ``arm, split`` (what was split), ``observed`` and
        ``expected_share`` (text, ``" / "`` between the parts), ``p_value`` (chi-square,
        :func:`experiments.stats.srm_test`) and ``mismatch`` (``p_value < 0.001``).
    """
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


@dataclass(frozen=True)
class Recommendation:
    """The decision on the primary metric (see :func:`recommend`).

    Attributes
    ----------
    metric, control : the primary metric and the control arm.
    chosen : the arm to use: the winner, or control when no arm won.
    winner : summary row of the winning arm, or None.
    closest : when no arm won, the summary row of the arm with the largest estimated
        improvement (None without other arms).
    control_estimate : control's estimate of ``metric`` (metric units).
    losers : arms significantly worse than control.
    guardrails : the summary rows of ``chosen`` on the guardrail metrics it made
        significantly worse (never for control): the spec's ``guardrails``, or
        ``unsubscribes`` when it has none.
    best_true : the best arm by the simulator's truth on ``metric`` (None without truth).
    """

    metric: str
    control: str
    chosen: str
    winner: pd.Series | None
    closest: pd.Series | None
    control_estimate: float
    losers: list[str]
    guardrails: list[pd.Series]
    best_true: str | None


def _good(metric: str, diff: float) -> bool:
    return diff < 0 if metric in LOWER_IS_BETTER else diff > 0


def guardrail_metrics(spec: ExperimentSpec) -> tuple[str, ...]:
    """The metrics that must not get worse: the spec's ``guardrails``, or ``unsubscribes``
    when it declares none."""
    return spec.guardrails or ("unsubscribes",)


def guardrail_breaches(summary: pd.DataFrame, spec: ExperimentSpec, arm: str
                       ) -> list[pd.Series]:
    """Summary rows of ``arm`` on the guardrail metrics it made significantly worse than
    control (adjusted p below ``alpha``, in the bad direction), in guardrail order."""
    out = []
    for metric in guardrail_metrics(spec):
        row = summary[(summary["metric"] == metric) & (summary["arm"] == arm)]
        if len(row) and row["significant"].iloc[0] is True and np.isfinite(row["diff"].iloc[0]) \
                and not _good(metric, row["diff"].iloc[0]) and row["diff"].iloc[0] != 0:
            out.append(row.iloc[0])
    return out


def recommend(summary: pd.DataFrame, spec: ExperimentSpec) -> Recommendation:
    """Which arm the primary metric supports.

    An arm is recommended over control only when its adjusted p-value is below
    ``alpha`` in the good direction; ties go to the largest estimated improvement.

    Parameters
    ----------
    summary : DataFrame
        :func:`summarize` of the run.
    spec : ExperimentSpec

    Returns
    -------
    Recommendation
    """
    metric = spec.primary
    control = spec.control_arm
    s = summary[summary["metric"] == metric]
    others = s[~s["is_control"]]
    wins = others[(others["significant"] == True) & others["diff"].map(  # noqa: E712
        lambda d: _good(metric, d) if np.isfinite(d) else False)]
    losses = others[(others["significant"] == True) & others["diff"].map(  # noqa: E712
        lambda d: not _good(metric, d) if np.isfinite(d) else False)]
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    winner = closest = None
    control_estimate = math.nan
    if len(wins):
        winner = wins.loc[(sign * wins["diff"]).idxmax()]
        chosen = winner["arm"]
        control_estimate = s[s["is_control"]]["estimate"].iloc[0]
    else:
        chosen = control
        if len(others):
            closest = others.loc[(sign * others["diff"].fillna(-np.inf * sign)).idxmax()]
    guardrails = [] if chosen == control else guardrail_breaches(summary, spec, chosen)
    truth = s.set_index("arm")["true_value"]
    best_true = (truth * sign).idxmax() if truth.notna().any() else None
    return Recommendation(metric=metric, control=control, chosen=chosen, winner=winner,
                          closest=closest, control_estimate=control_estimate,
                          losers=list(losses["arm"]), guardrails=guardrails,
                          best_true=best_true)
