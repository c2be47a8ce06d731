"""Per-segment effects of the primary metric, heterogeneity tests, and the truth beside them.

A segment is a group of subscribers defined by one column of the subscriber table *at the
start of the run*, before any email (so no arm can move a subscriber between segments):
a category (``lifecycle_stage``, a cluster label) as is, a number (``price_sensitivity``,
a score) by quantile bins. Any column works the same, including one added later:
:func:`segment_effects` takes an extra ``table`` (e.g. cluster labels) joined on
``subscriber``.

Per segment and arm vs control (on the spec's primary metric, same basis as the report's
main table, :mod:`experiments.analysis`):

* **per-email metrics** (clicks per email sent, ...): the segment's pooled counts,
  two-proportion z-test, Newcombe interval of the difference; standard error (for the
  heterogeneity tests) unpooled;
* **per-subscriber metrics** (orders, revenue per subscriber, ...): with common random
  numbers every arm simulates the same subscribers, so each subscriber's arm-minus-control
  difference over the run is a paired observation: the effect is their mean over the
  segment's treatment-group subscribers (all replications), with a paired t interval on
  ``n - 1`` degrees of freedom (:func:`experiments.stats.block_ttest` with one block per
  subscriber); when no subscriber's value differs, a count metric gets the exact Poisson
  bound of 0 discordant events, ``+-(-ln(alpha/2)) / n``, and a revenue metric none.
  Without common random numbers the arms are different populations: Welch's test of the
  segment's subscribers in each arm;
* **incremental orders vs a holdout**: treatment minus holdout within the segment,
  Poisson variances, arms compared with a normal test.

Then:

* p-values of all (segment, arm) comparisons of one column are adjusted together with
  ``analysis.segment_correction`` (Benjamini-Hochberg by default: a segment breakdown is
  a search for where the effect lies, where controlling the share of false discoveries
  keeps power over 10-30 tests; Holm controls the chance of any false one, and is the
  choice when a single segment's result will be acted on);
* **segment vs rest** (as Statsig's differential impact detection): the segment's effect
  minus the effect on everybody else, a z-test of the two independent estimates, adjusted
  the same way;
* **interaction test**: Cochran's Q across the segments' effects
  (:func:`experiments.stats.cochran_q`): are they all equal?
* **truth**: the simulator's true difference per segment, summed over the segment's
  subscribers exactly as the main table's truth is summed over everybody
  (:func:`experiments.analysis.truth_value`): per-email rates are expected responses
  within the reward window over sends, per-subscriber metrics the email-caused part.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.analysis import analysis_kind, truth_value
from experiments.analysis import per_email as per_email_result
from experiments.metrics import PER_EMAIL_HOLDOUT
from experiments.spec import METRICS
from experiments.stats import (
    adjust_pvalues,
    block_ttest,
    cochran_q,
    newcombe_diff_interval,
    normal_diff_test,
    poisson_rate_diff,
    proportions_ztest,
    welch_ttest,
)
from policies.errors import SpecError
from policies.subscriber_schema import SUBSCRIBER_COLUMNS

__all__ = ["EFFECT_COLUMNS", "TEST_COLUMNS", "SegmentAnalysis", "segment_analyses",
           "segment_effects", "segment_labels", "write_segment_tables"]

#: Columns of :attr:`SegmentAnalysis.effects` (``segments.csv``), in order.
EFFECT_COLUMNS = (
    "column", "segment", "arm", "subscribers", "control_estimate", "estimate", "diff",
    "diff_ci_low", "diff_ci_high", "standard_error", "p_value", "p_adjusted", "significant",
    "rest_diff", "vs_rest_diff", "vs_rest_p_value", "vs_rest_p_adjusted", "differs_from_rest",
    "true_diff", "ci_covers_truth", "method",
)
#: Columns of :attr:`SegmentAnalysis.tests` (``segment_tests.csv``), in order.
TEST_COLUMNS = (
    "column", "arm", "segments", "overall_diff", "q", "df", "q_p_value", "i_squared",
    "significant_positive", "significant_negative", "differs_from_rest", "true_positive",
    "true_negative", "true_min", "true_max", "sign_agrees", "covered",
)
_EMAIL_SUMS = ("sends", "opens", "clicks", "orders", "revenue", "unsubscribes",
               "expected_opens", "expected_clicks", "expected_orders", "expected_revenue",
               "expected_incremental_orders")


@dataclass(frozen=True)
class SegmentAnalysis:
    """Per-segment effects of one metric by one column (see the module docstring).

    Attributes
    ----------
    column, metric, control, correction : what was analysed and how.
    segments : tuple of str
        Segment labels in order (quantile bins low to high; categories in their order).
    effects : DataFrame
        One row per (segment, non-control arm), columns :data:`EFFECT_COLUMNS`:
        ``subscribers`` (treatment-group subscribers of the segment, summed over
        replications), ``control_estimate`` and ``estimate`` (the arm's level, metric
        units), ``diff`` with ``diff_ci_low/high`` and ``standard_error``, ``p_value`` and
        ``p_adjusted`` (``correction`` across the column's segments x arms),
        ``significant`` (adjusted p < alpha), ``rest_diff`` (the effect on everybody
        outside the segment), ``vs_rest_diff`` (segment minus rest) with its raw and
        adjusted p-value and ``differs_from_rest``, ``true_diff`` (the simulator's,
        metric units) and ``ci_covers_truth``.
    tests : DataFrame
        One row per non-control arm, columns :data:`TEST_COLUMNS`: ``overall_diff`` (all
        segments together), Cochran's ``q`` on ``df`` degrees of freedom with
        ``q_p_value`` and ``i_squared``, counts of segments significantly above / below 0
        and differing from the rest, of segments whose true difference is above / below
        0 with its range, of segments whose estimate has the true difference's sign
        (``sign_agrees``) and whose interval covers it (``covered``).
    """

    column: str
    metric: str
    control: str
    correction: str
    alpha: float
    segments: tuple[str, ...]
    effects: pd.DataFrame
    tests: pd.DataFrame


# ---------------------------------------------------------------------------
# segments


def _edges(edges: np.ndarray) -> list[str]:
    """Bin edges as text: three significant digits of the column's span, more when two
    edges would read the same."""
    span = float(edges[-1] - edges[0])
    dec = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 3
    while True:
        text = [f"{v:.{dec}f}" for v in edges]
        if len(set(text)) == len(text) or dec >= 15:
            return text
        dec += 1


def segment_labels(values: pd.Series, bins: int = 10) -> pd.Categorical:
    """The segment of each value: categories as they are, numbers by quantile bins.

    Parameters
    ----------
    values : Series
        One column of the subscriber table (a row per subscriber).
    bins : int
        Quantile bins of a numeric column (>= 2). A numeric column with at most ``bins``
        distinct values (a flag, a cluster number, a small count) is taken as categories.

    Returns
    -------
    pandas.Categorical
        Labels in order: bins low to high (``"[0.12, 0.25)"``, the last closed), categories
        in their documented order (``lifecycle_stage``) or sorted; missing values get
        ``"missing"``, last.

    Examples
    --------
    >>> list(segment_labels(pd.Series([0.1, 0.2, 0.3, 0.4]), bins=2))
    ['[0.100, 0.250)', '[0.100, 0.250)', '[0.250, 0.400]', '[0.250, 0.400]']
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    missing = values.isna().to_numpy()
    numeric = values.dtype.kind in "iuf"
    distinct = values.dropna().unique()
    if numeric and len(distinct) > bins:
        x = values.to_numpy(np.float64)
        edges = np.unique(np.quantile(x[~missing], np.linspace(0.0, 1.0, bins + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0], edges[0]])
        idx = np.searchsorted(edges[1:-1], np.where(missing, edges[0], x), side="right")
        text = _edges(edges)
        names = [f"[{lo}, {hi}{']' if j == len(edges) - 2 else ')'}"
                 for j, (lo, hi) in enumerate(itertools.pairwise(text))]
        labels = np.array(names, dtype=object)[idx]
    else:
        vocab = SUBSCRIBER_COLUMNS.get(str(values.name))
        order = list(vocab.vocabulary) if vocab is not None and vocab.vocabulary else []
        present = [str(v) for v in distinct]
        rest = sorted({p for p in present if p not in order},
                      key=lambda s: (0, float(s)) if _is_number(s) else (1, s))
        names = [o for o in order if o in present] + rest
        labels = values.map(lambda v: str(v)).to_numpy(dtype=object)
    if missing.any():
        labels = np.where(missing, "missing", labels)
        names = [*names, "missing"]
    return pd.Categorical(labels, categories=list(dict.fromkeys(names)), ordered=True)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _segment_table(res: Any, column: str, table: pd.DataFrame | None,
                   bins: int) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``replication, arm, subscriber, segment`` (int codes) and the labels."""
    subs = res.subscribers
    if subs is None or res.subscriber_metrics is None:
        raise SpecError("analysis.segments: the run has no per-subscriber tables; list the "
                        "segment columns under analysis.segments in the spec and run it again")
    keys = ["replication", "arm", "subscriber"]
    base = subs[[*keys, *([column] if column in subs.columns else [])]]
    if table is not None:
        if isinstance(table, pd.Series):
            table = table.to_frame(table.name if table.name is not None else column)
        if not isinstance(table, pd.DataFrame):
            raise SpecError(f"table: expected a DataFrame or Series indexed by subscriber, "
                            f"got {type(table).__name__}")
        extra = table
        if "subscriber" not in table.columns:
            if not pd.api.types.is_integer_dtype(table.index.dtype):
                raise SpecError("table: expected a 'subscriber' column or an index of "
                                f"subscriber ids, got columns {list(table.columns)} and an "
                                f"index of {table.index.dtype}")
            extra = table.rename_axis("subscriber").reset_index()
        if column not in extra.columns:
            raise SpecError(f"table: has no column {column!r} (columns: "
                            f"{', '.join(map(str, extra.columns))})")
        on = ["subscriber", *(["replication"] if "replication" in extra.columns else [])]
        if extra.duplicated(on).any():
            raise SpecError(f"table: expected one row per {' x '.join(on)}, got duplicates")
        base = base.drop(columns=[column], errors="ignore").merge(
            extra[[*on, column]], on=on, how="left")
    elif column not in subs.columns:
        cols = [c for c in subs.columns if c not in keys]
        raise SpecError(f"column: {column!r} is not a column of the run's subscriber table "
                        f"(its columns: {', '.join(cols)}); pass table= to add one")
    labels = segment_labels(base[column].rename(column), bins)
    out = base[keys].copy()
    out["segment"] = labels.codes.astype(np.int64)
    return out, tuple(str(c) for c in labels.categories)


def _unit_values(res: Any) -> pd.DataFrame:
    """Per (replication, arm, subscriber): group, site totals and email sums over the
    spec's sources."""
    sm = res.subscriber_metrics
    keys = ["replication", "arm", "subscriber"]
    site = sm[sm["source"] == "site"][[*keys, "group", "orders_all", "revenue_all"]]
    email = sm[sm["source"] != "site"]
    if res.spec.sources:
        email = email[email["source"].isin(list(res.spec.sources))]
    sums = email.groupby(keys, sort=False)[list(_EMAIL_SUMS)].sum().reset_index()
    out = site.merge(sums, on=keys, how="left")
    out[list(_EMAIL_SUMS)] = out[list(_EMAIL_SUMS)].fillna(0.0)
    return out


# ---------------------------------------------------------------------------
# estimates


@dataclass(frozen=True)
class _Est:
    diff: float = math.nan
    low: float = math.nan
    high: float = math.nan
    se: float = math.nan
    p: float = math.nan
    control: float = math.nan
    arm: float = math.nan


def _per_email(c: pd.DataFrame, a: pd.DataFrame, num: str, alpha: float) -> _Est:
    xc, nc = float(c[num].sum()), float(c["sends"].sum())
    x, n = float(a[num].sum()), float(a["sends"].sum())
    lev = (xc / nc if nc > 0 else math.nan, x / n if n > 0 else math.nan)
    if nc <= 0 or n <= 0 or (xc + x) <= 0 or (xc + x) >= (nc + n):
        return _Est(control=lev[0], arm=lev[1])
    r = proportions_ztest(xc, nc, x, n, alpha=alpha)
    lo, hi = newcombe_diff_interval(round(xc), round(nc), round(x), round(n), alpha)
    pc, pa = xc / nc, x / n
    se = math.sqrt(pc * (1 - pc) / nc + pa * (1 - pa) / n)
    return _Est(float(r.effect), float(lo), float(hi), se if se > 0 else math.nan,
                float(r.p_value), *lev)


def _paired(yc: np.ndarray, ya: np.ndarray, alpha: float, count: bool) -> _Est:
    lev = (float(yc.mean()) if len(yc) else math.nan, float(ya.mean()) if len(ya) else math.nan)
    d = ya - yc
    if len(d) < 2:
        return _Est(control=lev[0], arm=lev[1])
    r = block_ttest(d[:, None], alpha)
    if r.standard_error > 0:
        return _Est(r.effect, r.ci_low, r.ci_high, r.standard_error, r.p_value, *lev)
    if count:  # no subscriber differed: the exact Poisson bound of 0 discordant events
        half = -math.log(alpha / 2) / len(d)
        return _Est(r.effect, max(r.effect - half, -lev[0]), r.effect + half, math.nan,
                    r.p_value, *lev)
    return _Est(r.effect, math.nan, math.nan, math.nan, r.p_value, *lev)


def _welch(yc: np.ndarray, ya: np.ndarray, alpha: float) -> _Est:
    lev = (float(yc.mean()) if len(yc) else math.nan, float(ya.mean()) if len(ya) else math.nan)
    if len(yc) < 2 or len(ya) < 2:
        return _Est(control=lev[0], arm=lev[1])
    r = welch_ttest(yc, ya, alpha=alpha)
    se = r.standard_error if r.standard_error > 0 else math.nan
    return _Est(r.effect, r.ci_low, r.ci_high, se, r.p_value, *lev)


def _holdout(c: pd.DataFrame, a: pd.DataFrame, alpha: float, per_email: bool = False
             ) -> _Est:
    def inc(d: pd.DataFrame) -> Any:
        t, h = d[d["group"] == "treatment"], d[d["group"] == "holdout"]
        if len(t) == 0 or len(h) == 0:
            return None
        r = poisson_rate_diff(float(h["orders_all"].sum()), float(len(h)),
                              float(t["orders_all"].sum()), float(len(t)), alpha=alpha)
        # per email sent to the segment's treatment group
        return per_email_result(r, len(t), float(t["sends"].sum())) if per_email else r

    rc, ra = inc(c), inc(a)
    lev = (float(rc.effect) if rc is not None else math.nan,
           float(ra.effect) if ra is not None else math.nan)
    if rc is None or ra is None:
        return _Est(control=lev[0], arm=lev[1])
    r = normal_diff_test(rc.effect, rc.standard_error, ra.effect, ra.standard_error,
                         alpha=alpha)
    if not (np.isfinite(r.standard_error) and r.standard_error > 0):
        return _Est(control=lev[0], arm=lev[1])
    return _Est(float(r.effect), float(r.ci_low), float(r.ci_high), float(r.standard_error),
                float(r.p_value), *lev)


class _Comparison:
    """One arm vs control on one metric: estimates on any subset of segments."""

    def __init__(self, res: Any, metric: str, units: pd.DataFrame, arm: str, control: str,
                 alpha: float) -> None:
        self.metric, self.alpha = metric, alpha
        self.kind = analysis_kind(metric)
        self.crn = bool(res.spec.common_random_numbers)
        self.num = METRICS[metric].numerator
        self.count = METRICS[metric].kind == "proportion"
        c = units[units["arm"] == control]
        a = units[units["arm"] == arm]
        if self.kind != "holdout":
            c, a = c[c["group"] == "treatment"], a[a["group"] == "treatment"]
        self.c, self.a = c, a
        self.seg_c, self.seg_a = c["segment"].to_numpy(), a["segment"].to_numpy()
        if self.kind == "paired" and self.crn:
            # the same subscriber in both arms (treatment group in both)
            pair = c.merge(a, on=["replication", "subscriber"], suffixes=("_c", "_a"))
            self.y_c = pair[f"{self.num}_c"].to_numpy(np.float64)
            self.y_a = pair[f"{self.num}_a"].to_numpy(np.float64)
            self.seg_pair = pair["segment_c"].to_numpy()
        elif self.kind == "paired":
            self.y_c = c[self.num].to_numpy(np.float64)
            self.y_a = a[self.num].to_numpy(np.float64)

    def estimate(self, segs: np.ndarray) -> _Est:
        mc, ma = np.isin(self.seg_c, segs), np.isin(self.seg_a, segs)
        if self.kind == "per_email":
            return _per_email(self.c[mc], self.a[ma], self.num, self.alpha)
        if self.kind == "holdout":
            return _holdout(self.c[mc], self.a[ma], self.alpha,
                            self.metric in PER_EMAIL_HOLDOUT)
        if self.crn:
            m = np.isin(self.seg_pair, segs)
            return _paired(self.y_c[m], self.y_a[m], self.alpha, self.count)
        return _welch(self.y_c[mc], self.y_a[ma], self.alpha)

    def true_diff(self, segs: np.ndarray) -> float:
        """Truth of the arm minus truth of control over the segments' subscribers."""
        vals = []
        for d, seg in ((self.a, self.seg_a), (self.c, self.seg_c)):
            inside = np.isin(seg, segs)
            t = d[inside & (d["group"] == "treatment").to_numpy()]
            sums = t[["sends", "expected_opens", "expected_clicks", "expected_orders",
                      "expected_revenue", "expected_incremental_orders"]].sum()
            held = math.nan
            if self.kind == "holdout":   # the holdout's emails (campaigns) cancel as counted
                h = d[inside & (d["group"] == "holdout").to_numpy()]
                sums["holdout_incremental_orders"] = h["expected_incremental_orders"].sum()
                held = float(len(h))
            vals.append(truth_value(self.metric, sums, float(len(t)), held)[0])
        return vals[0] - vals[1]

    def subscribers(self, segs: np.ndarray) -> int:
        t = self.a[np.isin(self.seg_a, segs) & (self.a["group"] == "treatment").to_numpy()]
        return len(t)


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = adjust_pvalues(p[ok], method)
    return out


def segment_effects(res: Any, column: str, *, table: pd.DataFrame | None = None,
                    bins: int | None = None, correction: str | None = None,
                    metric: str | None = None) -> SegmentAnalysis:
    """Effects of ``metric`` per segment of ``column``, with heterogeneity tests and truth.

    Parameters
    ----------
    res : Results
        A run with per-subscriber tables (a spec with ``analysis.segments``).
    column : str
        A column of the subscriber table at the run's start, or of ``table``.
    table : DataFrame or Series, optional
        Extra subscriber attributes (e.g. cluster labels or scores, as
        :mod:`policies.segments` returns them): a ``subscriber`` column or an index of
        subscriber ids, optionally ``replication``, and ``column`` (a Series: its values).
    bins, correction, metric : optional
        Default the spec's ``analysis.segment_bins``, ``analysis.segment_correction`` and
        primary metric.

    Returns
    -------
    SegmentAnalysis
    """
    spec = res.spec
    metric = metric or spec.primary
    if metric not in METRICS:
        raise SpecError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    correction = correction or spec.segment_correction
    bins = int(bins or spec.segment_bins)
    seg, labels = _segment_table(res, column, table, bins)
    units = _unit_values(res).merge(seg, on=["replication", "arm", "subscriber"])
    control, alpha = spec.control_arm, spec.alpha
    rows, tests = [], []
    all_segs = np.arange(len(labels))
    for arm in res.arms:
        if arm == control:
            continue
        cmp_ = _Comparison(res, metric, units, arm, control, alpha)
        overall = cmp_.estimate(all_segs)
        for k, label in enumerate(labels):
            e = cmp_.estimate(np.array([k]))
            rest = cmp_.estimate(np.delete(all_segs, k))
            vs = (normal_diff_test(rest.diff, rest.se, e.diff, e.se, alpha=alpha)
                  if np.isfinite([e.diff, e.se, rest.diff, rest.se]).all() else None)
            td = cmp_.true_diff(np.array([k]))
            covers = (bool(e.low <= td <= e.high) if np.isfinite([e.low, e.high, td]).all()
                      else None)
            rows.append({
                "column": column, "segment": label, "arm": arm,
                "subscribers": cmp_.subscribers(np.array([k])),
                "control_estimate": e.control, "estimate": e.arm, "diff": e.diff,
                "diff_ci_low": e.low, "diff_ci_high": e.high, "standard_error": e.se,
                "p_value": e.p, "rest_diff": rest.diff,
                "vs_rest_diff": float(vs.effect) if vs is not None else math.nan,
                "vs_rest_p_value": float(vs.p_value) if vs is not None else math.nan,
                "true_diff": td, "ci_covers_truth": covers, "method": _method(cmp_),
            })
        tests.append({"column": column, "arm": arm, "overall_diff": overall.diff})
    eff = pd.DataFrame(rows, columns=[c for c in EFFECT_COLUMNS
                                      if c not in ("p_adjusted", "significant",
                                                   "vs_rest_p_adjusted", "differs_from_rest")])
    eff["p_adjusted"] = _adjust(eff["p_value"].to_numpy(float), correction)
    eff["significant"] = [bool(v < alpha) if np.isfinite(v) else None for v in eff["p_adjusted"]]
    eff["vs_rest_p_adjusted"] = _adjust(eff["vs_rest_p_value"].to_numpy(float), correction)
    eff["differs_from_rest"] = [bool(v < alpha) if np.isfinite(v) else None
                                for v in eff["vs_rest_p_adjusted"]]
    eff = eff[list(EFFECT_COLUMNS)]
    for t in tests:
        e = eff[eff["arm"] == t["arm"]]
        q = cochran_q(e["diff"].to_numpy(float), e["standard_error"].to_numpy(float))
        sig = e["significant"] == True  # noqa: E712
        td = e["true_diff"].to_numpy(float)
        d = e["diff"].to_numpy(float)
        both = np.isfinite(td) & np.isfinite(d)
        t.update(segments=len(e), q=q.statistic, df=q.df, q_p_value=q.p_value,
                 i_squared=q.i_squared,
                 significant_positive=int((sig & (e["diff"] > 0)).sum()),
                 significant_negative=int((sig & (e["diff"] < 0)).sum()),
                 differs_from_rest=int((e["differs_from_rest"] == True).sum()),  # noqa: E712
                 true_positive=int((td > 0).sum()), true_negative=int((td < 0).sum()),
                 true_min=float(np.nanmin(td)) if np.isfinite(td).any() else math.nan,
                 true_max=float(np.nanmax(td)) if np.isfinite(td).any() else math.nan,
                 sign_agrees=int((np.sign(d[both]) == np.sign(td[both])).sum()),
                 covered=int(sum(bool(v) for v in e["ci_covers_truth"].dropna())))
    return SegmentAnalysis(column=column, metric=metric, control=control,
                           correction=correction, alpha=alpha, segments=labels, effects=eff,
                           tests=pd.DataFrame(tests, columns=list(TEST_COLUMNS)))


def _method(c: _Comparison) -> str:
    if c.kind == "per_email":
        return "two-proportion z-test on the segment's pooled counts"
    if c.kind == "holdout":
        return "treatment minus holdout in the segment, Poisson variances"
    if c.crn:
        return "paired t-test over the segment's subscribers (common random numbers)"
    return "Welch t-test over the segment's subscribers (independent worlds per arm)"


def segment_analyses(res: Any) -> list[SegmentAnalysis]:
    """:func:`segment_effects` of the primary metric for every ``analysis.segments``
    column of the spec, in order."""
    return [segment_effects(res, c) for c in res.spec.segments]


def write_segment_tables(analyses: list[SegmentAnalysis], out: str | Path) -> None:
    """Write ``segments.csv`` (every effect row) and ``segment_tests.csv`` into ``out``."""
    if not analyses:
        return
    d = Path(out)
    pd.concat([a.effects for a in analyses], ignore_index=True).to_csv(
        d / "segments.csv", index=False, float_format="%.6g")
    pd.concat([a.tests for a in analyses], ignore_index=True).to_csv(
        d / "segment_tests.csv", index=False, float_format="%.6g")
