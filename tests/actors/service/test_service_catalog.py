"""Catalog events in the service: a broadcast stream every shard reads, held for the
watermark, fanned out to the subscribers each shard owns; bad and late ones dead-lettered."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from actors import PolicyConfig
from actors.registry import make_policy
from actors.service.catalog import decode_catalog, encode_catalog
from actors.service.codec import encode_messages
from actors.service.shard import ShardConfig, ShardCore
from actors.service.transport import Message
from policies.triggers import CatalogBatch, example_journeys
from service.service_helpers import reference_decisions, sort_log

DAY = 86400
GRACE = 3 * DAY   # covers the disorder of interleaved partitions
SEED = 5
POLICY = PolicyConfig("thompson", {"arm_names": ["plain", "urgent"]})


@pytest.fixture(scope="module")
def shop():
    """A week of a small shop with product ids, and price drops (and restocks) of
    products that were viewed, spread over the week."""
    from experiments.synthetic import DEFAULT_START, generate_events, generate_subscribers

    rng = np.random.default_rng(11)
    subs = generate_subscribers(300, rng, now=DEFAULT_START)
    events = generate_events(subs, rng, n_events=9000, days=7, start=DEFAULT_START,
                             products=40)
    viewed = np.unique(events.columns["product_id"][events.columns["product_id"] >= 0])
    n = 60
    old = np.round(rng.uniform(20, 80, n), 2)
    kind = (rng.random(n) < 0.2).astype(np.int64)          # 1: back_in_stock
    catalog = CatalogBatch(
        np.sort(rng.integers(int(events.time[0]), int(events.time[-1]), n)).astype(np.int64),
        kind, rng.choice(viewed, n).astype(np.int64),
        np.where(kind == 0, old, np.nan),
        np.round(old * rng.uniform(0.6, 0.95, n), 2))
    end = int(events.time[-1]) + DAY
    return events, subs, catalog, end


def _msgs(payloads: list[bytes], partition: int = 0) -> list[Message]:
    return [Message(partition, k, k + 1, p) for k, p in enumerate(payloads)]


def _event_msgs(events, partitions: int) -> list[Message]:
    out, offset = [], {}
    for m in encode_messages(events, partitions, "arrow", max_bytes=8192):
        k = offset.get(m.partition, 0)
        out.append(Message(m.partition, k, k + 1, m.payload, key=m.key))
        offset[m.partition] = k + 1
    return out


@pytest.mark.parametrize(("shards", "fmt", "restore_at"), [(1, "arrow", None),
                                                          (3, "json", 4)])
def test_catalog_journeys_in_the_service_equal_the_engine_run(shop, shards, fmt,
                                                              restore_at) -> None:
    """Every shard reads the whole catalog stream (given ahead of the events, in several
    messages); the decisions of all shards equal the engine run with the catalog events
    in their ticks -- the price-drop alerts included, on any shard count and across a
    rebuild from the shard's state while catalog events still wait."""
    events, subs, catalog, end = shop
    rules = example_journeys()
    policy = make_policy(POLICY.name, POLICY.params, decides=POLICY.decides, reward="click",
                         seed=SEED)
    ref = reference_decisions(events, subs, end=end, rules=rules, policy=policy, seed=SEED,
                              catalog=catalog)
    alerts = ref[ref["rule"] == "price_drop_alert"]
    assert (alerts["kind"] == "fire").sum() > 20           # the fan-out reached people
    cfg = ShardConfig(rules, subs, POLICY, seed=SEED, grace=GRACE, key_partitions=6)
    cat_msgs = _msgs(encode_catalog(catalog, fmt, rows_per_message=7))
    msgs = _event_msgs(events, 6)
    frames, cores = [], []
    for s in range(shards):
        owned = [p for p in range(6) if p % shards == s]
        core = ShardCore(cfg, owned, shard=s)
        assert core.catalog(cat_msgs) == []
        mine = sorted((m for m in msgs if m.partition in owned),
                      key=lambda m: (m.offset, m.partition))
        for k, i in enumerate(range(0, len(mine), 5)):
            if k == restore_at:
                assert len(core._catalog)                   # drops still waiting
                core = ShardCore.from_state_dict(cfg, pickle.loads(pickle.dumps(
                    core.state_dict())))
            out = core.step(mine[i:i + 5])
            assert out.dead_letters == []
            frames.append(out.decisions)
        frames.append(core.advance_to(end + GRACE).decisions)
        assert core.counters.catalog == len(catalog) and len(core._catalog) == 0
        cores.append(core)
    got = pd.concat(frames, ignore_index=True)
    pdt.assert_frame_equal(sort_log(got), ref)


def test_catalog_events_arriving_between_steps(shop) -> None:
    """Catalog messages read beside the event messages, each a step or two ahead of the
    watermark reaching it (as a live broadcast stream arrives): same decisions."""
    events, subs, catalog, end = shop
    rules = example_journeys()
    ref = reference_decisions(events, subs, end=end, rules=rules, seed=SEED, catalog=catalog)
    cfg = ShardConfig(rules, subs, None, seed=SEED, grace=GRACE, key_partitions=2)
    core = ShardCore(cfg, [0, 1])
    cat = catalog.sort_by_time()
    frames, sent = [], 0
    msgs = _event_msgs(events, 2)
    msgs.sort(key=lambda m: (m.offset, m.partition))
    for i in range(0, len(msgs), 3):
        out = core.step(msgs[i:i + 3])
        assert out.dead_letters == []
        frames.append(out.decisions)
        horizon = core.watermark.max_seen      # what may come before the watermark does
        upto = int(np.searchsorted(cat.time, horizon, side="right"))
        if upto > sent:
            assert core.catalog(_msgs(encode_catalog(cat[sent:upto]))) == []
            sent = upto
    assert core.catalog(_msgs(encode_catalog(cat[sent:]))) == []
    frames.append(core.advance_to(end + GRACE).decisions)
    pdt.assert_frame_equal(sort_log(pd.concat(frames, ignore_index=True)), ref)


def test_late_catalog_events_and_events_after_a_catalog_second(shop) -> None:
    """A catalog event at or before the watermark is late; once a catalog event of second
    t is handled, a subscriber event of second t that arrives later is late too."""
    events, subs, _, _ = shop
    cfg = ShardConfig(example_journeys(), subs, None, seed=SEED, grace=300,
                      key_partitions=1)
    core = ShardCore(cfg, [0])
    first = events[:500]
    core.step(_event_msgs(first, 1))
    w = core.watermark.released_to
    drop = {"type": "price_drop", "product_id": 3, "old_price": 10.0, "new_price": 8.0}
    dead = core.catalog(_msgs([json.dumps({**drop, "time": w - 1}).encode(),
                               json.dumps({**drop, "time": w}).encode(),
                               json.dumps({**drop, "time": w + 50}).encode()]))
    assert [d.reason for d in dead] == [
        f"late: catalog event time {t} is at or before the watermark {w} (grace 300 s)"
        for t in (w - 1, w)]
    assert core.counters.dead_late == 2 and len(core._catalog) == 1
    # an event 300 s after the held drop moves the watermark exactly onto it
    one = events[500:501]
    moved = type(one)(one.subscriber, np.array([w + 350], np.int64), one.type,
                      {k: v for k, v in one.columns.items()})
    assert core.step(_event_msgs(moved, 1)).dead_letters == []
    assert core.watermark.released_to == w + 50 and len(core._catalog) == 0
    same = type(one)(one.subscriber, np.array([w + 50], np.int64), one.type,
                     {k: v for k, v in one.columns.items()})
    out = core.step(_event_msgs(same, 1))
    assert [d.reason for d in out.dead_letters] == [
        f"late: event time {w + 50} is at or before a catalog event already handled "
        f"(time {w + 50})"]


T = 1_767_600_000
GOOD = {"time": T, "type": "price_drop", "product_id": 4, "old_price": 20.0,
        "new_price": 15.0}

BAD_ROWS = [  # (changes to a good row, field at fault, words of the reason)
    ({"time": T * 1000}, "time", "milliseconds"),
    ({"time": 1.5e9}, "time", "expected int seconds"),
    ({"time": "2026-01-05T10:00:00"}, "time", "expected int seconds"),
    ({"time": None}, "time", "expected int seconds"),
    ({"type": "sale"}, "type", "expected one of price_drop, back_in_stock"),
    ({"product_id": -1}, "product_id", "expected ids >= 0"),
    ({"product_id": "sku-1"}, "product_id", "expected an int id"),
    ({"product_id": True}, "product_id", "expected an int id"),
    ({"old_price": -3.0}, "old_price", "expected finite prices >= 0"),
    ({"new_price": "cheap"}, "new_price", "expected a number"),
    ({"new_price": 25.0}, "new_price", "new price must be below its old price"),
    ({"new_price": 20.0}, "new_price", "new price must be below its old price"),
    ({"sku": "A-1"}, "sku", "unknown field 'sku'"),
    ({"time": T + 10 * 86400}, "time", "expected seconds since the epoch in"),  # skew
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_ROWS)
def test_bad_catalog_rows_are_dead_lettered(change, field, words) -> None:
    row = {**GOOD, **change}
    good, index, dead = decode_catalog(_msgs([json.dumps(row).encode(),
                                              json.dumps(GOOD).encode()]),
                                       max_time=T + 3600)
    assert len(good) == 1 and index.tolist() == [1]
    assert len(dead) == 1 and dead[0].field == field and words in dead[0].reason
    assert dead[0].row is None and dead[0].payload == json.dumps(row).encode()


@pytest.mark.parametrize(("payload", "words"), [
    (b"not json at all", "not an Arrow IPC stream nor a JSON object"),
    (b"{broken", "not JSON"),
    (b"[1, 2]", "not an Arrow IPC stream nor a JSON object"),
    (b"ARROW1\x00\x00garbage", "not an Arrow IPC stream nor a JSON object"),
    (b'{"time": NaN, "type": "price_drop", "product_id": 1}', "expected int seconds"),
    (b'{"time": 1767600000, "type": "back_in_stock", "product_id": 1, "new_price": NaN}',
     "expected a number"),
    (b'{"time": 1767600000, "type": "back_in_stock", "product_id": 1, "new_price": Infinity}',
     "expected a number"),
])
def test_unreadable_catalog_messages_are_dead_lettered(payload, words) -> None:
    good, _, dead = decode_catalog(_msgs([payload]))
    assert len(good) == 0 and len(dead) == 1 and words in dead[0].reason


def test_an_arrow_catalog_message_keeps_its_good_rows() -> None:
    batch = CatalogBatch.from_records([GOOD, {**GOOD, "type": "back_in_stock",
                                              "old_price": None}])
    (payload,) = encode_catalog(batch)
    good, _, dead = decode_catalog(_msgs([payload]))
    assert dead == [] and len(good) == 2
    assert np.isnan(good.old_price[1]) and good.type_name(1) == "back_in_stock"
    import pyarrow as pa

    from actors.service.codec import encode_table

    table = pa.table({"time": [T, T * 1000], "type": ["price_drop"] * 2,
                      "product_id": [1, 2], "old_price": [5.0, 5.0], "new_price": [4.0, 4.0]})
    good, _, dead = decode_catalog(_msgs([encode_table(table)]))
    assert len(good) == 1 and [d.row for d in dead] == [1]
    assert dead[0].payload["time"] == T * 1000


def test_catalog_overload_is_dead_lettered(shop) -> None:
    _, subs, _, _ = shop
    cfg = ShardConfig(example_journeys(), subs, None, seed=SEED, key_partitions=1,
                      max_held=3)
    core = ShardCore(cfg, [0])
    rows = [json.dumps({**GOOD, "time": T + k}).encode() for k in range(5)]
    dead = core.catalog(_msgs(rows))
    assert len(core._catalog) == 3 and len(dead) == 2
    assert all(d.reason.startswith("overload: 3 catalog events") for d in dead)


def test_a_catalog_stream_on_nats_reaches_every_shard_across_a_crash(
        shop, nats_server, unique_name, tmp_path) -> None:
    """Two shard runners on a real nats-server: each reads the whole catalog stream with
    its own consumer (before the events are published, so no timing can make a drop
    late) and fans the drops out to its own subscribers; one shard is stopped without a
    final checkpoint mid-stream and a new one continues from its checkpoint (waiting
    drops and catalog positions included). The decision log equals the engine run."""
    from actors.service.decision_log import read_decision_log
    from actors.service.endpoints import Endpoint
    from actors.service.runner import ShardRunner
    from actors.service.transport import OutMessage

    events, subs, catalog, end = shop
    rules = example_journeys()
    ref = reference_decisions(events, subs, end=end, rules=rules, seed=SEED, catalog=catalog)
    source = Endpoint.parse(f"{nats_server.url}/{unique_name}")
    feed = Endpoint.parse(f"{nats_server.url}/{unique_name}_catalog")
    with source.sink(4):                 # the event stream, empty until the shards are up
        pass
    with feed.sink(2) as sink:           # two partitions: a shard reads both
        sink.publish([OutMessage(k % 2, p) for k, p in
                      enumerate(encode_catalog(catalog, rows_per_message=4))])
    cfg = ShardConfig(rules, subs, None, seed=SEED, grace=3 * DAY, key_partitions=4)

    def kw(s: int) -> dict:
        return dict(shard=s, partitions=[s, s + 2], checkpoint_dir=str(tmp_path),
                    checkpoint_every=2, catalog=feed)

    runners = [ShardRunner(cfg, source, **kw(s)) for s in range(2)]
    for r in runners:                    # each reads the whole catalog (its own consumer)
        for _ in range(100):
            if r.core.counters.catalog == len(catalog):
                break
            r.step(max_messages=4, timeout=0.05)
        assert r.core.counters.catalog == len(catalog) and len(r.core._catalog) == len(catalog)
    with source.sink(4) as sink:         # in time order up to chunks of 4 hours
        t = events.time
        for lo in range(int(t[0]), int(t[-1]) + 1, 4 * 3600):
            chunk = events[(t >= lo) & (t < lo + 4 * 3600)]
            if len(chunk):
                sink.publish(encode_messages(chunk, 4, "arrow", max_bytes=8192))
    for _ in range(5):
        runners[1].step(max_messages=4, timeout=0.5)
    runners[1].close(checkpoint=False)   # what was not checkpointed is lost
    runners[1] = ShardRunner(cfg, source, **kw(1))
    assert runners[1].restored and len(runners[1].core._catalog) > 0
    for runner in runners:
        idle = 0
        while idle < 3:
            idle = idle + 1 if runner.step(max_messages=4, timeout=0.3).messages == 0 else 0
        runner.advance_to(end + 3 * DAY)
        assert runner.core.counters.catalog == len(catalog)
        assert runner.core.counters.dead_late == 0 and len(runner.core._catalog) == 0
        runner.close()
    got = read_decision_log(tmp_path / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)


def test_serve_with_a_catalog_log(shop, tmp_path, capsys) -> None:
    """``triggerlab serve --catalog LOG`` (a Parquet catalog log with one bad row, two
    shards): the bad row is dead-lettered by each shard, the rest fanned out; the
    decision log equals the engine run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actors.service.decision_log import read_decision_log
    from actors.service.files import write_event_log
    from experiments.cli import main

    events, subs, catalog, _ = shop
    write_event_log(tmp_path / "events.parquet", [events], row_group_rows=1000)
    subs.reset_index().to_parquet(tmp_path / "subscribers.parquet")
    names = [catalog.type_name(i) for i in range(len(catalog))]
    table = pa.table({"time": [*catalog.time.tolist(), int(catalog.time[0])],
                      "type": [*names, "price_drop"],
                      "product_id": [*catalog.product_id.tolist(), 1],
                      "old_price": pa.array([*catalog.old_price.tolist(), 10.0],
                                            mask=np.r_[np.isnan(catalog.old_price), False]),
                      "new_price": [*catalog.new_price.tolist(), 12.0]})    # a rise
    pq.write_table(table, tmp_path / "catalog.parquet", row_group_size=16)
    rules = tmp_path / "journeys.yaml"
    from pathlib import Path
    rules.write_text((Path(__file__).resolve().parents[3] / "policies" / "triggers"
                      / "example_journeys.yaml").read_text())
    argv = ["serve", "--rules", str(rules), "--source", str(tmp_path / "events.parquet"),
            "--catalog", str(tmp_path / "catalog.parquet"),
            "--subscriber-table", str(tmp_path / "subscribers.parquet"),
            "--checkpoint-dir", str(tmp_path / "ck"), "--seed", str(SEED),
            "--grace", f"{3 * DAY}s", "--shards", "2", "--executor",
            "inline", "--drain"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "dead letters 2 (bad 2, late 0, foreign 0)" in out     # the rise, per shard
    ref = reference_decisions(events, subs, end=int(events.time[-1]),
                              rules=example_journeys(), seed=SEED, catalog=catalog)
    assert ((ref["rule"] == "price_drop_alert") & (ref["kind"] == "fire")).sum() > 20
    got = read_decision_log(tmp_path / "ck" / "decisions")
    pdt.assert_frame_equal(sort_log(got), ref)
