"""Margin in a run: a discount that wins orders but loses margin shows as such, in the
estimates and in the truth, and the truth of attributed margin and unsubscribes is the
truth table's sum per subscriber."""

from __future__ import annotations

import pytest

from experiments import Results, run

SPEC = {
    "name": "discount_margin",
    "seed": 5,
    "population": {"subscribers": 6000,
                   "overrides": {"price_sensitivity_alpha": 0.5,
                                 "price_sensitivity_beta": 0.5,
                                 "incentive_buy_slope": 4.0}},
    "duration": {"days": 7, "tick": "1h"},
    "rules": "none",
    "campaign": {"every_days": 1, "local_hour": 10, "subject_style": "plain"},
    "reward": "revenue",
    "arms": [
        {"name": "full_price"},
        {"name": "discount_30",
         "campaign": {"every_days": 1, "local_hour": 10, "subject_style": "plain",
                      "incentive": 0.3}},
    ],
    "control": "full_price",
    "metrics": ["attributed_orders", "attributed_revenue", "attributed_margin",
                "unsubscribes"],
    "replications": 2,
}


@pytest.fixture(scope="module")
def res(tmp_path_factory) -> Results:  # type: ignore[no-untyped-def]
    return run(SPEC, out=tmp_path_factory.mktemp("runs") / "margin", progress=False)


def _row(res: Results, metric: str, arm: str):  # type: ignore[no-untyped-def]
    s = res.summary()
    return s[(s["metric"] == metric) & (s["arm"] == arm)].iloc[0]


def test_a_discount_wins_orders_and_loses_margin(res: Results) -> None:
    orders = _row(res, "attributed_orders", "discount_30")
    margin = _row(res, "attributed_margin", "discount_30")
    # truth: more orders per email, much less margin per subscriber
    assert orders["true_diff"] > 0 and orders["true_lift"] > 0.3
    assert margin["true_lift"] < -0.3
    # the estimates say the same, significantly
    assert orders["diff"] > 0 and margin["diff"] < 0
    assert bool(margin["significant"]) and margin["p_adjusted"] < 0.01
    assert bool(margin["ci_covers_truth"])


@pytest.mark.parametrize(("metric", "column"), [("attributed_margin", "expected_margin"),
                                                ("unsubscribes", "expected_unsubscribes"),
                                                ("attributed_revenue", "expected_revenue")])
@pytest.mark.parametrize("arm", ["full_price", "discount_30"])
def test_per_subscriber_truth_is_the_truth_tables_sum(res: Results, metric, column,
                                                      arm) -> None:
    row = _row(res, metric, arm)
    t = res.truth
    t = t[(t["arm"] == arm) & (t["group"] == "treatment") & (t["source"] != "site")]
    assert row["true_value"] == pytest.approx(t[column].sum() / row["denominator"], rel=1e-9)
    assert row["true_value"] > 0
