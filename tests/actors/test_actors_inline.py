"""Inline executor: determinism across shard counts, metrics against a reference
recomputation from the logs, checkpoints, and the learner's canonical order."""

from __future__ import annotations

import copy
import dataclasses
import io

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from conftest import small_config

from actors import (
    EMAIL_METRICS,
    PolicyConfig,
    RunResult,
    ShardCore,
    ShardError,
    run_simulation,
    split_ranges,
)
from actors.emails import email_id_of
from actors.learner import LearnerCore
from actors.messages import Choices, Rewards, TickOutput
from actors.progress import ProgressBar
from actors.shard import holdout_groups
from actors.truth import Ledger


def assert_same(a: RunResult, b: RunResult, events: bool = True) -> None:
    pdt.assert_frame_equal(a.metrics, b.metrics)
    pdt.assert_frame_equal(a.truth, b.truth)
    pdt.assert_frame_equal(a.decisions, b.decisions)
    if events:
        pdt.assert_frame_equal(a.events, b.events)
    assert a.policy_state == b.policy_state
    for key in ("events", "emails", "ticks"):
        assert a.info[key] == b.info[key]


@pytest.mark.parametrize("shards", [2, 3, 8])
def test_same_results_on_any_number_of_shards(small_inline_result, shards):
    other = run_simulation(small_config(), executor="inline", shards=shards)
    assert other.info["shards"] == shards
    assert_same(small_inline_result, other)


def test_run_produces_mail_clicks_and_learning(small_inline_result):
    r = small_inline_result
    tot = r.metrics.groupby("metric")["value"].sum()
    assert tot["sends"] > 2000          # a daily campaign to ~2,500 subscribers + triggers
    assert tot["opens"] > 100 and tot["clicks"] > 5
    assert tot["opens"] == tot["human_opens"] + tot["machine_opens"]
    assert tot["fires"] > 0
    assert tot["subscribers"] == 2500   # group sizes on the single day
    # the learner saw every policy email whose reward window closed before the end
    st = r.policy_state["state"]
    learned = sum(st["successes"]) + sum(st["failures"])
    d = r.decisions
    end = small_config().end
    assert learned == int(((d["arm_index"] >= 0) & (d["time"] <= end - 6 * 3600)).sum()) > 100
    assert r.info["emails"] == int(tot["sends"]) == len(r.decisions)


def test_holdout_receives_no_triggered_mail(small_inline_result):
    m = small_inline_result.metrics
    hold = m[(m.group == "holdout") & (m.metric == "sends")]
    assert hold[hold.source != "campaign"]["value"].sum() == 0
    assert hold[hold.source == "campaign"]["value"].sum() > 0
    assert m[(m.group == "holdout") & (m.metric == "fires")]["value"].sum() > 0
    ids = np.arange(2500)
    groups = holdout_groups(ids, 11, 0.2)
    sizes = m[(m.source == "site") & (m.metric == "subscribers")].set_index("group")["value"]
    assert sizes["holdout"] == groups.sum() and sizes["treatment"] == 2500 - groups.sum()
    assert 0.15 < groups.mean() < 0.25


def _reference_metrics(r: RunResult, window: int) -> pd.DataFrame:
    """Email metrics recomputed from the event and decision logs (plain pandas)."""
    ev = r.events
    resp = ev[ev["campaign_id"] >= 0].copy()
    resp["email_id"] = email_id_of(resp["subscriber"].to_numpy(), resp["campaign_id"].to_numpy())
    d = r.decisions[["email_id", "time", "source", "arm"]].rename(columns={"time": "sent"})
    j = resp.merge(d, on="email_id", how="inner")
    j = j[j["time"] <= j["sent"] + window]
    rows = []
    for (src, arm), g in j.groupby(["source", "arm"]):
        rows.append({"source": src, "arm": arm,
                     "opens": (g.type == "email_open").sum(),
                     "machine_opens": ((g.type == "email_open") & (g.machine == 1)).sum(),
                     "clicks": (g.type == "email_click").sum(),
                     "orders": (g.type == "purchase_completed").sum(),
                     "revenue": round(g.loc[g.type == "purchase_completed", "revenue"].sum(), 2),
                     "unsubscribes": (g.type == "unsubscribe").sum()})
    sends = d.groupby(["source", "arm"]).size().rename("sends").reset_index()
    out = sends.merge(pd.DataFrame(rows), on=["source", "arm"], how="left").fillna(0)
    return out.set_index(["source", "arm"]).sort_index()


def test_email_metrics_match_reference_recomputation(small_inline_result):
    r = small_inline_result
    ref = _reference_metrics(r, 6 * 3600)
    tot = (r.metrics[r.metrics.metric.isin(EMAIL_METRICS)]
           .groupby(["source", "arm", "metric"])["value"].sum().unstack("metric"))
    tot = tot[tot["sends"] > 0]
    for col in ["sends", "opens", "machine_opens", "clicks", "orders", "unsubscribes"]:
        np.testing.assert_array_equal(tot.loc[ref.index, col].to_numpy(),
                                      ref[col].to_numpy(np.float64), err_msg=col)
    np.testing.assert_allclose(tot.loc[ref.index, "revenue"], ref["revenue"], atol=1e-6)
    assert ref["opens"].sum() > 100


def test_site_orders_match_event_log(small_inline_result):
    r = small_inline_result
    buys = r.events[r.events.type == "purchase_completed"]
    m = r.metrics
    assert m[m.metric == "orders_all"]["value"].sum() == len(buys)
    assert m[m.metric == "revenue_all"]["value"].sum() == pytest.approx(buys["revenue"].sum())


def test_truth_is_consistent_with_decision_log(small_inline_result):
    r = small_inline_result
    t = r.truth.set_index(["source", "arm", "group"])
    d = r.decisions
    assert t["sends"].sum() == len(d)
    # expected clicks of the chosen arm, summed, equal the truth table (reward = click)
    np.testing.assert_allclose(t["expected_clicks"].sum(), d["expected_reward"].sum(),
                               rtol=1e-9)
    arms = ["plain", "question", "dont_miss"]
    best = d[[f"expected_reward__{a}" for a in arms]].max(axis=1)
    np.testing.assert_allclose(t["expected_regret"].sum(), (best - d["expected_reward"]).sum(),
                               rtol=1e-9, atol=1e-6)
    assert (t["expected_regret"] >= -1e-9).all()
    assert set(t["best_arm"]) <= set(arms)
    assert ((d["propensity"] > 0) & (d["propensity"] <= 1)).all()


def test_lean_run_is_deterministic_too():
    # no logs, context-free policy: shards keep a slim subscriber table
    cfg = small_config(record_decisions=False, record_events=False)
    a, b = run_simulation(cfg, shards=1), run_simulation(cfg, shards=2)
    pdt.assert_frame_equal(a.metrics, b.metrics)
    pdt.assert_frame_equal(a.truth, b.truth)
    assert a.decisions is None and a.policy_state == b.policy_state


def test_no_policy_no_rules_runs_campaign_only():
    cfg = small_config(policy=None, rules=None, holdout_fraction=0.0, record_events=False)
    r = run_simulation(cfg)
    assert set(r.metrics["source"]) == {"campaign", "site"}
    assert set(r.metrics["arm"]) == {""}
    assert r.policy_state is None and r.events is None
    assert (r.decisions["arm_index"] == -1).all() and (r.decisions["propensity"] == 1).all()
    assert r.truth["best_arm"].tolist() == [""]


@pytest.mark.parametrize("decides,arms", [
    ("send_hour", ["h09", "h13", "h19"]),
    ("strategy", ["conversion_focused", "general_engagement:high"]),
])
def test_other_decisions_are_deterministic_across_shards(decides, arms):
    cfg = small_config(subscribers=600, days=2.0, record_events=False,
                       policy=PolicyConfig(name="epsilon_greedy",
                                           params={"arm_names": arms, "epsilon": 0.3},
                                           decides=decides, scope="campaign"))
    a = run_simulation(cfg, shards=1)
    b = run_simulation(cfg, shards=3)
    pdt.assert_frame_equal(a.metrics, b.metrics)
    pdt.assert_frame_equal(a.decisions, b.decisions)
    camp = a.decisions[a.decisions.source == "campaign"]
    assert set(camp["arm"]) == set(arms)
    assert (a.decisions[a.decisions.source != "campaign"]["arm"] == "").all()
    undecided = a.truth[a.truth.arm == ""]
    assert len(undecided) > 0 and (undecided["best_arm"] == "").all()
    assert (undecided["expected_regret"] == 0).all()
    assert set(a.truth[a.truth.arm != ""]["best_arm"]) <= set(arms)
    if decides == "send_hour":  # delivered at the chosen local hour
        from sim import Population

        pop = Population.generate(600, seed=11, time=cfg.start)
        off = pop.utc_offset_minutes[camp["subscriber"].to_numpy()].astype(np.int64) * 60
        local = ((camp["time"].to_numpy() + off) // 3600) % 24
        np.testing.assert_array_equal(local, camp["arm"].str[1:].astype(int).to_numpy())


def _via_state(core: ShardCore) -> ShardCore:
    """Round trip through state() like Ray does: arrays arrive as read-only views."""
    import pickle

    state = pickle.loads(pickle.dumps(core.state(), protocol=5))
    pop = state["world"].population
    for name in pop.array_fields():
        getattr(pop, name).flags.writeable = False
    return ShardCore.from_state(state)


@pytest.mark.parametrize("record_decisions,via", [(True, "copy"), (False, "copy"),
                                                  (False, "state")])
def test_checkpoint_restore_continues_identically(record_decisions, via):
    cfg = small_config(subscribers=800, record_events=False,
                       record_decisions=record_decisions)
    a = ShardCore(cfg, 0, 800)
    b = ShardCore(cfg, 0, 800)
    learner = LearnerCore(cfg)
    lag = cfg.decision_lag_ticks
    arms: dict[int, dict] = {}
    for k in range(30):
        out = a.step(k, arms.get(k - lag))
        b.step(k, arms.get(k - lag))
        arms[k] = learner.decide(k, [out])
    c = (ShardCore.from_state(copy.deepcopy(b.state())) if via == "copy"
         else _via_state(b))
    for k in range(30, cfg.n_ticks):
        out_a = a.step(k, arms.get(k - lag))
        out_c = c.step(k, arms.get(k - lag))
        for part in ("choices", "rewards"):
            for f in dataclasses.fields(getattr(out_a, part)):
                np.testing.assert_array_equal(getattr(getattr(out_a, part), f.name),
                                              getattr(getattr(out_c, part), f.name))
        arms[k] = learner.decide(k, [out_a])
    fa, fc = a.finish(), c.finish()
    np.testing.assert_array_equal(fa.counts, fc.counts)
    np.testing.assert_array_equal(fa.truth, fc.truth)
    assert fa.counts.sum() > 0


def test_learner_order_does_not_depend_on_split():
    cfg = small_config(subscribers=1000)
    rng = np.random.default_rng(5)
    n = 300
    sub = rng.integers(0, 1000, n)
    choices = {"email_id": (sub << 24) | np.arange(n), "subscriber": sub,
               "due": rng.integers(0, 900, n), "source": rng.integers(0, 3, n)}
    rewards = {"email_id": (sub[:50] << 24) | 7, "subscriber": sub[:50],
               "time": rng.integers(0, 900, 50), "arm": rng.integers(0, 3, 50),
               "reward": rng.integers(0, 2, 50).astype(float)}

    def part(mask_c, mask_r):
        return TickOutput(0, Choices(**{k: v[mask_c] for k, v in choices.items()}),
                          Rewards(**{k: v[mask_r] for k, v in rewards.items()}), 0, 0)

    learner = LearnerCore(cfg)
    one = learner.decide(0, [part(np.ones(n, bool), np.ones(50, bool))])
    assert learner.n_updates == 50 and learner.n_choices == n
    cut_c, cut_r = sub < 400, sub[:50] < 400
    two = LearnerCore(cfg).decide(0, [part(~cut_c, ~cut_r), part(cut_c, cut_r)])
    for f in dataclasses.fields(one):
        np.testing.assert_array_equal(getattr(one, f.name), getattr(two, f.name))
    assert len(set(one.arm.tolist())) >= 2


def test_split_ranges_cover_ids():
    assert split_ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert split_ranges(5, 1) == [(0, 5)]


def test_shard_rejects_out_of_order_tick():
    core = ShardCore(small_config(subscribers=300, campaign=None), 0, 300)
    with pytest.raises(Exception, match=r"tick: expected 0 .*got 3"):
        core.step(3, None)


def test_progress_bar_draws_only_when_enabled():
    out = io.StringIO()
    bar = ProgressBar(4, enabled=True, stream=out, every=0.0)
    bar.update(0, 1_767_571_200 + 900, 1000)
    bar.update(0, 1_767_571_200 + 900, 1000)  # replayed tick: not counted twice
    assert "tick 1/4" in out.getvalue() and "2026-01-05 00:15" in out.getvalue()
    assert bar.events == 1000
    quiet = io.StringIO()
    ProgressBar(4, stream=quiet).update(0, 0, 5)
    assert quiet.getvalue() == ""


def test_inline_error_fails_with_shard_message(monkeypatch):
    cfg = small_config(subscribers=300, record_events=False)

    def boom(self, events):
        raise ValueError("boom in attribution")

    monkeypatch.setattr(Ledger, "attribute", boom)
    msg = r"shard 0 \(subscribers \[0, 150\)\) failed in tick 0: ValueError: boom"
    with pytest.raises(ShardError, match=msg):
        run_simulation(cfg, shards=2)


@pytest.mark.parametrize("lag,decided", [(1, True), (3, True), (3, False)])
def test_decision_lag_delays_every_email_and_stays_deterministic(lag, decided):
    """Campaign emails due at 10:00 local are delivered at the boundary ``lag`` ticks
    after the tick they became due in, decided by the policy or not; results do not
    depend on the split for any lag."""
    cfg = small_config(subscribers=700, record_events=False, decision_lag_ticks=lag,
                       policy=PolicyConfig(name="thompson", scope="campaign",
                                           params={"arm_names": ["plain", "question"]})
                       if decided else None)
    a = run_simulation(cfg, shards=1)
    b = run_simulation(cfg, shards=3)
    pdt.assert_frame_equal(a.metrics, b.metrics)
    pdt.assert_frame_equal(a.decisions, b.decisions)
    from sim import Population

    d = a.decisions
    pop = Population.generate(700, seed=11, time=cfg.start)
    triggered = d[d.source != "campaign"]
    assert len(triggered) > 0 and (triggered["arm_index"] == -1).all()
    assert ((d[d.source == "campaign"]["arm_index"] >= 0) == decided).all()
    camp = d[d.source == "campaign"]
    off = pop.utc_offset_minutes[camp["subscriber"].to_numpy()].astype(np.int64) * 60
    t = camp["time"].to_numpy()
    due = (t + off) // 86400 * 86400 + 10 * 3600 - off   # 10:00 local that day
    due = np.where(due > t, due - 86400, due)
    tick = cfg.tick_seconds
    due_tick_end = cfg.start + -(-(due - cfg.start) // tick) * tick
    np.testing.assert_array_equal(t, due_tick_end + (lag - 1) * tick)


@pytest.mark.parametrize("value", [0, -1, 97, 1.5, True, "2"])
def test_decision_lag_must_be_a_small_positive_integer(value):
    from actors import SimulationConfig
    from policies.errors import SpecError

    with pytest.raises(SpecError, match=r"decision_lag_ticks: expected an integer in \[1, 96\]"):
        SimulationConfig(seed=1, decision_lag_ticks=value)


@pytest.mark.parametrize("lag,ticks_per_call,shards", [(2, 2, 3), (4, 2, 2), (4, 4, 1)])
def test_ticks_per_call_does_not_change_results(lag, ticks_per_call, shards):
    from actors import Driver

    base = run_simulation(small_config(decision_lag_ticks=lag), shards=1)
    cfg = small_config(decision_lag_ticks=lag)
    other = Driver(cfg, "inline", shards, ticks_per_call=ticks_per_call).run()
    assert other.info["ticks_per_call"] == ticks_per_call
    assert_same(base, other)


@pytest.mark.parametrize("value,match", [
    (0, r"ticks_per_call: expected an integer >= 1, got 0"),
    (True, r"ticks_per_call: expected an integer >= 1, got True"),
    (3, r"ticks_per_call: expected a divisor of decision_lag_ticks \(2\) and "
        r"checkpoint_every \(12\), got 3"),
    (4, r"expected a divisor of decision_lag_ticks"),
])
def test_ticks_per_call_is_validated(value, match):
    from actors import Driver
    from policies.errors import SpecError

    with pytest.raises(SpecError, match=match):
        Driver(small_config(decision_lag_ticks=2), "inline", 1, ticks_per_call=value)


def test_batched_get_attributes_a_failure_to_its_shard_or_the_learner():
    """One Ray get per tick for counts and arms; a failure is re-read from the failed
    handle so the error names the shard or the learner, not 'a Ray actor'."""
    from actors import Driver
    from actors.executors import RayExecutor

    class FakeRay(RayExecutor):
        def __init__(self) -> None:
            self.ranges = [(0, 5), (5, 10)]

        def get(self, handle, timeout=None, who=-1, what=""):
            if isinstance(handle, list):
                return [self.get(h, timeout, -1, what) for h in handle]
            if handle == "bad":
                raise ShardError(f"{self._label(who)} failed in {what}: boom")
            return handle

        def ready(self, handle):
            return handle != "pending"

    driver = Driver(small_config(), "inline", 2)
    driver.executor = FakeRay()
    assert driver._get_all([3, 4, 7], [0, 1, None], "tick 2") == [3, 4, 7]
    with pytest.raises(ShardError, match=r"^policy learner failed in tick 2: boom"):
        driver._get_all([3, 4, "bad"], [0, 1, None], "tick 2")
    with pytest.raises(ShardError, match=r"^shard 1 \(subscribers \[5, 10\)\) failed in tick 2"):
        driver._get_all(["pending", "bad", 7], [0, 1, None], "tick 2")
