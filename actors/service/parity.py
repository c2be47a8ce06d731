"""What the service must decide: the engine run the simulator's runtime does, with the
service's keyed arms -- the reference of the parity checks.

The simulator's runtime (:class:`actors.shard.ShardCore`) hands its engine the events of
each tick in time order with ``until`` = the tick's end. :func:`reference_decisions`
does exactly that with one engine over the whole subscriber table, then draws each
fire's arm with :func:`policies.keyed.select_keyed` (keyed by seed and trigger id, as
the shards do). Decisions do not depend on the tick length (the engine's contract:
decisions never depend on how the stream is cut), so the service -- any number of
shards, any batching -- must give these rows; :func:`comparable` puts a decision frame
in the form two runs are compared in.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from actors.service.attributes import attribute_groups
from policies.base import Policy
from policies.errors import RuleWarning
from policies.events import EventBatch
from policies.keyed import select_keyed
from policies.triggers import CatalogBatch, Decisions, RuleSet, TriggerEngine, default_rules

__all__ = ["COMPARED", "comparable", "reference_decisions"]

#: The columns compared row for row.
COMPARED = ["trigger_id", "rule", "subscriber", "kind", "time", "entered_at", "attempt",
            "arm", "propensity"]


def reference_decisions(events: EventBatch, subscribers: pd.DataFrame, *, end: int,
                        rules: RuleSet | None = None, policy: Policy | None = None,
                        seed: int = 0, tick: int = 900, engine: str = "fast",
                        split_policies: Mapping[str, Policy] | None = None,
                        updates: pd.DataFrame | None = None,
                        catalog: CatalogBatch | None = None) -> pd.DataFrame:
    """The decisions due by ``end`` (seconds) of ``events`` (any order), as
    :func:`comparable` rows; ``rules`` default to the reference rules, ``tick`` seconds
    as the runtime's default tick; ``engine="reference"`` for journeys;
    ``split_policies`` the policies journey splits name (paths keyed by ``seed``);
    ``updates`` attribute rows (``subscriber``, ``time``, attributes) applied with
    ``update_subscribers(rows, at=time)`` after the events up to their time, in time
    order (rows of one time together, in their order); ``catalog`` the catalog events,
    handed to the engine with the events of their tick (before the updates of their
    second)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuleWarning)
        run = TriggerEngine(default_rules() if rules is None else rules,
                            subscribers=subscribers, engine=engine,
                            policies=split_policies, seed=seed)
    events = events.sort_by_time()
    t0 = int(events.time[0]) - int(events.time[0]) % tick if len(events) else end
    groups: dict[int, list[pd.DataFrame]] = {}
    if updates is not None:
        for at, frame in attribute_groups(updates[updates["time"] <= end]):
            groups.setdefault(at, []).append(frame)
    cuts = sorted({*range(t0 + tick, end, tick), end, *groups})
    cat = CatalogBatch.empty() if catalog is None else catalog.sort_by_time()
    parts = []
    lo = None
    for hi in cuts:
        sel = events.time <= hi if lo is None else (events.time > lo) & (events.time <= hi)
        csel = cat.time <= hi if lo is None else (cat.time > lo) & (cat.time <= hi)
        parts.append(run.process(events[sel], until=hi, catalog=cat[csel]))
        for frame in groups.get(hi, []):
            parts.append(run.update_subscribers(frame, at=hi))
        lo = hi
    kept = [p for p in parts if len(p)] or parts[-1:]
    dec = Decisions.concat(kept, run.ruleset.ids)
    df = dec.to_pandas()
    df["arm"] = None
    df["propensity"] = np.nan
    if policy is not None:
        fire = np.flatnonzero(dec.kind == 0)
        arms, props = select_keyed(policy, dec.trigger_id[fire].tolist(), seed,
                                   subscribers=dec.subscriber[fire], now=dec.time[fire])
        df.loc[fire, "arm"] = np.array(policy.arm_names, dtype=object)[arms]
        df.loc[fire, "propensity"] = props
    return comparable(df)


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """:data:`COMPARED` columns of a decision frame, with plain dtypes, sorted as the
    decision log (time, subscriber, rule, entered_at, kind, attempt)."""
    out = df.sort_values(["time", "subscriber", "rule", "entered_at", "kind", "attempt"],
                         kind="stable").reset_index(drop=True)[COMPARED].copy()
    for c in ("trigger_id", "rule", "kind", "arm"):
        col = out[c].astype(object)
        out[c] = col.where(col.notna(), None)
    for c in ("subscriber", "time", "entered_at", "attempt"):
        out[c] = out[c].astype("int64")
    out["propensity"] = out["propensity"].astype("float64")
    return out
