"""Engine shards of the service (no broker, no Ray): decode -> watermark -> engine -> keyed
arms; dead letters for bad, late and foreign events; parity with the simulator's engine
run over 1, 2 and 3 shards and any batching; state round trips."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from actors import PolicyConfig
from actors.registry import make_policy
from actors.service.codec import decode_messages, encode_messages
from actors.service.partitioning import partition_of
from actors.service.shard import ShardConfig, ShardCore
from actors.service.transport import Message
from policies.errors import SpecError, TriggerLabValueError
from policies.triggers import default_rules
from service.service_helpers import RULE_ARMS, reference_decisions, sort_log, trigger_stream

GRACE = 3 * 86400   # covers the disorder of interleaved partitions
POLICY = PolicyConfig("thompson", {"arm_names": RULE_ARMS})
SEED = 7


@pytest.fixture(scope="module")
def stream():
    events, table = trigger_stream()
    end = int(events.time.max()) + 3 * 86400
    ref = reference_decisions(events, table, end=end, seed=SEED,
                              policy=make_policy(POLICY.name, POLICY.params,
                                                 decides=POLICY.decides, reward="click",
                                                 seed=SEED))
    return events, table, end, ref


def _messages(events, partitions: int, fmt: str, max_bytes: int) -> list[Message]:
    """The stream as broker messages: offsets per partition in publishing order."""
    out, offset = [], {}
    for m in encode_messages(events, partitions, fmt, max_bytes=max_bytes):
        k = offset.get(m.partition, 0)
        out.append(Message(m.partition, k, k + 1, m.payload, key=m.key))
        offset[m.partition] = k + 1
    return out


JITTER = 12 * 3600


def _first_times(msgs: list[Message]) -> dict[int, int]:
    """Earliest event time of each message (by id), decoding them once."""
    d = decode_messages(msgs)
    first = np.full(len(msgs), np.iinfo(np.int64).max)
    np.minimum.at(first, d.message_index, d.events.time)
    return {id(m): int(t) for m, t in zip(msgs, first, strict=True)}


def _run(events, table, end, *, shards: int, partitions: int, fmt: str, max_bytes: int,
         per_step: int, seed: int = 0, policy=POLICY, interleave: int = 1):
    """Every shard's decisions over the stream, with ``per_step`` messages a step taken
    from its partitions in an order shuffled by ``seed`` (partitions interleaved)."""
    cfg = ShardConfig(default_rules(), table, policy, seed=SEED, grace=GRACE,
                      key_partitions=partitions)
    msgs = _messages(events, partitions, fmt, max_bytes)
    first = _first_times(msgs)
    rng = np.random.default_rng(seed)
    frames, cores = [], []
    for s in range(shards):
        owned = [p for p in range(partitions) if p % shards == s]
        core = ShardCore(cfg, owned, shard=s)
        queues = [[m for m in msgs if m.partition == p] for p in owned]
        mine = []
        while any(queues):   # partitions interleaved: a head by first event time + jitter
            live = [q for q in queues if q]
            q = min(live, key=lambda q: first[id(q[0])] + int(rng.integers(JITTER)))
            take = int(rng.integers(1, interleave + 1))
            mine += q[:take]
            del q[:take]
        for i in range(0, len(mine), per_step):
            out = core.step(mine[i:i + per_step])
            assert out.dead_letters == []
            frames.append(out.decisions)
        frames.append(core.advance_to(end + GRACE).decisions)
        cores.append(core)
    return pd.concat(frames, ignore_index=True), cores


@pytest.mark.parametrize(("shards", "partitions", "fmt", "max_bytes", "per_step", "seed"), [
    (1, 1, "arrow", 1 << 20, 1, 0),          # one big message a partition
    (1, 4, "arrow", 4096, 3, 1),
    (2, 4, "arrow", 8192, 1, 2),
    (3, 6, "arrow", 6144, 5, 3),
    (3, 3, "arrow", 30_000, 2, 4),
    (2, 2, "json", 1024, 700, 5),           # one JSON event per message
])
def test_parity_with_the_simulators_engine_run(stream, shards, partitions, fmt, max_bytes,
                                               per_step, seed) -> None:
    events, table, end, ref = stream
    got, cores = _run(events, table, end, shards=shards, partitions=partitions, fmt=fmt,
                      max_bytes=max_bytes, per_step=per_step, seed=seed, interleave=3)
    assert len(ref) > 150 and set(ref["kind"]) == {"fire", "cancel", "expire", "suppress"}
    pdt.assert_frame_equal(sort_log(got), ref)
    assert sum(c.counters.events for c in cores) == len(events)
    # a fire's arm and propensity are the policy's: in (0, 1], names of its arms
    fires = got[got["kind"] == "fire"]
    assert fires["arm"].isin(RULE_ARMS).all() and fires["propensity"].between(0, 1).all()
    assert fires["propensity"].gt(0).all()
    assert got.loc[got["kind"] != "fire", "arm"].isna().all()


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_journeys_parity_over_shards(stream, engine: str) -> None:
    """The shipped journeys on either engine: every step's decision, with arms for the
    sends, as the simulator's engine run (reference engine); the journey columns are in
    the rows."""
    from policies.triggers import example_journeys

    events, table, end, _ = stream
    rules = example_journeys()
    policy = make_policy(POLICY.name, POLICY.params, decides=POLICY.decides,
                         reward="click", seed=SEED)
    ref = reference_decisions(events, table, end=end, rules=rules, policy=policy, seed=SEED,
                              engine="reference")
    assert {"fire", "branch", "exit"} <= set(ref["kind"])
    assert ref["trigger_id"].str.count(":").eq(3).all()          # ids per step
    cfg = ShardConfig(rules, table, POLICY, seed=SEED, grace=GRACE, key_partitions=4,
                      engine=engine)
    msgs = _messages(events, 4, "arrow", 8192)
    frames = []
    for s, owned in enumerate(([0, 2], [1, 3])):
        core = ShardCore(cfg, owned, shard=s)
        mine = sorted((m for m in msgs if m.partition in owned),
                      key=lambda m: (m.offset, m.partition))
        for i in range(0, len(mine), 4):
            frames.append(core.step(mine[i:i + 4]).decisions)
        frames.append(core.advance_to(end + GRACE).decisions)
    got = pd.concat(frames, ignore_index=True)
    pdt.assert_frame_equal(sort_log(got), ref)
    assert {"step", "step_label", "path", "path_name", "split_propensity"} <= set(got.columns)


SPLIT_RULES = {"rules": [{
    "id": "cart_split", "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "1h"}],
    "emails": {"a": {}, "b": {}},
    "steps": [{"wait": "2h"},
              {"split": {"policy": "subject_bandit",
                         "paths": {"x": [{"send": "a"}], "y": [{"send": "b"}]}}}]}]}
SPLIT_POLICY = PolicyConfig("thompson", {"arm_names": ["x", "y"]})


def test_policy_splits_in_the_service_equal_the_engine_run(stream, engine="fast",
                                                           shards=3) -> None:
    """A journey whose split a policy decides: the shards, given the policy by name,
    choose the simulator's engine run's paths with its propensities, on any shard count."""
    events, table, end, _ = stream
    split = make_policy(SPLIT_POLICY.name, SPLIT_POLICY.params, decides=SPLIT_POLICY.decides,
                        reward="click", seed=SEED)
    sends = make_policy(POLICY.name, POLICY.params, decides=POLICY.decides, reward="click",
                        seed=SEED)
    ref = reference_decisions(events, table, end=end, rules=SPLIT_RULES, seed=SEED,
                              policy=sends, engine="reference",
                              split_policies={"subject_bandit": split})
    cfg = ShardConfig(SPLIT_RULES, table, POLICY, seed=SEED, grace=GRACE, key_partitions=6,
                      engine=engine, split_policies={"subject_bandit": SPLIT_POLICY})
    msgs = _messages(events, 6, "arrow", 8192)
    frames = []
    for s in range(shards):
        owned = [p for p in range(6) if p % shards == s]
        core = ShardCore(cfg, owned, shard=s)
        mine = sorted((m for m in msgs if m.partition in owned),
                      key=lambda m: (m.offset, m.partition))
        for i in range(0, len(mine), 3):
            frames.append(core.step(mine[i:i + 3]).decisions)
        frames.append(core.advance_to(end + GRACE).decisions)
    got = pd.concat(frames, ignore_index=True)
    splits = got[got["kind"] == "split"]
    assert set(splits["path_name"]) == {"x", "y"} and len(splits) > 20
    assert splits["split_propensity"].between(0, 1, inclusive="right").all()
    pdt.assert_frame_equal(sort_log(got), ref)
    # each send is on the path its split chose, with the split's propensity
    instance = splits["trigger_id"].str.rsplit(":", n=1).str[0]
    path = dict(zip(instance, splits["path_name"], strict=True))
    prop = dict(zip(instance, splits["split_propensity"], strict=True))
    fires = got[got["kind"] == "fire"]
    of = fires["trigger_id"].str.rsplit(":", n=1).str[0]
    assert (fires["step_label"] == "steps[1].split.paths." + of.map(path) + "[0]").all()
    assert np.allclose(fires["split_propensity"], of.map(prop).astype(float))


def test_a_policy_split_without_its_policy_is_refused(stream) -> None:
    _, table, _, _ = stream
    cfg = ShardConfig(SPLIT_RULES, table, None, seed=SEED, key_partitions=2)
    with pytest.raises(TriggerLabValueError, match=r"split\.policy: unknown policy "
                                                   r"'subject_bandit'; given: none"):
        ShardCore(cfg, [0, 1])


def _updates(events, table, n: int = 120, seed: int = 9) -> pd.DataFrame:
    """``n`` attribute updates at event times: some subscribers become new customers (the
    welcome journey's attribute entry), some lose their engagement (segments)."""
    rng = np.random.default_rng(seed)
    subs = rng.choice(table.index.to_numpy(), n, replace=False)
    times = np.sort(rng.choice(events.time, n))
    rows = pd.DataFrame({"subscriber": subs, "time": times})
    rows["lifecycle_stage"] = np.where(np.arange(n) % 3 == 0, "customer", "new_customer")
    rows["engagement_score"] = np.where(np.arange(n) % 2 == 0, 0.01, 0.9)
    return rows


def test_attribute_updates_in_event_time_order(stream, engine="fast", shards=3,
                                               restore_at=3) -> None:
    """Updates given to the shards before the events they follow: each waits for the
    watermark, and the decisions equal the engine run that applies them at their time
    (journey attribute entries, segments and contexts included), also when a shard is
    rebuilt from its state with updates pending."""
    from policies.triggers import example_journeys

    events, table, _, _ = stream
    events = events[:6000]
    end = int(events.time.max()) + 86400
    rules = example_journeys()
    rows = _updates(events, table)
    kw = {"decides": POLICY.decides, "reward": "click", "seed": SEED}
    ref = reference_decisions(events, table, end=end, rules=rules, seed=SEED,
                              policy=make_policy(POLICY.name, POLICY.params, **kw),
                              engine="reference", updates=rows)
    welcome = ref[ref["rule"] == "welcome_series"]      # entered by an update only
    assert len(welcome) > 20
    assert welcome["subscriber"].isin(rows.loc[rows["lifecycle_stage"] == "new_customer",
                                               "subscriber"]).all()
    cfg = ShardConfig(rules, table, POLICY, seed=SEED, grace=GRACE, key_partitions=6,
                      engine=engine)
    msgs = _messages(events, 6, "arrow", 8192)
    frames = []
    for s in range(shards):
        owned = [p for p in range(6) if p % shards == s]
        core = ShardCore(cfg, owned, shard=s)
        assert core.update(rows) == []
        mine = sorted((m for m in msgs if m.partition in owned),
                      key=lambda m: (m.offset, m.partition))
        for k, i in enumerate(range(0, len(mine), 4)):
            if k == restore_at:
                assert core._pending                       # updates still waiting
                core = ShardCore.from_state_dict(cfg, pickle.loads(pickle.dumps(
                    core.state_dict())))
            frames.append(core.step(mine[i:i + 4]).decisions)
        frames.append(core.advance_to(end + GRACE).decisions)
        assert core.counters.updates == int(np.isin(
            partition_of(rows["subscriber"].to_numpy(), 6), owned).sum())
    pdt.assert_frame_equal(sort_log(pd.concat(frames, ignore_index=True)), ref)


def test_a_late_attribute_update_is_dead_lettered(stream) -> None:
    events, table, _, _ = stream
    cfg = ShardConfig(default_rules(), table, None, seed=SEED, grace=300, key_partitions=1)
    core = ShardCore(cfg, [0])
    core.step(_messages(events[:2000], 1, "arrow", 1 << 20))
    w = core.watermark.released_to
    rows = pd.DataFrame({"subscriber": [int(table.index[0])] * 2, "time": [w - 1, w],
                         "engagement_score": [0.5, 0.6]})
    dead = core.update(rows)
    assert [d.reason for d in dead] == [
        f"late: attribute update time {w - 1} is before the watermark {w} (grace 300 s)"]
    assert core.counters.dead_late == 1 and len(core._pending) == 1   # the on-time one waits
    with pytest.raises(TriggerLabValueError, match=r"rows: expected a column 'time'"):
        core.update(rows.drop(columns=["time"]))


def test_decision_rows_carry_what_ope_needs(stream) -> None:
    events, table, end, _ = stream
    got, _ = _run(events, table, end, shards=1, partitions=1, fmt="arrow",
                  max_bytes=1 << 20, per_step=1)
    row = got[got["kind"] == "fire"].iloc[0]
    assert row["policy"] == "thompson" and row["decides"] == "subject_style"
    assert row["policy_version"] == 0 and row["arm_index"] == RULE_ARMS.index(row["arm"])
    sub = table.loc[int(row["subscriber"])]
    assert row["x_bias"] == 1.0 and row["x_engagement_score"] == sub["engagement_score"]


def test_without_a_policy_no_arms(stream) -> None:
    events, table, end, ref = stream
    got, _ = _run(events, table, end, shards=2, partitions=2, fmt="arrow", max_bytes=8192,
                  per_step=2, policy=None)
    assert got["arm"].isna().all() and got["propensity"].isna().all()
    assert (got["policy"] == "").all()
    pdt.assert_frame_equal(sort_log(got).drop(columns=["arm", "propensity"]),
                           ref.drop(columns=["arm", "propensity"]))


T0 = 1_767_600_000


def _json(**fields) -> bytes:
    return json.dumps(fields).encode()


#: (payload, field, reason regex) -- what a shard does with each bad input
BAD = [
    (b"\x00garbage", "message", "not an Arrow IPC stream nor a JSON object"),
    (b"{not json", "message", "not JSON"),
    (b"[1, 2]", "message", r"nor a JSON object \(starts with b.\[1, 2\]"),
    (_json(subscriber=1, time=T0, type="teleport"), "type", "unknown event type"),
    (_json(subscriber=1, time="2026-01-05T10:00:00", type="page_view"), "time", "naive"),
    (_json(subscriber=1, time=T0 * 1000, type="page_view"), "time", "milliseconds"),
    (_json(subscriber=1, time=T0, type="add_to_cart", cart_value="NaN"), "cart_value", ""),
    (_json(subscriber=1, type="page_view"), "time", "missing"),
    (_json(subscriber=1, time=T0 - 10 * 86400, type="page_view"), "time",
     r"late: event time \d+ is before the watermark \d+ \(grace 259200 s\)"),
]


@pytest.mark.parametrize(("payload", "field", "reason"), BAD)
def test_bad_and_late_records_are_dead_lettered_and_the_shard_goes_on(
        stream, payload, field, reason) -> None:
    events, table, end, ref = stream
    cfg = ShardConfig(default_rules(), table, POLICY, seed=SEED, grace=GRACE)
    core = ShardCore(cfg, [0])
    msgs = _messages(events, 1, "arrow", 4096)
    half = len(msgs) // 2
    bad = Message(0, 10_000, 10_001, payload)
    frames = [core.step(msgs[:half]).decisions]
    out = core.step([msgs[half], bad, msgs[half + 1]])
    assert len(out.dead_letters) == 1
    d = out.dead_letters[0]
    assert (d.partition, d.offset, d.field) == (0, 10_000, field)
    assert re.search(reason, d.reason), d.reason
    assert json.loads(d.to_json())["reason"] == d.reason
    frames += [out.decisions, core.step(msgs[half + 2:]).decisions,
               core.advance_to(end + GRACE).decisions]
    pdt.assert_frame_equal(sort_log(pd.concat(frames)), ref)
    c = core.counters
    assert c.dead_bad + c.dead_late == 1 and c.events - c.dead_late == len(events)


def test_events_beyond_the_wall_clock_are_dead_lettered(stream) -> None:
    events, table, _, _ = stream
    now = int(events.time[100])
    cfg = ShardConfig(default_rules(), table, None, grace=GRACE, max_skew=60)
    core = ShardCore(cfg, [0])
    future = _json(subscriber=1, time=now + 61, type="page_view")
    edge = _json(subscriber=1, time=now + 60, type="page_view")
    out = core.step([Message(0, 0, 1, future), Message(0, 1, 2, edge)], now=now)
    assert [d.offset for d in out.dead_letters] == [0]
    assert out.dead_letters[0].field == "time"
    assert f"got {now + 61}" in out.dead_letters[0].reason
    assert core.watermark.max_seen == now + 60        # the future event moved nothing
    assert ShardCore(cfg, [0]).step([Message(0, 0, 1, future)]).dead_letters == []
    with pytest.raises(TriggerLabValueError, match="max_skew: expected an integer >= 0"):
        ShardConfig(default_rules(), table, max_skew=-1)


def test_foreign_subscribers_are_dead_lettered_or_skipped(stream) -> None:
    events, table, _, _ = stream
    cfg = ShardConfig(default_rules(), table, None, grace=GRACE, key_partitions=2)
    msgs = _messages(events[:300], 1, "arrow", 1 << 20)       # every subscriber in one
    n_foreign = int((partition_of(events[:300].subscriber, 2) != 0).sum())
    core = ShardCore(cfg, [0])
    dead = core.step(msgs).dead_letters
    assert len(dead) == n_foreign == core.counters.dead_foreign > 0
    assert dead[0].field == "subscriber" and "not owned by shard 0 (owns [0])" in dead[0].reason
    skip = ShardCore(cfg, [0], foreign="skip")
    assert skip.step(msgs).dead_letters == [] and skip.counters.skipped_foreign == n_foreign
    assert skip.counters.events == core.counters.events == 300 - n_foreign


def test_state_round_trip_continues_exactly(stream) -> None:
    events, table, end, ref = stream
    cfg = ShardConfig(default_rules(), table, POLICY, seed=SEED, grace=GRACE)
    msgs = _messages(events, 1, "arrow", 4096)
    core = ShardCore(cfg, [0])
    frames = [core.step(msgs[:7]).decisions]
    import pickle

    state = pickle.loads(pickle.dumps(core.state_dict()))
    again = ShardCore.from_state_dict(cfg, state)
    frames += [again.step(msgs[7:]).decisions, again.advance_to(end + GRACE).decisions]
    pdt.assert_frame_equal(sort_log(pd.concat(frames)), ref)
    assert again.counters.events == len(events)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(seed=-1), TriggerLabValueError, "seed: expected an integer >= 0"),
    (dict(key_partitions=0), TriggerLabValueError, "key_partitions: expected an integer >= 1"),
    (dict(subscribers=[1, 2]), TriggerLabValueError, "subscribers: expected a pandas DataFrame"),
    (dict(policy=PolicyConfig("thompson", {"arm_names": RULE_ARMS}, scope="campaign")),
     SpecError, "policy.scope: the service decides trigger sends"),
    (dict(grace=-5), TriggerLabValueError, "grace: expected whole seconds"),
])
def test_bad_shard_configs(stream, kwargs, error, match) -> None:
    _, table, _, _ = stream
    base = dict(rules=default_rules(), subscribers=table)
    with pytest.raises(error, match=match):
        ShardCore(ShardConfig(**{**base, **kwargs}), [0])


@pytest.mark.parametrize(("partitions", "foreign", "match"), [
    ([2], "dead_letter", r"partitions: expected an integer in \[0, 0\], got 2"),
    ([0], "drop", "foreign: expected one of"),
])
def test_bad_shard_arguments(stream, partitions, foreign, match) -> None:
    _, table, _, _ = stream
    with pytest.raises(TriggerLabValueError, match=match):
        ShardCore(ShardConfig(default_rules(), table), partitions, foreign=foreign)
