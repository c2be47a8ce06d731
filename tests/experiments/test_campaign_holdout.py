"""``campaign.holdout: false``: the arms' holdout gets no campaign either, so treatment
minus holdout measures what the campaign causes, per subscriber and per email."""

from __future__ import annotations

import pytest

from experiments import run

SPEC = {
    "name": "campaign_holdout",
    "seed": 3,
    "population": {"subscribers": 3000},
    "duration": {"days": 8, "tick": "1h"},
    "rules": "none",
    "campaign": {"every_days": 2, "local_hour": 10, "holdout": False},
    "arms": [{"name": "a", "holdout": 0.3},
             {"name": "b", "holdout": 0.3, "campaign": {"every_days": 1, "local_hour": 10,
                                                        "holdout": False}}],
    "metrics": ["incremental_orders_per_email", "incremental_orders", "orders"],
    "replications": 1,
}


@pytest.fixture(scope="module")
def res(tmp_path_factory):  # type: ignore[no-untyped-def]
    return run(SPEC, out=tmp_path_factory.mktemp("ch") / "run", progress=False)


def test_the_holdout_gets_no_campaign(res) -> None:  # type: ignore[no-untyped-def]
    t = res.truth
    assert t[(t["group"] == "holdout") & (t["source"] != "site")]["sends"].sum() == 0
    sends = t[(t["group"] == "treatment") & (t["source"] != "site")].groupby("arm")["sends"].sum()
    assert sends["b"] > 1.8 * sends["a"] > 0          # daily vs every other day


def test_per_email_estimate_and_truth_agree(res) -> None:  # type: ignore[no-untyped-def]
    s = res.summary().set_index(["metric", "arm"])
    for arm in ("a", "b"):
        per_sub = s.loc[("incremental_orders", arm)]
        per_email = s.loc[("incremental_orders_per_email", arm)]
        assert per_email["true_value"] > 0 and per_sub["true_value"] > 0
        # the interval covers the truth (a 95 % interval; the seed is fixed)
        assert per_email["ci_low"] <= per_email["true_value"] <= per_email["ci_high"]
        assert per_sub["ci_low"] <= per_sub["true_value"] <= per_sub["ci_high"]
        # per email = per subscriber x treatment subscribers / emails
        t = res.truth
        t = t[(t["group"] == "treatment") & (t["source"] != "site") & (t["arm"] == arm)]
        k = per_sub["denominator"] / t["sends"].sum()
        assert per_email["estimate"] == pytest.approx(per_sub["estimate"] * k, rel=1e-9)
        assert per_email["true_value"] == pytest.approx(per_sub["true_value"] * k, rel=1e-9)


def test_the_spec_round_trips_the_key(res) -> None:  # type: ignore[no-untyped-def]
    d = res.spec.to_dict()
    assert d["campaign"]["holdout"] is False
