"""Randomized differential tests: both engines, every way of cutting the stream, agree.

Hypothesis draws rule sets (within the schema, through ``load_rules``), subscriber
tables, event streams and cuts into ``process`` calls (with ``until`` between events).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from trigger_helpers import HOUR, T0, Ledger, run_chunks

from policies import EventBatch
from policies.triggers import TriggerEngine, load_rules

# tiny random tables often leave a rule's segment empty: that is what the warning says,
# and both engines must agree on it (diagnostics compared below), not noise here
pytestmark = pytest.mark.filterwarnings("ignore::policies.errors.RuleWarning")

TYPES = ["product_view", "add_to_cart", "email_click", "purchase_completed", "cart_cleared"]
IDS = [0, 5, 7]  # not dense; 99 in the stream is unknown


@st.composite
def rule_sets(draw: Any) -> dict[str, Any]:
    rules = []
    for i in range(draw(st.integers(1, 3))):
        conds = []
        for _ in range(draw(st.integers(1, 2))):
            cond: dict[str, Any] = {
                "event": draw(st.sampled_from(TYPES[:3])),
                "within": f"{draw(st.integers(1, 90))}m",
                "count": draw(st.sampled_from([1, 1, 2, 3])),
            }
            where = draw(st.sampled_from(["", "cart", "link", "link_in"]))
            if where == "cart":
                cond["where"] = {"cart_value": {"min": draw(st.sampled_from([10, 25, 50]))}}
            elif where == "link":
                cond["where"] = {"link_type": "product"}
            elif where == "link_in":
                cond["where"] = {"link_type": {"in": ["product", "content"]}}
            conds.append(cond)
        when_types = {c["event"] for c in conds}
        others = [t for t in TYPES if t not in when_types]
        delay = draw(st.integers(0, 90)) * 60
        rule: dict[str, Any] = {
            "id": f"r{i}",
            "type": draw(st.sampled_from(["cart_abandonment", "browse_abandonment"])),
            "when": conds,
            "exclude": draw(st.lists(st.sampled_from(others), unique=True, max_size=2)),
            "delay": f"{delay}s",
            "expire": f"{delay + draw(st.sampled_from([0, 0, 10, 60, 300])) * 60}s",
            "priority": draw(st.integers(0, 2)),
            "reentry": draw(st.sampled_from(["always", "once", {"cooldown": "40m"}])),
        }
        segment = draw(st.sampled_from(["", "", "stage", "score", "both"]))
        if segment in ("stage", "both"):
            rule["segment"] = {"stage": {"in": ["a", "b"]}}
        if segment in ("score", "both"):
            rule["segment"] = {**rule.get("segment", {}), "score": {"min": 0.4}}
        rules.append(rule)
    settings: dict[str, Any] = {
        "retry": {"max_attempts": draw(st.integers(1, 3)), "backoff": "10m"}
    }
    if draw(st.booleans()):
        settings["frequency_cap"] = {
            "max": draw(st.sampled_from([1, 1, 2])),
            "per": draw(st.sampled_from(["20m", "2h", "1d"])),
        }
    if draw(st.booleans()):
        start = draw(st.integers(0, 23))
        settings["quiet_hours"] = {
            "start": f"{start:02d}:00", "end": f"{(start + draw(st.integers(1, 3))) % 24:02d}:30"
        }
    return {"rules": rules, "settings": settings}


@st.composite
def tables(draw: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": [draw(st.sampled_from(["a", "b", "b", "c"])) for _ in IDS],
            "score": [draw(st.sampled_from([0.1, 0.5, 0.9, 0.9, float("nan")])) for _ in IDS],
            "utc_offset_minutes": [draw(st.sampled_from([-90, 0, 60])) for _ in IDS],
        },
        index=pd.Index(IDS, name="subscriber"),
    )


@st.composite
def streams(draw: Any) -> EventBatch:
    """A dense stream: its size and seed come from hypothesis, the rows from numpy (so
    that examples are busy enough to fire, cancel, expire and suppress)."""
    n = draw(st.integers(1, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    gaps = rng.choice([0, 30, 60, 120, 300, 600, 1800, 3 * 3600], n,
                      p=[0.2, 0.15, 0.15, 0.15, 0.1, 0.1, 0.1, 0.05])
    gaps[0] = draw(st.integers(0, 23)) * HOUR
    types = [*TYPES[:3], *TYPES, "page_view"]
    return EventBatch.from_records(
        [
            {
                "subscriber": int(rng.choice([*IDS, 99], p=[0.3, 0.3, 0.3, 0.1])),
                "time": int(T0 + t),
                "type": types[rng.integers(len(types))],
                "cart_value": [None, 5.0, 30.0, 60.0][rng.integers(4)],
                "link_type": [None, "product", "product", "content"][rng.integers(4)],
            }
            for t in np.cumsum(gaps)
        ]
    )


@st.composite
def cuts(draw: Any, batch: EventBatch) -> list[tuple[EventBatch, int | None]]:
    """Split ``batch`` into chunks, each with an ``until`` at or after its last event
    and not after the next chunk's first event (or None)."""
    n = len(batch)
    points = sorted(set(draw(st.lists(st.integers(0, n), max_size=5))))
    bounds = [0, *points, n]
    chunks = []
    clock = T0
    for i in range(len(bounds) - 1):
        part = batch[bounds[i] : bounds[i + 1]]
        lo = max(clock, int(part.time[-1])) if len(part) else clock
        hi = int(batch.time[bounds[i + 1]]) if bounds[i + 1] < n else lo + 2 * HOUR
        until = draw(st.one_of(st.none(), st.integers(lo, max(lo, hi))))
        clock = lo if until is None else until
        chunks.append((part, until))
    last = int(batch.time[-1]) if n else T0
    chunks.append((EventBatch.empty(), max(last, clock) + 3 * 86400))
    return chunks


def _run(spec: dict, subs: pd.DataFrame, engine: str, chunks: list, on_late: str = "raise",
         **kw: Any):
    e = TriggerEngine(load_rules(spec), subscribers=subs, engine=engine, on_late=on_late)
    return run_chunks(e, chunks, **kw)


@st.composite
def late_events(draw: Any, n_chunks: int) -> dict[int, list[tuple[int, int, str]]]:
    """Per chunk, events from 1 s to 3 h before the engine clock: any type (page_view and
    cart_cleared appear in no rule unless drawn as exclusions), known or unknown
    subscribers."""
    return {
        i: draw(st.lists(st.tuples(st.sampled_from([*IDS, 99]), st.integers(1, 3 * HOUR),
                                   st.sampled_from([*TYPES, "page_view"])), max_size=4))
        for i in range(n_chunks)
    }


@given(spec=rule_sets(), subs=tables(), batch=streams(), data=st.data())
def test_engines_and_cuts_agree(spec, subs, batch, data) -> None:
    whole = [(batch, None), (EventBatch.empty(), (int(batch.time[-1]) if len(batch) else T0)
                                  + 3 * 86400)]
    ref_engine, expected = _run(spec, subs, "reference", whole)
    fast_engine, fast_whole = _run(spec, subs, "fast", whole)
    assert fast_whole.equals(expected)
    assert fast_engine.stats().equals(ref_engine.stats())
    chunks = data.draw(cuts(batch))
    for name in ("reference", "fast"):
        engine, got = _run(spec, subs, name, chunks)
        assert got.equals(expected), name
        assert engine.stats().equals(ref_engine.stats())


@given(spec=rule_sets(), subs=tables(), batch=streams(), data=st.data())
def test_engines_agree_with_failures_updates_and_checkpoints(spec, subs, batch, data) -> None:
    chunks = data.draw(cuts(batch))
    fail = data.draw(st.lists(st.booleans(), min_size=1, max_size=4))
    new = subs.sample(frac=0.5, random_state=1).copy()
    new["stage"] = new["stage"].map({"a": "c", "b": "a", "c": "b"})
    update = (data.draw(st.integers(0, len(chunks) - 1)), new)
    checkpoint_at = data.draw(st.integers(0, len(chunks) - 1))
    ref, expected = _run(spec, subs, "reference", chunks, fail=fail, update=update)
    for name in ("reference", "fast"):
        engine, got = _run(spec, subs, name, chunks, fail=fail, update=update,
                           checkpoint_at=checkpoint_at)
        assert got.equals(expected), name
        assert engine.stats().equals(ref.stats()), name
        # segment diagnostics: same in both engines, through updates and checkpoints
        assert engine.diagnostics().equals(ref.diagnostics()), name


@given(spec=rule_sets(), subs=tables(), batch=streams(), data=st.data())
def test_counters_agree_and_add_up_with_late_events_failures_and_checkpoints(
    spec, subs, batch, data
) -> None:
    """Contract point 8 on both engines: late events dropped and counted once, failures,
    a checkpoint at a random point; the counters are audited against the decisions after
    every call (``run_chunks``) and once more when nothing is pending."""
    chunks = data.draw(cuts(batch))
    fail = data.draw(st.lists(st.booleans(), min_size=1, max_size=4))
    late = data.draw(late_events(len(chunks)))
    checkpoint_at = data.draw(st.integers(0, len(chunks) - 1))
    ref, expected = _run(spec, subs, "reference", chunks, fail=fail)
    results = []
    for name in ("reference", "fast"):
        ledger = Ledger()
        engine, got = _run(spec, subs, name, chunks, on_late="drop", fail=fail, late=late,
                           checkpoint_at=checkpoint_at, ledger=ledger)
        assert got.equals(expected), name  # dropped late events change no decision
        stats = engine.stats()
        assert stats.drop(columns="late").equals(ref.stats().drop(columns="late"))
        # the retries of the last failures are still pending; decide them
        last = engine.process(EventBatch.empty(), until=int(engine.clock or T0) + 2 * 86400)
        ledger.decided.append(last)
        assert engine.n_pending() == 0
        ledger.check(engine)
        results.append((engine.stats(), engine.n_late()))
    assert results[0][0].equals(results[1][0]) and results[0][1] == results[1][1]


def test_the_generators_exercise_every_kind() -> None:
    """The differential tests are only as good as their inputs: on a fixed larger draw,
    every decision kind and a retry occur (and both engines still agree)."""
    from experiments.synthetic import generate_events, generate_subscribers
    from policies.triggers import default_rules

    rng = np.random.default_rng(7)
    subs = generate_subscribers(1500, rng)
    stream = generate_events(subs, rng, days=6)
    edges = np.linspace(0, len(stream), 9).astype(int)
    chunks = [(stream[a:b], int(stream.time[b - 1])) for a, b in itertools.pairwise(edges)]
    chunks.append((EventBatch.empty(), int(stream.time[-1]) + 4 * 86400))
    results = {}
    for name in ("reference", "fast"):
        e = TriggerEngine(default_rules(), subscribers=subs, engine=name)
        results[name] = run_chunks(e, chunks, fail=[True, False, False])
    (ref, d_ref), (fast, d_fast) = results["reference"], results["fast"]
    assert d_fast.equals(d_ref)
    stats = ref.stats()
    assert stats.equals(fast.stats())
    assert (stats[["entered", "fired", "cancelled", "expired", "retried"]].sum() > 0).all()
    assert stats["suppressed"].sum() > 0
    assert (d_ref.attempt > 1).any()


def _random_spec(rng: np.random.Generator) -> dict[str, Any]:
    """A rule set like ``rule_sets`` draws, from numpy (busier than hypothesis' draws)."""
    rules = []
    for i in range(int(rng.integers(1, 4))):
        conds = []
        for _ in range(int(rng.integers(1, 3))):
            cond: dict[str, Any] = {
                "event": TYPES[rng.integers(3)],
                "within": f"{rng.integers(5, 120)}m",
                "count": int(rng.choice([1, 1, 2, 3])),
            }
            if rng.random() < 0.3:
                cond["where"] = {"cart_value": {"min": int(rng.choice([10, 25]))}}
            elif rng.random() < 0.3:
                cond["where"] = {"link_type": {"in": ["product", "content"]}}
            conds.append(cond)
        others = [t for t in TYPES if t not in {c["event"] for c in conds}]
        delay = int(rng.integers(0, 120)) * 60
        rules.append({
            "id": f"r{i}",
            "type": "cart_abandonment",
            "when": conds,
            "exclude": list(rng.choice(others, int(rng.integers(0, 3)), replace=False)),
            "delay": f"{delay}s",
            "expire": f"{delay + int(rng.choice([0, 30, 120, 600])) * 60}s",
            "priority": int(rng.integers(0, 3)),
            "reentry": ["always", "once", {"cooldown": "40m"}][rng.integers(3)],
            "segment": {"score": {"min": 0.4}} if rng.random() < 0.3 else {},
        })
    settings: dict[str, Any] = {"retry": {"max_attempts": int(rng.integers(1, 4)),
                                          "backoff": "10m"}}
    if rng.random() < 0.6:
        settings["frequency_cap"] = {"max": int(rng.choice([1, 1, 2])),
                                     "per": str(rng.choice(["20m", "2h", "1d"]))}
    if rng.random() < 0.6:
        start = int(rng.integers(24))
        settings["quiet_hours"] = {"start": f"{start:02d}:00",
                                   "end": f"{(start + int(rng.integers(2, 9))) % 24:02d}:30"}
    return {"rules": rules, "settings": settings}


def test_seeded_fuzz_engines_and_cuts_agree_on_busy_cases() -> None:
    """Hypothesis favours small examples; this seeded sweep adds 150 busy ones, checks
    both engines and a random cut (with failures, late events and a checkpoint) agree,
    counters included, and that every kind, retries, failures given up and late events
    occurred."""
    rng = np.random.default_rng(20261128)
    seen = np.zeros(4, np.int64)
    retried = given_up = n_late = late_rows = 0
    for _ in range(150):
        spec = _random_spec(rng)
        subs = pd.DataFrame(
            {"score": rng.choice([0.1, 0.9, np.nan], len(IDS)),
             "utc_offset_minutes": rng.choice([-90, 0, 60], len(IDS))},
            index=pd.Index(IDS, name="subscriber"),
        )
        n = int(rng.integers(20, 120))
        t = T0 + np.cumsum(rng.choice([0, 30, 60, 300, 900, 3600, 4 * 3600], n))
        types = [*TYPES[:3], *TYPES, "page_view"]
        batch = EventBatch.from_records([
            {"subscriber": int(rng.choice([*IDS, 99])), "time": int(ti),
             "type": types[rng.integers(len(types))],
             "cart_value": [None, 5.0, 30.0][rng.integers(3)],
             "link_type": [None, "product", "content"][rng.integers(3)]}
            for ti in t
        ])
        end = int(t[-1]) + 3 * 86400
        _ref, expected = _run(spec, subs, "reference", [(batch, None), (batch[:0], end)])
        _, fast = _run(spec, subs, "fast", [(batch, None), (batch[:0], end)])
        assert fast.equals(expected), spec
        cut = sorted(rng.choice(n, 3, replace=False).tolist())
        bounds = [0, *cut, n]
        chunks = [(batch[a:b], int(batch.time[b - 1]) if b > a else None)
                  for a, b in itertools.pairwise(bounds)]
        chunks.append((batch[:0], end))
        late = {i: [(int(rng.choice([*IDS, 99])), int(rng.integers(1, 4 * 3600)),
                     str(rng.choice(types))) for _ in range(int(rng.integers(0, 3)))]
                for i in range(len(chunks))}
        kw: dict[str, Any] = {"fail": [True, False], "late": late, "on_late": "drop",
                              "checkpoint_at": int(rng.integers(len(chunks)))}
        ref_f, got_ref = _run(spec, subs, "reference", chunks, **kw)
        fast_f, got_fast = _run(spec, subs, "fast", chunks, **kw)
        assert got_fast.equals(got_ref), spec
        assert fast_f.stats().equals(ref_f.stats())
        assert fast_f.n_late() == ref_f.n_late()
        _, got_plain = _run(spec, subs, "fast", chunks)
        assert got_plain.equals(expected), spec
        seen += np.bincount(expected.kind, minlength=4)
        stats = ref_f.stats()
        retried += int(stats["retried"].sum())
        given_up += int((stats["failed"] - stats["retried"]).sum())
        n_late += ref_f.n_late()
        late_rows += int(stats["late"].sum())
    assert (seen > 20).all(), seen
    assert retried > 20 and given_up > 20
    assert n_late > 100 and late_rows > 100
