"""Load testing: generator/plan, percentiles, the engine shard, and end-to-end runs on Ray."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.engine_shard import EngineShard, SequenceError
from experiments.commands.loadtest import parse_count, parse_seconds
from experiments.loadtest import (
    LoadTestConfig,
    behavior_stream,
    compare_decisions,
    counter_mismatch_count,
    duplicate_instances,
    mix_stream,
    parse_mix,
    partition,
    plan,
    rule_columns,
    sample_mask,
    weighted_percentiles,
)
from policies.errors import SpecError
from policies.events import EventBatch
from policies.triggers import KINDS, Decisions, TriggerEngine, default_rules, load_rules

RULES = default_rules()

# ---------------------------------------------------------------------------
# invalid input


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda: parse_seconds("soon"), SpecError, r"duration: expected a duration like '60s'"),
        (lambda: parse_seconds("5 parsecs"), SpecError, r"got '5 parsecs'"),
        (lambda: parse_count("-3", "rate"), SpecError, r"rate: expected a positive number"),
        (lambda: parse_count("0"), SpecError, r"got '0'"),
        (lambda: parse_mix("product_view"), SpecError, r"mix: expected TYPE=WEIGHT"),
        (lambda: parse_mix("teleport=1"), SpecError, r"mix: unknown event type 'teleport'"),
        (lambda: parse_mix("add_to_cart=lots"), SpecError, r"add_to_cart: expected a number"),
        (lambda: parse_mix("add_to_cart=-1"), SpecError, r"expected a weight >= 0"),
        (lambda: parse_mix("add_to_cart=0"), SpecError, r"at least one positive weight"),
        (lambda: partition(np.arange(3), 0), SpecError, r"shards: expected an int >= 1"),
        (lambda: partition(np.arange(3), 2, "modulo"), SpecError, r"'hash' or 'range'"),
        (lambda: partition(np.arange(3), 2, "range"), SpecError, r"needs the known"),
        (lambda: LoadTestConfig(shards=0), SpecError,
         r"shards: expected an integer in \[1, 256\], got 0"),
        (lambda: LoadTestConfig(rate=-5.0), SpecError, r"rate: expected events per second"),
        (lambda: LoadTestConfig(duration=0), SpecError,
         r"duration: expected seconds in \(0, 86400\], got 0"),
        (lambda: LoadTestConfig(kill_shard=2), SpecError,
         r"kill-shard: expected an integer in \[0, 1\], got 2"),
        (lambda: behavior_stream(10, 10, seed=1, source="dice"), SpecError, r"source: expected"),
        (lambda: behavior_stream(0, 10, seed=1), SpecError, r"subscribers: expected an int"),
    ],
)
def test_invalid_input(call, exc, message) -> None:
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "1M", "--max"], r"not allowed with argument"),
        (["--mix", "a=1", "--replay", "x.csv"], r"not allowed with argument"),
        (["--partition", "zigzag"], r"invalid choice: 'zigzag'"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys) -> None:
    from experiments.cli import main

    with pytest.raises(SystemExit) as info:
        main(["loadtest", "--rules", "reference", *argv])
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--speedup", "10"], r"speedup: only with --replay"),
        (["--subscriber-table", "t.csv"], r"subscriber-table: only with --replay"),
        (["--shards", "0"], r"shards: expected an integer in \[1, 100\] .*got 0"),
        (["--kill-shard-at", "1s", "--kill-shard", "5"],
         r"kill-shard: expected an integer in \[0, 1\], got 5"),
        (["--duration", "soon"], r"duration: expected a duration like '60s'.*got 'soon'"),
        (["--rate", "-5"], r"rate: expected a positive number like 500000.*got '-5'"),
        (["--rules", "missing.yaml"], r"rules: no such file 'missing.yaml'"),
        (["--replay", "events.json"], r"replay: expected a .parquet or .csv file"),
    ],
)
def test_cli_reports_bad_input_in_one_line(argv, message, capsys) -> None:
    from experiments.cli import main

    status = main(["loadtest", "--rules", "reference", "--subscribers", "100", *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("triggerlab loadtest: error: ") and err.count("\n") == 1
    assert re.search(message, err)


# Issue 19: every option says no up front (one line, exit status 2), before any stream is
# generated or Ray started; each row failed on the old code (ran, crashed later, or
# silently replaced the value).
_NUM = r"expected a positive number like 500000, 500k or 1M, got"
BAD_OPTIONS = [
    # the cases
    (["--kill-shard-at", "90s"], r"kill-shard-at: expected seconds in \[0, 60\) \(within the "
                                 r"duration\), got 90"),
    (["--duration", "10s", "--kill-shard-at", "10s"], r"kill-shard-at: .*\[0, 10\).*got 10"),
    (["--batch-size", "0"], rf"batch-size: {_NUM} '0'"),
    (["--rate", "1e99"], r"rate: expected a load this machine can hold \(at most [\d.]+ GB, "
                         r"half the physical memory\), got an estimated [\d.e+]+ GB .*"
                         r"6e\+100 events in 1\.2e\+96 batches"),
    # numbers of every option: negative, zero, NaN, infinite, fractional, absurd
    (["--rate", "nan"], rf"rate: {_NUM} 'nan'"),
    (["--rate", "inf"], rf"rate: {_NUM} 'inf'"),
    (["--rate", "1e400"], rf"rate: {_NUM} '1e400'"),
    (["--rate", "0"], rf"rate: {_NUM} '0'"),
    (["--rate", "1e9", "--duration", "1h"], r"rate: expected a load this machine can hold"),
    (["--duration", "0"], r"duration: expected seconds in \(0, 86400\], got 0"),
    (["--duration", "100h"], r"duration: expected seconds in \(0, 86400\], got 360000"),
    (["--duration", "nan"], r"duration: expected a duration like '60s'"),
    (["--subscribers", "1000", "--shards", "0"], r"shards: expected an integer in \[1, 256\], "
                                                 r"got 0"),
    (["--shards", "-1"], r"shards: expected an integer in \[1, 100\] .*got -1"),
    (["--shards", "nan"], r"shards: expected an integer, got 'nan'"),
    (["--shards", "1.5"], r"shards: expected an integer, got '1.5'"),
    (["--subscribers", "1000", "--shards", "1000"],
     r"shards: expected an integer in \[1, 256\], got 1000"),
    (["--shards", "200"], r"shards: expected an integer in \[1, 100\] \(at most one shard "
                          r"per subscriber: 100 subscribers\), got 200"),
    (["--subscribers", "0"], rf"subscribers: {_NUM} '0'"),
    (["--subscribers", "0.5"], r"subscribers: expected a whole number .* got '0.5'"),
    (["--subscribers", "1e12"], r"subscribers: expected a load this machine can hold"),
    (["--batch-size", "-1"], rf"batch-size: {_NUM} '-1'"),
    (["--batch-size", "2.5"], r"batch-size: expected a whole number .* got '2.5'"),
    (["--batch-window", "0"], r"batch-window: expected seconds in \(0, duration = 60\], got 0"),
    (["--batch-window", "2m"], r"batch-window: expected seconds in \(0, duration = 60\]"),
    (["--batch-window", "nan"], r"batch-window: expected a duration like"),
    (["--checkpoint-every", "0"], r"checkpoint-every: expected seconds > 0, got 0"),
    (["--kill-shard-at=-1s"], r"kill-shard-at: expected a duration like .* got '-1s'"),
    (["--kill-shard-at", "1s", "--kill-shard", "-1"], r"kill-shard: .*\[0, 1\], got -1"),
    (["--check-events", "0"], rf"check-events: {_NUM} '0'"),
    (["--check-events", "0.5"], r"check-events: expected a whole number .* got '0.5'"),
    (["--pool-events", "0"], rf"pool-events: {_NUM} '0'"),
    (["--pool-events", "1e12"], r"pool-events: expected a load this machine can hold"),
    (["--p99-target", "0"], r"p99-target: expected seconds > 0, got 0"),
    (["--seed", "-1"], r"seed: expected an integer >= 0, got -1"),
    (["--seed", "x"], r"seed: expected an integer, got 'x'"),
    # options that would be ignored
    (["--kill-shard", "1"], r"kill-shard: only with --kill-shard-at"),
    (["--cold-restart"], r"cold-restart: only with --kill-shard-at"),
    (["--replay", "{log}", "--subscribers", "10"], r"subscribers: a replay's subscribers"),
    (["--replay", "{log}", "--pool-events", "10"], r"pool-events: a replay offers its log"),
    (["--replay", "{log}", "--speedup", "2", "--duration", "5s"],
     r"duration: the replay's timestamps set the length"),
    (["--replay", "{log}", "--speedup", "nan"], r"speedup: expected a finite number, got 'nan'"),
    (["--replay", "{log}", "--speedup", "0"], r"speedup: expected a number > 0, got 0"),
    (["--replay", "{log}", "--speedup", "-2"], r"speedup: expected a number > 0, got -2"),
    # replay and subscriber-table files: missing, corrupt, not covering the log
    (["--replay", "{tmp}/missing.csv"], r"replay: no such file '.*missing.csv'"),
    (["--replay", "{tmp}/corrupt.parquet"], r"replay: cannot read '.*corrupt.parquet': "),
    (["--replay", "{tmp}/empty.csv"], r"replay: cannot read '.*empty.csv': "),
    (["--replay", "{tmp}/columns.csv"], r"replay: .*columns.csv is not an event log: "
                                        r"subscriber: missing column"),
    (["--replay", "{tmp}/types.csv"], r"replay: .*types.csv is not an event log: "),
    (["--replay", "{tmp}/header.csv"], r"replay: .*header.csv holds no events"),
    (["--replay", "{log}", "--subscriber-table", "{tmp}/missing.csv"],
     r"subscriber-table: no such file"),
    (["--replay", "{log}", "--subscriber-table", "{tmp}/corrupt.parquet"],
     r"subscriber-table: cannot read"),
    (["--replay", "{log}", "--subscriber-table", "{tmp}/nosub.csv"],
     r"subscriber-table: expected a 'subscriber' column, got columns \['id'"),
    (["--replay", "{log}", "--subscriber-table", "{tmp}/dup.csv"],
     r"subscriber-table: expected one row per subscriber, got 1 duplicated ids \(e.g. \[0\]\)"),
    (["--replay", "{log}", "--subscriber-table", "{tmp}/part.csv"],
     r"subscriber-table: expected a row for every subscriber in the events, got none for "
     r"\d[\d,]* of the \d[\d,]* \(e.g. \[\d+, \d+, \d+\]\); their events would go unchecked"),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """A small event log and broken files next to it."""
    tmp = tmp_path_factory.mktemp("bad")
    stream = mix_stream(300, 2_000, parse_mix("product_view=0.6,add_to_cart=0.4"), seed=2)
    stream.events.to_pandas().to_csv(tmp / "log.csv", index=False)
    (tmp / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp / "empty.csv").write_text("")
    (tmp / "columns.csv").write_text("a,b\n1,2\n")
    (tmp / "types.csv").write_text("subscriber,time,type\n1,1767225600,teleport\n")
    (tmp / "header.csv").write_text("subscriber,time,type\n")
    (tmp / "nosub.csv").write_text("id,engagement_score\n1,0.5\n")
    (tmp / "dup.csv").write_text("subscriber,engagement_score\n0,0.5\n0,0.6\n")
    table = stream.subscribers.reset_index()
    table[table["subscriber"] < 100].to_csv(tmp / "part.csv", index=False)
    return tmp


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS)
def test_cli_refuses_bad_options_up_front(argv, message, bad_files, capsys,
                                          monkeypatch) -> None:
    from experiments.cli import main

    def no_ray(*args, **kwargs):  # the refusal must come before Ray is started
        raise AssertionError("Ray started")

    monkeypatch.setattr("actors.ray_runtime.init_ray", no_ray)
    argv = [a.format(log=bad_files / "log.csv", tmp=bad_files) for a in argv]
    if "--subscribers" not in argv and "--replay" not in argv:
        argv = ["--subscribers", "100", *argv]
    status = main(["loadtest", "--rules", "reference", *argv])
    captured = capsys.readouterr()
    assert status == 2, captured
    err = captured.err
    assert err.startswith("triggerlab loadtest: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert captured.out == ""  # nothing generated


def test_run_loadtest_refuses_a_stream_it_cannot_check(small_stream) -> None:
    """The Python API says no too, before starting any shard: events of subscribers the
    table lacks (they would go unchecked), more shards than subscribers, a kill after a
    replay's last batch."""
    from experiments.loadtest import Stream, run_loadtest

    part = Stream(small_stream.events, small_stream.subscribers.iloc[:100], "mix")
    with pytest.raises(SpecError, match=r"subscribers: expected a row for every subscriber "
                                        r"in the events, got none for 1,900 of the 2,000"):
        run_loadtest(part, RULES, LoadTestConfig())
    tiny = Stream(small_stream.events[small_stream.events.subscriber < 3],
                  small_stream.subscribers.iloc[:3], "mix")
    with pytest.raises(SpecError, match=r"shards: expected an integer in \[1, 3\].*got 4"):
        run_loadtest(tiny, RULES, LoadTestConfig(shards=4))
    span = float(small_stream.events.time[-1] - small_stream.events.time[0])
    with pytest.raises(SpecError, match=r"kill-shard-at: expected seconds in \[0, 2\) "
                                        r"\(before the last batch arrives\), got 5"):
        run_loadtest(small_stream, RULES, LoadTestConfig(speedup=span / 2, kill_at=5.0))


def test_parsers() -> None:
    assert parse_seconds("60s") == 60.0
    assert parse_seconds("20ms") == pytest.approx(0.02)
    assert parse_seconds("2m") == 120.0
    assert parse_seconds("1.5") == 1.5
    assert parse_count("500k") == 500_000.0
    assert parse_count("2M") == 2_000_000.0
    assert parse_count("2e6") == 2_000_000.0
    assert parse_mix("product_view=3,add_to_cart=1") == {"product_view": 0.75,
                                                         "add_to_cart": 0.25}


# ---------------------------------------------------------------------------
# partition, sample, plan


def test_partitions_are_deterministic_and_balanced() -> None:
    ids = np.arange(1000, 41000, dtype=np.int64)
    h = partition(ids, 4, "hash")
    assert np.array_equal(h, partition(ids[::-1], 4, "hash")[::-1])
    counts = np.bincount(h, minlength=4)
    assert counts.min() > 0.95 * 10_000 and counts.max() < 1.05 * 10_000
    r = partition(ids, 4, "range", ids=ids)
    assert np.bincount(r).tolist() == [10_000] * 4
    assert np.all(np.diff(r) >= 0)  # contiguous ranges
    # an id outside the known set still gets a shard
    assert partition(np.array([0, 10**9]), 4, "range", ids=ids).tolist() == [0, 3]


def test_sample_mask_fraction() -> None:
    ids = np.arange(200_000, dtype=np.int64)
    m = sample_mask(ids, 0.1)
    assert abs(m.mean() - 0.1) < 0.005
    assert np.array_equal(m, sample_mask(ids, 0.1))
    assert sample_mask(ids, 1.0).all()
    assert not (sample_mask(ids, 0.05) & ~m).any()  # nested samples


@pytest.fixture(scope="module")
def small_stream():
    return mix_stream(
        2_000, 30_000,
        parse_mix("product_view=0.5,page_view=0.2,add_to_cart=0.15,purchase_completed=0.05,"
                  "email_click=0.1"),
        seed=3, columns=rule_columns(RULES),
    )


def test_mix_stream_follows_the_mix(small_stream) -> None:
    ev = small_stream.events
    assert len(ev) == 30_000
    assert np.all(np.diff(ev.time) >= 0)
    share = np.mean(np.array(ev.type_names()) == "add_to_cart")
    assert abs(share - 0.15) < 0.01
    assert sorted(ev.columns) == ["cart_value", "link_type", "time_on_page"]
    assert ev.subscriber.min() >= 0 and ev.subscriber.max() < 2_000


def test_rate_plan_is_open_loop_and_covers_the_run(small_stream) -> None:
    ids = small_stream.subscribers.index.to_numpy()
    shard_of = partition(small_stream.events.subscriber, 2, "range", ids=ids)
    p = plan(small_stream, shard_of, 2, rate=10_000, duration=7.0, window=0.05)
    # 70,000 events offered = 2 full passes over the 30,000-event pool and a third partial
    assert p.offered_events() == 70_000
    assert p.rate == 10_000 and p.duration == pytest.approx(7.0)
    for j in range(2):
        arr, cyc = p.arrival[j], p.cycle[j]
        assert np.all(np.diff(arr) > 0)
        assert set(np.unique(cyc)) == {0, 1, 2}
        # one pass: every event of the shard in exactly one batch
        b = p.bounds[j]
        assert b[0, 0] == 0 and b[-1, 1] == len(p.pools[j])
        assert np.array_equal(b[1:, 0], b[:-1, 1])
        # a batch holds arrivals of one 50 ms window only
        win = np.floor(p.samples[j] / 0.05 - 1e-9)
        spread = np.nanmax(win, axis=1) - np.nanmin(win, axis=1)
        assert spread.max() == 0
        # later passes are the same batches, later in wall time by a whole pass
        first = arr[cyc == 0]
        assert arr[cyc == 1][:5] == pytest.approx(first[:5] + 3.0)
        assert np.all(p.shift % 86_400 == 0) and p.shift > 0


def test_max_plan_uses_batch_size(small_stream) -> None:
    shard_of = np.zeros(len(small_stream.events), np.int64)
    p = plan(small_stream, shard_of, 1, rate=None, duration=1.0, max_batch=4_000)
    assert p.rate is None and len(p.arrival[0]) == 0
    assert (p.bounds[0][:, 1] - p.bounds[0][:, 0]).tolist() == [4_000] * 7 + [2_000]


@settings(max_examples=40)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 5)), min_size=1, max_size=30),
    st.sampled_from([0, 1, 25, 50, 90, 99, 100]),
)
def test_weighted_percentiles_match_numpy(pairs, q) -> None:
    values = np.array([v for v, _ in pairs], float)
    weights = np.array([w for _, w in pairs], float)
    expected = np.percentile(np.repeat(values, weights.astype(int)), q, method="inverted_cdf")
    assert weighted_percentiles(values, weights, (q,))[0] == expected


# ---------------------------------------------------------------------------
# the engine shard, inline


def _rows(d: Decisions) -> pd.DataFrame:
    return pd.DataFrame({c: getattr(d, c) for c in
                         ("subscriber", "rule", "kind", "time", "entered_at", "attempt")})


def test_shard_checkpoint_restore_replays_to_the_same_decisions(small_stream) -> None:
    ev, subs = small_stream.events, small_stream.subscribers
    cuts = np.linspace(0, len(ev), 7).astype(int)
    whole = EngineShard(RULES, subs, shard=3)
    replies = [whole.process(ev[a:b], seq=k, until=int(ev.time[b - 1]))
               for k, (a, b) in enumerate(itertools.pairwise(cuts))]
    assert sum(r.n_events for r in replies) == len(ev)
    got = Decisions.concat([r.decisions for r in replies])
    assert len(got) > 100
    assert sum(int(r.counts.sum()) for r in replies) == len(got)
    # same decisions as a single reference-engine pass
    ref = TriggerEngine(RULES, subscribers=subs, engine="reference").process(
        ev, until=int(ev.time[-1]))
    pd.testing.assert_frame_equal(_rows(got.sorted()), _rows(ref.sorted()))

    # checkpoint after batch 2, go on, then restore and replay batches 3.. again
    shard = EngineShard(RULES, subs, shard=3)
    for k in range(3):
        a, b = cuts[k], cuts[k + 1]
        shard.process(ev[a:b], seq=k, until=int(ev.time[b - 1]))
    ckpt = shard.checkpoint()
    assert ckpt.seq == 2 and ckpt.shard == 3
    restored = EngineShard.from_checkpoint(ckpt)
    later = [restored.process(ev[a:b], seq=k, until=int(ev.time[b - 1]))
             for k, (a, b) in enumerate(itertools.pairwise(cuts)) if k >= 3]
    for mine, orig in zip(later, replies[3:], strict=True):
        pd.testing.assert_frame_equal(_rows(mine.decisions), _rows(orig.decisions))
    assert restored.stats().equals(whole.stats())
    mem = restored.memory()
    assert mem["subscribers"] == len(subs)
    assert 150 * len(subs) < mem["state_bytes"] < 260 * len(subs)


def test_shard_time_offset_shifts_events(small_stream) -> None:
    ev, subs = small_stream.events[:5_000], small_stream.subscribers
    a = EngineShard(RULES, subs).process(ev, seq=0, until=int(ev.time[-1]) + 86_400,
                                         time_offset=86_400)
    shifted = EventBatch(ev.subscriber, ev.time + 86_400, ev.type, ev.columns)
    b = EngineShard(RULES, subs).process(shifted, seq=0, until=int(ev.time[-1]) + 86_400)
    pd.testing.assert_frame_equal(_rows(a.decisions), _rows(b.decisions))
    assert a.clock == int(ev.time[-1]) + 86_400


def test_checks_detect_lost_duplicated_and_changed_decisions(small_stream) -> None:
    ev, subs = small_stream.events, small_stream.subscribers
    engine = TriggerEngine(RULES, subscribers=subs)
    good = engine.process(ev, until=int(ev.time[-1]))
    stats = engine.stats()
    assert len(good) > 50
    assert duplicate_instances(good) == 0
    assert counter_mismatch_count(good, stats) == 0
    assert compare_decisions(good, good) == (0, 0)
    lost = good[np.arange(1, len(good))]
    assert compare_decisions(good, lost) == (1, 0)
    assert counter_mismatch_count(lost, stats) == 1
    doubled = Decisions.concat([good, good[np.array([0, 5])]])
    assert duplicate_instances(doubled) == 2
    assert compare_decisions(good, doubled) == (0, 2)
    assert counter_mismatch_count(doubled, stats) == 2
    moved = Decisions(good.subscriber, good.rule, good.kind, good.time + (good.kind == 0),
                      good.entered_at, good.attempt, good.rule_ids)
    n_fires = int((good.kind == 0).sum())
    assert compare_decisions(good, moved) == (n_fires, n_fires)


@pytest.mark.parametrize(
    ("seqs", "message"),
    [((1,), r"expected batch 0, got 1"), ((0, 0), r"expected batch 1, got 0"),
     ((0, 2), r"expected batch 1, got 2")],
)
def test_shard_rejects_out_of_sequence_batches(small_stream, seqs, message) -> None:
    shard = EngineShard(RULES, small_stream.subscribers, shard=1)
    batch = small_stream.events[:10]
    with pytest.raises(SequenceError, match=re.escape("shard 1 ") + message):
        for s in seqs:
            shard.process(batch, seq=s)


# ---------------------------------------------------------------------------
# end to end on Ray (the `triggerlab loadtest` command)


@pytest.mark.ray
def test_loadtest_end_to_end_with_a_killed_shard(ray_session, tmp_path, capsys) -> None:
    from experiments.cli import main

    out = tmp_path / "lt"
    status = main([
        # 2 s of load (was 4 s): the kill at 1 s still falls between checkpoints (every
        # 0.5 s) with a second of batches after it to replay
        "loadtest", "--rules", "reference", "--subscribers", "5000", "--rate", "20000",
        "--duration", "2s", "--shards", "2", "--source", "synthetic",
        "--kill-shard-at", "1s", "--checkpoint-every", "0.5s", "--out", str(out),
    ])
    text = capsys.readouterr().out
    report = json.loads((out / "loadtest.json").read_text())
    s, c, r = report["summary"], report["check"], report["recovery"]
    # 20k events/s with a shard killed is sustained on two quiet cores; with the suite's
    # other worker and other jobs on them it may drain late: then that verdict alone fails
    assert status == report["exit_status"] == (0 if s["sustained"] else 1), text
    assert report["passed"] is s["sustained"]
    assert ("PASS" if s["sustained"] else "FAIL") in text and "nothing lost" in text
    assert s["events_offered"] == s["events_processed"] == 40_000
    assert 0 < s["latency_p50_ms"] <= s["latency_p99_ms"] <= s["latency_max_ms"]
    assert s["decisions_fire"] > 0 and s["decisions_cancel"] > 0
    # whole stream checked against the reference engine; nothing lost or duplicated
    assert c["sample_fraction"] == 1.0 and c["sample_events"] == 40_000
    assert c["missing"] == c["extra"] == c["duplicate_trigger_ids"] == 0
    assert c["counter_mismatch"] == 0
    assert c["reference_decisions"] == c["loadtest_decisions_in_sample"] > 0
    # the kill: a checkpoint was used, batches were replayed, all identical
    assert r["shard"] == 0 and r["checkpoint_seq"] >= 0 and r["replayed_batches"] > 0
    assert r["replayed_events"] > 0 and r["replay_mismatches"] == 0 and r["nothing_lost"]
    assert 0 < r["restore_s"] <= r["recovery_s"] < 30
    per_second = pd.read_csv(out / "per_second.csv")
    assert per_second["offered"].sum() == per_second["processed"].sum() == 40_000
    assert per_second["backlog"].iloc[-1] == 0
    for png in ("throughput.png", "latency.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.ray
def test_loadtest_replay_and_failing_exit_status(ray_session, tmp_path, capsys) -> None:
    from experiments.cli import main

    stream = mix_stream(1_000, 8_000, parse_mix("product_view=0.6,add_to_cart=0.3,"
                                                "purchase_completed=0.1"), seed=5)
    log = tmp_path / "events.csv"
    stream.events.to_pandas().to_csv(log, index=False)
    span = int(stream.events.time[-1] - stream.events.time[0])
    speedup = span / 2.0  # the recorded log replays in about 2 s
    status = main(["loadtest", "--rules", "reference", "--replay", str(log),
                   "--speedup", str(speedup), "--partition", "hash",
                   "--out", str(tmp_path / "r")])
    text = capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "loadtest.json").read_text())
    # whether a 2-s replay drains within its grace depends on what else holds the cores
    # (the suite runs one worker per core): a miss must be that verdict and nothing else
    assert status == (0 if report["summary"]["sustained"] else 1), text
    assert report["summary"]["mode"] == "replay"
    assert report["summary"]["events_processed"] == 8_000
    assert report["check"]["passed"] and report["check"]["sample_events"] == 8_000
    # an impossible latency target makes the command fail (exit status 1)
    status = main(["loadtest", "--rules", "reference", "--subscribers", "2000", "--max",
                   "--duration", "1s", "--source", "synthetic", "--pool-events", "100k",
                   "--p99-target", "0.000001"])
    text = capsys.readouterr().out
    assert status == 1
    assert "FAIL (p99 over target)" in text and "check              PASSED" in text


# ---------------------------------------------------------------------------
# journeys


JOURNEYS = Path(__file__).parents[2] / "policies" / "triggers" / "example_journeys.yaml"


def _journey_stream():
    from experiments.loadtest import behavior_stream

    return behavior_stream(1_500, 40_000, seed=4)


def test_checks_count_journey_nodes_not_instances() -> None:
    stream = _journey_stream()
    rules = load_rules(JOURNEYS)
    engine = TriggerEngine(rules, subscribers=stream.subscribers)
    good = engine.process(stream.events, until=int(stream.events.time[-1]))
    stats = engine.stats()
    assert good.journeys and len(good) > 100
    # several rows per instance (one per node reached), none of them a duplicate
    assert len(np.unique(np.c_[good.rule, good.subscriber, good.entered_at], axis=0)) < len(good)
    assert duplicate_instances(good) == 0
    assert counter_mismatch_count(good, stats) == 0
    assert compare_decisions(good, good) == (0, 0)
    doubled = Decisions.concat([good, good[np.array([0, 3])]])
    assert duplicate_instances(doubled) == 2
    assert compare_decisions(good, doubled) == (0, 2)
    # a journey row that moved to another path or node is a changed decision
    journey_kind = good.kind >= len(KINDS)
    assert journey_kind.any()
    moved = Decisions(good.subscriber, good.rule, good.kind, good.time, good.entered_at,
                      good.attempt, good.rule_ids, good.step + journey_kind, good.path,
                      good.propensity, good.steps)
    n = int(journey_kind.sum())
    assert compare_decisions(good, moved) == (n, n)


@pytest.mark.ray
def test_loadtest_runs_journeys_and_checks_them(ray_session, tmp_path, capsys) -> None:
    from experiments.cli import main

    out = tmp_path / "lt"
    status = main(["loadtest", "--rules", str(JOURNEYS), "--subscribers", "3000", "--rate",
                   "20000", "--duration", "2s", "--shards", "2", "--out", str(out)])
    text = capsys.readouterr().out
    report = json.loads((out / "loadtest.json").read_text())
    s, c = report["summary"], report["check"]
    assert status == (0 if s["sustained"] else 1), text
    assert c["missing"] == c["extra"] == c["duplicate_trigger_ids"] == 0
    assert c["counter_mismatch"] == 0 and c["reference_decisions"] > 0
    assert s["decisions_fire"] > 0 and s["decisions_branch"] > 0
    assert "branch" in text and "split" in text
