"""``triggerlab serve``: a Parquet log or a NATS stream through 1-3 shards (inline or Ray)
gives the simulator's engine decisions; progress lines; Ctrl-C checkpoints and a restart
continues; bad options are one line and exit status 2."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas.testing as pdt
import pytest

from actors.registry import make_policy
from actors.service.codec import encode_messages
from actors.service.decision_log import read_decision_log
from actors.service.files import write_event_log
from actors.service.parity import comparable as sort_log
from actors.service.parity import reference_decisions
from actors.service.partitioning import partition_of
from experiments.cli import main
from experiments.loadtest.generator import behavior_stream

ARMS = ["plain", "question", "dont_miss"]
SEED = 4
GRACE = 600


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    s = behavior_stream(500, 12_000, seed=6, source="synthetic")
    root = tmp_path_factory.mktemp("serve")
    write_event_log(root / "events.parquet", [s.events], row_group_rows=1000)
    s.subscribers.reset_index().to_parquet(root / "subscribers.parquet")
    (root / "policy.yaml").write_text(f"name: thompson\narm_names: {ARMS}\n"
                                      "decides: subject_style\n")
    end = int(s.events.time.max())
    policy = make_policy("thompson", {"arm_names": ARMS}, decides="subject_style",
                         reward="click", seed=SEED)
    ref = reference_decisions(s.events, s.subscribers, end=end, policy=policy, seed=SEED)
    assert len(ref) > 80
    return root, s.events, ref


def _args(root: Path, source: str, ck: Path, *extra: str) -> list[str]:
    return ["serve", "--rules", "reference", "--policy", str(root / "policy.yaml"),
            "--source", source, "--subscriber-table", str(root / "subscribers.parquet"),
            "--checkpoint-dir", str(ck), "--seed", str(SEED), "--grace", f"{GRACE}s",
            "--checkpoint-every", "3", *extra]


@pytest.mark.parametrize(("shards", "extra"), [
    ("1", ["--max-messages", "1"]),
    ("3", ["--max-messages", "2"]),
])
def test_serve_a_parquet_log_inline(setup, tmp_path, capsys, shards, extra) -> None:
    root, _events, ref = setup
    argv = _args(root, str(root / "events.parquet"), tmp_path / "ck", "--shards", shards,
                 "--executor", "inline", "--drain", "--progress", "0.001s", *extra)
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"serve: {shards} shard(s) (inline) on Endpoint(file")
    assert out[-1] == "serve: end of the log; checkpoint written"
    last = out[-2]
    assert re.match(r"serve: [\d.]+ s \| events 12,000 \([\d,]+/s\) \| decisions [\d,]+ "
                    r"\([\d,.]+/s\) \| watermark \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(lag [\d,]+ s\)"
                    r" \| backlog 0 \| dead letters 0 \(bad 0, late 0, foreign 0\)$", last), last
    got = read_decision_log(tmp_path / "ck" / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)


def test_serve_runs_a_journey_whose_split_a_policy_decides(setup, tmp_path, capsys) -> None:
    """``--split-policy NAME=FILE`` gives the journey's split its policy: the log equals
    the engine run with that policy, paths and propensities included."""
    import pandas as pd
    import yaml

    from service.test_service_shard import SPLIT_RULES

    root, events, _ = setup
    (tmp_path / "split.yaml").write_text(yaml.safe_dump(SPLIT_RULES))
    (tmp_path / "bandit.yaml").write_text("name: thompson\narm_names: [x, y]\n")
    argv = _args(root, str(root / "events.parquet"), tmp_path / "ck", "--shards", "2",
                 "--executor", "inline", "--drain", "--split-policy",
                 f"subject_bandit={tmp_path / 'bandit.yaml'}")
    argv[argv.index("--rules") + 1] = str(tmp_path / "split.yaml")
    assert main(argv) == 0, capsys.readouterr().err
    table = pd.read_parquet(root / "subscribers.parquet").set_index("subscriber")
    kw = {"decides": "subject_style", "reward": "click", "seed": SEED}
    ref = reference_decisions(
        events, table, end=int(events.time.max()), rules=SPLIT_RULES, seed=SEED,
        policy=make_policy("thompson", {"arm_names": ARMS}, **kw), engine="reference",
        split_policies={"subject_bandit": make_policy("thompson", {"arm_names": ["x", "y"]},
                                                      **kw)})
    got = read_decision_log(tmp_path / "ck" / "decisions")
    assert {"x", "y"} <= set(got["path_name"].dropna())
    pdt.assert_frame_equal(sort_log(got), ref)


def test_serve_applies_an_attributes_log(setup, tmp_path, capsys) -> None:
    """``--attributes LOG``: updates (one with a bad time) applied in event-time order,
    the welcome journey entered by them; the log equals the engine run with the updates."""
    import pandas as pd

    from actors.service.files import write_event_log  # noqa: F401 (the events' writer)
    from policies.triggers import example_journeys
    from service.test_service_shard import _updates

    root, events, _ = setup
    table = pd.read_parquet(root / "subscribers.parquet").set_index("subscriber")
    rows = _updates(events, table, n=60)
    bad = pd.DataFrame({"subscriber": [1], "time": [5], "lifecycle_stage": ["customer"]})
    pd.concat([rows, bad]).to_parquet(tmp_path / "attrs.parquet", row_group_size=7)
    rules = tmp_path / "journeys.yaml"
    rules.write_text((Path(__file__).resolve().parents[3] / "policies" / "triggers"
                      / "example_journeys.yaml").read_text())
    argv = _args(root, str(root / "events.parquet"), tmp_path / "ck", "--shards", "2",
                 "--executor", "inline", "--drain", "--attributes",
                 str(tmp_path / "attrs.parquet"))
    argv[argv.index("--rules") + 1] = str(rules)
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "dead letters 2 (bad 2, late 0, foreign 0)" in out     # the bad row, per shard
    kw = {"decides": "subject_style", "reward": "click", "seed": SEED}
    ref = reference_decisions(events, table, end=int(events.time.max()),
                              rules=example_journeys(), seed=SEED, engine="fast",
                              policy=make_policy("thompson", {"arm_names": ARMS}, **kw),
                              updates=rows)
    assert (ref["rule"] == "welcome_series").sum() > 5
    got = read_decision_log(tmp_path / "ck" / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)


@pytest.mark.ray
def test_serve_on_ray_shards(setup, tmp_path, capsys, ray_session) -> None:
    root, _, ref = setup
    assert main(_args(root, str(root / "events.parquet"), tmp_path / "ck", "--shards", "2",
                      "--drain")) == 0
    assert "2 shard(s) (ray)" in capsys.readouterr().out
    pdt.assert_frame_equal(sort_log(read_decision_log(tmp_path / "ck" / "decisions")), ref)


def _publish(url: str, stream: str, events, partitions: int = 3) -> None:
    from actors.service.jetstream import NatsSink

    t = events.time
    edges = np.arange(int(t.min()), int(t.max()) + GRACE, GRACE)   # chunks of the grace
    with NatsSink(url, stream, n_partitions=partitions) as sink:
        out = []
        for lo, hi in itertools.pairwise(edges):
            part = events[(t >= lo) & (t < hi)]
            if len(part):
                out += encode_messages(part, partitions, "arrow")
        sink.publish(out)


def test_ctrl_c_checkpoints_and_a_restart_continues(setup, nats_server, unique_name,
                                                    tmp_path) -> None:
    root, events, ref = setup
    _publish(nats_server.url, unique_name, events)
    source = f"{nats_server.url}/{unique_name}"
    argv = _args(root, source, tmp_path / "ck", "--shards", "2", "--executor", "inline",
                 "--max-messages", "1", "--progress", "0.001s")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "experiments.cli", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(6)]       # started and stepping
    assert all(x.startswith("serve:") for x in lines), lines
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert rest.splitlines()[-1] == "serve: stopped by SIGINT; checkpoint written"
    assert (tmp_path / "ck" / "shard-000" / "checkpoint.pkl").exists()
    # the restart continues to the end of the stream (then stops when idle)
    again = [*cmd[:-4], "--max-messages", "500", "--stop-when-idle", "2s"]
    assert cmd[-4:-2] == ["--max-messages", "1"]
    out = subprocess.run(again, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-1] == "serve: no message for 2 s; checkpoint written"
    got = sort_log(read_decision_log(tmp_path / "ck" / "decisions"))
    # the stream is live: decisions due after a shard's watermark (its latest event -
    # grace) wait; shard s owns partitions p % 2 == s of 3
    shard = partition_of(events.subscriber, 3) % 2
    marks = {s: int(events.time[shard == s].max()) - GRACE for s in (0, 1)}
    ref_shard = partition_of(ref["subscriber"].to_numpy(), 3) % 2
    due = ref["time"].to_numpy() <= np.array([marks[s] for s in ref_shard])
    assert not due.all()
    pdt.assert_frame_equal(got, ref[due].reset_index(drop=True))


@pytest.mark.parametrize(("change", "message"), [
    ({"--shards": "0"}, r"--shards: expected an integer >= 1, got 0"),
    ({"--shards": "2x"}, r"--shards: expected an integer, got '2x'"),
    ({"--grace": "soon"}, r"--grace: expected a duration like '60s'"),
    ({"--grace": "1.5s"}, r"--grace: expected whole seconds, got '1.5s'"),
    ({"--source": "http://x/y"}, r"--source: expected nats://HOST:PORT/STREAM or kafka"),
    ({"--source": "{dir}/none.parquet"}, r"--source: '.*none\.parquet' does not exist"),
    ({"--rules": "{dir}/none.yaml"}, r"rules: no such file"),
    ({"--policy": "{dir}/none.yaml"}, r"policy: file not found"),
    ({"--policy": "{badpolicy}"}, r"policy\.epsilon: expected a number in \[0, 1\], got 3"),
    ({"--subscriber-table": "{dir}/none.parquet"}, r"subscriber-table: "),
    ({"--max-messages": "0"}, r"--max-messages: expected an integer >= 1, got 0"),
    ({"--max-skew": "0.5s"}, r"--max-skew: expected whole seconds, got '0.5s'"),
    ({"--reward-window": "soon"}, r"--reward-window: expected a duration like '30m', got"),
    ({"--reward-window": "0s"}, r"--reward-window: expected a duration > 0, got '0s'"),
    ({"--feedback": "{dir}/none.parquet"}, r"--feedback: '.*none\.parquet' does not exist"),
    ({"--progress": "0s"}, r"--progress: expected a duration > 0"),
    ({"--source": "nats://u:secret@127.0.0.1:1/x", "--connect-timeout": "0.5s"},
     r"nats sink nats://\*\*\*@127\.0\.0\.1:1 stream 'x': cannot connect within 0\.5 s"),
    ({"--connect-timeout": "0s"}, r"--connect-timeout: expected a duration > 0"),
    ({"--drain": None, "--source": "nats://127.0.0.1:1/x"},
     r"--drain: only with a Parquet log as --source"),
    ({"--split-policy": "x"}, r"--split-policy: expected NAME=POLICY\.yaml, got 'x'"),
    ({"--split-policy": "b={dir}/none.yaml"}, r"split-policy b: file not found"),
    ({"--split-policy": "b={badpolicy}"}, r"epsilon: expected a number in \[0, 1\], got 3"),
    ({"--rules": "{split}"}, r"rules\[0\] 'cart_split' steps\[1\]\.split\.policy: unknown "
                              r"policy 'subject_bandit'; given: none"),
    ({"--checkpoint-dir": "{used}"}, r"--checkpoint-dir: written by a service with 1 "
                                     r"shard\(s\) over 1 partition\(s\)"),
])
def test_bad_options_are_one_line_exit_2(setup, tmp_path, capsys, change, message) -> None:
    root, _, _ = setup
    (tmp_path / "bad.yaml").write_text("name: epsilon_greedy\narm_names: [a, b]\n"
                                       "epsilon: 3\n")
    used = tmp_path / "used"
    (used).mkdir()
    (used / "service.json").write_text('{"shards": 1, "partitions": 1, "source": "x"}')
    import yaml

    from service.test_service_shard import SPLIT_RULES

    (tmp_path / "split.yaml").write_text(yaml.safe_dump(SPLIT_RULES))
    fill = {"dir": tmp_path, "badpolicy": tmp_path / "bad.yaml", "used": used,
            "split": tmp_path / "split.yaml"}
    argv = _args(root, str(root / "events.parquet"), tmp_path / "ck", "--executor", "inline")
    for key, value in change.items():
        if key in argv:
            i = argv.index(key)
            argv[i + 1] = value.format(**fill)
        else:
            argv += [key] if value is None else [key, value.format(**fill)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert err.startswith("triggerlab serve: error: ") and "secret" not in err


@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_serve_learns_from_a_feedback_stream(setup, tmp_path, capsys, request,
                                             executor) -> None:
    """Clicks on 'question' sends an hour later: a learner (in process, or a Ray actor)
    applies each send once its day-long window closed, publishes versions, and later
    fires use them."""
    from actors.service.learner import read_policy_state

    if executor == "ray":
        request.getfixturevalue("ray_session")

    root, _, ref = setup
    fires = ref[ref["kind"] == "fire"]
    q = fires[fires["arm"] == "question"]
    fb = q[["trigger_id"]].assign(reward=1.0, time=q["time"] + 3600).sort_values("time")
    fb.to_parquet(tmp_path / "feedback.parquet", row_group_size=20)
    argv = _args(root, str(root / "events.parquet"), tmp_path / "ck", "--executor", executor,
                 "--drain", "--max-messages", "1", "--feedback",
                 str(tmp_path / "feedback.parquet"), "--reward-window", "1d")
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "serve: end of the log; checkpoint written"
    m = re.fullmatch(r"serve: learner at policy version (\d+), ([\d,]+) sends learned from",
                     out[-2])
    assert m, out[-2]
    version, learned = int(m.group(1)), int(m.group(2).replace(",", ""))
    state = read_policy_state(str(tmp_path / "ck"))
    assert state is not None and state["version"] == version >= 1
    s = state["policy"]["state"]
    assert sum(s["successes"]) + sum(s["failures"]) == learned > 0
    assert 0 < sum(s["successes"]) <= len(q)
    log = read_decision_log(tmp_path / "ck" / "decisions")
    assert (log["policy_version"] > 0).any() and (log["policy_version"] == 0).any()
    # the engine's decisions do not depend on the policy: only arms may differ
    pdt.assert_frame_equal(sort_log(log).drop(columns=["arm", "propensity"]),
                           ref.drop(columns=["arm", "propensity"]))
