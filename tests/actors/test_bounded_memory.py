"""Bounded memory at scale gives the same results: a campaign tick's truth computed in
chunks equals the truth computed at once; logs streamed to Parquet (``log_uri``) read
back as the in-memory logs, also after a shard was restored from a checkpoint."""

from __future__ import annotations

import copy
import dataclasses

import pandas as pd
import pytest
from conftest import small_config

import actors.logs
import actors.truth
import sim.world
from actors import ShardCore, run_simulation
from actors.log_frames import decisions_frame, events_frame
from actors.logs import RunLogs
from policies.errors import SpecError


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)
    pd.testing.assert_frame_equal(a.decisions, b.decisions, check_exact=True)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)


def test_truth_and_sends_in_parts_equal_them_at_once(small_inline_result,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A tick's emails booked with their truth in parts of 37 and drawn by the world in
    parts of about 23 (by subscriber): the run is the same."""
    monkeypatch.setattr(actors.truth, "TRUTH_CHUNK", 37)
    monkeypatch.setattr(sim.world, "SEND_CHUNK", 23)
    _same(run_simulation(small_config(), executor="inline", shards=1), small_inline_result)


# -- streamed logs ------------------------------------------------------------------------

def test_streamed_logs_read_back_as_the_in_memory_logs(small_inline_result, tmp_path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups of 100 rows in many parts: the frames read back equal the in-memory
    run's, and the counters are unchanged."""
    monkeypatch.setattr(actors.logs, "ROWS_PER_GROUP", 100)
    res = run_simulation(small_config(log_uri=str(tmp_path / "logs")), executor="inline")
    assert res.decisions is None and res.events is None
    pd.testing.assert_frame_equal(res.metrics, small_inline_result.metrics, check_exact=True)
    pd.testing.assert_frame_equal(res.truth, small_inline_result.truth, check_exact=True)
    pd.testing.assert_frame_equal(res.logs.decisions(), small_inline_result.decisions,
                                  check_exact=True)
    pd.testing.assert_frame_equal(res.logs.events(), small_inline_result.events,
                                  check_exact=True)
    groups = list(res.logs.batches("events"))
    assert len(groups) > 10 and max(len(g["time"]) for g in groups) <= 100 + 2500
    assert sum(len(g["time"]) for g in groups) == len(small_inline_result.events)


def test_a_restored_shard_logs_every_row_once(tmp_path) -> None:
    """A shard restored from a checkpoint after it had written further parts (a lost
    shard) deletes those parts and writes them again: the logs equal an uninterrupted
    run's."""
    cfg = small_config(policy=None, days=1.0)
    plain = ShardCore(cfg, 0, cfg.subscribers)
    streamed = ShardCore(dataclasses.replace(cfg, log_uri=str(tmp_path)), 0, cfg.subscribers)
    for k in range(cfg.n_ticks):
        plain.step(k, None)
    for k in range(40):
        streamed.step(k, None)
    ckpt = copy.deepcopy(streamed.state())
    for k in range(40, 70):              # the lost shard goes on: parts 1 and 2
        streamed.step(k, None)
        if k in (50, 60):
            streamed.state()
    assert len(RunLogs(str(tmp_path), streamed.plan.layout, True, True).files("events")) == 3
    restored = ShardCore.from_state(ckpt)
    for k in range(40, cfg.n_ticks):
        restored.step(k, None)
    part = restored.finish()             # writes part 1 only: part 2 must be gone
    assert part.decisions is None and part.events is None
    want = plain.finish()
    logs = RunLogs(str(tmp_path), restored.plan.layout, True, True)
    pd.testing.assert_frame_equal(logs.decisions(),
                                  decisions_frame(restored.plan.layout, [want.decisions]),
                                  check_exact=True)
    pd.testing.assert_frame_equal(logs.events(), events_frame([want.events]),
                                  check_exact=True)


def test_log_locations_are_checked(tmp_path) -> None:
    with pytest.raises(SpecError, match="log_uri: cannot open"):
        small_config(log_uri="nosuchscheme://bucket/x")
    with pytest.raises(SpecError, match="log_uri: expected"):
        small_config(log_uri="")
    cfg = small_config(log_uri=str(tmp_path), days=0.25)
    run_simulation(cfg, executor="inline")
    with pytest.raises(SpecError, match="already holds events logs"):
        run_simulation(cfg, executor="inline")


@pytest.mark.ray
def test_ray_shards_stream_logs_and_recover_exactly(ray_session, tmp_path) -> None:
    """Two Ray shards stream their logs; one is killed between two checkpoints: the logs
    read back equal an inline run's in-memory logs."""
    from actors import DEFAULT_START, Driver

    cfg = small_config(days=0.5, start=DEFAULT_START + 12 * 3600)
    want = run_simulation(cfg, executor="inline")
    kills = []

    def fault(driver, tick):
        if tick == 17 and not kills:         # between the checkpoints at 12 and 24
            ray_session.kill(driver.executor.shards[1])
            kills.append(tick)

    got = Driver(dataclasses.replace(cfg, log_uri=f"file://{tmp_path}"), "ray", 2,
                 on_tick=fault).run()
    assert kills and got.info["recoveries"] == 1
    pd.testing.assert_frame_equal(got.metrics, want.metrics, check_exact=True)
    pd.testing.assert_frame_equal(got.logs.decisions(), want.decisions, check_exact=True)
    pd.testing.assert_frame_equal(got.logs.events(), want.events, check_exact=True)
