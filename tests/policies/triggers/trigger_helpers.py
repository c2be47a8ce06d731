"""Helpers for the trigger tests: tiny subscriber tables, event batches, engine runs."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from policies import EventBatch
from policies.triggers import Decisions, TriggerEngine

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


def run_chunks(
    engine: TriggerEngine,
    chunks: Sequence[tuple[EventBatch, int | None]],
    *,
    fail: Sequence[bool] = (),
    update: tuple[int, pd.DataFrame] | None = None,
    checkpoint_at: int | None = None,
) -> tuple[TriggerEngine, Decisions]:
    """Feed ``chunks`` of ``(events, until)``; optionally report failures of the last fire
    per (subscriber, rule) at a chunk's ``until`` (pattern ``fail`` over those fires),
    update subscribers before chunk ``update[0]``, and checkpoint/restore (through
    pickle) before chunk ``checkpoint_at``."""
    out = []
    k = 0
    for i, (batch, until) in enumerate(chunks):
        if update is not None and update[0] == i:
            engine.update_subscribers(update[1])
        if checkpoint_at == i:
            engine = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(engine.state_dict())))
        d = engine.process(batch, until=until)
        out.append(d)
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
                out.append(engine.report_failures(chosen, until))
    return engine, Decisions.concat(out, engine.ruleset.ids).sorted()


#: parametrize a test over both implementations
both_engines = pytest.mark.parametrize("engine_name", ["reference", "fast"])
