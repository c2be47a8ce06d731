"""Each built-in spec's expected qualitative outcome, asserted on the simulator's ground
truth at small scale (the specs' own seeds, fewer subscribers).

The truth columns are expected values over the emails actually sent (no response
noise), so these assertions test the simulator's causal structure as seen through the
runner and the report, not luck.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import Results, load_spec, run

SPECS = Path(__file__).parents[2] / "experiments" / "specs"


def _run(name: str, subscribers: int, days: float = 14.0, replications: int = 1) -> Results:
    spec = load_spec(SPECS / f"{name}.yaml")
    spec = dataclasses.replace(spec, subscribers=subscribers, days=days,
                               replications=replications)
    return run(spec, progress=False)


def _truth(res: Results, metric: str) -> pd.Series:
    s = res.summary()
    return s[s["metric"] == metric].set_index("arm")["true_value"]


def _triggered(res: Results) -> pd.DataFrame:
    t = res.truth
    t = t[(t["group"] == "treatment") & (t["source"] != "campaign")]
    return t.groupby("arm")[["sends", "expected_incremental_orders"]].sum()


def test_trigger_timing_1h_beats_24h_beats_none() -> None:
    # 2,000 (was 5,000): 1 h / 24 h = 2.31, 2.27, 2.36 on the spec's seed and the next two
    # (2.24 at 5,000); per email 1.98, 2.09, 2.00
    res = _run("trigger_timing", 2000)
    inc = _truth(res, "orders")  # expected email-caused orders per subscriber (cart rule)
    assert inc["reminder_1h"] > 1.5 * inc["reminder_24h"] > 0
    assert inc["no_reminder"] == 0
    # the late reminder converts worse per email in truth
    per_email = _truth(res, "attributed_orders")
    assert per_email["reminder_1h"] > per_email["reminder_24h"]
    t = res.truth
    assert not ((t["arm"] == "no_reminder") & (t["source"] == "cart_abandonment_24h")).any()


def test_thompson_sampling_loses_less_than_a_fixed_split() -> None:
    res = _run("ab_vs_bandit", 5000)
    s = res.summary().set_index(["metric", "arm"])
    assert s.loc[("clicks", "thompson"), "regret"] < 0.85 * s.loc[("clicks", "ab_split"),
                                                                  "regret"]
    clicks = _truth(res, "clicks")
    assert clicks["thompson"] > clicks["ab_split"]
    # it moved sends to the style that is best in truth
    t = res.truth[res.truth["arm"] == "thompson"]
    best = t.groupby("best_arm")["sends"].sum().idxmax()
    m = res.metrics
    sends = m[(m["arm"] == "thompson") & (m["metric"] == "sends") & (m["source"] == "campaign")]
    share = sends.groupby("variant")["value"].sum()
    assert share.idxmax() == best == "first_name"
    assert share[best] / share.sum() > 0.5


def test_rule_based_personalization_beats_the_global_winner() -> None:
    res = _run("personalization", 5000)
    clicks = _truth(res, "clicks")
    assert clicks["rule_based"] > 1.08 * clicks["global_winner"]
    assert clicks["rule_based"] > clicks["linucb"]
    s = res.summary().set_index(["metric", "arm"])
    assert s.loc[("clicks", "rule_based"), "regret"] < 0.2 * s.loc[("clicks", "global_winner"),
                                                                   "regret"]


def test_send_time_evening_beats_morning_and_click_fed_optimizer() -> None:
    res = _run("send_time", 4000)
    opens = _truth(res, "opens")
    assert opens["fixed_20h"] > opens["fixed_10h"]
    assert opens["fixed_20h"] > opens["optimized"]


def test_looser_frequency_caps_send_more_and_cause_more_orders() -> None:
    # 2,000 (was 4,000): the arms share their random numbers, so the caps' order holds in
    # sends, caused orders and orders on the spec's seed and the next two
    res = _run("frequency_cap", 2000)
    trig = _triggered(res)
    order = ["cap_1_per_3_days", "cap_1_per_day", "cap_3_per_day", "no_cap"]
    sends = trig.loc[order, "sends"].to_numpy()
    inc = trig.loc[order, "expected_incremental_orders"].to_numpy()
    assert sends[0] < sends[1] < sends[2] <= sends[3]
    assert inc[0] < inc[1] < inc[2] <= inc[3]
    orders = _truth(res, "orders")
    assert orders["cap_1_per_3_days"] < orders["cap_1_per_day"] < orders["no_cap"]


def test_segment_effects_discount_changes_sign_between_price_segments(tmp_path: Path) -> None:
    """The report finds that the discount's effect on revenue per subscriber differs in
    sign between price-sensitivity segments, and the truth confirms it."""
    from experiments.report import headline
    from experiments.segments import segment_effects

    spec = dataclasses.replace(load_spec(SPECS / "segment_effects.yaml"), subscribers=10_000,
                               replications=1)
    res = run(spec, out=tmp_path / "seg", progress=False)
    price = segment_effects(res, "price_sensitivity")
    e, t = price.effects, price.tests.iloc[0]
    # truth: the discount's effect grows with price sensitivity and changes sign
    true = e["true_diff"].to_numpy()
    assert (np.diff(true) > 0).all() and true[0] < 0 < true[-1]
    # the estimate: significantly negative and significantly positive segments, each of
    # the true sign; the segments differ (interaction test) and from the rest
    sig = e[e["significant"] == True]  # noqa: E712
    pos, neg = sig[sig["diff"] > 0], sig[sig["diff"] < 0]
    assert len(pos) and len(neg)
    assert (pos["true_diff"] > 0).all() and (neg["true_diff"] < 0).all()
    assert e["segment"].iloc[0] in set(neg["segment"]) and e["segment"].iloc[-1] in set(
        pos["segment"])
    assert t["q_p_value"] < 1e-3 and t["differs_from_rest"] >= 2
    # lifecycle stage does not carry the mechanism: one true sign in every stage
    life = segment_effects(res, "lifecycle_stage").tests.iloc[0]
    assert life["true_negative"] == 0 or life["true_positive"] == 0
    # the report and the terminal say so; the forest plot is written
    md = (tmp_path / "seg" / "report.md").read_text()
    assert "The effect changes sign" in md and "## Effects by segment" in md
    assert (tmp_path / "seg" / "segments_price_sensitivity.png").stat().st_size > 10_000
    assert any(line.startswith("by price_sensitivity, discount_30 vs full_price")
               for line in headline(res))
    loaded = Results.load(tmp_path / "seg")
    pd.testing.assert_frame_equal(segment_effects(loaded, "price_sensitivity").effects, e)


def test_uplift_targeting_causes_the_most_orders_per_email(tmp_path: Path) -> None:
    """Mailing the top 30 % by uplift causes more orders per email than the top 30 % by
    purchase propensity, which causes more than mailing everyone: on the truth, and the
    estimates (treatment minus holdout, per email) rank the arms the same way."""
    spec = dataclasses.replace(load_spec(SPECS / "uplift_targeting.yaml"), subscribers=8_000,
                               replications=1)
    res = run(spec, out=tmp_path / "ut", progress=False)
    s = res.summary().set_index(["metric", "arm"])
    per_email = s.loc["incremental_orders_per_email"]
    true = per_email["true_value"]
    assert true["top30_uplift"] > 1.2 * true["top30_propensity"] > 1.2 * true["everyone"] > 0
    est = per_email["estimate"]
    assert est["top30_uplift"] > est["top30_propensity"] > est["everyone"] > 0
    assert per_email.loc["top30_uplift", "significant"]
    # the targeted arms send about 30 % of the emails (none before the first refresh)
    t = res.truth
    sends = t[(t["group"] == "treatment") & (t["source"] != "site")].groupby("arm")["sends"].sum()
    assert 0.15 < sends["top30_uplift"] / sends["everyone"] < 0.3
    # the holdout gets no newsletter: what the estimate subtracts is organic only
    assert t[(t["group"] == "holdout") & (t["source"] != "site")]["sends"].sum() == 0


def _incremental(res: Results) -> pd.Series:
    s = res.summary()
    return s[s["metric"] == "incremental_orders"].set_index("arm")["true_value"]


def test_price_drop_alerts_cause_orders_and_the_threshold_sends_fewer(tmp_path: Path) -> None:
    """Both alert rules cause orders (truth, against their holdouts); only drops of 10 %
    or more enter fewer subscribers and send fewer alerts; the funnel and the flowchart
    are in the run folder."""
    # 3,000 (was 8,000): entered 1,236 vs 1,427 and fired 985 vs 1,137 on the spec's seed
    # (about the same ratios on the next two); both arms cause orders (1.3e-2, 1.2e-2)
    spec = dataclasses.replace(load_spec(SPECS / "price_drop.yaml"), subscribers=3_000,
                               replications=1)
    res = run(spec, out=tmp_path / "pd", progress=False)
    true = _incremental(res)
    assert true["every_drop"] > 0 and true["drops_10pct"] > 0
    j = res.journeys
    entered = j[j["kind"] == "enter"].set_index("arm")["count"]
    fired = j[(j["kind"] == "fire") & (j["group"] == "treatment")].groupby("arm")["count"].sum()
    assert 0 < entered["drops_10pct"] < entered["every_drop"]
    assert 0 < fired["drops_10pct"] < fired["every_drop"]
    assert (tmp_path / "pd" / "journey_price_drop_alert.png").exists()
    assert "## Guardrails" in (tmp_path / "pd" / "report.md").read_text()


def test_winback_later_entry_reaches_fewer_and_causes_fewer_orders(tmp_path: Path) -> None:
    """Waiting 60 days instead of 30 enters far fewer subscribers into the win-back; the
    30-day journey causes more orders (truth, against the holdout); the discount does not
    change who enters."""
    # 3,000 (was 8,000): 60 d / 30 d entries 0.17, 0.20, 0.16 on the spec's seed and the
    # next two (0.18 at 8,000); caused orders 2.4e-3 vs 1.0e-4 (all three seeds > 0)
    spec = dataclasses.replace(load_spec(SPECS / "winback.yaml"), subscribers=3_000,
                               replications=1)
    res = run(spec, progress=False)
    j = res.journeys
    entered = j[j["kind"] == "enter"].set_index("arm")["count"]
    assert entered["after_60d"] < 0.5 * entered["after_30d"]
    assert entered["after_30d_discount"] == entered["after_30d"]
    true = _incremental(res)
    assert true["after_30d"] > true["after_60d"] > 0


def test_cart_series_a_discount_for_everyone_wins_orders_and_loses_margin(tmp_path: Path
                                                                          ) -> None:
    """The series earn more margin per subscriber than one reminder; 15 % off in every
    email causes the most orders and earns less margin than the same series at full
    price (truth); sending the nudge only to those who did not open sends fewer emails.
    The estimate of the discount's margin loss has the true sign."""
    res = _run("cart_series", 4_000, days=14.0)
    margin, caused = _truth(res, "attributed_margin"), _truth(res, "orders")
    assert margin["series"] > 1.2 * margin["one_reminder"] > 0
    assert caused["discount_every_email"] > 1.1 * caused["series"] > caused["one_reminder"] > 0
    assert margin["discount_every_email"] < 0.85 * margin["series"]
    # revenue net of the discount barely moves (the orders won make up for the discount in
    # revenue, not in margin)
    revenue = _truth(res, "attributed_revenue")
    assert abs(revenue["discount_every_email"] / revenue["series"] - 1) < 0.1
    s = res.summary().set_index(["metric", "arm"])
    assert s.loc[("attributed_margin", "discount_every_email"), "diff"] < 0
    t = res.truth
    sends = t[(t["group"] == "treatment") & (t["source"] != "site")].groupby("arm")["sends"].sum()
    assert sends["one_reminder"] < sends["series_smart"] < sends["series"]
    # the smart series' discount reached only price-sensitive subscribers: its margin per
    # order is between the full-price and the discount-for-everyone series'
    per_order = (t[t["group"] == "treatment"].groupby("arm")["expected_margin"].sum()
                 / t[t["group"] == "treatment"].groupby("arm")["expected_orders"].sum())
    assert (per_order["discount_every_email"] < per_order["series_smart"]
            < per_order["series"])


def test_multivariate_factorized_policy_finds_the_best_combination_first(tmp_path: Path
                                                                          ) -> None:
    """The subject x button interaction is found by the factorial analysis and confirmed
    by the truth; the factorized policy sends the true best combination after fewer sends
    than the factorial test needs to declare it, with the least regret; one element at a
    time tests the subject with the current button and misses the best."""
    from experiments.combinations import combination_table, factorial_analysis

    spec = dataclasses.replace(load_spec(SPECS / "multivariate.yaml"), subscribers=5_000)
    res = run(spec, progress=False, out=tmp_path / "run")
    table = combination_table(res).set_index("arm")
    best = "learn:general_engagement:learn_more"
    assert (table["true_best"] == best).all()
    assert table.loc["factorized", "found"] and table.loc["factorized", "pick"] == best
    assert table.loc["factorized", "sends_to_find"] < table.loc["factorial", "sends_to_find"]
    assert table["expected_regret"].idxmin() == "factorized"
    assert not table.loc["one_at_a_time", "found"]
    assert table.loc["one_at_a_time", "pick"] == "plain:general_engagement:shop_now"
    fa = factorial_analysis(res, "factorial")
    eff = fa.effects.set_index("effect")
    inter = eff.loc["subject_style:cta"]
    assert inter["significant"] and inter["estimate"] > 0 and inter["truth"] > 0
    assert inter["ci_low"] <= inter["truth"] <= inter["ci_high"]
    assert fa.best["levels"] == fa.best["true_best"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Combinations of email elements" in report
    assert "Factorial analysis of factorial" in report
