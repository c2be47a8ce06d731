"""The service benchmark runs end to end on a small stream (a real nats-server)."""

from __future__ import annotations

import json

import pytest

from experiments.bench import service


def test_service_bench_small(capsys) -> None:
    from actors.service.brokers import find_nats_server

    if find_nats_server() is None:
        pytest.skip("nats-server not found")
    assert service.main(["--subscribers", "300", "--events", "6000", "--shards", "2",
                         "--executor", "inline", "--json-events", "300",
                         "--batch", "500", "--latency-duration", "0", "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["events"] == 6000 and m["json_events"] == 300
    assert m["arrow_events_per_s"] > 0 and m["json_events_per_s"] > 0
    assert m["arrow_decisions"] > 0 and m["arrow_dead_letters"] == 0
    assert m["json_dead_letters"] == 0
    assert m["checkpoint_bytes_per_subscriber"] > 0 and m["shard_restore_s"] > 0
    # the latency run (a serve process loaded by experiments.loadtest.target, which
    # tests/actors/service/test_service_loadtest.py runs through the docs' recipe) is
    # skipped at --latency-duration 0
    assert not any(k.startswith("live_") for k in m)
