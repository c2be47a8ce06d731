"""The decision and event logs of a run as frames: from the shards' raw logs (in memory
or streamed, :mod:`actors.logs`) to :attr:`actors.RunResult.decisions` and
:attr:`~actors.RunResult.events`, in canonical order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from actors.emails import draw_keys
from actors.metrics import MetricsLayout
from policies.events import EventBatch
from policies.features import FEATURE_NAMES

__all__ = ["decisions_frame", "events_frame"]


def decisions_frame(layout: MetricsLayout, parts: Sequence[dict[str, np.ndarray] | None]
                    ) -> pd.DataFrame:
    """The decision log of :class:`RunResult` from shards' raw logs
    (:meth:`actors.truth.Ledger.decisions`), in canonical order (time, subscriber, source,
    email id)."""
    cols = [p for p in parts if p is not None]
    arms = layout.arm_names
    base = ["email_id", "subscriber", "time", "source", "arm", "arm_index", "propensity",
            "reward", "expected_reward", *[f"expected_reward__{a}" for a in arms],
            *(["email", "series"] if layout.has_journeys else []),
            *[f"x_{n}" for n in FEATURE_NAMES]]
    if not cols:
        return pd.DataFrame({c: [] for c in base})
    d = {k: np.concatenate([p[k] for p in cols]) for k in cols[0]}
    order = np.lexsort((d["email_id"], d["source"], d["subscriber"], d["time"]))
    d = {k: v[order] for k, v in d.items()}
    arm_labels = np.array(layout.arms, dtype=object)
    out: dict[str, Any] = {
        "email_id": d["email_id"], "subscriber": d["subscriber"], "time": d["time"],
        "source": np.array(layout.sources, dtype=object)[d["source"]],
        "arm": arm_labels[d["arm"] + 1], "arm_index": d["arm"],
        "propensity": d["propensity"], "reward": d["reward"],
        "expected_reward": d["expected"],
    }
    for j, a in enumerate(arms):
        out[f"expected_reward__{a}"] = d["expected_arms"][:, j]
    if layout.has_journeys:   # the journey email of each send ("" for others: e = -1)
        table = [("",), *((*e, "") for e in layout.journey_emails)]
        out["email"] = np.array([table[s][e] for s, e in zip(d["source"].tolist(),
                                                             d["email"].tolist(), strict=True)],
                                dtype=object)
        out["series"] = d["series"]
    if "entered_at" in d:     # keyed draws: the key each arm was drawn with
        out["trigger_id"] = np.array(
            draw_keys(layout.sources[1:], d["source"], d["subscriber"], d["entered_at"],
                      d["step"]), dtype=object)
    for j, n in enumerate(FEATURE_NAMES):
        out[f"x_{n}"] = d["context"][:, j]
    return pd.DataFrame(out)


def events_frame(batches: Sequence[EventBatch]) -> pd.DataFrame:
    """The event log of :class:`RunResult` from shards' event batches, in canonical
    order (time, subscriber; stable)."""
    df = EventBatch.concat(batches).to_pandas()
    events = df.iloc[np.lexsort((df["subscriber"].to_numpy(), df["time"].to_numpy()))]
    return events.reset_index(drop=True)
