"""Population: presets validated as data, contract columns, keyed generation (sharding)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from policies.errors import SpecError
from sim.population import TABLE_COLUMNS, Population
from sim.presets import LIFECYCLE_STAGES, PRESETS, Preset, get_preset, parameter_table
from sim.world import World

CONTRACT_COLUMNS = {
    "lifecycle_stage": object, "engagement_score": np.float64,
    "conversion_readiness": np.float64, "educational_seeker": bool,
    "preferred_hour": np.int64, "utc_offset_minutes": np.int64,
    "days_since_engagement": np.float64, "price_sensitivity": np.float64,
    "top_category": np.int64, "subscribed": bool, "signup_time": np.int64,
}


@pytest.fixture(scope="module")
def pop() -> Population:
    return Population.generate(40_000, seed=5)


def test_subscriber_table_follows_the_contract(pop: Population) -> None:
    df = pop.to_pandas()
    assert df.index.name == "subscriber"
    assert df.index.dtype == np.int64
    assert list(df.index[:3]) == [0, 1, 2]
    for col, dtype in CONTRACT_COLUMNS.items():
        assert col in df.columns, col
        if dtype is object:
            assert set(df[col]) <= set(LIFECYCLE_STAGES)
        else:
            assert df[col].dtype == dtype, (col, df[col].dtype)
    for col in ("engagement_score", "conversion_readiness", "price_sensitivity"):
        assert df[col].between(0, 1).all(), col
    assert df.preferred_hour.between(0, 23).all()
    assert (df.days_since_engagement >= 0).all()
    assert (df.signup_time <= pop.time).all()
    assert df.subscribed.all()


def test_traits_follow_the_preset(pop: Population) -> None:
    p = PRESETS["retail"]
    shares = pop.to_pandas().lifecycle_stage.value_counts(normalize=True)
    for stage, share in p.mix().items():
        assert abs(shares[stage] - share) < 0.01, stage
    assert abs(pop.educational_seeker.mean() - p.educational_share) < 0.01
    assert abs(pop.privacy_proxy.mean() - p.privacy_proxy_share) < 0.01
    # lapsed subscribers are less engaged; customers have purchases, prospects none
    lc = pop.lifecycle
    assert pop.engagement[lc == 4].mean() < 0.7 * pop.engagement[lc == 1].mean()
    assert (pop.n_purchases[lc == 3] >= 2).all() and (pop.n_purchases[lc == 1] == 0).all()
    # preferred hours follow the weights: evenings beat the small hours
    hours = np.bincount(pop.preferred_hour, minlength=24)
    assert hours[20] > 5 * hours[3]


def test_generation_is_keyed_by_subscriber_not_by_shard() -> None:
    whole = Population.generate(1001, seed=9)
    parts = [Population.generate(500, seed=9), Population.generate(501, seed=9, start=500)]
    joined = Population.concat(parts)
    assert joined.equals(whole)
    assert parts[1].ids[0] == 500
    assert whole.slice(500, 1001).equals(parts[1])
    pd.testing.assert_frame_equal(whole.to_pandas().iloc[500:], parts[1].to_pandas())
    assert not Population.generate(1001, seed=10).equals(whole)


def test_every_default_names_its_source() -> None:
    rows = parameter_table()
    assert len(rows) == len(fields(Preset))
    calibrated = [r for r in rows if r["source"].startswith("docs/calibration.md")]
    assert len(calibrated) >= 15
    assert all(r["source"] in ("assumption",) or r["source"].startswith("docs/calibration.md")
               for r in rows)
    names = {r["parameter"]: r["source"] for r in rows}
    assert "open rate" in names["open_base_campaign"]
    assert "cart abandonment" in names["session_purchase_probability"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cart_probability": 1.5},
         r"cart_probability: expected a probability in \[0, 1\], got 1.5"),
        ({"privacy_proxy_share": -0.1},
         r"privacy_proxy_share: expected a probability in \[0, 1\], got -0.1"),
        ({"machine_open_probability": float("nan")},
         r"machine_open_probability: expected a probability in \[0, 1\], got nan"),
        ({"session_rate_per_day": -1.0}, r"session_rate_per_day: expected a rate >= 0, got -1.0"),
        ({"npe_email_cost": -0.2}, r"npe_email_cost: expected a rate >= 0, got -0.2"),
        ({"engagement_alpha": 0}, r"engagement_alpha: expected a number > 0, got 0"),
        ({"lifecycle_mix": {"prospect": 0.5, "vip": 0.5}},
         r"lifecycle_mix: unknown lifecycle stage 'vip'; expected one of new_subscriber"),
        ({"lifecycle_mix": {"prospect": 0.5, "customer": 0.2}},
         r"lifecycle_mix: expected shares summing to 1, got 0.7"),
        ({"lifecycle_mix": {"prospect": 1.5, "customer": -0.5}},
         r"lifecycle_mix\['prospect'\]: expected a share in \[0, 1\], got 1.5"),
        ({"preferred_hour_weights": (1.0,) * 23},
         r"preferred_hour_weights: expected 24 weights \(hours 0..23\), got 23"),
        ({"preferred_hour_weights": (1.0,) * 23 + (-1.0,)},
         r"preferred_hour_weights\[23\]: expected a weight >= 0, got -1.0"),
        ({"subject_open_effects": ((0.0,) * 6,) * 5},
         r"subject_open_effects: expected a 6 x 6 table"),
        ({"subject_clickbait": (0.3, 0.3, 0.8, 0.8, 0.2, 1.5)},
         r"subject_clickbait\[5\]: expected a score in \[0, 1\], got 1.5"),
        ({"kind_open_offsets": (0.0, 0.1)},
         r"kind_open_offsets: expected 7 offsets \(one per email kind\), got 2"),
        ({"n_categories": 500}, r"n_categories: expected an integer in \[1, 127\], got 500"),
        ({"utc_offset_weights": (1.0,)},
         r"utc_offset_weights: expected 4 weights \(one per utc_offsets_minutes entry\)"),
        ({"open_base_campaign": "high"},
         r"open_base_campaign: expected a probability in \[0, 1\], got 'high'"),
        ({"no_such_parameter": 1}, r"preset.no_such_parameter: unknown parameter"),
    ],
)
def test_invalid_preset_parameters(overrides, message) -> None:
    with pytest.raises(SpecError, match=message):
        get_preset("retail", **overrides)
    with pytest.raises(SpecError, match=message):
        Population.generate(10, seed=1, preset=overrides)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Population.generate(10), r"seed: expected an integer >= 0 \(a seed is required\)"),
        (lambda: Population.generate(10, seed=None), r"seed: .*got None"),
        (lambda: Population.generate(-1, seed=1), r"n: expected an integer >= 0, got -1"),
        (lambda: Population.generate(10, seed=1, start=-5),
         r"start: expected an integer >= 0, got -5"),
        (lambda: Population.generate(10, seed=1, preset="luxury"),
         r"preset: expected one of low_engagement, retail, got 'luxury'"),
        (lambda: World(Population.generate(10, seed=1)),
         r"seed: expected an integer >= 0 \(a seed is required\), got None"),
        (lambda: Population.generate(10, seed=1).index_of(np.array([3, 10])),
         r"subscriber: expected ids in \[0, 10\), got 10"),
        (lambda: Population.generate(10, seed=1).to_pandas(columns=["cart_value", "ltv"]),
         r"columns: unknown subscriber table columns \['ltv'\]"),
    ],
)
def test_bad_population_calls(call, message) -> None:
    with pytest.raises(SpecError, match=message):
        call()


def test_low_engagement_preset_is_colder() -> None:
    a = Population.generate(20_000, seed=1)
    b = Population.generate(20_000, seed=1, preset="low_engagement")
    assert b.engagement.mean() < a.engagement.mean() - 0.05
    assert (b.lifecycle == 4).mean() > (a.lifecycle == 4).mean() + 0.1


def test_the_table_is_the_documented_one() -> None:
    """The simulated subscriber table has exactly the documented columns, every cell in
    its domain, and the lifecycle stages are the one vocabulary of policies."""
    import experiments.synthetic
    import policies.features
    import sim
    from policies.subscriber_schema import LIFECYCLE_STAGES as STAGES
    from policies.subscriber_schema import SUBSCRIBER_COLUMNS, check_subscriber_table

    for preset in PRESETS:
        df = Population.generate(3000, seed=2, preset=preset).to_pandas()
        assert set(df.columns) == set(SUBSCRIBER_COLUMNS), preset
        check_subscriber_table(df)
    for module in (sim, policies.features, experiments.synthetic):
        assert module.LIFECYCLE_STAGES is STAGES


def test_a_part_of_the_table_is_that_part_of_the_whole_table(pop: Population) -> None:
    """Columns and rows asked for are exactly those of the whole table (a shard's daily
    refresh builds only what it reads)."""
    now = pop.time + 3 * 86_400
    whole = pop.to_pandas(now)
    assert tuple(whole.columns) == TABLE_COLUMNS
    rng = np.random.default_rng(3)
    for _ in range(5):
        cols = list(rng.choice(TABLE_COLUMNS, size=rng.integers(1, 6), replace=False))
        rows = rng.choice(len(pop), size=rng.integers(0, 50), replace=False)
        part = pop.to_pandas(now, columns=cols)
        pd.testing.assert_frame_equal(part, whole[[c for c in TABLE_COLUMNS if c in cols]])
        pd.testing.assert_frame_equal(pop.to_pandas(now, rows=rows), whole.iloc[rows])
        pd.testing.assert_frame_equal(pop.to_pandas(now, columns=cols, rows=rows),
                                      part.iloc[rows])
