"""The service's learner: feedback joined to the decision log by trigger id, each send
applied once when its reward window closes, versioned states picked up by the shards;
its checkpoint and restart; malformed feedback."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actors import PolicyConfig
from actors.service.codec import encode_table
from actors.service.decision_log import read_decision_log
from actors.service.endpoints import Endpoint
from actors.service.files import write_event_log
from actors.service.learner import FeedbackLearner, decode_feedback, read_policy_state
from actors.service.runner import ShardRunner
from actors.service.shard import ShardConfig
from actors.service.transport import Message
from policies.errors import TriggerLabValueError
from policies.triggers import default_rules
from service.service_helpers import RULE_ARMS, trigger_stream

WINDOW = 2 * 86400
POLICY = PolicyConfig("thompson", {"arm_names": RULE_ARMS})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A service run over a log (stopped at its end, sends still pending), and feedback
    in time order: 'question' sends are clicked an hour later (some twice), 'plain' ones
    after their window (too late to count), and one id is unknown."""
    events, table = trigger_stream(n_events=12_000, seed=9)
    root = tmp_path_factory.mktemp("learn")
    write_event_log(root / "events.parquet", [events])
    cfg = ShardConfig(default_rules(), table, POLICY, seed=1, grace=600)
    runner = ShardRunner(cfg, Endpoint.parse(str(root / "events.parquet")), shard=0,
                         partitions=[0], checkpoint_dir=str(root / "ck"))
    while runner.step().messages:
        pass
    log = read_decision_log(root / "ck" / "decisions")
    fires = log[log["kind"] == "fire"]
    clicked = fires[fires["arm"] == "question"]
    late = fires[fires["arm"] == "plain"]
    fb = pd.concat([clicked[["trigger_id"]].assign(reward=1.0, time=clicked["time"] + 3600),
                    clicked[["trigger_id"]].iloc[::3].assign(
                        reward=1.0, time=clicked["time"].iloc[::3] + 7200),     # repeats
                    late[["trigger_id"]].assign(reward=1.0, time=late["time"] + WINDOW + 1),
                    pd.DataFrame({"trigger_id": ["nope:1:2"], "reward": [1.0],
                                  "time": [int(fires["time"].iloc[5])]})])
    fb = fb.sort_values("time", kind="stable").reset_index(drop=True)
    pq.write_table(pa.Table.from_pandas(fb, preserve_index=False),
                   root / "feedback.parquet", row_group_size=25)
    return root, cfg, runner, fires, int(log["time"].max())


def _expected_state(cfg, fires, clock):
    """The policy updated once per send whose window closed, in (time, trigger id) order."""
    policy = cfg.make_policy()
    done = fires[fires["time"] + WINDOW <= clock].sort_values(["time", "trigger_id"])
    policy.update(done["arm_index"].to_numpy(), (done["arm"] == "question").to_numpy(float))
    return policy.state_dict(), len(done)


def _clock(root, log_max: int) -> int:
    """The learner's clock at the end: the latest feedback, not past the latest decision."""
    return min(int(pd.read_parquet(root / "feedback.parquet")["time"].max()), log_max)


def _learn(root, cfg, steps=None, checkpoint_dir=None):
    learner = FeedbackLearner(cfg, Endpoint.parse(str(root / "feedback.parquet")),
                              checkpoint_dir=str(checkpoint_dir or root / "ck"),
                              reward_window=WINDOW)
    n = 0
    while steps is None or n < steps:
        p = learner.step(max_messages=1)
        n += 1
        if steps is None and not p.messages:
            break
    return learner


def test_each_send_reaches_the_policy_once(served, tmp_path) -> None:
    root, cfg, _, fires, log_max = served
    learner = _learn(root, cfg, checkpoint_dir=root / "ck")
    clock = _clock(root, log_max)
    assert learner.clock == clock
    state, n = _expected_state(cfg, fires, clock)
    assert 0 < n < len(fires)                     # some windows closed, some are open
    assert learner.n_applied == n and len(learner.sends) == len(fires) - n
    assert learner.n_outside > 0 and learner.n_unmatched == 1 and learner.n_dead == 0
    assert learner.policy.state_dict() == state
    assert learner.version >= 1
    assert read_policy_state(str(root / "ck")) == {"version": learner.version,
                                                   "policy": state}
    learner.close()


def test_a_restarted_learner_ends_with_the_same_state(served, tmp_path) -> None:
    root, cfg, _, fires, log_max = served
    import shutil

    shutil.copytree(root / "ck" / "decisions", tmp_path / "decisions")
    first = _learn(root, cfg, steps=5, checkpoint_dir=tmp_path)
    first.checkpoint()
    for _ in range(3):                          # read after the checkpoint, then lost
        first.step(max_messages=1)
    del first
    again = _learn(root, cfg, checkpoint_dir=tmp_path)
    clock = _clock(root, log_max)
    assert again.clock == clock
    state, n = _expected_state(cfg, fires, clock)
    assert again.policy.state_dict() == state and again.n_applied == n


def test_shards_pick_up_published_versions(served) -> None:
    root, cfg, runner, _, _ = served
    learner = _learn(root, cfg, checkpoint_dir=root / "ck")
    published = read_policy_state(str(root / "ck"))
    assert published is not None
    runner.step()                                 # the log is done: loads the new version
    assert runner.core.policy_version == published["version"] >= 1
    assert runner.core.policy.state_dict() == published["policy"]
    later = runner.advance_to(int(learner.clock) + 30 * 86400)   # the pending sends
    assert later.decisions > 0
    log = read_decision_log(root / "ck" / "decisions")
    fresh = log[log["policy_version"] > 0]      # what the step after the publication decided
    assert len(fresh) == later.decisions
    assert len(fresh) and (fresh["policy_version"] == published["version"]).all()
    learner.close()


J = b'{"trigger_id": "r:1:2", "reward": 1, "time": 1767600000}'


@pytest.mark.parametrize(("payload", "field", "reason"), [
    (b"<html>", "message", "not a JSON object nor an Arrow IPC stream"),
    (b"{bad", "message", "feedback: Expecting property name"),
    (b'{"reward": 1}', "trigger_id", "expected a trigger id string, got None"),
    (b'{"trigger_id": "r:1:2", "reward": 1}', "time", "expected int seconds since the epoch"),
    (b'{"trigger_id": "r:1:2", "reward": 1, "time": 1767600000000}', "time",
     "looks like milliseconds"),
    (b'{"trigger_id": 5, "reward": 1}', "trigger_id", "expected a trigger id string, got 5"),
    (b'{"trigger_id": "r:1:2", "reward": "yes"}', "reward", "expected a finite number"),
    (b'{"trigger_id": "r:1:2", "reward": NaN}', "reward", "expected a finite number, got nan"),
    (b'{"trigger_id": "r:1:2", "reward": true}', "reward", "expected a finite number"),
])
def test_malformed_feedback_is_dead_lettered(payload, field, reason) -> None:
    table = encode_table(pa.table({"trigger_id": ["a:1:2", "b:1:2"], "reward": [1.0, 0.5],
                                   "time": [1767600000, 1767600001]}))
    rows, dead = decode_feedback([Message(0, 0, 1, J), Message(0, 1, 2, payload),
                                  Message(0, 2, 3, table)])
    assert rows["trigger_id"].tolist() == ["r:1:2", "a:1:2", "b:1:2"]
    assert rows["reward"].tolist() == [1.0, 1.0, 0.5]
    assert len(dead) == 1 and (dead[0].offset, dead[0].field) == (1, field)
    assert reason in dead[0].reason
    assert json.loads(dead[0].to_json())["reason"] == dead[0].reason


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"reward_window": 0}, "reward_window: expected an integer >= 1"),
    ({"publish_every": 0}, "publish_every: expected an integer >= 1"),
])
def test_bad_learner_arguments(served, tmp_path, kwargs, match) -> None:
    root, cfg, _, _, _ = served
    base = dict(checkpoint_dir=str(tmp_path), reward_window=WINDOW)
    with pytest.raises(TriggerLabValueError, match=match):
        FeedbackLearner(cfg, Endpoint.parse(str(root / "feedback.parquet")),
                        **{**base, **kwargs})
    no_policy = ShardConfig(default_rules(), cfg.subscribers)
    with pytest.raises(TriggerLabValueError, match="the learner needs the service's policy"):
        FeedbackLearner(no_policy, Endpoint.parse(str(root / "feedback.parquet")), **base)
