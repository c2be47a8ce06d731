"""Coverage of the report's intervals of the difference to control, over seeds at a tiny
size (the full study is ``python -m experiments.bench coverage``; figures in the docstring
of :mod:`experiments.bench.coverage`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.bench.coverage import (
    _base_spec,
    comparisons,
    coverage_table,
    level_coverage_table,
)


@pytest.fixture(scope="module")
def rows():  # type: ignore[no-untyped-def]
    # 6 seeds x 600 subscribers x 3 days of trigger_timing: few orders, many blocks
    # without any difference between the arms -- where the old intervals failed
    return comparisons(_base_spec("trigger_timing"), 600, 3, 6)


def test_every_interval_contains_its_estimate_and_is_never_a_point(rows) -> None:  # type: ignore[no-untyped-def]
    r = rows[np.isfinite(rows["diff_ci_low"])]
    assert len(r) >= 20
    assert (r["diff_ci_low"] <= r["diff"]).all() and (r["diff"] <= r["diff_ci_high"]).all()
    # a point interval (all paired block differences 0, or Wald on 0 events) claims
    # certainty; the old code gave such "0 to 0" intervals here
    assert (r["diff_ci_high"] > r["diff_ci_low"]).all()


def test_coverage_within_binomial_error_for_every_metric(rows) -> None:  # type: ignore[no-untyped-def]
    table = coverage_table(rows)
    assert set(table["metric"]) >= {"orders", "revenue_per_recipient", "clicks",
                                     "attributed_orders"}
    for t in table.itertuples():
        # P(so few covered | nominal 95 %) must not be tiny
        assert stats.binom.cdf(t.covered, t.n, 0.95) > 0.001, (t.metric, t.covered, t.n)


def test_level_coverage_is_over_metrics_whose_truth_is_their_level(rows) -> None:  # type: ignore[no-untyped-def]
    table = level_coverage_table(rows)
    # orders and revenue per recipient have only the email-caused part as truth; every
    # unsubscribe is an email's
    assert set(table["metric"]) == {"clicks", "attributed_orders", "unsubscribes"}
    for t in table.itertuples():
        assert t.n >= 8  # two arms send reminders, in 6 runs
        assert stats.binom.cdf(t.covered, t.n, 0.95) > 0.001, (t.metric, t.covered, t.n)
