"""``python -m experiments.bench features``: event log to per-subscriber features.

A synthetic log of ``--events`` events for ``--subscribers`` subscribers over ``--days``
days (types drawn with the shares of a simulated run: mostly product and page views,
opens, a few clicks, carts and purchases with revenue; categories 0..11) is built once;
the figure is the wall and CPU time of :func:`policies.segments.history_features` at the
log's end (the best of ``--repeat`` runs), for every subscriber (ids 0..n-1).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from experiments.bench._common import emit, peak_rss_bytes

T0 = 1_767_225_600                                     # 2026-01-01 UTC
#: (event type, share of events) of the synthetic log
MIX = (("product_view", 0.46), ("page_view", 0.18), ("email_open", 0.16),
       ("email_sent", 0.1), ("email_click", 0.03), ("add_to_cart", 0.03),
       ("checkout_started", 0.02), ("purchase_completed", 0.015),
       ("cart_cleared", 0.004), ("unsubscribe", 0.001))


def synthetic_log(events: int, subscribers: int, days: int, seed: int) -> Any:
    """The benchmark's event log: an EventBatch of ``events`` rows."""
    from policies.event_schema import EVENT_TYPES
    from policies.events import EventBatch

    rng = np.random.default_rng(seed)
    names, shares = zip(*MIX, strict=True)
    p = np.array(shares) / sum(shares)
    typ = np.array([EVENT_TYPES.code(n) for n in names], np.int64)[
        rng.choice(len(names), events, p=p)]
    sub = rng.integers(0, subscribers, events)
    t = T0 + rng.integers(0, days * 86_400, events)
    buy = typ == EVENT_TYPES.code("purchase_completed")
    revenue = np.where(buy, np.round(rng.lognormal(3.5, 0.6, events), 2), np.nan)
    has_cat = np.isin(typ, [EVENT_TYPES.code(n) for n in ("product_view", "page_view",
                                                          "add_to_cart")])
    category = np.where(has_cat, rng.integers(0, 12, events), -1)
    return EventBatch(sub, t, typ, {"revenue": revenue, "category": category})


def measure(events: int, subscribers: int, days: int = 60, repeat: int = 3,
            seed: int = 0) -> dict[str, Any]:
    """The figures of the benchmark (see the module docstring)."""
    from policies.segments import history_features

    log = synthetic_log(events, subscribers, days, seed)
    now = T0 + days * 86_400
    ids = np.arange(subscribers, dtype=np.int64)
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        feats = history_features(log, now, ids)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    wall, cpu = min(walls), min(cpus)
    return {"events": events, "subscribers": subscribers, "days": days,
            "features": feats.shape[1], "wall_s": wall, "cpu_s": cpu,
            "events_per_s": events / wall, "ns_per_event": wall / events * 1e9,
            "target_wall_s": 10.0, "target_met": "yes" if wall <= 10.0 else "no",
            "peak_rss_mb": peak_rss_bytes() / 2**20}


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench features")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--days", type=int, default=60, help="days the log spans")
    p.add_argument("--repeat", type=int, default=3, help="runs; the best counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if min(args.events, args.subscribers, args.days, args.repeat) < 1:
        p.error("--events, --subscribers, --days and --repeat must be >= 1")
    figures = measure(args.events, args.subscribers, args.days, args.repeat, args.seed)
    emit("features", argv, figures, as_json=args.json, record=args.record,
         title="features (event log to per-subscriber history features, one process)")
    return 0
