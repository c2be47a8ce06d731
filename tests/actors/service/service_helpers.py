"""Event batches for the transport tests."""

from __future__ import annotations

import numpy as np

from policies import EventBatch
from policies.event_schema import EVENT_TYPES


def make_events(n: int, seed: int = 0, subscribers: int = 500) -> EventBatch:
    """``n`` valid events with a float, a categorical and a word-valued column."""
    rng = np.random.default_rng(seed)
    cart = np.where(rng.random(n) < 0.5, np.nan, np.round(rng.random(n) * 100, 2))
    return EventBatch(
        rng.integers(0, subscribers, n),
        np.sort(rng.integers(1_700_000_000, 1_700_086_400, n)),
        rng.integers(0, len(EVENT_TYPES.names), n),
        {"cart_value": cart, "category": rng.integers(-1, 30, n),
         "link_type": rng.integers(-1, 6, n)},
    )


def rows_of(batch: EventBatch, columns: list[str] | None = None) -> list[tuple]:
    """Rows as comparable tuples over ``columns`` (default: the batch's; a column the
    batch lacks reads as missing; NaN as None)."""
    cols = sorted(batch.columns) if columns is None else columns
    arrays = [batch.column(c) for c in cols]
    out = []
    for i in range(len(batch)):
        vals = []
        for arr in arrays:
            v = arr[i].item()
            vals.append(None if isinstance(v, float) and v != v else v)
        out.append((int(batch.subscriber[i]), int(batch.time[i]), int(batch.type[i]), *vals))
    return out


RULE_ARMS = ["plain", "question", "dont_miss"]


def trigger_stream(n_subscribers: int = 400, n_events: int = 20_000, seed: int = 3):
    """A synthetic stream (sessions, carts, purchases, email engagement) that makes every
    kind of decision with the default rules: ``(events, subscriber table)``."""
    from experiments.loadtest.generator import behavior_stream

    s = behavior_stream(n_subscribers, n_events, seed=seed, source="synthetic")
    return s.events, s.subscribers


def reference_decisions(events: EventBatch, table, *, end: int, policy=None, seed: int = 0,
                        tick: int = 900):
    """What the simulator's runtime does with the engine (one engine over the whole
    table, events in time order a tick at a time, ``until`` each tick's end, up to
    ``end``), and each fire's arm drawn by ``policy`` keyed by (seed, trigger id):
    a frame sorted like the decision log."""
    import pandas as pd

    from policies.keyed import select_keyed
    from policies.triggers import Decisions, TriggerEngine, default_rules

    engine = TriggerEngine(default_rules(), subscribers=table)
    events = events.sort_by_time()
    t0 = int(events.time[0]) - int(events.time[0]) % tick
    parts = []
    for lo in range(t0, end, tick):
        hi = min(lo + tick, end)
        sel = (events.time > lo) & (events.time <= hi) if lo > t0 else events.time <= hi
        parts.append(engine.process(events[sel], until=hi))
    dec = Decisions.concat(parts)
    df = dec.to_pandas()
    df["arm"] = None
    df["propensity"] = np.nan
    if policy is not None:
        fire = np.flatnonzero(dec.kind == 0)
        arms, props = select_keyed(policy, dec.trigger_id[fire].tolist(), seed,
                                   subscribers=dec.subscriber[fire], now=dec.time[fire])
        df.loc[fire, "arm"] = np.array(policy.arm_names, dtype=object)[arms]
        df.loc[fire, "propensity"] = props
    return sort_log(pd.DataFrame(df))


LOG_COLUMNS = ["trigger_id", "rule", "subscriber", "kind", "time", "entered_at", "attempt",
               "arm", "propensity"]


def sort_log(df):
    """The comparable columns of a decision frame, in the decision log's order."""
    out = df.sort_values(["time", "subscriber", "rule", "entered_at", "kind", "attempt"],
                         kind="stable").reset_index(drop=True)[LOG_COLUMNS].copy()
    for c in ("trigger_id", "rule", "kind", "arm"):
        col = out[c].astype(object)
        out[c] = col.where(col.notna(), None)
    for c in ("subscriber", "time", "entered_at", "attempt"):
        out[c] = out[c].astype("int64")
    out["propensity"] = out["propensity"].astype("float64")
    return out
