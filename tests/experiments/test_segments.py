"""Per-segment effects (experiments.segments): labels, estimates against textbook formulas
on hand-made per-subscriber tables, corrections, segment-vs-rest, Cochran's Q, the truth
column, extra tables, and every bad input with its message."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from experiments import Results
from experiments.segment_report import segment_headline, segment_sentences
from experiments.segments import EFFECT_COLUMNS, segment_effects, segment_labels
from experiments.spec import ExperimentSpec, load_spec
from experiments.stats import adjust_pvalues, cochran_q
from policies.errors import SpecError, StatsInputError

STAGES = ["prospect", "customer", "lapsed"]


# ---------------------------------------------------------------------------
# labels


@pytest.mark.parametrize(("values", "bins", "want", "categories"), [
    (pd.Series([0.1, 0.2, 0.3, 0.4]), 2,
     ["[0.100, 0.250)"] * 2 + ["[0.250, 0.400]"] * 2, ["[0.100, 0.250)", "[0.250, 0.400]"]),
    (pd.Series(["lapsed", "customer", "prospect"], name="lifecycle_stage"), 10,
     ["lapsed", "customer", "prospect"], ["prospect", "customer", "lapsed"]),
    (pd.Series([True, False, True]), 10, ["True", "False", "True"], ["False", "True"]),
    (pd.Series([3, 1, 2, 10]), 10, ["3", "1", "2", "10"], ["1", "2", "3", "10"]),
    (pd.Series([0.5, np.nan, 0.7]), 10, ["0.5", "missing", "0.7"], ["0.5", "0.7", "missing"]),
    # tied quantile edges merge bins
    (pd.Series([2.0] * 20 + [2.5, 3.0]), 2, ["[2.00, 3.00]"] * 22, ["[2.00, 3.00]"]),
    # edges get three significant digits of the column's span
    (pd.Series([0.0, 250.0, 500.0, 1000.0]), 2, ["[0, 375)"] * 2 + ["[375, 1000]"] * 2,
     ["[0, 375)", "[375, 1000]"]),
    (pd.Series(["b", None, "a"]), 10, ["b", "missing", "a"], ["a", "b", "missing"]),
])
def test_segment_labels(values: pd.Series, bins: int, want: list, categories: list) -> None:
    got = segment_labels(values, bins)
    assert list(got) == want
    assert list(got.categories) == categories


@given(st.lists(st.integers(0, 10**6), min_size=30, max_size=300, unique=True),
       st.integers(2, 10))
@settings(max_examples=60, deadline=None)
def test_quantile_bins_are_ordered_and_balanced(x: list, bins: int) -> None:
    s = pd.Series(np.array(x) / 10**6)
    lab = segment_labels(s, bins)
    if s.nunique() <= bins:
        return
    codes = lab.codes
    # ordered: a larger value never gets a lower bin
    order = np.argsort(x, kind="stable")
    assert (np.diff(codes[order]) >= 0).all()
    # distinct values: every bin holds its share, give or take one
    counts = np.bincount(codes, minlength=bins)
    assert len(lab.categories) == bins
    assert counts.max() - counts.min() <= 2


# ---------------------------------------------------------------------------
# hand-made runs


def _spec(metric: str, *, crn: bool = True, holdout: float = 0.0,
          correction: str = "bh") -> ExperimentSpec:
    arms: list[dict[str, Any]] = [{"name": "a", "holdout": holdout},
                                  {"name": "b", "holdout": holdout}]
    return load_spec({
        "name": "seg", "seed": 1, "population": {"subscribers": 20},
        "duration": {"days": 1, "tick": "1h"}, "rules": "none",
        "campaign": {"every_days": 1}, "arms": arms, "metrics": [metric],
        "common_random_numbers": crn,
        "analysis": {"segments": ["lifecycle_stage"], "segment_correction": correction},
    })


def _run(metric: str, n: int = 600, *, crn: bool = True, holdout: float = 0.0,
         correction: str = "bh", seed: int = 0) -> Results:
    """Two arms on ``n`` subscribers; in arm b the metric moves by +1 / 0 / -1 unit of
    noise in the three lifecycle stages, and the truth columns say +0.5 / 0 / -0.5."""
    rng = np.random.default_rng(seed)
    stage = np.array(STAGES)[np.arange(n) % 3]
    group = np.where(rng.random(n) < holdout, "holdout", "treatment")
    subs, books = [], []
    base = rng.gamma(2.0, 2.0, n)
    for arm in ("a", "b"):
        st_arm = stage if crn else np.array(STAGES)[rng.integers(0, 3, n)]
        sh = np.select([st_arm == "prospect", st_arm == "customer"], [1.0, 0.0], -1.0)
        y = (base if crn else rng.gamma(2.0, 2.0, n)) + (arm == "b") * (
            sh + rng.normal(0, 1.0, n))
        sends = np.full(n, 10.0)
        p = np.clip(0.2 + (arm == "b") * 0.05 * sh, 0, 1)
        clicks = rng.binomial(10, p).astype(float)
        orders = rng.poisson(np.where(group == "treatment", 1.0 + (arm == "b") * 0.5 * (sh + 1),
                                      1.0)).astype(float)
        subs.append(pd.DataFrame({"replication": 0, "arm": arm, "subscriber": np.arange(n),
                                  "lifecycle_stage": st_arm,
                                  "engagement_score": rng.random(n)}))
        common = {"replication": 0, "arm": arm, "subscriber": np.arange(n), "group": group}
        true_rev = 2.0 + (arm == "b") * 0.5 * sh
        books.append(pd.DataFrame({**common, "source": "site", "sends": 0.0, "opens": 0.0,
                                   "clicks": 0.0, "orders": 0.0, "revenue": 0.0,
                                   "unsubscribes": 0.0, "expected_opens": 0.0,
                                   "expected_clicks": 0.0, "expected_orders": 0.0,
                                   "expected_revenue": 0.0,
                                   "expected_incremental_orders": 0.0,
                                   "orders_all": orders, "revenue_all": np.maximum(y, 0)}))
        books.append(pd.DataFrame({**common, "source": "campaign", "sends": sends,
                                   "opens": clicks, "clicks": clicks, "orders": 0.0,
                                   "revenue": np.maximum(y, 0), "unsubscribes": 0.0,
                                   "expected_opens": 10 * p, "expected_clicks": 10 * p,
                                   "expected_orders": np.ones(n),
                                   "expected_revenue": true_rev,
                                   "expected_incremental_orders": np.ones(n),
                                   "orders_all": 0.0, "revenue_all": 0.0}))
    return Results(spec=_spec(metric, crn=crn, holdout=holdout, correction=correction),
                   metrics=pd.DataFrame(), truth=pd.DataFrame(),
                   subscribers=pd.concat(subs, ignore_index=True),
                   subscriber_metrics=pd.concat(books, ignore_index=True))


def _units(res: Results, arm: str, col: str) -> pd.DataFrame:
    sm = res.subscriber_metrics
    site = sm[sm["source"] == "site"].set_index("subscriber")
    email = sm[sm["source"] != "site"].set_index("subscriber")
    out = site[site["arm"] == arm][["group", "orders_all", "revenue_all"]].copy()
    e = email[email["arm"] == arm]
    for c in ("sends", "clicks", "revenue", "expected_clicks", "expected_revenue"):
        out[c] = e[c]
    sb = res.subscribers
    out["segment"] = sb[sb["arm"] == arm].set_index("subscriber")[col]
    return out


def test_paired_segments_match_the_paired_t_test() -> None:
    res = _run("revenue_per_recipient")
    a = segment_effects(res, "lifecycle_stage")
    assert list(a.effects.columns) == list(EFFECT_COLUMNS)
    assert a.segments == ("prospect", "customer", "lapsed")
    ua, ub = _units(res, "a", "lifecycle_stage"), _units(res, "b", "lifecycle_stage")
    for _, r in a.effects.iterrows():
        m = (ua["segment"] == r["segment"]) & (ua["group"] == "treatment")
        d = ub.loc[m, "revenue_all"] - ua.loc[m, "revenue_all"]
        t = sps.ttest_rel(ub.loc[m, "revenue_all"], ua.loc[m, "revenue_all"])
        assert r["diff"] == pytest.approx(d.mean(), rel=1e-12)
        assert r["p_value"] == pytest.approx(t.pvalue, rel=1e-9)
        half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        assert r["diff_ci_low"] == pytest.approx(d.mean() - half, rel=1e-9)
        assert r["subscribers"] == int(m.sum())
        # segment vs rest: the two independent estimates' z-test
        rest = (ua["segment"] != r["segment"]) & (ua["group"] == "treatment")
        dr = ub.loc[rest, "revenue_all"] - ua.loc[rest, "revenue_all"]
        se = math.hypot(d.std(ddof=1) / math.sqrt(len(d)), dr.std(ddof=1) / math.sqrt(len(dr)))
        z = (d.mean() - dr.mean()) / se
        assert r["rest_diff"] == pytest.approx(dr.mean(), rel=1e-12)
        assert r["vs_rest_p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    # truth: the simulator's caused revenue, +0.5 / 0 / -0.5 per subscriber
    assert a.effects["true_diff"].tolist() == pytest.approx([0.5, 0.0, -0.5])
    # the made-up effects (+1 / 0 / -1) are found with their signs
    sig = a.effects.set_index("segment")["significant"]
    assert sig["prospect"] and sig["lapsed"] and not sig["customer"]
    t = a.tests.iloc[0]
    assert t["significant_positive"] == 1 and t["significant_negative"] == 1
    assert t["true_positive"] == 1 and t["true_negative"] == 1
    assert t["q_p_value"] < 1e-6


def test_corrections_are_applied_across_the_columns_segments() -> None:
    for corr in ("bh", "holm", "bonferroni"):
        a = segment_effects(_run("revenue_per_recipient", correction=corr), "lifecycle_stage")
        p = a.effects["p_value"].to_numpy()
        assert a.effects["p_adjusted"].to_numpy() == pytest.approx(adjust_pvalues(p, corr))
        assert a.effects["vs_rest_p_adjusted"].to_numpy() == pytest.approx(
            adjust_pvalues(a.effects["vs_rest_p_value"].to_numpy(), corr))
    assert segment_effects(_run("revenue_per_recipient"), "lifecycle_stage",
                           correction="holm").correction == "holm"


def test_per_email_segments_use_pooled_counts() -> None:
    res = _run("clicks")
    a = segment_effects(res, "lifecycle_stage")
    ua, ub = _units(res, "a", "lifecycle_stage"), _units(res, "b", "lifecycle_stage")
    for _, r in a.effects.iterrows():
        ma, mb = ua["segment"] == r["segment"], ub["segment"] == r["segment"]
        xa, na = ua.loc[ma, "clicks"].sum(), ua.loc[ma, "sends"].sum()
        xb, nb = ub.loc[mb, "clicks"].sum(), ub.loc[mb, "sends"].sum()
        pool = (xa + xb) / (na + nb)
        z = (xb / nb - xa / na) / math.sqrt(pool * (1 - pool) * (1 / na + 1 / nb))
        assert r["diff"] == pytest.approx(xb / nb - xa / na, rel=1e-12)
        assert r["p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
        true = (ub.loc[mb, "expected_clicks"].sum() / nb - ua.loc[ma, "expected_clicks"].sum()
                / na)
        assert r["true_diff"] == pytest.approx(true, rel=1e-12)
    assert a.effects["true_diff"].tolist() == pytest.approx([0.05, 0.0, -0.05])


def test_holdout_segments_difference_treatment_minus_holdout() -> None:
    res = _run("incremental_orders", n=1500, holdout=0.3)
    a = segment_effects(res, "lifecycle_stage")
    ua, ub = _units(res, "a", "lifecycle_stage"), _units(res, "b", "lifecycle_stage")

    def inc(u: pd.DataFrame, seg: str) -> float:
        s = u[u["segment"] == seg]
        t, h = s[s["group"] == "treatment"], s[s["group"] == "holdout"]
        return t["orders_all"].mean() - h["orders_all"].mean()

    for _, r in a.effects.iterrows():
        assert r["control_estimate"] == pytest.approx(inc(ua, r["segment"]), rel=1e-12)
        assert r["diff"] == pytest.approx(inc(ub, r["segment"]) - inc(ua, r["segment"]),
                                          rel=1e-9)
    assert a.effects.set_index("segment").loc["prospect", "diff"] > 0.5


def test_per_email_holdout_segments_scale_by_subscribers_per_email() -> None:
    """Per email sent to the segment's treatment group: the per-subscriber difference
    times treatment subscribers / emails (10 emails each here), the same p-values."""
    per_sub = segment_effects(_run("incremental_orders", n=1500, holdout=0.3),
                              "lifecycle_stage")
    res = _run("incremental_orders_per_email", n=1500, holdout=0.3)
    per_email = segment_effects(res, "lifecycle_stage")
    ua = _units(res, "a", "lifecycle_stage")
    for (_, r), (_, q) in zip(per_email.effects.iterrows(), per_sub.effects.iterrows(),
                              strict=True):
        t = ua[(ua["segment"] == r["segment"]) & (ua["group"] == "treatment")]
        k = len(t) / t["sends"].sum()
        assert k == pytest.approx(0.1)
        for col in ("diff", "diff_ci_low", "diff_ci_high", "control_estimate"):
            assert r[col] == pytest.approx(q[col] * k, rel=1e-12), col
        assert r["p_value"] == pytest.approx(q["p_value"], rel=1e-12)


def test_without_common_random_numbers_segments_use_welch() -> None:
    res = _run("revenue_per_recipient", crn=False)
    a = segment_effects(res, "lifecycle_stage")
    ua, ub = _units(res, "a", "lifecycle_stage"), _units(res, "b", "lifecycle_stage")
    r = a.effects.iloc[0]
    ya = ua.loc[ua["segment"] == r["segment"], "revenue_all"]
    yb = ub.loc[ub["segment"] == r["segment"], "revenue_all"]
    assert r["p_value"] == pytest.approx(sps.ttest_ind(yb, ya, equal_var=False).pvalue,
                                         rel=1e-9)
    assert "Welch" in r["method"]


def test_a_label_from_another_table_works_like_a_column() -> None:
    res = _run("revenue_per_recipient")
    sb = res.subscribers
    labels = sb[sb["arm"] == "a"][["subscriber", "lifecycle_stage"]].rename(
        columns={"lifecycle_stage": "cluster"})
    a = segment_effects(res, "cluster", table=labels)
    b = segment_effects(res, "lifecycle_stage")
    cols = ["diff", "p_value", "true_diff", "vs_rest_p_value"]
    # the table's labels are plain strings (sorted); the column's follow its vocabulary
    assert a.segments == ("customer", "lapsed", "prospect")
    pd.testing.assert_frame_equal(a.effects.set_index("segment")[cols].sort_index(),
                                  b.effects.set_index("segment")[cols].sort_index())
    # a score column with its own bins, indexed by subscriber
    score = pd.DataFrame({"score": np.linspace(0, 1, len(labels))},
                         index=pd.Index(labels["subscriber"], name="subscriber"))
    s = segment_effects(res, "score", table=score, bins=4)
    assert len(s.segments) == 4 and s.effects["subscribers"].sum() == len(labels)
    # a Series with an unnamed index of subscriber ids (as a model's scores come)
    series = pd.Series(np.linspace(0, 1, len(labels)), index=labels["subscriber"].to_numpy())
    s2 = segment_effects(res, "score", table=series, bins=4)
    pd.testing.assert_frame_equal(s2.effects, s.effects)


def test_sentences_state_the_numbers_beside_them() -> None:
    a = segment_effects(_run("revenue_per_recipient"), "lifecycle_stage")
    e, t = a.effects.set_index("segment"), a.tests.iloc[0]
    text = " ".join(segment_sentences(a, "b"))
    assert f"Cochran's Q = {t['q']:.1f} on 2 degrees of freedom" in text
    assert "The effect changes sign" in text
    assert f"significantly positive in prospect ({e.loc['prospect', 'diff']:+.3f})" in text
    assert f"significantly negative in lapsed ({e.loc['lapsed', 'diff']:+.3f})" in text
    assert "not significant in the other 1 segment." in text
    assert "positive in 1 segment(s) and negative in 1" in text
    assert "Every segment called significant has a true difference of the same sign." in text
    line = segment_headline([a])[0]
    assert line.startswith("by lifecycle_stage, b vs a:") and "significant + in 1, - in 1" in line


# ---------------------------------------------------------------------------
# Cochran's Q


def test_cochran_q_textbook_values() -> None:
    e, s = np.array([0.2, 0.5, -0.1, 0.3]), np.array([0.1, 0.2, 0.15, 0.05])
    w = 1 / s**2
    pooled = (w * e).sum() / w.sum()
    q = (w * (e - pooled) ** 2).sum()
    r = cochran_q(e, s)
    assert r.statistic == pytest.approx(q) and r.df == 3 and r.pooled == pytest.approx(pooled)
    assert r.p_value == pytest.approx(sps.chi2.sf(q, 3))
    assert r.i_squared == pytest.approx(max(0.0, (q - 3) / q))
    # segments without a usable standard error are left out
    r2 = cochran_q([*e, 9.0, np.nan], [*s, 0.0, 0.1])
    assert r2.statistic == pytest.approx(q) and r2.n_segments == 4
    one = cochran_q([1.0], [0.1])
    assert math.isnan(one.p_value) and one.pooled == 1.0 and one.df == 0


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12), st.floats(-10, 10))
@settings(max_examples=80, deadline=None)
def test_cochran_q_ignores_a_common_shift(e: list, shift: float) -> None:
    s = np.linspace(0.1, 1.0, len(e))
    a, b = cochran_q(e, s), cochran_q(np.array(e) + shift, s)
    assert b.statistic == pytest.approx(a.statistic, rel=1e-6, abs=1e-6)
    assert 0.0 <= a.i_squared <= 1.0


def test_cochran_q_refuses_mismatched_shapes() -> None:
    with pytest.raises(StatsInputError, match="effects, standard_errors"):
        cochran_q([1.0, 2.0], [0.1])


# ---------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(("change", "kwargs", "message"), [
    ("no_tables", {}, r"analysis\.segments: the run has no per-subscriber tables"),
    (None, {"column": "nope"}, r"column: 'nope' is not a column of the run's subscriber table"),
    (None, {"column": "c", "table": pd.DataFrame({"x": [1]}, index=["s1"])},
     r"table: expected a 'subscriber' column or an index of subscriber ids"),
    (None, {"column": "c", "table": [1, 2]},
     r"table: expected a DataFrame or Series indexed by subscriber, got list"),
    (None, {"column": "c", "table": pd.DataFrame({"subscriber": [1]})},
     r"table: has no column 'c'"),
    (None, {"column": "c", "table": pd.DataFrame({"subscriber": [1, 1], "c": [0, 1]})},
     r"table: expected one row per subscriber, got duplicates"),
    (None, {"column": "lifecycle_stage", "metric": "nope"}, r"metric: expected one of"),
])
def test_segment_effects_bad_input(change: str | None, kwargs: dict, message: str) -> None:
    res = _run("revenue_per_recipient", n=30)
    if change == "no_tables":
        res.subscriber_metrics = None
        kwargs = {"column": "lifecycle_stage"}
    column = kwargs.pop("column")
    with pytest.raises(SpecError, match=message):
        segment_effects(res, column, **kwargs)


BASE: dict[str, Any] = {
    "name": "t", "seed": 1, "population": {"subscribers": 20},
    "duration": {"days": 1, "tick": "1h"}, "rules": "none",
    "campaign": {"every_days": 1}, "arms": [{"name": "a"}, {"name": "b"}],
}


@pytest.mark.parametrize(("changes", "message"), [
    ({"analysis": {"segments": ["pric_sensitivity"]}},
     r"^analysis\.segments\[0\]: 'pric_sensitivity' is not a column of the simulated "
     r"subscriber table \(did you mean 'price_sensitivity'\?\)"),
    ({"analysis": {"segments": ["lifecycle_stage", "lifecycle_stage"]}},
     r"^analysis\.segments\[1\]: duplicate column 'lifecycle_stage'"),
    ({"analysis": {"segments": 5}}, r"^analysis\.segments: expected a list of names, got 5"),
    ({"analysis": {"segments": [3]}},
     r"^analysis\.segments\[0\]: expected a non-empty string, got 3"),
    ({"analysis": {"segments": ["cluster"]}},
     r"^analysis\.segments\[0\]: 'cluster' is a score column of scorer 'clusters', which "
     r"scoring\.scorers does not list"),
    ({"analysis": {"segment_bins": 1}}, r"^analysis\.segment_bins: expected"),
    ({"analysis": {"segment_bins": 51}}, r"^analysis\.segment_bins: expected"),
    ({"analysis": {"segment_bins": "ten"}}, r"^analysis\.segment_bins: expected"),
    ({"analysis": {"segment_correction": "fdr"}},
     r"^analysis\.segment_correction: expected one of"),
    ({"analysis": {"segmnets": ["lifecycle_stage"]}}, r"^analysis\.segmnets: unknown key"),
    ({"campaign": {"incentive": 1.0}},
     r"^campaign\.incentive: expected a discount fraction in \[0, 1\), got 1\.0"),
    ({"campaign": {"incentive": -0.2}}, r"^campaign\.incentive: expected a discount fraction"),
    ({"arms": [{"name": "a"}, {"name": "b", "campaign": {"incentive": "half"}}]},
     r"^arms\[1\]\.campaign\.incentive: expected a discount fraction"),
])
def test_spec_keys_are_checked_with_their_path(changes: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec({**BASE, **changes})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"segments": ("nope",)}, r"^analysis\.segments\[0\]: 'nope' is not a column"),
    ({"segments": ["lifecycle_stage"]}, r"^analysis\.segments: expected a list"),
    ({"segment_bins": 0}, r"^analysis\.segment_bins: expected"),
    ({"segment_correction": "x"}, r"^analysis\.segment_correction: expected one of"),
])
def test_python_specs_are_checked_the_same_way(kwargs: dict, message: str) -> None:
    spec = load_spec(BASE)
    with pytest.raises(SpecError, match=message):
        ExperimentSpec(name="t", seed=1, arms=spec.arms, **kwargs)


def test_segment_keys_round_trip_and_stay_out_of_specs_without_them() -> None:
    spec = load_spec({**BASE, "campaign": {"every_days": 1, "incentive": 0.25},
                      "analysis": {"segments": ["price_sensitivity"], "segment_bins": 4}})
    assert spec.segments == ("price_sensitivity",) and spec.segment_bins == 4
    assert spec.segment_correction == "bh" and spec.campaign.incentive == 0.25
    assert load_spec(spec.to_dict()) == spec
    plain = load_spec(BASE).to_dict()
    assert plain["analysis"] == {"alpha": 0.05, "correction": "holm"}
    assert "incentive" not in plain["campaign"]


def test_the_budget_counts_the_per_subscriber_tables() -> None:
    from experiments.budget import BYTES_PER_SUBSCRIBER_RUN_SEGMENTS, estimate

    plain = load_spec({**BASE, "population": {"subscribers": 10_000}, "replications": 3})
    seg = load_spec({**BASE, "population": {"subscribers": 10_000}, "replications": 3,
                     "analysis": {"segments": ["lifecycle_stage"]}})
    assert estimate(seg).bytes - estimate(plain).bytes == pytest.approx(
        BYTES_PER_SUBSCRIBER_RUN_SEGMENTS * 10_000 * 6)
