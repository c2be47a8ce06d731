"""experiments.analysis, experiments.regret and experiments.tables: the numbers behind the
report, the plots and the notebooks, checked by hand on recorded run folders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import experiments.notebook_helpers as nh
import experiments.plots as plots
import experiments.report as report
import experiments.results as results
from experiments import Results, analysis, regret, tables
from experiments.spec import load_spec

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"


@pytest.fixture(scope="module")
def bandit() -> Results:
    return Results.load(GOLDEN / "ab_vs_bandit")


@pytest.fixture(scope="module")
def timing() -> Results:
    return Results.load(GOLDEN / "trigger_timing")


def test_old_names_still_work() -> None:
    assert report.summarize is analysis.summarize and report.srm_checks is analysis.srm_checks
    assert results.metric_counts is tables.metric_counts is analysis.metric_counts
    assert plots.daily_regret is regret.daily_regret
    assert nh.cumulative_regret is regret.cumulative_regret
    assert nh.segment_summary is tables.segment_summary


# --------------------------------------------------------------------------- regret


def test_email_regret_and_regret_rows_by_hand() -> None:
    d = pd.DataFrame({
        "time": [100, 200, 86_500, 86_600],
        "source": ["campaign", "campaign", "campaign", "cart"],
        "arm": ["plain", "question", "plain", "plain"],
        "expected_reward": [0.02, 0.05, 0.01, 0.03],
        "expected_reward__plain": [0.02, 0.01, 0.01, 0.03],
        "expected_reward__question": [0.04, 0.05, 0.02, 0.01],
    })
    np.testing.assert_allclose(regret.email_regret(d), [0.02, 0.0, 0.01, 0.0], atol=1e-15)
    rows = regret.regret_rows(d, 1, "bandit", start=0)
    assert list(rows.columns) == ["replication", "arm", "day", "source", "variant", "group",
                                  "metric", "value"]
    got = rows.set_index(["day", "source", "variant"])["value"]
    assert got[(0, "campaign", "plain")] == pytest.approx(0.02)
    assert got[(0, "campaign", "question")] == 0.0
    assert got[(1, "campaign", "plain")] == pytest.approx(0.01)
    assert set(rows["metric"]) == {"expected_regret"} and set(rows["replication"]) == {1}
    assert regret.regret_rows(None, 0, "x", 0).empty
    with pytest.raises(ValueError, match=r"^decisions: expected expected_reward__<variant>"):
        regret.email_regret(d[["expected_reward"]])


def test_regret_views_agree(bandit: Results) -> None:
    mt = bandit.metrics
    reps = bandit.spec.replications
    pol = [a.name for a in bandit.spec.arms if a.policy is not None]
    total = mt[mt["metric"] == "expected_regret"].groupby("arm")["value"].sum()
    dr = regret.daily_regret(bandit)
    assert dr is not None and set(dr["arm"]) <= set(pol)
    cum = regret.cumulative_regret(bandit)
    curves = regret.regret_curves(bandit)
    assert set(curves) == set(dr["arm"])
    for arm, curve in curves.items():
        assert curve.iloc[-1] == pytest.approx(total[arm] / reps, rel=1e-12)
        last = cum[cum["arm"] == arm].iloc[-1]
        assert last["mean"] == pytest.approx(total[arm] / reps, rel=1e-12)
        assert last["low"] <= last["mean"] <= last["high"]
        assert (np.diff(curve.to_numpy()) >= -1e-12).all()  # regret only accumulates


def test_policy_table_from_the_truth(bandit: Results) -> None:
    t = regret.policy_table(bandit)
    assert list(t["arm"]) == [a.name for a in bandit.spec.arms if a.policy is not None]
    tr = bandit.truth
    tr = tr[(tr["group"] == "treatment") & (tr["source"] != "site") & (tr["variant"] != "")]
    for _, row in t.iterrows():
        a = tr[tr["arm"] == row["arm"]]
        reps = bandit.spec.replications
        assert row["regret"] == pytest.approx(a["expected_regret"].sum() / reps)
        assert row["sends"] == pytest.approx(a["sends"].sum() / reps)
        assert 0.0 <= row["best_share"] <= 1.0
        assert row["best_variant"] == a.groupby("best_arm")["sends"].sum().idxmax()


# --------------------------------------------------------------------------- tables


def test_rate_over_time_ends_at_the_summary_estimate(timing: Results) -> None:
    summary = analysis.summarize(timing).set_index(["metric", "arm"])
    for metric in ("clicks", "attributed_orders"):  # per-email: pooled over the days
        r = tables.rate_over_time(timing, metric)
        assert list(r["arm"].unique()) == timing.arms
        for arm, a in r.groupby("arm"):
            # NaN for an arm that sends no email (no_reminder)
            assert a["to_date"].iloc[-1] == pytest.approx(summary.loc[(metric, arm), "estimate"],
                                                          rel=1e-12, nan_ok=True)
    o = tables.rate_over_time(timing, "orders")  # per subscriber: to date over group size
    c = tables.metric_counts(timing.metrics, timing.spec, "orders", by_day=True)
    g = c.groupby(["arm", "day"])[["numerator", "denominator"]].sum()
    a = o[o["arm"] == timing.spec.control_arm]
    ga = g.loc[timing.spec.control_arm]
    np.testing.assert_allclose(a["daily"], ga["numerator"] / ga["denominator"], rtol=1e-12)
    np.testing.assert_allclose(a["to_date"], ga["numerator"].cumsum() / ga["denominator"],
                               rtol=1e-12)


def test_allocation_shares_and_funnel(bandit: Results) -> None:
    for arm in (a.name for a in bandit.spec.arms if a.policy is not None):
        share = tables.allocation_shares(bandit, arm)
        np.testing.assert_allclose(share.sum(axis=1), 1.0, rtol=1e-12)
        assert (share.to_numpy() >= 0).all()
    f = tables.funnel_table(bandit)
    assert list(f.index) == bandit.arms
    assert list(f.columns) == [*tables.FUNNEL_STAGES, "any_emails"]
    mt = bandit.metrics
    e = mt[(mt["source"] != "site") & (mt["group"] == "treatment")]
    subs = tables.metric_counts(mt, bandit.spec, "orders").groupby("arm")["denominator"].sum()
    for arm in bandit.arms:
        sends = e[(e["arm"] == arm) & (e["metric"] == "sends")]["value"].sum()
        assert f.loc[arm, "sends"] == pytest.approx(sends / subs[arm], rel=1e-12)
        assert bool(f.loc[arm, "any_emails"]) == (sends > 0)
        assert f.loc[arm, "sends"] >= f.loc[arm, "opens"] >= f.loc[arm, "clicks"]


def test_segment_summary_by_hand() -> None:
    d = pd.DataFrame({"arm": ["a", "a", "b", "b", "a"], "reward": [1.0, 0.0, 1.0, 1.0, 0.0],
                      "expected_reward": [0.5, 0.25, 0.75, 0.75, 0.1]})
    t = tables.segment_summary(d, ["x", "x", "x", "y", "y"], order=["b", "a"])
    assert t.loc[("x", "a"), "emails"] == 2 and t.loc[("x", "a"), "observed"] == 0.5
    assert t.loc[("x", "a"), "truth"] == pytest.approx(0.375)
    assert t.loc[("x", "a"), "se"] == pytest.approx(math.sqrt(0.25 / 2))
    with pytest.raises(ValueError, match=r"^segment: expected 5 values, got 2"):
        tables.segment_summary(d, ["x", "y"])


# --------------------------------------------------------------------------- analysis


SPEC = load_spec({"name": "x", "seed": 1, "arms": [{"name": "a"}, {"name": "b"},
                                                     {"name": "c"}],
                  "metrics": ["orders", "unsubscribes"]})
COLS = ["metric", "arm", "is_control", "estimate", "lift", "lift_ci_low", "lift_ci_high",
        "diff", "p_adjusted", "significant", "prob_beat_control", "true_value"]


def test_recommend_picks_the_significant_winner_and_flags_the_guardrail() -> None:
    s = pd.DataFrame([
        ("orders", "a", True, 0.050, np.nan, np.nan, np.nan, np.nan, np.nan, None, np.nan, 0.0),
        ("orders", "b", False, 0.055, 0.10, 0.02, 0.18, 0.005, 0.01, True, 0.99, 0.001),
        ("orders", "c", False, 0.045, -0.10, -0.18, -0.02, -0.005, 0.02, True, 0.01, 0.004),
        ("unsubscribes", "a", True, 0.010, np.nan, np.nan, np.nan, np.nan, np.nan, None,
         np.nan, 0.0),
        ("unsubscribes", "b", False, 0.013, 0.3, 0.1, 0.5, 0.003, 0.001, True, 0.01, 0.0),
        ("unsubscribes", "c", False, 0.010, 0.0, -0.1, 0.1, 0.0, 0.9, False, 0.5, 0.0),
    ], columns=COLS)
    rec = analysis.recommend(s, SPEC)
    assert rec.chosen == "b" and rec.winner is not None and rec.winner["arm"] == "b"
    assert rec.closest is None and rec.losers == ["c"] and rec.control_estimate == 0.050
    assert [g["metric"] for g in rec.guardrails] == ["unsubscribes"]
    assert rec.best_true == "c"
    # nothing significant: keep control, name the closest arm
    s2 = s.assign(significant=[None, False, False, None, False, False])
    rec2 = analysis.recommend(s2, SPEC)
    assert rec2.chosen == "a" and rec2.winner is None and rec2.closest is not None
    assert rec2.closest["arm"] == "b" and rec2.losers == [] and rec2.guardrails == []


def test_analysis_kind_and_summary_columns(timing: Results) -> None:
    assert analysis.analysis_kind("clicks") == "per_email"
    assert analysis.analysis_kind("revenue_per_recipient") == "paired"
    assert analysis.analysis_kind("incremental_orders") == "holdout"
    s = analysis.summarize(timing)
    assert tuple(s.columns) == analysis.SUMMARY_COLUMNS
    assert len(s) == len(timing.spec.metrics) * len(timing.arms)
    tv = analysis.true_values(timing)
    merged = s.merge(tv, on=["metric", "arm"], suffixes=("", "_tv"))
    np.testing.assert_array_equal(merged["true_value"].to_numpy(float),
                                  merged["true_value_tv"].to_numpy(float))


def test_declared_guardrails_flag_any_metric_in_its_bad_direction() -> None:
    spec = load_spec({"name": "x", "seed": 1, "arms": [{"name": "a"}, {"name": "b"},
                                                         {"name": "c"}],
                      "metrics": ["orders", "revenue_per_recipient", "unsubscribes"],
                      "guardrails": ["revenue_per_recipient", "unsubscribes"]})
    assert spec.to_dict()["guardrails"] == ["revenue_per_recipient", "unsubscribes"]
    rows = []
    for metric, b, c in (("orders", (0.055, 0.005, True), (0.05, 0.0, False)),
                         ("revenue_per_recipient", (1.0, -0.5, True), (3.0, 1.0, True)),
                         ("unsubscribes", (0.009, -0.001, True), (0.02, 0.01, True))):
        rows.append((metric, "a", True, 0.05, np.nan, np.nan, np.nan, np.nan, np.nan, None,
                     np.nan, 0.0))
        for arm, (est, diff, sig) in (("b", b), ("c", c)):
            rows.append((metric, arm, False, est, 0.1, 0.0, 0.2, diff, 0.01 if sig else 0.5,
                         sig, 0.5, 0.0))
    s = pd.DataFrame(rows, columns=COLS)
    # lower revenue is worse, lower unsubscribes is better
    assert [g["metric"] for g in analysis.guardrail_breaches(s, spec, "b")] == [
        "revenue_per_recipient"]
    assert [g["metric"] for g in analysis.guardrail_breaches(s, spec, "c")] == ["unsubscribes"]
    rec = analysis.recommend(s, spec)
    assert rec.chosen == "b" and [g["metric"] for g in rec.guardrails] == [
        "revenue_per_recipient"]
    from experiments.report import recommendation

    assert any(t.startswith("Caution: b also lowered revenue per recipient by")
               for t in recommendation(s, spec))


@pytest.mark.parametrize(("guardrails", "message"), [
    (["clicks"], r"^guardrails\[0\]: 'clicks' is not in metrics \(orders, unsubscribes\); "
                 r"a guardrail is a metric the spec reports$"),
    (["unsubscribes", "unsubscribes"], r"^guardrails\[1\]: duplicate metric 'unsubscribes'"),
    ({"unsubscribes": 1}, r"^guardrails: expected a list of names"),
])
def test_bad_guardrails(guardrails, message) -> None:
    from policies.errors import SpecError

    with pytest.raises(SpecError, match=message):
        load_spec({"name": "x", "seed": 1, "arms": [{"name": "a"}, {"name": "b"}],
                   "metrics": ["orders", "unsubscribes"], "guardrails": guardrails})
