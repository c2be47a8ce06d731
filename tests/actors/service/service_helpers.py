"""Event batches for the transport tests."""

from __future__ import annotations

import numpy as np

from actors.service.parity import comparable as sort_log  # noqa: F401 (re-exported)
from actors.service.parity import reference_decisions  # noqa: F401 (re-exported)
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
