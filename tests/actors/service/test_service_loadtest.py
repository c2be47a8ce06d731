"""``triggerlab loadtest --target``: the two-terminal recipe of docs/production.md against
a real nats-server and a ``triggerlab serve`` process; a check that fails when the
service decides otherwise (JSON events, a policy seeded differently); the latency
definition on hand-made markers; bad options are one line and exit status 2."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from actors import PolicyConfig
from actors.service.endpoints import Endpoint
from actors.service.jetstream import NatsSink
from actors.service.progress import ProgressMarker
from actors.service.service import Service
from actors.service.shard import ShardConfig
from experiments.cli import main
from experiments.loadtest.generator import behavior_stream
from experiments.loadtest.target import decision_times
from policies.errors import TriggerLabValueError
from policies.triggers import default_rules

ROOT = Path(__file__).resolve().parents[3]
ARMS = ["plain", "question", "dont_miss"]


def _marker(shard: int, watermark: int | None, emitted: float) -> ProgressMarker:
    return ProgressMarker(shard, (shard,), 1, 1, 0, watermark, watermark, 10, 0, 0, 0,
                          emitted, False)


@pytest.mark.parametrize(("times", "shards", "pub", "markers", "done", "release"), [
    # one shard: the first marker whose watermark reaches the event's time decides it
    ([100, 105, 120], [0, 0, 0], [1.0, 1.0, 2.0],
     [(0, None, 1.5), (0, 100, 2.5), (0, 110, 3.0)],
     [2.5, 3.0, np.nan], [2.0, 2.0, np.nan]),
    # the release is the earliest publish of an event grace (10 s) later, in any order
    ([100, 112, 111], [0, 0, 0], [1.0, 3.0, 2.0], [(0, 101, 4.0)],
     [4.0, np.nan, np.nan], [2.0, np.nan, np.nan]),
    # two shards: each event is timed by its own shard's markers and releases
    ([100, 100, 115, 130], [0, 1, 0, 1], [1.0, 1.0, 2.0, 3.0],
     [(1, 105, 3.5), (0, 100, 2.2)],
     [2.2, 3.5, np.nan, np.nan], [2.0, 3.0, np.nan, np.nan]),
    # a watermark that went back (a restored shard) does not undo an earlier decision
    ([100, 101], [0, 0], [1.0, 1.0], [(0, 101, 2.0), (0, 99, 3.0), (0, 102, 4.0)],
     [2.0, 2.0], [np.nan, np.nan]),
])
def test_decision_times_follow_the_definition(times, shards, pub, markers, done,
                                              release) -> None:
    got_done, got_release = decision_times(
        np.array(times, np.int64), np.array(shards, np.int64), np.array(pub),
        [_marker(*m) for m in markers], 10)
    np.testing.assert_array_equal(got_done, np.array(done))
    np.testing.assert_array_equal(got_release, np.array(release))


def test_progress_marker_round_trip_and_bad_payloads() -> None:
    m = ProgressMarker(2, (0, 2), 5, 40, 3, 1_767_600_000, 1_767_600_300, 300, 1, 0, 0,
                       1.5e9, True)
    assert ProgressMarker.from_json(m.to_json()) == m
    for bad in (b"", b"[]", b'{"shard": 1}', b"\xff"):
        with pytest.raises(TriggerLabValueError, match="progress marker: expected a JSON"):
            ProgressMarker.from_json(bad)


def _docs_commands(port: int, name: str) -> list[list[str]]:
    text = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    section = text.split("### Load-test it")[1].split("### ")[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    out = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("nats-server "):
                assert "-p 4222" in line          # the fixture's server stands for it
                continue
            line = line.replace("127.0.0.1:4222/lt1", f"127.0.0.1:{port}/{name}")
            out.append(shlex.split(line))
    return out


def test_the_two_terminal_recipe_runs(nats_server, unique_name, tmp_path, monkeypatch,
                                      capsys) -> None:
    port = int(nats_server.url.rsplit(":", 1)[1])
    prepare, serve, load = _docs_commands(port, unique_name)
    assert [prepare[:2], serve[:2], load[:2]] == [["triggerlab", "loadtest"],
                                                  ["triggerlab", "serve"],
                                                  ["triggerlab", "loadtest"]]
    monkeypatch.chdir(tmp_path)
    assert main(prepare[1:]) == 0, capsys.readouterr().err
    assert (tmp_path / "lt1-subscribers.parquet").exists()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", *serve[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    try:
        capsys.readouterr()
        status = main(load[1:])
        out, load_err = capsys.readouterr()
    finally:
        proc.send_signal(signal.SIGINT)
        serve_out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert status == 0, (out, load_err, serve_out, err[-2000:])
    lines = out.splitlines()
    assert lines[-1] == "PASS"
    assert "arrow messages to 2 shard(s) over 4 partition(s), grace 3600 s" in lines[1]
    assert any(x.startswith("loadtest: 1.0 s | published") for x in lines)
    applied = next(x for x in lines if x.startswith("  applied"))
    assert applied.startswith("  applied            20,000 events") and "all drained" in applied
    check = next(x for x in lines if x.startswith("  check"))
    n_ref = int(re.search(r"PASSED: ([\d,]+) reference", check).group(1).replace(",", ""))
    assert n_ref > 50 and "missing 0, extra 0, duplicate ids 0" in check
    lat = re.findall(r"p99 ([\d,.]+) ms", out)
    assert len(lat) == 2 and float(lat[0].replace(",", "")) <= float(lat[1].replace(",", ""))


@contextmanager
def _service(url: str, name: str, table, ck: Path, *, seed: int, grace: int
             ) -> Iterator[None]:
    """An inline service (one shard over 2 partitions) stepping in a thread."""
    with NatsSink(url, name, n_partitions=2):
        pass
    config = ShardConfig(default_rules(), table, PolicyConfig("thompson", {"arm_names": ARMS}),
                         seed=seed, grace=grace, max_skew=None)
    service = Service(config, Endpoint.parse(f"{url}/{name}"), str(ck),
                      shards=1, executor="inline")
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            service.step(200, 0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        service.close()


@pytest.mark.parametrize(("service_seed", "status", "verdict"), [
    (4, 0, "PASS"),
    (5, 1, "FAIL"),          # the service draws other arms: the check catches it
])
def test_json_events_with_a_policy_are_checked(nats_server, unique_name, tmp_path, capsys,
                                               service_seed, status, verdict) -> None:
    s = behavior_stream(200, 1, seed=1, source="synthetic")
    table = s.subscribers
    (tmp_path / "policy.yaml").write_text(f"name: thompson\narm_names: {ARMS}\n")
    with _service(nats_server.url, unique_name, table, tmp_path / "ck", seed=service_seed,
                  grace=86_400):
        capsys.readouterr()
        got = main(["loadtest", "--rules", "reference", "--target",
                    f"{nats_server.url}/{unique_name}", "--source", "synthetic",
                    "--subscribers", "200", "--rate", "3000", "--duration", "0.5s", "--json",
                    "--policy", str(tmp_path / "policy.yaml"), "--policy-seed", "4",
                    "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert got == status, out
    assert out.splitlines()[-1] == verdict
    assert "1,500 events in 1,500 json messages to 1 shard(s)" in out
    import json

    body = json.loads((tmp_path / "out" / "loadtest.json").read_text())
    assert body["summary"]["events_applied"] == 1500
    check = body["check"]
    assert check["reference_decisions"] > 0
    if status:
        assert check["missing"] == check["extra"] > 0
    else:
        assert check["missing"] == check["extra"] == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--target", "http://x/y"], r"--target: expected nats://HOST:PORT/STREAM or kafka"),
    (["--target", "events.parquet"], r"--target: expected nats://HOST:PORT/STREAM or "
                                     r"kafka://HOST:PORT/TOPIC, got 'events.parquet'"),
    (["--target", "nats://127.0.0.1:1/"], r"--target: expected nats://HOST:PORT/STREAM"),
    (["--target", "nats://u:secret@127.0.0.1:1/x", "--connect-timeout", "0.5s"],
     r"nats sink nats://\*\*\*@127\.0\.0\.1:1 stream 'x': cannot connect within 0\.5 s"),
    (["--target", "nats://127.0.0.1:1/x", "--rate", "0"],
     r"rate: expected a positive number like 500000, 500k or 1M, got '0'"),
    (["--target", "nats://127.0.0.1:1/x", "--rate=-5k"], r"rate: expected a positive"),
    (["--target", "nats://127.0.0.1:1/x", "--duration", "0s"],
     r"duration: expected a number in \(0, 86400\], got 0\.0"),
    (["--target", "nats://127.0.0.1:1/x", "--batch-window", "0s"],
     r"batch-window: expected a number in \(0, 60\]"),
    (["--target", "nats://127.0.0.1:1/x", "--connect-timeout", "0s"],
     r"connect-timeout: expected a duration > 0"),
    (["--target", "nats://127.0.0.1:1/x", "--service-timeout", "soon"],
     r"service-timeout: expected a duration like '60s'"),
    (["--target", "nats://127.0.0.1:1/x", "--partitions", "0"],
     r"partitions: expected an integer >= 1, got 0"),
    (["--target", "nats://127.0.0.1:1/x", "--policy-seed", "-1"],
     r"policy-seed: expected an integer >= 0, got -1"),
    (["--target", "nats://127.0.0.1:1/x", "--write-subscribers", "subs.txt"],
     r"write-subscribers: expected a \.parquet or \.csv path"),
    (["--target", "nats://127.0.0.1:1/x", "--policy", "none.yaml"], r"policy: file not found"),
    (["--target", "nats://127.0.0.1:1/x", "--shards", "2"],
     r"shards: with --target, the service has its shards"),
    (["--target", "nats://127.0.0.1:1/x", "--max"],
     r"max: with --target, a service is loaded open loop at --rate"),
    (["--target", "nats://127.0.0.1:1/x", "--kill-shard-at", "1s"],
     r"kill-shard-at: with --target, kill the service's shard"),
    (["--target", "nats://127.0.0.1:1/x", "--record"], r"record: with --target, record"),
    (["--json"], r"json: only with --target"),
    (["--policy", "p.yaml"], r"policy: only with --target"),
    (["--write-subscribers", "s.parquet"], r"write-subscribers: only with --target"),
])
def test_bad_target_options_are_one_line_exit_2(extra, message, capsys, tmp_path,
                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    got = main(["loadtest", "--rules", "reference", "--subscribers", "50", "--pool-events",
                "100", "--duration", "1s", *extra])
    err = capsys.readouterr().err
    assert got == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert "secret" not in err


def test_no_service_and_a_used_service_are_refused(nats_server, unique_name, tmp_path,
                                                   capsys) -> None:
    url = f"{nats_server.url}/{unique_name}"
    base = ["loadtest", "--rules", "reference", "--target", url, "--source", "synthetic",
            "--subscribers", "100", "--rate", "1000", "--duration", "0.2s"]
    assert main([*base, "--service-timeout", "0.3s"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"--target: no service reads partitions \[0, 1, 2, 3\] of "
                     r"Endpoint\(nats, .*no progress marker within 0\.3 s", err), err
    s = behavior_stream(100, 1, seed=1, source="synthetic")
    table = s.subscribers
    name2 = f"{unique_name}_b"
    with _service(nats_server.url, name2, table, tmp_path / "ck", seed=0, grace=86_400):
        again = [*base[:4], f"{nats_server.url}/{name2}", *base[5:]]
        assert main(again) == 0, capsys.readouterr()
        capsys.readouterr()
        assert main(again) == 2                  # the same service a second time
    err = capsys.readouterr().err
    assert re.search(r"--target: the service on .* has already read [\d,]+ messages; the "
                     r"check needs a fresh service", err), err
