"""The codec benchmark measures both wire formats and prints its JSON line."""

from __future__ import annotations

import json

from experiments.bench import codec


def test_measure_reports_both_formats() -> None:
    m = codec.measure(events=6000, batch=300, json_events=500, partitions=4, repeat=1)
    assert m["events"] > 0 and m["arrow_messages"] >= 4
    assert m["arrow_events_per_message"] == m["events"] / m["arrow_messages"]
    for key in ("arrow_encode_ns_per_event", "arrow_decode_ns_per_event",
                "json_encode_ns_per_event", "json_decode_ns_per_event"):
        assert m[key] > 0
    # a batch per message is far cheaper than one JSON event per message
    assert m["arrow_decode_ns_per_event"] * 5 < m["json_decode_ns_per_event"]
    assert 20 < m["arrow_bytes_per_event"] < m["json_bytes_per_event"] * 2
    assert m["json_events"] == 500


def test_main_prints_one_json_object_last(capsys) -> None:
    assert codec.main(["--events", "3000", "--batch", "200", "--json-events", "200",
                       "--repeat", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) >= {"arrow_decode_ns_per_event", "json_decode_ns_per_event",
                            "arrow_bytes_per_event", "json_bytes_per_event"}
    assert all(k == k.lower() for k in figures)
