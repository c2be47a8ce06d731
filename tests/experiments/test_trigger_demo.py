"""``triggerlab trigger-demo`` (reference rules over a generated week) prints numbers
that agree with the engine's own counts and decisions."""

from __future__ import annotations

import re

import numpy as np

from experiments.cli import main
from experiments.commands.trigger_demo import COLUMNS, run_demo

ARGS = ["--subscribers", "1500", "--days", "4", "--seed", "3"]


def _table(text: str) -> dict[str, list[int]]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+((?:\d+\s+){7}\d+)$", line.strip())
        if m:
            rows[m.group(1)] = [int(v) for v in m.group(2).split()]
    return rows


def test_demo_prints_per_rule_counts_consistent_with_the_engine(capsys) -> None:
    assert main(["trigger-demo", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "1,500 subscribers" in out
    table = _table(out)
    result = run_demo(subscribers=1500, days=4, seed=3)
    stats = result.stats
    assert list(table) == [*stats.index, "total"]
    for rule in stats.index:
        assert table[rule] == stats.loc[rule, list(COLUMNS)].tolist()
        assert table[rule][COLUMNS.index("fired")] > 0
        assert table[rule][COLUMNS.index("entered")] > 0
    assert table["total"] == np.sum([table[r] for r in stats.index], axis=0).tolist()
    # the counts are the decisions the engine returned, kind by kind
    counts = result.decisions.counts()
    for kind, column in [("fire", "fired"), ("cancel", "cancelled"), ("expire", "expired"),
                         ("suppress", "suppressed")]:
        assert counts[kind].tolist() == stats[column].tolist()
    # every instance is accounted for: each entry or reported failure is closed by one
    # decision or still pending; each reported failure was either retried or cancelled
    assert stats["failed"].sum() == result.failures_reported
    assert stats["pending"].sum() == result.pending
    lhs = stats["entered"] + stats["failed"]
    assert lhs.tolist() == stats[["fired", "cancelled", "expired", "suppressed",
                                  "pending"]].sum(axis=1).tolist()
    assert 0 < stats["retried"].sum() <= stats["failed"].sum()
    assert f"{result.pending:,} triggers still pending" in out
    n = int(lhs.sum())
    assert (f"entered + failed = {n:,} = fired + cancelled + expired + suppressed + "
            f"pending = {n:,}") in out


def test_demo_is_deterministic_and_engines_agree() -> None:
    a = run_demo(subscribers=400, days=2, seed=11, engine="fast")
    b = run_demo(subscribers=400, days=2, seed=11, engine="reference")
    assert a.stats.equals(b.stats)
    assert a.decisions.sorted().equals(b.decisions.sorted())
    assert a.n_events > 2000 and len(a.decisions) > 30


def test_demo_rejects_bad_options(capsys) -> None:
    assert main(["trigger-demo", "--subscribers", "0"]) == 2
    assert "--subscribers and --days must be positive" in capsys.readouterr().err
