"""Older :meth:`TriggerEngine.state_dict` formats, brought up to the current one.

Version 1 (before the counters were redefined) stored per rule ``entered, fired,
cancelled, expired, suppressed, retried, late``. Version 2 adds ``failed`` (failures
reported) and the engine-wide count of late events. ``failed`` was not stored but follows
exactly from the identity the counters have always obeyed,
``entered + failed = fired + cancelled + expired + suppressed + pending``. The engine-wide
late count was not kept at all: it starts at the largest per-rule ``late`` (a lower
bound; version 1 did not count late events of types no rule mentions). Version 3 changes
only the fast engine's journey state (finished journeys parked in 68 bytes, catalog
memory in 136-byte blocks of int32 times on a moving epoch): a version-2 fast journey
state cannot be converted and is refused with a message; every other version-2 state is
read as it is. Version 4 again changes only the fast engine's journey state (each catalog
block gains an entry gate, kept by every step of the kernels): a version-2 or version-3
fast journey state is refused with a message; every other one is read as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from policies.errors import TriggerLabValueError
from policies.triggers._fast import NONE
from policies.triggers._reference import COUNTER_NAMES

#: The state version :meth:`TriggerEngine.state_dict` writes.
STATE_VERSION = 4
#: Versions a state may have: older ones are brought up by :func:`upgrade`.
STATE_VERSIONS = (1, 2, 3, STATE_VERSION)
_V1_NAMES = ("entered", "fired", "cancelled", "expired", "suppressed", "retried", "late")


def _failed(old: Mapping[str, Any], pending: int) -> int:
    """Failures reported, from version-1 counters, by the identity."""
    return int(old["fired"] + old["cancelled"] + old["expired"] + old["suppressed"]
               + pending - old["entered"])


def _fast_v1(core: dict[str, Any]) -> dict[str, Any]:
    old = core["stats"]
    pending = np.count_nonzero(core["pend_entry"] != NONE, axis=0)
    table = np.zeros((old.shape[0], len(COUNTER_NAMES)), np.int64)
    for r in range(old.shape[0]):
        row = dict(zip(_V1_NAMES, old[r].tolist(), strict=True))
        row["failed"] = _failed(row, int(pending[r]))
        table[r] = [row[name] for name in COUNTER_NAMES]
    late = int(table[:, COUNTER_NAMES.index("late")].max(initial=0))
    return {**core, "stats": table, "n_late": late}


def _reference_v1(core: dict[str, Any]) -> dict[str, Any]:
    pending: dict[int, int] = {}
    for st in core["subs"].values():
        for r in st.pending:
            pending[r] = pending.get(r, 0) + 1
    counts = {}
    for r, rule in enumerate(core["rules"].rules):
        row = dict(core["counts"][rule.id])
        row["failed"] = _failed(row, pending.get(r, 0))
        counts[rule.id] = {name: int(row[name]) for name in COUNTER_NAMES}
    late = max((c["late"] for c in counts.values()), default=0)
    return {**core, "counts": counts, "n_late": late}


def upgrade(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` in the current format (a copy; version 1 is converted as above).

    Raises TriggerLabValueError for a version-2 or version-3 state of the fast engine
    with journeys (its layout predates the current one and is not converted)."""
    out = dict(state)
    if state.get("version") == 1:
        convert = _fast_v1 if state.get("engine") == "fast" else _reference_v1
        out["core"] = convert(dict(state["core"]))
        out["version"] = STATE_VERSION
    elif state.get("version") in (2, 3):
        core = state.get("core")
        if state.get("engine") == "fast" and isinstance(core, Mapping) and "jinfo" in core:
            change = ("parked finished journeys and compacted the catalog memory"
                      if state["version"] == 2 else "added the catalog blocks' entry gates")
            raise TriggerLabValueError(
                f"state: a version-{state['version']} state of the fast engine with "
                f"journeys (the layout before version {state['version'] + 1} {change}) "
                "cannot be restored by this version: rebuild the engine from the events "
                "since it started, or restore the checkpoint with the release that wrote it")
        out["version"] = STATE_VERSION
    return out
