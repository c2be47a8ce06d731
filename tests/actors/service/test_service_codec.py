"""Wire formats: round trips (hypothesis), keyed splitting, and the table of malformed
messages with the dead letter each one gets."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.service.codec import (
    DeadLetter,
    decode_messages,
    encode_arrow,
    encode_json,
    encode_messages,
    encode_table,
    events_table,
    sniff,
)
from actors.service.partitioning import partition_of
from actors.service.transport import Message
from policies import EventBatch
from policies.event_schema import EVENT_TYPES, MAX_TIME, MIN_TIME
from service.service_helpers import make_events, rows_of

T0 = 1_700_000_000
_FLOAT_COLS = ("cart_value", "price", "time_on_page", "x_score")   # x_score: undeclared
_INT_COLS = ("category", "product_id", "link_type", "currency")


def _msg(payload: bytes, offset: int = 0, partition: int = 0) -> Message:
    return Message(partition, offset, offset + 1, payload)


@st.composite
def event_batches(draw, int_columns=_INT_COLS, undeclared_ints: bool = True) -> EventBatch:
    n = draw(st.integers(0, 25))
    ints64 = st.integers(-(2**63), 2**63 - 1)
    sub = draw(st.lists(ints64, min_size=n, max_size=n))
    time = draw(st.lists(st.integers(MIN_TIME, MAX_TIME - 1), min_size=n, max_size=n))
    typ = draw(st.lists(st.integers(0, len(EVENT_TYPES.names) - 1), min_size=n, max_size=n))
    cols: dict[str, np.ndarray] = {}
    for name in draw(st.lists(st.sampled_from(_FLOAT_COLS), unique=True, max_size=3)):
        vals = draw(st.lists(st.one_of(st.just(math.nan), st.floats(allow_nan=False,
                                                                     allow_infinity=False)),
                             min_size=n, max_size=n))
        cols[name] = np.array(vals, np.float64)
    names = list(int_columns) + (["x_code"] if undeclared_ints else [])
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=3)):
        vals = draw(st.lists(st.one_of(st.just(-1), st.integers(0, 2**63 - 1)),
                             min_size=n, max_size=n))
        cols[name] = np.array(vals, np.int64)
    return EventBatch(np.array(sub, np.int64), np.array(time, np.int64),
                      np.array(typ, np.int64), cols)


def _same(a: EventBatch, b: EventBatch) -> bool:
    return a.equals(b) and all(a.columns[c].dtype == b.columns[c].dtype for c in a.columns)


@given(event_batches())
def test_arrow_round_trip_is_identity(batch: EventBatch) -> None:
    out = decode_messages([_msg(encode_arrow(batch))], "arrow")
    assert out.dead_letters == []
    assert _same(out.events, batch)
    assert out.message_index.tolist() == [0] * len(batch)


@given(event_batches(undeclared_ints=False))
def test_json_round_trip_keeps_every_value(batch: EventBatch) -> None:
    """JSON leaves missing values out: a column missing in every row disappears; the
    rest comes back exactly (ints of any size, floats by their shortest repr)."""
    payloads = encode_json(batch)
    assert len(payloads) == len(batch)
    out = decode_messages([_msg(p, i) for i, p in enumerate(payloads)], "json")
    assert out.dead_letters == []
    kept = {name: col for name, col in batch.columns.items()
            if not np.all(np.isnan(col) if col.dtype.kind == "f" else col == -1)}
    expected = EventBatch(batch.subscriber, batch.time, batch.type, kept)
    assert _same(out.events, expected)
    assert out.message_index.tolist() == list(range(len(batch)))


def test_json_event_looks_like_a_tracker_event() -> None:
    batch = EventBatch.from_records([{"subscriber": 7, "time": T0, "type": "add_to_cart",
                                      "cart_value": 40.0, "link_type": "cart"}])
    assert json.loads(encode_json(batch)[0]) == {
        "subscriber": 7, "time": T0, "type": "add_to_cart", "cart_value": 40.0,
        "link_type": "cart"}


def test_arrow_decodes_tables_of_other_writers() -> None:
    """EventBatch.to_arrow (names and words as strings) and aware timestamps decode to
    the same batch as the wire schema."""
    batch = make_events(300, seed=3)
    from_to_arrow = decode_messages([_msg(encode_table(batch.to_arrow()))])
    assert from_to_arrow.dead_letters == [] and _same(from_to_arrow.events, batch)
    table = events_table(batch)
    stamps = pa.array(batch.time * 1000, pa.int64()).cast(pa.timestamp("ms", "Europe/Paris"))
    aware = table.set_column(1, "time", stamps)
    out = decode_messages([_msg(encode_table(aware))])
    assert out.dead_letters == [] and _same(out.events, batch)


def test_several_messages_keep_their_order_and_index() -> None:
    a, b = make_events(5, seed=1), make_events(3, seed=2)
    msgs = [_msg(encode_arrow(a), 10), *(_msg(p, 11 + i) for i, p in enumerate(encode_json(b))),
            _msg(b"junk", 14), _msg(encode_arrow(a), 15)]
    out = decode_messages(msgs)
    assert out.message_index.tolist() == [0] * 5 + [1, 2, 3] + [5] * 5
    assert rows_of(out.events) == rows_of(a) + rows_of(b) + rows_of(a)
    assert [(d.offset, d.row, d.field) for d in out.dead_letters] == [(14, None, "message")]


def test_encode_messages_keys_every_event_by_subscriber() -> None:
    batch = make_events(1200, seed=4, subscribers=10_000)
    cols = sorted(batch.columns)
    for fmt in ("arrow", "json"):
        msgs = encode_messages(batch, 7, fmt, max_bytes=4096)
        seen = []
        for m in msgs:
            events = decode_messages([_msg(m.payload)]).events
            assert set(partition_of(events.subscriber, 7).tolist()) == {m.partition}
            if fmt == "json":
                assert m.key == str(int(events.subscriber[0])).encode()
            else:
                assert len(m.payload) <= 4096
            seen.extend(rows_of(events, cols))
        # every event exactly once, in the original order within its partition
        part = partition_of(batch.subscriber, 7)
        expected = [r for p in range(7) for r, q in zip(rows_of(batch), part, strict=True)
                    if q == p]
        assert sorted(seen) == sorted(expected)
        by_part: dict[int, list] = {}
        for m in msgs:
            by_part.setdefault(m.partition, []).extend(
                rows_of(decode_messages([_msg(m.payload)]).events, cols))
        assert by_part == {p: [r for r, q in zip(rows_of(batch), part, strict=True) if q == p]
                           for p in range(7) if (part == p).any()}
    assert len(encode_messages(batch, 7, "arrow", max_bytes=4096)) > 14   # split


@pytest.mark.parametrize(("call", "message"), [
    (lambda: encode_messages(make_events(3), 4, "xml"), r"fmt: expected one of arrow, json"),
    (lambda: encode_messages(make_events(3), 0), r"partitions: expected an int >= 1"),
    (lambda: encode_messages(make_events(3), 4, max_bytes=10), r"max_bytes: expected"),
    (lambda: decode_messages([], "csv"), r"fmt: expected 'auto', 'arrow' or 'json'"),
    (lambda: decode_messages([], min_time=10, max_time=5), r"max_time: expected > min_time"),
])
def test_bad_arguments_raise(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------
# the table of malformed messages


def _arrow(**columns) -> bytes:
    return encode_table(pa.table(columns))


def _good_arrow(n: int = 3, **extra) -> dict:
    cols = {"subscriber": pa.array(range(1, n + 1), pa.int64()),
            "time": pa.array([T0 + i for i in range(n)], pa.int64()),
            "type": pa.array(["page_view"] * n)}
    cols.update(extra)
    return cols


def _j(**fields) -> bytes:
    return json.dumps(fields).encode()


_VALID = {"subscriber": 7, "time": T0, "type": "page_view"}
_PAYLOAD = encode_arrow(make_events(4))

#: (case, payload, fmt, [(row, field, reason regex)], good rows)
MALFORMED = [
    ("empty", b"", "auto", [(None, "message", r"not an Arrow IPC stream nor a JSON")], 0),
    ("text", b"<html>502 Bad Gateway</html>", "auto",
     [(None, "message", r"not an Arrow IPC stream nor a JSON object \(starts with b'<html>")],
     0),
    ("garbage after the arrow marker", b"\xff\xff\xff\xffgarbage", "arrow",
     [(None, "message", r"not an Arrow IPC stream: ")], 0),
    ("truncated arrow", _PAYLOAD[: len(_PAYLOAD) // 2], "arrow",
     [(None, "message", r"not an Arrow IPC stream: ")], 0),
    ("json sent as arrow", _j(**_VALID), "arrow",
     [(None, "message", r"not an Arrow IPC stream: ")], 0),
    ("arrow without time", _arrow(subscriber=pa.array([1]), type=pa.array(["page_view"])),
     "arrow", [(None, "message", r"wrong schema: missing column 'time'")], 0),
    ("arrow with duplicate columns", encode_table(pa.Table.from_arrays(
        [pa.array([1]), pa.array([T0]), pa.array(["page_view"]), pa.array([T0])],
        names=["subscriber", "time", "type", "time"])), "arrow",
     [(None, "message", r"wrong schema: duplicate column names")], 0),
    ("unknown event type", _arrow(**_good_arrow(type=pa.array(["page_view", "teleport",
                                                               "page_view"]))), "arrow",
     [(1, "type", r"unknown event type 'teleport'")], 2),
    ("type null", _arrow(**_good_arrow(type=pa.array(["page_view", None, "page_view"]))),
     "arrow", [(1, "type", r"missing")], 2),
    ("naive timestamps", _arrow(**_good_arrow(time=pa.array(
        [T0] * 3, pa.timestamp("s")))), "arrow",
     [(i, "time", r"expected a timezone-aware time, got naive") for i in range(3)], 0),
    ("time in milliseconds", _arrow(**_good_arrow(time=pa.array(
        [T0, T0 * 1000, T0], pa.int64()))), "arrow",
     [(1, "time", r"got 1700000000000 \(looks like milliseconds: 1700000000 s is "
                  r"2023-11-14T22:13:20Z\)")], 2),
    ("time before 2000", _arrow(**_good_arrow(time=pa.array([T0, 5, T0], pa.int64()))),
     "arrow", [(1, "time", r"expected seconds since the epoch in \[946684800, 4102444800\)")],
     2),
    ("time null", _arrow(**_good_arrow(time=pa.array([T0, None, T0], pa.int64()))), "arrow",
     [(1, "time", r"missing")], 2),
    ("time as fractional float", _arrow(**_good_arrow(time=pa.array([T0 + 0.5] * 3))),
     "arrow", [(i, "time", r"expected whole seconds since the epoch") for i in range(3)], 0),
    ("NaN or null in a quantity is missing", _arrow(**_good_arrow(
        cart_value=pa.array([1.0, math.nan, None], from_pandas=False))), "arrow", [], 3),
    ("-1 or null in a category is missing", _arrow(**_good_arrow(
        category=pa.array([-1, None, 4], pa.int64()))), "arrow", [], 3),
    ("NaN time", _arrow(**_good_arrow(time=pa.array([1.7e9, math.nan, 1.7e9],
                                                   from_pandas=False))), "arrow",
     [(1, "time", r"expected whole seconds since the epoch, got nan")], 2),
    ("NaN subscriber", _arrow(**_good_arrow(subscriber=pa.array([math.nan, 1.0, 2.0],
                                                               from_pandas=False))), "arrow",
     [(i, "subscriber", r"expected an integer id") for i in range(3)], 0),
    ("NaN quantity beside a bad row stays missing", _arrow(**_good_arrow(
        cart_value=pa.array([math.nan, 1.0, 2.0], from_pandas=False),
        type=pa.array(["page_view", "teleport", "page_view"]))), "arrow",
     [(1, "type", r"unknown event type 'teleport'")], 2),
    ("infinity in a quantity", _arrow(**_good_arrow(cart_value=pa.array([math.inf, 1.0, 2.0]))),
     "arrow", [(0, "cart_value", r"expected a finite number, got inf")], 2),
    ("negative category code", _arrow(**_good_arrow(category=pa.array([1, -3, 2], pa.int64()))),
     "arrow", [(1, "category", r"expected a code in \[0, 2\*\*63\), got -3")], 2),
    ("unknown category word", _arrow(**_good_arrow(link_type=pa.array(["cart", "banner",
                                                                       None]))), "arrow",
     [(1, "link_type", r"unknown category 'banner'")], 2),
    ("text in an undeclared column", _arrow(**_good_arrow(mood=pa.array(["sad", None, "ok"]))),
     "arrow", [(0, "mood", r"text in an undeclared column"),
               (2, "mood", r"text in an undeclared column")], 1),
    ("subscriber as float", _arrow(**_good_arrow(subscriber=pa.array([7.0, 8.0, 9.0]))),
     "arrow", [(i, "subscriber", r"expected an integer id") for i in range(3)], 0),
    ("subscriber beyond int64", _arrow(**_good_arrow(subscriber=pa.array(
        [1, 2**64 - 1, 3], pa.uint64()))), "arrow",
     [(1, "subscriber", r"expected an integer id in \[-2\*\*63, 2\*\*63\)")], 2),
    ("not JSON", b"{oops", "json", [(None, "message", r"not JSON: ")], 0),
    ("not UTF-8", b"{\xff\xfe}", "json", [(None, "message", r"not JSON: ")], 0),
    ("JSON array", b"[1, 2]", "json", [(None, "message", r"expected a JSON object, got list")],
     0),
    ("JSON missing subscriber", _j(time=T0, type="page_view"), "json",
     [(None, "subscriber", r"missing")], 0),
    ("JSON subscriber as text", _j(subscriber="7", time=T0, type="page_view"), "json",
     [(None, "subscriber", r"expected an integer id")], 0),
    ("JSON subscriber as bool", _j(subscriber=True, time=T0, type="page_view"), "json",
     [(None, "subscriber", r"expected an integer id")], 0),
    ("JSON naive time", _j(subscriber=7, time="2024-05-01T12:00:00", type="page_view"), "json",
     [(None, "time", r"expected a timezone-aware time, got naive '2024-05-01T12:00:00'")], 0),
    ("JSON time in ms", _j(subscriber=7, time=T0 * 1000, type="page_view"), "json",
     [(None, "time", r"looks like milliseconds")], 0),
    ("JSON NaN time", b'{"subscriber": 7, "time": NaN, "type": "page_view"}', "json",
     [(None, "time", r"expected whole seconds since the epoch, got nan")], 0),
    ("JSON NaN value", b'{"subscriber": 7, "time": 1700000000, "type": "page_view", '
                       b'"cart_value": NaN}', "json",
     [(None, "cart_value", r"got NaN")], 0),
    ("JSON Infinity value", b'{"subscriber": 7, "time": 1700000000, "type": "page_view", '
                            b'"cart_value": Infinity}', "json",
     [(None, "cart_value", r"expected a finite number")], 0),
    ("JSON unknown type", _j(subscriber=7, time=T0, type="teleport"), "json",
     [(None, "type", r"unknown event type 'teleport'")], 0),
    ("JSON year 2200", _j(subscriber=7, time="2200-01-01T00:00:00Z", type="page_view"), "json",
     [(None, "time", r"expected seconds since the epoch in")], 0),
    ("JSON ISO time with offset is fine", _j(subscriber=7, time="2023-11-14T23:13:20+01:00",
                                             type="page_view"), "json", [], 1),
]


@pytest.mark.parametrize(("payload", "fmt", "expected", "good"),
                         [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_messages_are_dead_lettered(payload: bytes, fmt: str, expected: list,
                                              good: int) -> None:
    neighbour = (encode_arrow(make_events(1)) if fmt == "arrow"
                 else b'{"subscriber": 1, "time": 1700000000, "type": "page_view"}')
    out = decode_messages([_msg(neighbour, 40), _msg(payload, 41, partition=3)], fmt)
    assert len(out.events) == good + 1          # the good neighbour message always passes
    assert len(out.dead_letters) == len(expected)
    for dl, (row, field, reason) in zip(out.dead_letters, expected, strict=True):
        assert (dl.partition, dl.offset, dl.row if fmt != "json" else None) == (3, 41, row)
        assert dl.field == field
        assert re.search(reason, dl.reason), dl.reason
        if row is None:
            assert dl.payload == payload                 # raw bytes kept
        else:
            assert isinstance(dl.payload, dict)          # the Arrow row's values kept
        assert json.loads(dl.to_json())["reason"] == dl.reason


def test_good_json_message_is_not_refused_for_a_neighbours_text() -> None:
    """from_records refuses a column in every record once one record has text in it
    (undeclared column); messages are independent, so only the one with text goes."""
    msgs = [_msg(_j(subscriber=1, time=T0, type="page_view", score="high"), 0),
            _msg(_j(subscriber=2, time=T0, type="page_view", score=3.5), 1),
            _msg(_j(subscriber=3, time=T0, type="page_view"), 2)]
    out = decode_messages(msgs)
    assert out.events.subscriber.tolist() == [2, 3]
    assert out.events.columns["score"].tolist()[0] == 3.5
    assert [(d.offset, d.field) for d in out.dead_letters] == [(0, "score")]


def test_live_time_bound_dead_letters_future_events() -> None:
    now = T0
    batch = EventBatch.from_records([{"subscriber": 1, "time": now - 5, "type": "page_view"},
                                     {"subscriber": 2, "time": now + 3600, "type": "page_view"}])
    for payloads in ([encode_arrow(batch)], encode_json(batch)):
        out = decode_messages([_msg(p, i) for i, p in enumerate(payloads)],
                              max_time=now + 300)
        assert out.events.subscriber.tolist() == [1]
        assert [d.field for d in out.dead_letters] == ["time"]
        assert "got 1700003600" in out.dead_letters[0].reason


def test_dead_letter_json_holds_raw_bytes_and_rows() -> None:
    raw = DeadLetter(2, 9, None, "message", "not JSON", b"\x00\xff")
    body = json.loads(raw.to_json())
    assert body["payload_base64"] == "AP8=" and body["row"] is None
    row = DeadLetter(2, 9, 4, "time", "late", {"time": datetime(2024, 1, 1, tzinfo=UTC)})
    assert json.loads(row.to_json())["record"] == {"time": "2024-01-01 00:00:00+00:00"}


@pytest.mark.parametrize(("payload", "kind"), [
    (encode_arrow(EventBatch.empty()), "arrow"), (b'  {"a": 1}', "json"), (b"[1]", None),
    (b"", None), (b"\xff\xff", None)])
def test_sniff(payload: bytes, kind) -> None:
    assert sniff(payload) == kind


def test_empty_batch_round_trips() -> None:
    out = decode_messages([_msg(encode_arrow(EventBatch.empty()))])
    assert len(out.events) == 0 and out.dead_letters == []
    assert decode_messages([]).events.equals(EventBatch.empty())
    assert len(encode_json(EventBatch.empty())) == 0


def test_rows_read_one_by_one_keep_undeclared_integer_columns_integer() -> None:
    """A table the whole-column path cannot read (type as integer codes) goes row by
    row; an undeclared integer column stays int64 with -1 missing, as in the fast path."""
    table = pa.table({"subscriber": pa.array([1, 2], pa.int64()),
                      "time": pa.array([T0, T0], pa.int64()),
                      "type": pa.array([EVENT_TYPES.code("page_view")] * 2, pa.int64()),
                      "x_code": pa.array([5, -1], pa.int64())})
    out = decode_messages([_msg(encode_table(table))])
    assert out.dead_letters == []
    assert out.events.columns["x_code"].dtype == np.int64
    assert out.events.columns["x_code"].tolist() == [5, -1]
    assert out.events.type_names() == ["page_view", "page_view"]
