"""Plain-Python specification of :func:`policies.segments.history.history_features`.

One subscriber at a time, one event at a time: slow, and written to be read. The fast
path is tested against it (``tests/policies/segments``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pandas as pd

from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from policies.segments.history import (
    DAY_S,
    ENGAGEMENT_TYPES,
    HISTORY_FEATURES,
    TREND_KINDS,
    check_history_args,
)

__all__ = ["history_features_reference"]


def history_features_reference(events: EventBatch, now: int, subscribers: Any = None, *,
                               window_days: float = 7.0, n_windows: int = 4
                               ) -> pd.DataFrame:
    """The same frame as :func:`~policies.segments.history.history_features`."""
    now, w_days, k = check_history_args(events, now, window_days, n_windows)
    w_s = max(1, round(w_days * DAY_S))
    names = EVENT_TYPES.names
    revenue = events.column("revenue")
    category = events.column("category", like="int")
    cart = events.column("cart_value")
    per_sub: dict[int, list[tuple[int, str, float, int, float]]] = defaultdict(list)
    for i in range(len(events)):
        t = int(events.time[i])
        if t <= now:
            per_sub[int(events.subscriber[i])].append(
                (t, names[int(events.type[i])], float(revenue[i]), int(category[i]),
                 float(cart[i])))
    if subscribers is None:
        ids = sorted(per_sub)
    else:
        ids = [int(s) for s in subscribers]
        if len(set(ids)) != len(ids):
            raise ValueError("subscribers: duplicate ids")
    rows = [_one(per_sub.get(s, []), now, w_s, k) for s in ids]
    df = pd.DataFrame(rows, columns=list(HISTORY_FEATURES),
                      index=pd.Index(np.array(ids, np.int64), name="subscriber"))
    for c in ("frequency", "top_category", *(f"{x}_last" for x in TREND_KINDS)):
        df[c] = df[c].astype(np.int64)
    return df.astype({c: np.float64 for c in df.columns if df[c].dtype != np.int64})


def _days(now: int, t: int | None) -> float:
    return math.nan if t is None else (now - t) / DAY_S


def _one(evs: list[tuple[int, str, float, int, float]], now: int, w_s: int, k: int
         ) -> dict[str, Any]:
    buys = [e for e in evs if e[1] == "purchase_completed"]
    revs = [e[2] for e in buys if not math.isnan(e[2])]
    engaged = [e[0] for e in evs if e[1] in ENGAGEMENT_TYPES]
    row: dict[str, Any] = {
        "recency_days": _days(now, max((e[0] for e in buys), default=None)),
        "frequency": len(buys),
        "monetary": sum(revs) / len(revs) if revs else math.nan,
        "revenue": sum(revs) if revs else 0.0,
        "days_since_engagement": _days(now, max(engaged, default=None)),
        "tenure_days": _days(now, min((e[0] for e in evs), default=None)),
        "open_cart_value": 0.0,
        "open_cart_days": math.nan,
    }
    adds = [e for e in evs if e[1] == "add_to_cart"]
    closes = [e[0] for e in evs if e[1] in ("purchase_completed", "cart_cleared")]
    if adds:
        t_add = max(e[0] for e in adds)
        if not closes or t_add > max(closes):     # a close in the same second closes it
            values = [0.0 if math.isnan(e[4]) else e[4] for e in adds if e[0] == t_add]
            row["open_cart_value"] = max(values)
            row["open_cart_days"] = (now - t_add) / DAY_S
    for name, type_name in TREND_KINDS.items():
        counts = [0] * k
        for t, typ, *_ in evs:
            j = (now - t) // w_s     # window j holds times in (now - (j+1) w, now - j w]
            if typ == type_name and j < k:
                counts[j] += 1
        # slope of counts against x = 0, -1, ..., -(k-1) (older windows further left)
        xs = [-j for j in range(k)]
        x_mean = sum(xs) / k
        sxx = sum((x - x_mean) ** 2 for x in xs)
        row[f"{name}_last"] = counts[0]
        row[f"{name}_mean"] = sum(counts) / k
        row[f"{name}_trend"] = sum((x - x_mean) * c for x, c in zip(xs, counts, strict=True)) / sxx
    cats = Counter(e[3] for e in evs if e[3] >= 0)
    if cats:
        best = max(cats.values())
        top = min(c for c, m in cats.items() if m == best)
        row["top_category"] = top
        row["top_category_share"] = best / sum(cats.values())
    else:
        row["top_category"] = -1
        row["top_category_share"] = math.nan
    return row
