"""The report's numbers match a recomputation from metrics.parquet by hand; SRM checks;
the recommendation's wording; the plots are written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from experiments import Results, run
from experiments.metrics import METRICS
from experiments.report import recommendation, srm_checks
from experiments.spec import load_spec

SPEC = {
    "name": "report_check",
    "seed": 4,
    "population": {"subscribers": 1500},
    "duration": {"days": 4, "tick": "1h"},
    "rules": "default",
    "campaign": {"every_days": 2, "local_hour": 10},
    "arms": [
        {"name": "control", "holdout": 0.25},
        {"name": "reminder_1h", "rules": {"cart_abandonment_24h": {"delay": "1h"}},
         "holdout": 0.25},
        {"name": "split", "holdout": 0.25,
         "policy": {"name": "ab", "arms": ["plain", "question"], "scope": "campaign"}},
    ],
    "metrics": ["orders", "clicks", "revenue_per_recipient", "incremental_orders",
                "incremental_orders_per_email"],
    "replications": 2,
}


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> Results:  # type: ignore[no-untyped-def]
    return run(SPEC, out=tmp_path_factory.mktemp("r") / "run", progress=False)


def _by_hand(d: Path) -> pd.DataFrame:
    """Recompute the summary's core numbers from metrics.parquet with plain pandas."""
    m = pd.read_parquet(d / "metrics.parquet")
    arms = ["control", "reminder_1h", "split"]
    tr = m[m["group"] == "treatment"]
    site = tr[tr["source"] == "site"]
    email = tr[tr["source"] != "site"]
    # group sizes: subscribers per replication (largest daily count), summed over reps
    subs = (site[site["metric"] == "subscribers"].groupby(["arm", "replication", "day"])["value"]
            .sum().groupby(level=[0, 1]).max())
    hold = m[(m["group"] == "holdout") & (m["source"] == "site")]
    hsubs = (hold[hold["metric"] == "subscribers"].groupby(["arm", "replication", "day"])
             ["value"].sum().groupby(level=[0, 1]).max())
    rows = []
    pvals = []
    sends = email[email["metric"] == "sends"].groupby("arm")["value"].sum()
    for metric in ["orders", "clicks", "revenue_per_recipient", "incremental_orders",
                   "incremental_orders_per_email"]:
        # per email: the per-subscriber difference times treatment subscribers per email
        per_email = metric.endswith("per_email")
        for arm in arms:
            row = {"metric": metric, "arm": arm}
            if metric == "clicks":
                x = email[(email["arm"] == arm) & (email["metric"] == "clicks")]["value"].sum()
                n = email[(email["arm"] == arm) & (email["metric"] == "sends")]["value"].sum()
                row["estimate"] = x / n
                if arm != "control":
                    xc = email[(email["arm"] == "control") & (email["metric"] == "clicks")][
                        "value"].sum()
                    nc = email[(email["arm"] == "control") & (email["metric"] == "sends")][
                        "value"].sum()
                    pool = (x + xc) / (n + nc)
                    z = (x / n - xc / nc) / math.sqrt(pool * (1 - pool) * (1 / n + 1 / nc))
                    row["diff"] = x / n - xc / nc
                    row["p_value"] = 2 * st.norm.sf(abs(z))
            elif metric.startswith("incremental_orders"):
                def scale(a: str, per_email: bool = per_email) -> float:
                    return float(subs[a].sum() / sends[a]) if per_email else 1.0

                def inc(a: str, scale=scale) -> float:  # type: ignore[no-untyped-def]
                    o = site[(site["arm"] == a) & (site["metric"] == "orders_all")]["value"].sum()
                    ho = hold[(hold["arm"] == a) & (hold["metric"] == "orders_all")]["value"].sum()
                    return (o / subs[a].sum() - ho / hsubs[a].sum()) * scale(a)
                row["estimate"] = inc(arm)
                if arm != "control":
                    row["diff"] = inc(arm) - inc("control")
                    se = 0.0
                    for a in (arm, "control"):
                        o = site[(site["arm"] == a) & (site["metric"] == "orders_all")][
                            "value"].sum()
                        ho = hold[(hold["arm"] == a) & (hold["metric"] == "orders_all")][
                            "value"].sum()
                        se += (o / subs[a].sum() ** 2 + ho / hsubs[a].sum() ** 2) * scale(a) ** 2
                    row["p_value"] = 2 * st.norm.sf(abs(row["diff"]) / math.sqrt(se))
            else:
                name = "orders_all" if metric == "orders" else "revenue_all"
                daily = (site[site["metric"] == name].groupby(["arm", "replication", "day"])
                         ["value"].sum())
                per_sub = daily / subs.reindex(daily.index.droplevel(2)).to_numpy()
                row["estimate"] = daily[arm].sum() / subs[arm].sum()
                if arm != "control":
                    diff = (per_sub[arm] - per_sub["control"]).to_numpy()
                    days = 4
                    row["diff"] = days * diff.mean()
                    se = days * diff.std(ddof=1) / math.sqrt(len(diff))
                    row["p_value"] = (2 * st.t.sf(abs(row["diff"] / se), len(diff) - 1)
                                      if se > 0 else float(row["diff"] == 0))
            if "p_value" in row:
                pvals.append(row["p_value"])
            rows.append(row)
    out = pd.DataFrame(rows)
    # Holm by hand
    p = np.array(pvals)
    order = np.argsort(p)
    adj = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adj[i] = running
    out.loc[out["p_value"].notna(), "p_adjusted"] = adj
    return out


def test_summary_matches_recomputation_from_metrics_parquet(report_run: Results) -> None:
    d = report_run.run_dir
    assert d is not None
    summary = pd.read_csv(d / "summary.csv")
    hand = _by_hand(d)
    merged = hand.merge(summary, on=["metric", "arm"], suffixes=("_hand", ""))
    assert len(merged) == 15
    for col in ("estimate", "diff", "p_value", "p_adjusted"):
        a = merged[f"{col}_hand"].to_numpy(float)
        b = merged[col].to_numpy(float)
        both = np.isfinite(a)
        assert np.array_equal(both, np.isfinite(b)), col
        np.testing.assert_allclose(b[both], a[both], rtol=2e-5, atol=1e-12, err_msg=col)
    # the report shows the same numbers
    text = (d / "report.md").read_text()
    for _, r in merged.iterrows():
        if r["metric"] == "clicks":
            assert f"| {100 * r['estimate']:.2f}% |" in text
        elif r["metric"] == "revenue_per_recipient":
            assert f"| {r['estimate']:.3f} |" in text
        else:
            assert f"| {r['estimate']:.4f} |" in text
        if r["arm"] != "control":
            assert f"| {r['p_adjusted']:.2g} |" in text
    html = (d / "report.html").read_text()
    assert "<table>" in html and 'src="lift.png"' in html and "Ground truth" in html


def test_truth_column_is_named_for_its_basis(report_run: Results) -> None:
    """Site-wide metrics estimate all orders; the simulator's truth is the email-caused
    part: its column must not be headed "truth" beside the estimate."""
    assert report_run.run_dir is not None
    text = (report_run.run_dir / "report.md").read_text()
    tables = {sec.splitlines()[0].strip(): sec for sec in text.split("\n### ")[1:]}
    for metric in ("orders", "revenue_per_recipient", "clicks", "incremental_orders",
                   "incremental_orders_per_email"):
        md = METRICS[metric]
        head = tables[md.unit[0].upper() + md.unit[1:]]
        header = next(ln for ln in head.splitlines() if ln.startswith("| arm |"))
        if md.scope == "site":
            assert "| true email-caused part |" in header and "| truth |" not in header
        else:
            assert "| truth |" in header and "email-caused part |" not in header


def test_truth_columns_come_from_the_truth_table(report_run: Results) -> None:
    s = report_run.summary().set_index(["metric", "arm"])
    t = report_run.truth
    t = t[(t["group"] == "treatment") & (t["source"] != "site")]
    for arm in ("control", "reminder_1h", "split"):
        a = t[t["arm"] == arm]
        assert s.loc[("clicks", arm), "true_value"] == pytest.approx(
            a["expected_clicks"].sum() / a["sends"].sum())
        subs = s.loc[("orders", arm), "denominator"]
        assert s.loc[("orders", arm), "true_value"] == pytest.approx(
            a["expected_incremental_orders"].sum() / subs)
        # treatment minus holdout: the campaigns reach the holdout too, and their caused
        # orders cancel in the estimate, so they cancel in the truth
        h = report_run.truth
        h = h[(h["group"] == "holdout") & (h["source"] != "site") & (h["arm"] == arm)]
        assert h["sends"].sum() > 0 and h["expected_incremental_orders"].sum() > 0
        counts = report_run.counts("incremental_orders")
        held = counts[counts["arm"] == arm]["holdout_denominator"].sum()
        caused = (a["expected_incremental_orders"].sum() / subs
                  - h["expected_incremental_orders"].sum() / held)
        assert s.loc[("incremental_orders", arm), "true_value"] == pytest.approx(caused)
        assert s.loc[("incremental_orders_per_email", arm), "true_value"] == pytest.approx(
            caused * subs / a["sends"].sum())
    c = s.loc[("clicks", "reminder_1h")]
    assert c["true_lift"] == pytest.approx(
        c["true_value"] / s.loc[("clicks", "control"), "true_value"] - 1)
    assert s.loc[("clicks", "split"), "regret"] >= 0


def test_srm_checks_cover_holdouts_and_ab_splits(report_run: Results) -> None:
    checks = srm_checks(report_run)
    kinds = [(c["arm"], c["split"]) for c in checks]
    assert ("control", "treatment / holdout subscribers") in kinds
    assert ("split", "A/B sends per variant") in kinds
    for c in checks:
        assert 0 <= c["p_value"] <= 1
    text = (report_run.run_dir / "report.md").read_text()
    assert "## Sample ratio checks" in text and "75% / 25%" in text


def test_plots_are_written(report_run: Results) -> None:
    d = report_run.run_dir
    for name in ("metric_over_time.png", "lift.png", "allocation.png", "regret.png",
                 "funnel.png"):
        data = (d / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name


def _summary(rows: list[tuple]) -> pd.DataFrame:
    cols = ["metric", "arm", "is_control", "estimate", "lift", "lift_ci_low", "lift_ci_high",
            "diff", "p_adjusted", "significant", "prob_beat_control", "true_value"]
    return pd.DataFrame(rows, columns=cols)


SPEC3 = load_spec({"name": "x", "seed": 1, "arms": [{"name": "a"}, {"name": "b"},
                                                      {"name": "c"}],
                   "metrics": ["orders", "unsubscribes"]})


def test_recommendation_switches_only_on_a_significant_improvement() -> None:
    s = _summary([
        ("orders", "a", True, 0.050, np.nan, np.nan, np.nan, np.nan, np.nan, None, np.nan, 0.0),
        ("orders", "b", False, 0.055, 0.10, 0.02, 0.18, 0.005, 0.01, True, 0.99, 0.004),
        ("orders", "c", False, 0.045, -0.10, -0.18, -0.02, -0.005, 0.02, True, 0.01, -0.003),
    ])
    text = " ".join(recommendation(s, SPEC3))
    assert "switch to **b**" in text and "+10.0%" in text and "adjusted p = 0.01" in text
    assert "Significantly worse than a on orders per subscriber: c." in text
    assert "best arm on orders per subscriber is **b**; the recommendation agrees" in text
    s.loc[1, ["p_adjusted", "significant"]] = [0.2, False]
    text = " ".join(recommendation(s, SPEC3))
    assert "keep **a**" in text and "the closest, b, differs by +10.0%" in text
    assert "recommendation differs from it" in text


def test_lower_is_better_metrics() -> None:
    spec = load_spec({"name": "x", "seed": 1, "arms": [{"name": "a"}, {"name": "b"}],
                      "metrics": ["unsubscribes"]})
    s = _summary([
        ("unsubscribes", "a", True, 0.004, np.nan, np.nan, np.nan, np.nan, np.nan, None,
         np.nan, np.nan),
        ("unsubscribes", "b", False, 0.002, -0.5, -0.7, -0.3, -0.002, 0.001, True, 0.999,
         np.nan),
    ])
    assert "switch to **b**" in " ".join(recommendation(s, spec))


@pytest.mark.parametrize("sign", [1.0, -1.0, 0.0])
def test_no_winner_sentence_follows_the_closest_arms_sign(report_run: Results,
                                                          sign: float) -> None:
    """'A larger experiment is needed to detect an effect of that size' only for an
    estimated improvement (the ab_vs_bandit report said it of a -9.1% difference)."""
    s = report_run.summary().copy()
    spec = report_run.spec
    rows = (s["metric"] == spec.primary) & ~s["is_control"]
    s.loc[rows, "diff"] = sign * (s.loc[rows, "diff"].abs() + 1e-3)
    s.loc[rows, "significant"] = False
    text = " ".join(recommendation(s, spec))
    assert "keep" in text
    improving = sign > 0 if spec.primary != "unsubscribes" else sign < 0
    assert ("A larger or longer experiment is needed" in text) is improving
    assert ("No arm's estimate is an improvement on control." in text) is not improving
