"""The watermark benchmark accounts for every event and prints its JSON line."""

from __future__ import annotations

import json

from experiments.bench import watermark


def test_measure_accounts_for_every_event() -> None:
    m = watermark.measure(rate=100, grace=30, jitter=20, batch=200, batches=20)
    assert m["events"] == 4000 and m["late"] == 0            # jitter <= grace: none late
    assert m["released"] + m["held_at_end"] == m["events"]
    # the watermark trails the newest event by the grace: about rate x (grace + jitter)
    assert 0 < m["held_at_end"] <= 100 * (30 + 20 + 1)
    assert m["ms_per_poll"] > 0 and m["ns_per_event"] > 0


def test_main_prints_one_json_object_last(capsys) -> None:
    assert watermark.main(["--batch", "100", "--batches", "5", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) >= {"ms_per_poll", "ns_per_event", "held_at_end", "late"}
