"""Shard runners: source -> shard -> decision log, streams and checkpoints; a crash at
any step and a restart give the uninterrupted run's decisions, none lost or doubled."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pandas.testing as pdt
import pytest

from actors import PolicyConfig
from actors.service.decision_log import read_decision_log
from actors.service.endpoints import Endpoint
from actors.service.files import write_event_log
from actors.service.runner import CHECKPOINT_FILE, ShardRunner
from actors.service.shard import ShardConfig
from policies.errors import TriggerLabValueError
from policies.triggers import default_rules
from service.service_helpers import RULE_ARMS, sort_log, trigger_stream

GRACE = 3600
POLICY = PolicyConfig("thompson", {"arm_names": RULE_ARMS})


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    events, table = trigger_stream(n_events=8000)
    path = tmp_path_factory.mktemp("log") / "events.parquet"
    write_event_log(path, [events], row_group_rows=400)      # 20 messages
    end = int(events.time.max()) + 3 * 86400
    return path, table, end


def _config(table, shards: int = 1) -> ShardConfig:
    return ShardConfig(default_rules(), table, POLICY, seed=3, grace=GRACE,
                       key_partitions=shards)


def _drive(runner: ShardRunner, steps: int | None, end: int) -> None:
    """``steps`` steps (None: to the end of the log, then decide up to ``end``)."""
    if steps is not None:
        for _ in range(steps):
            runner.step(max_messages=1)
        return
    while runner.step(max_messages=1).messages:
        pass
    runner.advance_to(end + GRACE)


def _run(path, table, end, root, *, shards: int = 1, crash_after: int | None = None,
         every: int = 3) -> pd.DataFrame:
    """All shards to the end; with ``crash_after``, each is dropped (no close, no final
    checkpoint) after that many steps and a new one continues from its checkpoint."""
    ep = Endpoint.parse(str(path))
    for s in range(shards):
        kw = dict(shard=s, partitions=[s], checkpoint_dir=str(root), checkpoint_every=every)
        if crash_after is not None:
            first = ShardRunner(_config(table, shards), ep, **kw)
            _drive(first, crash_after, end)
            del first                                   # crashed: nothing more is saved
        runner = ShardRunner(_config(table, shards), ep, **kw)
        assert runner.restored == (crash_after is not None and crash_after >= every)
        _drive(runner, None, end)
        runner.close()
    return read_decision_log(root / "decisions")


@pytest.fixture(scope="module")
def uninterrupted(log_file, tmp_path_factory):
    path, table, end = log_file
    return _run(path, table, end, tmp_path_factory.mktemp("clean"))


@pytest.mark.parametrize(("shards", "crash_after", "every"), [
    (1, 1, 3),     # before the first checkpoint: everything replayed from the start
    (1, 4, 3),     # one step after a checkpoint
    (1, 6, 3),     # right at a checkpoint
    (1, 11, 2),
    (1, 19, 5),    # near the end
    (2, 7, 3),
    (3, 9, 4),
])
def test_crash_and_restart_equal_the_uninterrupted_run(log_file, uninterrupted, tmp_path,
                                                       shards, crash_after, every) -> None:
    path, table, end = log_file
    got = _run(path, table, end, tmp_path, shards=shards, crash_after=crash_after,
               every=every)
    assert len(uninterrupted) > 50
    pdt.assert_frame_equal(sort_log(got), sort_log(uninterrupted))
    keys = got[["trigger_id", "kind", "attempt"]]
    assert not keys.duplicated().any()


def test_outputs_streams_and_checkpoint_contents(log_file, tmp_path) -> None:
    path, table, end = log_file
    ep = Endpoint.parse(str(path))
    runner = ShardRunner(_config(table), ep, shard=0, partitions=[0],
                         checkpoint_dir=str(tmp_path), checkpoint_every=2)
    _drive(runner, None, end)
    stats = runner.stats()
    runner.close()
    state = pickle.loads((tmp_path / "shard-000" / CHECKPOINT_FILE).read_bytes())
    assert state["positions"] == {0: 8000}
    assert set(state["core"]) >= {"engine", "watermark", "policy", "counters"}
    log = read_decision_log(tmp_path / "decisions")
    assert stats["decisions"]["fire"] == (log["kind"] == "fire").sum()
    # the decision stream (a file source writes it as JSON lines) holds every row once
    lines = [json.loads(x) for f in sorted((tmp_path / "streams" / "shard-000" /
                                            "decisions").glob("*.jsonl"))
             for x in f.read_text().splitlines()]
    assert lines and all(x["msg_id"].startswith("decisions-0-") for x in lines)
    import base64

    import pyarrow as pa

    rows = pd.concat([pa.ipc.open_stream(base64.b64decode(x["payload_base64"])).read_all()
                      .to_pandas() for x in lines], ignore_index=True)
    pdt.assert_frame_equal(sort_log(rows), sort_log(log))


@pytest.mark.parametrize(("text", "match"), [
    ("", "--source: expected nats://HOST:PORT/STREAM"),
    ("nats://host:4222", r"--source: expected nats://HOST:PORT/STREAM or kafka"),
    ("http://host/x", r"--source: expected nats://HOST:PORT/STREAM or kafka"),
    ("nats://u:secret@host:4222/a/b", r"got 'nats://\*\*\*@host:4222/a/b'"),
    ("/no/such/file.parquet", "--source: '/no/such/file.parquet' does not exist"),
])
def test_bad_source_addresses(text, match) -> None:
    with pytest.raises(TriggerLabValueError, match=match) as info:
        Endpoint.parse(text)
    assert "secret" not in str(info.value)


def test_an_endpoint_never_shows_credentials() -> None:
    ep = Endpoint.parse("nats://u:hunter2@127.0.0.1:4222/events", {"password": "pw"})
    assert (ep.kind, ep.name) == ("nats", "events")
    assert "hunter2" not in repr(ep) and "pw" not in repr(ep)


def test_read_decision_log_errors(tmp_path) -> None:
    with pytest.raises(TriggerLabValueError, match="does not exist"):
        read_decision_log(tmp_path / "nope")
    with pytest.raises(TriggerLabValueError, match="holds no decision-log parts"):
        read_decision_log(tmp_path)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(TriggerLabValueError, match=r"is not a decision log \(missing"):
        read_decision_log(tmp_path / "x.parquet")


def test_stats_give_the_wall_seconds_of_each_part(log_file, tmp_path) -> None:
    """Every part of the steps is timed: the parts a log run meets take time, the others
    none, and together they fit in the wall time of the steps."""
    import time

    from actors.service.timing import PARTS

    path, table, end = log_file
    runner = ShardRunner(_config(table), Endpoint.parse(str(path)), shard=0, partitions=[0],
                         checkpoint_dir=str(tmp_path), checkpoint_every=3)
    t0 = time.perf_counter()
    _drive(runner, None, end)
    runner.checkpoint()
    wall = time.perf_counter() - t0
    seconds = runner.stats()["seconds"]
    assert tuple(seconds) == PARTS
    used = {"poll", "decode", "watermark", "engine", "arms", "table", "log", "publish",
            "checkpoint"}
    assert all(seconds[p] > 0 for p in used), seconds
    assert seconds["progress"] < 0.01                 # a log has no progress stream
    assert sum(seconds.values()) <= wall
    runner.close()
