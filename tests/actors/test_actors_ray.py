"""Ray executor: same results as inline, recovery from killed actors, shard errors,
checkpoints on shared storage, placement on nodes, and (in a subprocess) a two-node
cluster losing a node mid-run."""

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
from actors.checkpoint_store import StoredCheckpoint
from actors.placement import assign_nodes
from policies.errors import SpecError
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
    """Two shards spread over the nodes and the learner on any node: the run equals inline.
    (One run for both: the default placement, balanced with the learner on the driver's
    node, runs in the tests below, and their runs equal inline too.)"""
    result = run_simulation(small_config(days=RAY_DAYS, start=NOON), executor="ray",
                            shards=2, placement="spread", learner_node="any")
    assert result.info["executor"] == "ray" and result.info["shards"] == 2
    assert result.info["ticks_per_call"] == 1
    assert result.info["recoveries"] == 0
    assert 1 <= result.info["max_in_flight"] <= 4  # backpressure bound
    assert result.info["learner_cpu_s"] > 0 and result.info["driver_cpu_s"] > 0
    assert result.metrics.query("metric == 'sends'")["value"].sum() > 500
    assert result.info["placement"] == "spread" and len(result.info["shard_nodes"]) == 2
    _same(reference, result)


def test_killed_shard_and_learner_recover_exactly(ray_session, reference_lag2):
    """Three shards, a send lag of two ticks, two ticks per call: a shard and the learner
    killed between checkpoints, and the run equals inline. (This run and the one on
    storage below also hold the lag runs equal to inline: two ticks per call here, one
    there.)"""
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

    result = Driver(small_config(days=RAY_DAYS, start=NOON, decision_lag_ticks=2), "ray", 3,
                    on_tick=fault, ticks_per_call=2).run()
    assert kills == [17, 30]
    assert result.info["recoveries"] == 2
    assert result.info["shards"] == 3 and result.info["ticks_per_call"] == 2
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


def test_checkpoints_on_storage_recover_exactly(ray_session, reference_lag2, tmp_path):
    """Checkpoints written by the actors to a file:// URI: a killed shard and a killed
    learner are restored from the files, and the run (three shards, a send lag of two
    ticks, one tick per call) equals inline."""
    kills = []

    def fault(driver, tick):
        if tick == 17 and not kills:       # between checkpoints 12 and 24
            kept = driver._ckpt.shards
            assert all(isinstance(c, StoredCheckpoint) for c in kept)
            assert all(Path(c.uri.removeprefix("file://")).stat().st_size == c.nbytes
                       for c in kept)
            assert isinstance(driver._ckpt.learner, StoredCheckpoint)
            ray_session.kill(driver.executor.shards[1])
            kills.append(tick)
        elif tick == 30 and len(kills) == 1:
            ray_session.kill(driver.executor.learner)
            kills.append(tick)

    cfg = small_config(days=RAY_DAYS, start=NOON, decision_lag_ticks=2)
    result = Driver(cfg, "ray", 3, on_tick=fault, ticks_per_call=1,
                    checkpoint_uri=tmp_path.as_uri()).run()
    assert kills == [17, 30] and result.info["recoveries"] == 2
    assert result.info["shards"] == 3 and result.info["ticks_per_call"] == 1
    _same(reference_lag2, result)
    # checkpoints at ticks 12, 24 and 36 (none is reached twice here: the run goes back
    # to 12 at tick 17 and to 24 at tick 30)
    assert result.info["checkpoints_written"] == 3
    run_dir = Path(result.info["checkpoint_uri"].removeprefix("file://"))
    assert run_dir.parent == tmp_path
    # only the last complete checkpoint is kept
    assert [p.name for p in run_dir.iterdir()] == ["ckpt-00000036"]
    assert sorted(p.name for p in (run_dir / "ckpt-00000036").iterdir()) == [
        "arms.pkl", "learner.pkl", "manifest.json", "shard-0000.pkl", "shard-0001.pkl",
        "shard-0002.pkl"]
    assert result.info["checkpoint_bytes"] == sum(
        (run_dir / "ckpt-00000036" / f).stat().st_size
        for f in ("shard-0000.pkl", "shard-0001.pkl", "shard-0002.pkl", "learner.pkl"))


def test_lost_checkpoint_file_fails_with_a_clear_error(ray_session, tmp_path):
    """A shard restored from a file that is not there (storage not shared by the nodes)
    names the file and the likely cause."""
    def fault(driver, tick):
        if tick == 15:
            Path(driver._ckpt.shards[0].uri.removeprefix("file://")).unlink()
            ray_session.kill(driver.executor.shards[0])

    cfg = small_config(subscribers=500, days=RAY_DAYS, start=NOON, record_events=False)
    with pytest.raises(ShardError, match=r"shard 0 .* failed in restore: .*shard-0000\.pkl "
                                         r"not found on this node \(is the storage shared"):
        Driver(cfg, "ray", 2, on_tick=fault, checkpoint_uri=str(tmp_path)).run()


def test_bad_cluster_options_fail_early(tmp_path):
    cfg = small_config(subscribers=200, days=RAY_DAYS)
    with pytest.raises(SpecError, match=r"checkpoint_uri: cannot open 'nosuchfs://x' with "
                                        r"pyarrow.fs.FileSystem.from_uri \(ArrowInvalid"):
        Driver(cfg, "ray", 2, checkpoint_uri="nosuchfs://x")
    with pytest.raises(SpecError, match="checkpoint_uri: only the ray executor"):
        Driver(cfg, "inline", 1, checkpoint_uri=tmp_path.as_uri())
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(SpecError, match="checkpoint_uri: cannot write under"):
        Driver(cfg, "ray", 2, checkpoint_uri=blocked.as_uri())
    with pytest.raises(SpecError, match="placement: expected one of balanced, spread"):
        Driver(cfg, "ray", 2, placement="pack")
    with pytest.raises(SpecError, match="learner_node: expected 'driver', 'any' or a Ray"):
        Driver(cfg, "ray", 2, learner_node="head")
    assert not list(tmp_path.glob("run-*"))      # nothing created by a refused run


def test_learner_on_a_node_that_is_not_there_fails_before_any_actor(ray_session):
    cfg = small_config(subscribers=200, days=RAY_DAYS)
    with pytest.raises(SpecError, match=r"learner_node: 'abab.*' is not an alive node of "
                                        r"the Ray cluster \(alive: [0-9a-f]{56}\)"):
        run_simulation(cfg, executor="ray", shards=2, learner_node="ab" * 28)


def test_shards_are_assigned_to_nodes_by_cpus():
    nodes = [("head", 2.0), ("big", 6.0), ("mid", 4.0)]
    got = assign_nodes(nodes, 6)
    assert {n: got.count(n) for n in ("head", "big", "mid")} == {"head": 1, "big": 3,
                                                                  "mid": 2}
    assert assign_nodes([("a", 1.0), ("b", 1.0)], 2) == ["a", "b"]   # the driver's first
    # a node lost: its shards go to the least loaded alive nodes, the others stay
    placed = assign_nodes([("a", 1.0), ("c", 1.0)], 4, ["a", "b", "a", "b"])
    assert placed[0] == placed[2] == "a" and placed[1] == placed[3] == "c"


def _two_nodes(tmp_path, *args: str) -> list[dict]:
    script = Path(__file__).with_name("two_node_script.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=400, env=env, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and len(lines) == len(args), \
        proc.stdout[-2000:] + proc.stderr[-3000:]
    return [json.loads(ln) for ln in lines]


@pytest.fixture(scope="module")
def two_node_reports(tmp_path_factory):
    """Both two-node scenarios in one subprocess: one cluster and one inline reference
    (a new worker node for the second run), the checkpoints in the driver's object store,
    then on shared storage (a file:// path both nodes see)."""
    tmp = tmp_path_factory.mktemp("two_nodes")
    uri = (tmp / "ckpt").as_uri()
    in_store, on_storage = _two_nodes(tmp, "-", uri)
    return in_store, on_storage, uri


@pytest.mark.own_cluster   # in a subprocess (two_node_script.py)
def test_two_node_cluster_survives_node_removal(two_node_reports):
    report = two_node_reports[0]
    assert report["nodes_used"] == 2          # shards were spread over both nodes
    assert report["removed_at_tick"] >= 0
    assert report["recoveries"] >= 1
    assert report["identical"] is True
    assert report["checkpoints_kept"] == ["ObjectRef", "dict"]
    assert report["learner_on_driver_node"] is True
    assert report["sends"] > 300 and report["journey_fires"] > 0


@pytest.mark.own_cluster   # in a subprocess (two_node_script.py)
def test_two_node_cluster_restores_lost_node_from_storage(two_node_reports):
    """Checkpoints on shared storage (here a file:// path both nodes see): the removed
    node's shard is recreated on the other node from its file."""
    _, report, uri = two_node_reports
    assert report["nodes_used"] == 2 and report["recoveries"] >= 1
    assert report["identical"] is True
    assert report["checkpoints_kept"] == ["StoredCheckpoint", "StoredCheckpoint"]
    assert report["checkpoints_written"] >= 2
    assert report["checkpoint_uri"].startswith(uri)


def test_scaling_model_adds_its_terms_and_shares_cores():
    from actors.scaling import ScalingConstants, fit_line, predict_wall

    c = ScalingConstants(shard_tick_s=0.01, subscriber_tick_s=1e-7, shard_init_s=0.0,
                         subscriber_init_s=1e-6, hop_s=0.005, hop_shard_s=0.001,
                         hop_email_s=1e-7,
                         learner_tick_s=0.001, learner_email_s=1e-6,
                         emails_per_subscriber_tick=0.002, startup_s=5.0,
                         startup_shard_s=1.0, checkpoint_subscriber_s=1e-7)
    two = predict_wall(c, 200_000, 672, nodes=1, cores=2, shards=2, checkpoints=6)
    assert two["oversubscription"] == 1.0 and two["subscribers_per_shard"] == 100_000
    assert two["startup_s"] == pytest.approx(5.0 + 1.0 * 2 / 2)
    assert two["shards_s"] == pytest.approx(672 * (0.01 + 1e-7 * 100_000))
    assert two["hop_s"] == pytest.approx(672 * (0.005 + 0.002) + 1e-7 * 0.002 * 200_000 * 672)
    assert two["learner_s"] == pytest.approx(672 * 0.001 + 1e-6 * 0.002 * 200_000 * 672)
    assert two["wall_s"] == pytest.approx(sum(two[k] for k in (
        "startup_s", "init_s", "shards_s", "hop_s", "learner_s", "checkpoint_s")))
    four = predict_wall(c, 200_000, 672, nodes=1, cores=2, shards=4)
    assert four["oversubscription"] == 2.0           # 4 shards share 2 cores
    assert four["shards_s"] == pytest.approx(2 * 672 * (0.01 + 1e-7 * 50_000))
    # a cluster: one shard per core by default
    big = predict_wall(c, 10**8, 2880, nodes=8, cores=16)
    assert big["shards"] == 128 and big["shards_per_node"] == 16
    assert fit_line([1, 2, 4], [3.0, 5.0, 9.0]) == pytest.approx((1.0, 2.0))
    with pytest.raises(SpecError, match="predict_wall: expected nodes >= 1"):
        predict_wall(c, 100, 10, nodes=0)


def test_scaling_bench_calibration_measures_the_model_constants():
    """The benchmark's calibration pieces on tiny runs (the Ray parts given)."""
    import math

    from experiments.bench.scaling import _constants, calibrate, learner_alone

    small, big = calibrate(300, 1.0, 1), calibrate(1200, 1.0, 1)
    assert len(big["shard_tick_cpu_s"]) == 96 and big["emails"].sum() > 0
    assert big["output_bytes_per_email"] > 0 and big["checkpoint_bytes"] > 0
    alone = learner_alone([400, 4000], shards=2)
    assert [e for e, _ in alone] == [400, 4000] and all(s > 0 for _, s in alone)
    stub = {n: {"wall_s": 0.01 * n, "ticks": 10, "shard_cpu_s": 0.01,
                "driver_cpu_s": 0.002 * n, "learner_cpu_s": 0.001 * n} for n in (1, 2, 4)}
    c, extra = _constants(small, big, stub, {1: 5.0, 4: 8.0}, {"1000": 0.005, "10000": 0.014})
    assert c.hop_shard_s == pytest.approx(0.0003)      # (2 + 1) ms CPU per 10 ticks per shard
    assert c.hop_s == pytest.approx(0.001 - 0.0003)
    assert c.hop_email_s == pytest.approx(1e-6)
    assert c.startup_s == pytest.approx(4.0)
    assert c.emails_per_subscriber_tick == pytest.approx(big["emails"].sum() / (1200 * 96))
    assert all(math.isfinite(v) for v in c.as_dict().values())
    assert extra["peak_emails_per_subscriber_tick"] > 0
