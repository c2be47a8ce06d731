"""Scores refreshed during a run: what a refresh writes, what it reads, targeting by a
score, and the same decisions on any number of shards, inline or on Ray."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from actors import CampaignConfig, SimulationConfig, run_simulation
from actors.config import ScoringConfig, TargetConfig
from actors.driver import Driver
from actors.shard import ShardCore
from policies.errors import SpecError
from policies.segments import MODEL_COLUMNS, PropensityScores, history_features
from policies.segments.dynamic import n_top
from policies.triggers import load_rules, segment_mask
from sim.clock import DAY

RULES = {"rules": [{
    "id": "likely_buyer_cart", "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "1h", "count": 1}],
    "exclude": ["purchase_completed"],
    "delay": "2h", "expire": "1d", "priority": 5, "reentry": "always",
    "segment": {"p_buy": {"min": 0.1}},
}, {
    "id": "browse", "type": "browse_abandonment",
    "when": [{"event": "product_view", "within": "1h", "count": 1}],
    "delay": "1h", "expire": "1d", "priority": 3, "reentry": "always",
    "segment": {"p_buy": {"max": 0.1}},
}]}


def _scorer() -> PropensityScores:
    """A fitted logistic model of a made-up target that leans on activity features."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x = rng.uniform(0, 6, size=(400, len(MODEL_COLUMNS)))
    w = np.array([1.0 if c.startswith("log_sessions") else
                  -1.0 if c == "log_days_since_engagement" else 0.0 for c in MODEL_COLUMNS])
    y = x @ w + rng.normal(scale=6.0, size=400) > 0
    return PropensityScores({"buy": LogisticRegression().fit(x, y)})


SCORER = _scorer()


def config(target: float | TargetConfig | None = 0.3, **kw) -> SimulationConfig:
    base = dict(seed=13, subscribers=240, days=4.0, tick_seconds=3600,
                rules=load_rules(RULES), campaign=CampaignConfig(every_days=1, local_hour=9),
                scoring=ScoringConfig((SCORER,), ("p_buy",), first_day=1, every_days=1),
                target=(target if target is None or isinstance(target, TargetConfig)
                        else TargetConfig("p_buy", target)),
                checkpoint_every=24)
    base.update(kw)
    return SimulationConfig(**base)


def _run_to(core: ShardCore, tick: int) -> None:
    while core.position < tick:
        core.step(core.position, None)


def test_refresh_writes_only_the_rows_whose_segments_changed(monkeypatch):
    cfg = config(target=None)
    core = ShardCore(cfg, 0, cfg.subscribers)
    assert core.engine is not None
    calls: list[tuple[pd.DataFrame, int | None]] = []
    real = core.engine.update_subscribers

    def spy(df, at=None):
        calls.append((df.copy(), at))
        return real(df, at=at)

    monkeypatch.setattr(core.engine, "update_subscribers", spy)
    per_day = DAY // cfg.tick_seconds
    rules = cfg.rules.rules
    for day in (1, 2):
        _run_to(core, day * per_day)
        calls.clear()
        before = [segment_mask(core.table, r.segment) for r in rules]
        now = cfg.tick_bounds(core.position)[0]
        core.refresh(now)
        after = [segment_mask(core.table, r.segment) for r in rules]
        changed = np.flatnonzero(np.any([a != b for a, b in zip(before, after, strict=True)],
                                        axis=0))
        assert len(calls) == 1
        rows, at = calls[0]
        assert at == now
        assert rows.index.tolist() == (changed + core.start).tolist()
        # the first refresh moves everyone from "no score" into one of the two rules
        assert 0 < len(rows) == cfg.subscribers if day == 1 else 0 < len(rows) < 200
        assert {"p_buy", "utc_offset_minutes"} <= set(rows.columns)
        assert not core.scores["p_buy"].isna().any()
        # the same refresh again changes nothing, so writes nothing
        calls.clear()
        core.refresh(now)
        assert calls == []


def test_scores_at_a_refresh_use_only_the_events_before_it():
    """The features a refresh scores are exactly those of the run's whole event log cut at
    the refresh time, the shard's log holds nothing later, and a longer run (more
    future) scores the same at that time."""
    seen: list[pd.DataFrame] = []

    class Recording:
        def score(self, features):
            seen.append(features.copy())
            return SCORER.score(features)

    cfg = config(target=None, record_events=True,
                 scoring=ScoringConfig((Recording(),), ("p_buy",), first_day=1, every_days=1))
    core = ShardCore(cfg, 0, cfg.subscribers)
    per_day = DAY // cfg.tick_seconds
    _run_to(core, 2 * per_day)
    now = cfg.tick_bounds(core.position)[0]
    core.refresh(now)
    assert int(core._history[0].time.max()) <= now
    early = core.scores.copy()
    _run_to(core, 4 * per_day)
    full = core.finish().events
    from policies.events import EventBatch

    log = EventBatch.from_pandas(full) if isinstance(full, pd.DataFrame) else full
    want = history_features(log, now, np.arange(cfg.subscribers))
    pd.testing.assert_frame_equal(seen[-1][list(want.columns)], want)
    # beside the history: the subscriber table's numeric columns at the refresh
    extra = [c for c in seen[-1].columns if c not in want.columns]
    assert {"engagement_score", "conversion_readiness", "price_sensitivity"} <= set(extra)
    assert all(pd.api.types.is_numeric_dtype(seen[-1][c]) for c in extra)
    assert int(log.time.max()) > now          # the log did hold later events
    pd.testing.assert_frame_equal(early, SCORER.score(want).rename(
        columns={"p_buy": "p_buy"}).set_axis(early.index))


@pytest.fixture(scope="module")
def reference():
    return run_simulation(config(record_decisions=True), executor="inline", shards=1)


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.decisions, b.decisions)


def test_three_inline_shards_decide_as_one(reference):
    _same(reference, run_simulation(config(record_decisions=True), shards=3))


def test_ray_shards_decide_as_inline_even_after_losing_one(ray_session):
    """Two Ray shards, one killed on day 2 (after the day-2 refresh and its checkpoint):
    restored with its scores, targets and event log, the run decides as one inline
    shard. A day per call (a 24-tick send queue) keeps Ray's calls few."""
    cfg = config(record_decisions=True, decision_lag_ticks=24, days=3.0)
    kills: list[int] = []

    def fault(driver: Driver, tick: int) -> None:
        if tick == 40 and not kills:
            ray_session.kill(driver.executor.shards[1])  # type: ignore[attr-defined]
            kills.append(tick)

    res = Driver(cfg, "ray", 2, ticks_per_call=24, on_tick=fault).run()
    assert kills == [40] and res.info["recoveries"] == 1
    _same(run_simulation(cfg), res)


def test_targeting_sends_to_exactly_ceil_q_n_and_truth_counts_those_emails(reference):
    """After every refresh exactly ceil(q n) of the n subscribed subscribers are targeted
    (over all shards); every email goes to a subscriber targeted when it is due, none
    before the first refresh; the truth counts exactly the emails sent."""
    cfg = config(record_decisions=True)
    per_day = DAY // cfg.tick_seconds
    targets: dict[int, np.ndarray] = {}

    def check(driver: Driver, tick: int) -> None:
        if (tick + 1) % per_day or tick + 1 == cfg.n_ticks:
            return
        shards = driver.executor.shards  # type: ignore[attr-defined]
        mask = np.concatenate([s.targeted for s in shards])
        n = sum(int(s._eligible.sum()) for s in shards)
        assert mask.sum() == n_top(0.3, n)
        targets[cfg.tick_bounds(tick)[1]] = mask

    res = Driver(cfg, "inline", shards=2, max_in_flight=1, on_tick=check).run()
    assert sorted(targets) == [cfg.start + d * DAY for d in (1, 2, 3)]
    _same(reference, res)
    dec = res.decisions
    assert len(dec) > 0
    assert (dec["time"] >= cfg.start + DAY).all()           # nothing before the refresh
    for t, s in zip(dec["time"], dec["subscriber"], strict=True):
        since = max(k for k in targets if k <= t)
        assert targets[since][s]
    sends = res.metrics.query("metric == 'sends' and group == 'treatment'")["value"].sum()
    assert res.truth["sends"].sum() == sends == len(dec)
    everyone = run_simulation(config(target=None, record_decisions=True))
    assert len(everyone.decisions) > 2 * len(dec)


def test_scoring_needs_calls_ending_at_day_boundaries():
    with pytest.raises(SpecError, match=r"^ticks_per_call: with scoring, expected a divisor "
                                        r"of the 24 ticks of a day"):
        Driver(config(checkpoint_every=0, decision_lag_ticks=5), ticks_per_call=5)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(target=TargetConfig("p_churn", 0.3)), r"^target.by: expected a score column of "
                                                 r"scoring \(p_buy\), got 'p_churn'"),
    (dict(scoring=None), r"^target.by: expected a score column of scoring \(none: no "
                         r"scoring\), got 'p_buy'"),
    (dict(tick_seconds=7 * 3600, days=7.0 / 24 * 24),
     r"^scoring: refreshes at day boundaries need ticks dividing a day"),
])
def test_run_config_rejects(kw, match):
    with pytest.raises(SpecError, match=match):
        config(**kw)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: TargetConfig("p_buy", 0), r"^target.top: expected a fraction in \(0, 1\]"),
    (lambda: TargetConfig("p_buy", 1.5), r"^target.top: expected a fraction in \(0, 1\]"),
    (lambda: TargetConfig("p buy", 0.3), r"^target.by: expected a score column name"),
    (lambda: ScoringConfig((SCORER,), ("p_buy",), every_days=0),
     r"^scoring.refresh: expected a whole number of days >= 1, got 0"),
    (lambda: ScoringConfig((SCORER,), ("p_buy",), first_day=0),
     r"^scoring.first_day: expected"),
    (lambda: ScoringConfig((), ("p_buy",)), r"^scoring.scorers: expected a non-empty tuple"),
    (lambda: ScoringConfig((object(),), ("p_buy",)), r"^scoring.scorers: expected"),
    (lambda: ScoringConfig((SCORER,), ("p_buy", "p_buy")), r"^scoring.columns: expected"),
])
def test_scoring_and_target_configs_reject(make, match):
    with pytest.raises(SpecError, match=match):
        make()
