"""Failure reports of journey sends (contract point 5 with journeys' point 4): every id
is checked before anything due by ``now`` is decided, and a send that a newer send of
its journey supersedes in between is cancelled; the counters follow."""

from __future__ import annotations

import pytest

from policies.triggers import TriggerIdError
from tests.policies.triggers.test_journey_reference import ADD, HOUR, NOON, at, cart, run, table

SERIES = cart([{"send": "a"}, {"wait": "1h"}, {"send": "b"}, {"wait": "1h"}, {"send": "c"}])


@pytest.mark.parametrize(("actions", "expected", "failed", "retried"), [
    pytest.param(  # reported before b is due: retried (backoff 30 min) as the journey goes on
        [("ev", [(1, NOON, ADD)], NOON), ("fail", 0, NOON + HOUR // 2)],
        [("fire", 1, at(0), "steps[0]", "", 1), ("fire", 1, at(1), "steps[0]", "", 2),
         ("fire", 1, at(1), "steps[2]", "", 1), ("fire", 1, at(2), "steps[4]", "", 1)],
        1, 1, id="retried"),
    pytest.param(  # reported after b went out: a is no longer the latest send -> cancel
        [("ev", [(1, NOON, ADD)], NOON), ("fail", 0, NOON + 3 * HOUR // 2)],
        [("fire", 1, at(0), "steps[0]", "", 1), ("fire", 1, at(1), "steps[2]", "", 1),
         ("cancel", 1, at(1.5), "steps[0]", "", 1), ("fire", 1, at(2), "steps[4]", "", 1)],
        1, 0, id="superseded while the report's sweep ran"),
])
def test_failure_of_a_journey_send(actions: list[tuple], expected: list[tuple], failed: int,
                                   retried: int) -> None:
    engine, decisions = run(SERIES, [*actions, ("ev", [], NOON + 5 * HOUR)])
    assert table(decisions) == expected
    stats = engine.stats().loc["j"]
    assert (stats["failed"], stats["retried"], stats["pending"]) == (failed, retried, 0)


def test_a_bad_failure_report_changes_nothing() -> None:
    engine, _ = run(SERIES, [("ev", [(1, NOON, ADD)], NOON)])
    before = engine.state_dict()
    with pytest.raises(TriggerIdError, match="not the latest send"):
        engine.report_failures([f"j:1:{NOON}:2"], NOON + 3 * HOUR)  # b is not sent yet
    assert engine.clock == NOON == before["clock"]
    assert engine.n_pending() == 1
