"""Ray executor: same results as inline, recovery from killed actors, shard errors,
and (in a subprocess) a two-node cluster losing a node mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas.testing as pdt
import pytest
from conftest import small_config

from actors import DEFAULT_START, Driver, ShardError, run_simulation
from policies.event_schema import EVENT_TYPES
from policies.triggers import load_rules

pytestmark = pytest.mark.ray

RAY_DAYS = 0.5  # 48 ticks: small, but several checkpoints (every 12 ticks)
NOON = DEFAULT_START + 12 * 3600  # the half day with the campaign (10:00 local, US)


@pytest.fixture(scope="module")
def reference():
    return run_simulation(small_config(days=RAY_DAYS, start=NOON), executor="inline", shards=1)


@pytest.fixture(scope="module")
def reference_lag2():
    """Emails sent two ticks after they became due (the learner overlaps the shards)."""
    return run_simulation(small_config(days=RAY_DAYS, start=NOON, decision_lag_ticks=2),
                          executor="inline", shards=1)


def _same(a, b) -> None:
    pdt.assert_frame_equal(a.metrics, b.metrics)
    pdt.assert_frame_equal(a.truth, b.truth)
    pdt.assert_frame_equal(a.decisions, b.decisions)
    pdt.assert_frame_equal(a.events, b.events)
    assert a.policy_state == b.policy_state


def test_ray_equals_inline(ray_session, reference):
    result = run_simulation(small_config(days=RAY_DAYS, start=NOON), executor="ray", shards=2)
    assert result.info["executor"] == "ray" and result.info["shards"] == 2
    assert result.info["ticks_per_call"] == 1
    assert result.info["recoveries"] == 0
    assert 1 <= result.info["max_in_flight"] <= 4  # backpressure bound
    assert result.info["learner_cpu_s"] > 0 and result.info["driver_cpu_s"] > 0
    assert result.metrics.query("metric == 'sends'")["value"].sum() > 500
    _same(reference, result)


@pytest.mark.parametrize("ticks_per_call", [1, 2])
def test_ray_with_a_send_lag_equals_inline(ray_session, reference_lag2, ticks_per_call):
    cfg = small_config(days=RAY_DAYS, start=NOON, decision_lag_ticks=2)
    result = run_simulation(cfg, executor="ray", shards=3, ticks_per_call=ticks_per_call)
    assert result.info["ticks_per_call"] == ticks_per_call
    _same(reference_lag2, result)


def test_killed_shard_and_learner_recover_exactly(ray_session, reference_lag2):
    kills = []

    def fault(driver, tick):
        if tick == 17 and not kills:       # between checkpoints 12 and 24
            # the driver holds the same-node checkpoints by reference: they must outlive
            # the actor that made them
            assert all(isinstance(c, ray_session.ObjectRef) for c in driver._ckpt.shards)
            ray_session.kill(driver.executor.shards[1])
            kills.append(tick)
        elif tick == 30 and len(kills) == 1:
            ray_session.kill(driver.executor.learner)
            kills.append(tick)

    result = Driver(small_config(days=RAY_DAYS, start=NOON, decision_lag_ticks=2), "ray", 2,
                    on_tick=fault, ticks_per_call=2).run()
    assert kills == [17, 30]
    assert result.info["recoveries"] == 2
    _same(reference_lag2, result)


def test_journeys_on_ray_with_a_killed_shard_equal_inline(ray_session):
    """The shipped journey set (no catalog entry) over a day boundary, so attribute entries
    fire at the table refresh: a shard killed between checkpoints replays to the same
    decisions, journey funnels included."""
    from test_journeys_runtime import journey_rules

    cfg = small_config(subscribers=1500, days=1.0, start=NOON, rules=journey_rules(),
                       decision_lag_ticks=2, record_events=False)
    reference = run_simulation(cfg, executor="inline", shards=1)
    kills = []

    def fault(driver, tick):
        if tick == 41 and not kills:
            ray_session.kill(driver.executor.shards[0])
            kills.append(tick)

    result = Driver(cfg, "ray", 2, on_tick=fault).run()
    assert kills == [41] and result.info["recoveries"] == 1
    pdt.assert_frame_equal(reference.metrics, result.metrics)
    pdt.assert_frame_equal(reference.truth, result.truth)
    pdt.assert_frame_equal(reference.decisions, result.decisions)
    pdt.assert_frame_equal(reference.journeys, result.journeys)
    assert reference.policy_state == result.policy_state
    assert set(reference.journeys["rule"]) == {"cart_series", "winback", "welcome_series"}
    assert (reference.decisions["series"] > 0).any()


def test_shard_error_fails_run_with_its_message(ray_session):
    # a custom event type registered only in this process: the rule reaching a Ray
    # worker names an event type the worker does not know
    name = "actors_ray_test_only_event"
    EVENT_TYPES.register(name)
    rules = load_rules({"rules": [{"id": "r1", "type": "cart_abandonment",
                                   "when": [{"event": name, "within": "1h"}],
                                   "delay": "1h", "expire": "2h"}]})
    cfg = small_config(subscribers=200, days=RAY_DAYS, start=NOON, rules=rules, record_events=False)
    with pytest.raises(ShardError, match=rf"shard 0 \(subscribers \[0, 100\)\) failed in "
                                         rf"init: .*{name}"):
        run_simulation(cfg, executor="ray", shards=2)


def test_two_node_cluster_survives_node_removal(tmp_path):
    script = Path(__file__).with_name("two_node_script.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, env=env, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1])
    assert report["nodes_used"] == 2          # shards were spread over both nodes
    assert report["removed_at_tick"] >= 0
    assert report["recoveries"] >= 1
    assert report["identical"] is True
    assert report["checkpoints_kept"] == ["ObjectRef", "dict"]
    assert report["sends"] > 300 and report["journey_fires"] > 0
