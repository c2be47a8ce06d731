"""Per-subscriber books (``record_subscribers``): they add up to the run's counters and
truth exactly, do not depend on sharding, and change nothing else about a run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from actors import run_simulation
from actors.config import CampaignConfig, SimulationConfig
from actors.subscriber_books import SUBSCRIBER_EMAIL_COLUMNS
from policies.errors import SpecError
from policies.triggers import load_rules
from policies.triggers.rules import default_rules_data

CFG = SimulationConfig(seed=3, subscribers=1500, days=2, rules=load_rules(default_rules_data()),
                       campaign=CampaignConfig(every_days=1, incentive=0.2),
                       holdout_fraction=0.2, record_subscribers=True)


@pytest.fixture(scope="module")
def runs() -> dict[int, object]:
    return {s: run_simulation(CFG, executor="inline", shards=s, progress=False) for s in (1, 3)}


def test_books_add_up_to_the_counters_and_the_truth(runs: dict) -> None:
    r = runs[1]
    s, tot = r.subscribers, r.metrics.groupby("metric")["value"].sum()
    email = s[s["source"] != "site"]
    for col in ("sends", "opens", "clicks", "orders", "unsubscribes"):
        assert email[col].sum() == tot[col], col
    assert np.isclose(email["revenue"].sum(), tot["revenue"], rtol=0, atol=1e-6)
    assert s["orders_all"].sum() == tot["orders_all"]
    assert np.isclose(s["revenue_all"].sum(), tot["revenue_all"], rtol=0, atol=1e-6)
    for col in [c for c in SUBSCRIBER_EMAIL_COLUMNS if c.startswith("expected_")]:
        assert np.isclose(email[col].sum(), r.truth[col].sum(), rtol=1e-12), col
    # per source and group too
    by = email.groupby(["source", "group"])["sends"].sum()
    tr = r.truth.groupby(["source", "group"])["sends"].sum()
    pd.testing.assert_series_equal(by.sort_index(), tr.sort_index().astype(float),
                                   check_names=False)
    # one site row per subscriber, the table as at the start
    site = s[s["source"] == "site"]
    assert sorted(site["subscriber"]) == list(range(CFG.subscribers))
    assert list(r.subscriber_table.index) == list(range(CFG.subscribers))
    assert (r.subscriber_table["n_purchases"] >= 0).all()


def test_books_do_not_depend_on_sharding(runs: dict) -> None:
    pd.testing.assert_frame_equal(runs[1].subscribers, runs[3].subscribers)
    pd.testing.assert_frame_equal(runs[1].subscriber_table, runs[3].subscriber_table)


def test_recording_changes_nothing_else(runs: dict) -> None:
    off = run_simulation(dataclasses.replace(CFG, record_subscribers=False), executor="inline",
                         progress=False)
    assert off.subscribers is None and off.subscriber_table is None
    pd.testing.assert_frame_equal(off.metrics, runs[1].metrics)
    pd.testing.assert_frame_equal(off.truth, runs[1].truth)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"incentive": 1.0},
     r"campaign\.incentive: expected a discount fraction in \[0, 1\), got 1\.0"),
    ({"incentive": -0.1}, r"campaign\.incentive: expected a discount fraction"),
    ({"incentive": True}, r"campaign\.incentive: expected a discount fraction"),
    ({"incentive": "10%"}, r"campaign\.incentive: expected a discount fraction"),
])
def test_campaign_incentive_is_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        CampaignConfig(**kwargs)


def test_record_subscribers_is_checked() -> None:
    with pytest.raises(SpecError, match="record_subscribers"):
        SimulationConfig(seed=1, record_subscribers="yes")  # type: ignore[arg-type]
