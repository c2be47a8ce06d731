"""The Ray overhead benchmark measures something and prints its JSON line."""

from __future__ import annotations

import json

import pytest

from experiments.bench import ray_overhead

pytestmark = pytest.mark.ray


def test_stub_loop_costs_cpu_in_every_process(ray_session):
    m = ray_overhead.measure(ticks=60, shards=2, emails_per_tick=200, ticks_per_call=1, lag=2)
    assert m["wall_s"] > 0
    assert m["driver_cpu_s"] > 0 and m["shard_cpu_s"] > 0 and m["learner_cpu_s"] > 0
    assert m["overhead_cpu_s"] == pytest.approx(
        m["driver_cpu_s"] + 2 * m["shard_cpu_s"] + m["learner_cpu_s"], rel=0.05)


def test_main_prints_json_with_the_bound(ray_session, capsys):
    assert ray_overhead.main(["--ticks", "40", "--emails-per-tick", "100",
                              "--ticks-per-call", "2", "--lag", "4",
                              "--inline-wall-s", "48", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["ticks_per_call"] == 2 and figures["inline_wall_s"] == 48
    per_tick = figures["overhead_cpu_ms_per_tick"]
    assert per_tick == pytest.approx(1e3 * figures["overhead_cpu_s"] / 40)
    bound = 48 / ((48 + figures["overhead_cpu_s"]) / figures["cores"])
    assert figures["ratio_best_possible_vs_inline"] == pytest.approx(bound)


def test_lag_must_be_a_multiple_of_the_block(ray_session):
    with pytest.raises(SystemExit, match="multiple"):
        ray_overhead.measure(ticks=10, shards=1, emails_per_tick=10, ticks_per_call=3, lag=2)
