"""The truth table counts on the observed metrics' basis: over seeds, observed opens,
clicks and orders per email equal their expected values within sampling error, also
with a reward window much shorter than the response delays and with emails sent in the
run's last hours."""

from __future__ import annotations

import math

import pytest
from conftest import small_config

from actors import CampaignConfig, run_simulation

SEEDS = range(8)
PAIRS = (("opens", "expected_opens"), ("clicks", "expected_clicks"),
         ("orders", "expected_orders"))


def _totals(window: int, days: float, hour: int) -> dict[str, tuple[float, float]]:
    """Observed and expected email responses summed over seeds (every source, group)."""
    out = {m: [0.0, 0.0] for m, _ in PAIRS}
    for seed in SEEDS:
        res = run_simulation(small_config(
            seed=100 + seed, subscribers=3000, days=days, reward_window_seconds=window,
            campaign=CampaignConfig(every_days=1, local_hour=hour, subject_style="plain"),
            holdout_fraction=0.0, record_decisions=False, record_events=False))
        obs = res.metrics.groupby("metric")["value"].sum()
        exp = res.truth.sum(numeric_only=True)
        for m, col in PAIRS:
            out[m][0] += float(obs[m])
            out[m][1] += float(exp[col])
    return {m: (o, e) for m, (o, e) in out.items()}


# a 2 h window cuts most clicks and orders; a campaign at 14:00 local (19:00-22:00 UTC
# here) in a one-day run sends in the run's last hours, whose responses land after its end
@pytest.fixture(scope="module", params=[(2 * 3600, 2.0, 10), (3 * 86400, 1.0, 14)],
                ids=["2h-window", "sent-near-the-end"])
def totals(request):  # type: ignore[no-untyped-def]
    return _totals(*request.param)


@pytest.mark.parametrize("metric", [m for m, _ in PAIRS])
def test_observed_over_expected_is_one_within_sampling_error(totals, metric) -> None:  # type: ignore[no-untyped-def]
    observed, expected = totals[metric]
    assert expected > 20
    # a sum of independent Bernoulli draws has variance sum p (1 - p) <= its mean
    z = (observed - expected) / math.sqrt(expected)
    assert abs(z) < 4, (metric, observed, expected, observed / expected)
