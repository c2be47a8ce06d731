"""Helpers for the trigger tests: tiny subscriber tables, event batches, engine runs."""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from policies import EventBatch
from policies.triggers import KINDS, STAT_NAMES, Decisions, TriggerEngine

#: 2026-01-05 00:00 UTC (a Monday).
T0 = 1_767_571_200
HOUR = 3600
DAY = 86400


def subscribers(rows: dict[int, dict[str, Any]]) -> pd.DataFrame:
    """A subscriber table from ``{id: {attribute: value}}`` (missing utc offset -> 0)."""
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.Index(np.array(list(rows), np.int64), name="subscriber")
    if "utc_offset_minutes" not in df.columns:
        df["utc_offset_minutes"] = 0
    return df


def events(*records: tuple) -> EventBatch:
    """Events from ``(subscriber, time, type, {data})`` tuples (data optional)."""
    recs = []
    for rec in records:
        sub, t, etype, *rest = rec
        recs.append({"subscriber": sub, "time": t, "type": etype, **(rest[0] if rest else {})})
    return EventBatch.from_records(recs) if recs else EventBatch.empty()


def rows(decisions: Decisions) -> list[tuple]:
    """Decisions as ``(kind, rule, subscriber, time, entered_at, attempt)`` tuples."""
    df = decisions.to_pandas()
    return list(
        zip(df["kind"], df["rule"], df["subscriber"], df["time"], df["entered_at"],
            df["attempt"], strict=True)
    )


class Ledger:
    """What an engine returned (and was told) so far, to audit its counters against
    (contract point 8) at any moment: :meth:`check`."""

    def __init__(self) -> None:
        self.decided: list[Decisions] = []   # returned by process (and report_failures' due part)
        self.failure: list[Decisions] = []   # cancellations returned for reported failures
        self.reported: list[str] = []        # trigger ids reported failed (each send once)
        self.late_types: list[str] = []      # types of the late events handed over

    def check(self, engine: TriggerEngine) -> None:
        stats = engine.stats()
        rules = engine.ruleset
        ids = list(rules.ids)
        assert list(stats.index) == ids and list(stats.columns) == list(STAT_NAMES)
        assert (stats.dtypes == np.int64).all() and (stats.to_numpy() >= 0).all()
        decided = Decisions.concat(self.decided, ids)
        failure = Decisions.concat(self.failure, ids)
        assert (failure.kind == KINDS.index("cancel")).all()
        # fired .. suppressed: the decisions of each kind returned so far
        counts = Decisions.concat([decided, failure], ids).counts()
        for kind, column in (("fire", "fired"), ("cancel", "cancelled"),
                             ("expire", "expired"), ("suppress", "suppressed")):
            assert stats[column].tolist() == counts[kind].tolist(), column
        # failed: the failures reported; retried: those not cancelled at once
        failed = np.zeros(len(ids), np.int64)
        for tid in self.reported:
            failed[ids.index(tid.rsplit(":", 2)[0])] += 1
        assert stats["failed"].tolist() == failed.tolist()
        n_cancels = np.bincount(failure.rule, minlength=len(ids))
        assert stats["retried"].tolist() == (failed - n_cancels).tolist()
        assert stats["pending"].sum() == engine.n_pending()
        # the identity, and what it implies
        lhs = stats["entered"] + stats["failed"]
        rhs = stats[["fired", "cancelled", "expired", "suppressed", "pending"]].sum(axis=1)
        assert lhs.tolist() == rhs.tolist()
        assert (stats["retried"] <= stats["failed"]).all()
        assert (stats["failed"] <= stats["fired"]).all()
        # entries: each instance's first decision (not a failure's cancellation) has
        # attempt 1; every later one belongs to a retry
        first = np.bincount(decided.rule[decided.attempt == 1], minlength=len(ids))
        later = np.bincount(decided.rule[decided.attempt > 1], minlength=len(ids))
        pending = stats["pending"].to_numpy()
        assert ((stats["entered"].to_numpy() - first) >= 0).all()
        assert ((stats["entered"].to_numpy() - first)
                + (stats["retried"].to_numpy() - later) == pending).all()
        if engine.n_pending() == 0:
            assert stats["entered"].tolist() == first.tolist()
            assert stats["retried"].tolist() == later.tolist()
        # late: every dropped event once in total, per rule those of a type it mentions
        assert engine.n_late() == len(self.late_types)
        for rule in rules.rules:
            mentioned = {c.event for c in rule.when} | set(rule.exclude)
            assert stats.loc[rule.id, "late"] == sum(t in mentioned for t in self.late_types)


def run_chunks(
    engine: TriggerEngine,
    chunks: Sequence[tuple[EventBatch, int | None]],
    *,
    fail: Sequence[bool] = (),
    update: tuple[int, pd.DataFrame] | None = None,
    checkpoint_at: int | None = None,
    late: Mapping[int, Sequence[tuple[int, int, str]]] | None = None,
    ledger: Ledger | None = None,
) -> tuple[TriggerEngine, Decisions]:
    """Feed ``chunks`` of ``(events, until)``; optionally report failures of the last fire
    per (subscriber, rule) at a chunk's ``until`` (pattern ``fail`` over those fires),
    update subscribers before chunk ``update[0]``, checkpoint/restore (through pickle)
    before chunk ``checkpoint_at``, and add ``late[i]``, ``(subscriber, seconds before
    the engine clock, type)``, to chunk ``i`` (for ``on_late="drop"`` engines; none
    before the clock is set). The counters are audited (:class:`Ledger`) after each call."""
    out = []
    k = 0
    ledger = Ledger() if ledger is None else ledger
    for i, (batch, until) in enumerate(chunks):
        if update is not None and update[0] == i:
            engine.update_subscribers(update[1])
        if checkpoint_at == i:
            engine = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(engine.state_dict())))
            ledger.check(engine)
        clock = engine.clock
        if late and late.get(i) and clock is not None:
            recs = [(sub, clock - ago, etype) for sub, ago, etype in late[i]]
            batch = EventBatch.concat([batch, events(*recs)])
            ledger.late_types += [etype for _, _, etype in late[i]]
        d = engine.process(batch, until=until)
        out.append(d)
        ledger.decided.append(d)
        ledger.check(engine)
        if fail and until is not None:
            fires = d.to_pandas()
            fires = fires[fires["kind"] == "fire"]
            fires = fires.drop_duplicates(["subscriber", "rule"], keep="last")
            chosen = []
            for tid in fires["trigger_id"]:
                if fail[k % len(fail)]:
                    chosen.append(tid)
                k += 1
            if chosen:
                cancels = engine.report_failures(chosen, until)
                out.append(cancels)
                ledger.failure.append(cancels)
                ledger.reported += chosen
                ledger.check(engine)
    return engine, Decisions.concat(out, engine.ruleset.ids).sorted()


#: parametrize a test over both implementations
both_engines = pytest.mark.parametrize("engine_name", ["reference", "fast"])
