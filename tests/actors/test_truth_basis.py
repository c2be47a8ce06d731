"""The truth table counts on the observed metrics' basis: over seeds, observed opens,
clicks, orders, margin and unsubscribes per email equal their expected values within
sampling error, also with a reward window much shorter than the response delays, with
emails sent in the run's last hours, and in a world where many products are out of stock
(purchases of them are dropped: the truth counts only orders of products in stock) and
the campaign offers a discount (margin net of it), and for the emails of a cart-abandonment
journey (series index, a wait-until, a discount on the last email) without a campaign."""

from __future__ import annotations

import math

import pytest
from conftest import small_config

from actors import CampaignConfig, run_simulation
from policies.triggers import load_rules

SEEDS = range(8)
PAIRS = (("opens", "expected_opens"), ("clicks", "expected_clicks"),
         ("orders", "expected_orders"), ("unsubscribes", "expected_unsubscribes"))
#: a world with about 20 % of products out of stock at any time (default about 2 %), and
#: ten times the default campaign purchases (enough orders to see a 20 % gap)
STOCKOUTS = {"stockout_rate_per_day": 0.06, "restock_mean_days": 4.0, "buy_base_campaign": 0.5}


#: A three-email cart series: its sends answer by their series index, the last with 20 % off.
CART_SERIES = {"rules": [{
    "id": "cart_series", "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "where": {"cart_value": {"min": 25}}, "within": "60m"}],
    "exclude": ["cart_cleared"], "exit": [{"event": "purchase_completed", "match": "product_id"}],
    "reentry": {"cooldown": "3d"},
    "emails": {"reminder": {"include_cart_items": True},
               "nudge": {"include_cart_items": True, "apply_urgency": True},
               "last_call": {"include_cart_items": True, "incentive": 0.2}},
    "steps": [{"wait": "1h"}, {"send": "reminder"},
              {"wait_until": {"events": ["email_open"], "within": "12h", "since": "last_send",
                              "timed_out": [{"send": "nudge"}]}},
              {"wait": "12h"}, {"send": "last_call"}]}]}


def _totals(window: int, days: float, hour: int, subscribers: int = 3000,
            seeds: range = SEEDS, overrides: dict | None = None, incentive: float = 0.0,
            journeys: bool = False) -> dict[str, tuple[float, float]]:
    """Observed and expected email responses summed over seeds (every source, group)."""
    names = [*PAIRS, ("revenue", "expected_revenue"), ("margin", "expected_margin")]
    out = {m: [0.0, 0.0] for m, _ in names}
    for seed in seeds:
        res = run_simulation(small_config(
            seed=100 + seed, subscribers=subscribers, days=days,
            reward_window_seconds=window, preset_overrides=overrides or {},
            campaign=None if journeys else CampaignConfig(
                every_days=1, local_hour=hour, subject_style="plain", incentive=incentive),
            **({"rules": load_rules(CART_SERIES), "policy": None} if journeys else {}),
            holdout_fraction=0.0, record_decisions=False, record_events=False))
        obs = res.metrics.groupby("metric")["value"].sum()
        exp = res.truth.sum(numeric_only=True)
        for m, col in names:
            out[m][0] += float(obs[m])
            out[m][1] += float(exp[col])
    return {m: (o, e) for m, (o, e) in out.items()}


# a 2 h window cuts most clicks and orders; a campaign at 14:00 local (19:00-22:00 UTC
# here) in a one-day run sends in the run's last hours, whose responses land after its end;
# many stock-outs drop about a fifth of the purchases the emails cause
@pytest.fixture(scope="module", params=[
    dict(window=2 * 3600, days=2.0, hour=10),
    dict(window=3 * 86400, days=1.0, hour=14),
    dict(window=3 * 86400, days=3.0, hour=10, subscribers=6000, seeds=range(4),
         overrides=STOCKOUTS, incentive=0.2),
    dict(window=2 * 86400, days=3.0, hour=10, subscribers=12000, seeds=range(4),
         journeys=True),
], ids=["2h-window", "sent-near-the-end", "stock-outs-and-discount", "cart-journey"])
def totals(request):  # type: ignore[no-untyped-def]
    return _totals(**request.param)


@pytest.mark.parametrize("metric", [m for m, _ in PAIRS])
def test_observed_over_expected_is_one_within_sampling_error(totals, metric) -> None:  # type: ignore[no-untyped-def]
    observed, expected = totals[metric]
    # enough events to see a gap (the journey's few unsubscribes: only a gross one)
    assert expected > 20 or (metric == "unsubscribes" and expected > 2)
    # a sum of independent Bernoulli draws has variance sum p (1 - p) <= its mean
    z = (observed - expected) / math.sqrt(expected)
    assert abs(z) < 4, (metric, observed, expected, observed / expected)


def test_margin_is_revenue_less_cost_as_the_truth_counts_it(totals) -> None:  # type: ignore[no-untyped-def]
    """Observed margin / revenue equals the truth's (each order's margin is its revenue
    times its email's margin ratio, so the ratio is near-exact), and observed revenue
    and margin are within 4 standard errors of the truth (per-order values vary: the
    orders' coefficient of variation is below 1.5, so sd(sum) < 1.8 E[value] sqrt(n))."""
    (rev, exp_rev), (mar, exp_mar) = totals["revenue"], totals["margin"]
    orders = totals["orders"][1]
    mean_value = exp_rev / orders
    assert abs(rev - exp_rev) < 4 * 1.8 * mean_value * math.sqrt(orders), (rev, exp_rev)
    assert abs(mar / rev - exp_mar / exp_rev) < 0.03, (mar / rev, exp_mar / exp_rev)
    assert 0 < exp_mar < exp_rev
