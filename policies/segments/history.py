"""Per-subscriber features from an event log up to a time ``now``.

:func:`history_features` turns an :class:`~policies.events.EventBatch` into one row per
subscriber (a DataFrame indexed by ``subscriber``) of :data:`HISTORY_FEATURES`. Only
events with ``time <= now`` are read: appending later events changes nothing. The
columns, with units:

* ``recency_days`` -- days from the last ``purchase_completed`` to ``now`` (NaN: none);
* ``frequency`` -- number of purchases;
* ``monetary`` -- mean ``revenue`` of the purchases that carry one (currency; NaN: none);
* ``revenue`` -- their total (currency);
* ``days_since_engagement`` -- days from the last engagement event
  (:data:`ENGAGEMENT_TYPES`: an open, a click or a site event) to ``now`` (NaN: none);
* ``tenure_days`` -- days from the subscriber's first event to ``now``;
* ``open_cart_value`` -- the ``cart_value`` of the latest ``add_to_cart`` if no
  ``purchase_completed`` or ``cart_cleared`` came at or after it (currency; 0: no open
  cart; of several adds in that second, the largest value), ``open_cart_days`` -- days
  since that add (NaN: no open cart);
* ``opens_*``, ``clicks_*``, ``sessions_*`` -- counts of ``email_open``,
  ``email_click`` and ``page_view`` (a session's landing page) in ``n_windows``
  consecutive windows of ``window_days`` ending at ``now``: ``_last`` is the count of
  the latest window, ``_mean`` the mean count per window, ``_trend`` the least-squares
  slope of the counts against window position (events per window per window; > 0 means
  rising). Window ``k`` (0 = latest) is ``(now - (k+1) w, now - k w]``, ``w`` rounded
  to whole seconds;
* ``top_category`` -- the category code most events carrying a ``category`` name (ties:
  the smallest code; -1: none) and ``top_category_share`` its share of them (NaN: none).

The frame's rows can become subscriber attributes as they are (index = subscriber id).
:func:`history_features_reference` (module :mod:`policies.segments.history_reference`)
is the plain per-subscriber specification the vectorized code is tested against.

Example
-------
>>> from policies.events import EventBatch
>>> b = EventBatch.from_records([
...     {"subscriber": 7, "time": 1_700_000_000, "type": "page_view", "category": 3},
...     {"subscriber": 7, "time": 1_700_000_100, "type": "purchase_completed",
...      "revenue": 40.0}])
>>> f = history_features(b, now=1_700_000_100 + 86_400)
>>> f.loc[7, ["recency_days", "frequency", "monetary", "top_category"]].tolist()
[1.0, 1.0, 40.0, 3.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from policies.checks import check_int, check_number, expected
from policies.errors import TriggerLabValueError
from policies.event_schema import EVENT_TYPES, check_time
from policies.events import EventBatch

__all__ = ["ENGAGEMENT_TYPES", "HISTORY_FEATURES", "TREND_KINDS", "check_history_args",
           "history_feature_names", "history_features"]

DAY_S = 86_400
#: Event types that count as engagement for ``days_since_engagement``.
ENGAGEMENT_TYPES: tuple[str, ...] = (
    "email_open", "email_click", "page_view", "product_view", "product_click",
    "add_to_cart", "checkout_started", "price_check", "purchase_completed",
)
#: Counted kinds of the engagement trajectory and the event type each counts.
TREND_KINDS: dict[str, str] = {"opens": "email_open", "clicks": "email_click",
                               "sessions": "page_view"}


def history_feature_names() -> tuple[str, ...]:
    """Column names of :func:`history_features`, in order."""
    trend = tuple(f"{k}_{s}" for k in TREND_KINDS for s in ("last", "mean", "trend"))
    return ("recency_days", "frequency", "monetary", "revenue", "days_since_engagement",
            "tenure_days", "open_cart_value", "open_cart_days", *trend, "top_category",
            "top_category_share")


#: Columns of :func:`history_features`.
HISTORY_FEATURES: tuple[str, ...] = history_feature_names()


def check_history_args(events: Any, now: Any, window_days: Any, n_windows: Any
                       ) -> tuple[int, float, int]:
    """Validate the arguments shared by the fast and the reference implementation."""
    if not isinstance(events, EventBatch):
        raise expected(TriggerLabValueError, "events", "an EventBatch", events)
    if isinstance(now, bool) or not isinstance(now, int | np.integer):
        raise expected(TriggerLabValueError, "now", "int seconds since the epoch", now)
    try:
        now = check_time(int(now))
    except ValueError as exc:
        raise TriggerLabValueError(f"now: {exc}") from None
    w = check_number("window_days", window_days, error=TriggerLabValueError, low=0,
                     low_open=True)
    k = check_int("n_windows", n_windows, error=TriggerLabValueError, low=2)
    return now, w, k


def _rows(sub: np.ndarray, subscribers: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids of the output rows, row of every event (-1: not an output row), keep mask)."""
    if subscribers is None:
        ids, inverse = np.unique(sub, return_inverse=True)
        return ids, inverse.astype(np.int64), np.ones(len(sub), bool)
    ids = np.asarray(subscribers)
    if ids.ndim != 1 or (len(ids) and ids.dtype.kind not in "iu"):
        raise expected(TriggerLabValueError, "subscribers", "a 1-d array of integer ids",
                       subscribers)
    ids = ids.astype(np.int64)
    n = len(ids)
    if n and ids[-1] - ids[0] == n - 1 and bool(np.all(np.diff(ids) == 1)):
        row = sub - ids[0]  # a contiguous range: no search
        keep = (row >= 0) & (row < n)
        return ids, np.where(keep, row, -1), keep
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    if n > 1 and bool(np.any(sorted_ids[1:] == sorted_ids[:-1])):
        dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][0]
        raise TriggerLabValueError(f"subscribers: expected each id once, got {int(dup)} twice")
    pos = np.searchsorted(sorted_ids, sub).clip(0, max(n - 1, 0))
    keep = (sorted_ids[pos] == sub) if n else np.zeros(len(sub), bool)
    return ids, np.where(keep, order[pos] if n else 0, -1), keep


def _window_seconds(window_days: float) -> int:
    """A window's width in whole seconds (at least 1)."""
    return max(1, round(window_days * DAY_S))


def _last_time(row: np.ndarray, time: np.ndarray, n: int) -> np.ndarray:
    """Latest time per row (int64; -1 where none; times are >= 0)."""
    out = np.full(n, -1, np.int64)
    np.maximum.at(out, row, time)
    return out


def history_features(events: EventBatch, now: int, subscribers: Any = None, *,
                     window_days: float = 7.0, n_windows: int = 4) -> pd.DataFrame:
    """Features of every subscriber from ``events`` with ``time <= now``.

    Parameters
    ----------
    events : EventBatch
        The log (any order).
    now : int
        Seconds since the epoch; events after it are ignored.
    subscribers : array of int, optional
        Output rows, in this order (ids without events get zero counts and NaN
        recencies; events of other ids are ignored). Default: every id with an event at
        or before ``now``, ascending.
    window_days : float
        Width of one trajectory window, days (> 0).
    n_windows : int
        Number of trajectory windows (>= 2).

    Returns
    -------
    pandas.DataFrame
        Index ``subscriber`` (int64), columns :data:`HISTORY_FEATURES` (float64 except
        ``frequency``, ``*_last`` and ``top_category``: int64).
    """
    now, w_days, k = check_history_args(events, now, window_days, n_windows)
    upto = events.time <= now
    if not bool(upto.all()):
        events = events[upto]
    ids, row, keep = _rows(events.subscriber, subscribers)
    if not bool(keep.all()):
        events, row = events[keep], row[keep]
    n = len(ids)
    t, typ = events.time, events.type
    out: dict[str, np.ndarray] = {}

    buy = typ == EVENT_TYPES.code("purchase_completed")
    last_buy = _last_time(row[buy], t[buy], n)
    out["recency_days"] = np.where(last_buy >= 0, (now - last_buy) / DAY_S, np.nan)
    out["frequency"] = np.bincount(row[buy], minlength=n).astype(np.int64)
    rev = events.column("revenue")[buy]
    has_rev = ~np.isnan(rev)
    total = np.bincount(row[buy][has_rev], weights=rev[has_rev], minlength=n).astype(float)
    n_rev = np.bincount(row[buy][has_rev], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["monetary"] = np.where(n_rev > 0, total / n_rev, np.nan)
    out["revenue"] = total

    engaged = np.isin(typ, [EVENT_TYPES.code(x) for x in ENGAGEMENT_TYPES])
    last_eng = _last_time(row[engaged], t[engaged], n)
    out["days_since_engagement"] = np.where(last_eng >= 0, (now - last_eng) / DAY_S, np.nan)
    first = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, row, t)
    out["tenure_days"] = np.where(first <= now, (now - first) / DAY_S, np.nan)
    out["open_cart_value"], out["open_cart_days"] = _open_cart(events, row, n, now)

    win = (now - t) // _window_seconds(w_days)  # window j: (now - (j+1)w, now - jw]
    x = -np.arange(k, dtype=np.float64)
    xc = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    for name, type_name in TREND_KINDS.items():
        sel = (typ == EVENT_TYPES.code(type_name)) & (win < k)
        counts = np.bincount(row[sel] * k + win[sel], minlength=n * k).reshape(n, k)
        out[f"{name}_last"] = counts[:, 0].astype(np.int64)
        out[f"{name}_mean"] = counts.mean(axis=1)
        out[f"{name}_trend"] = counts @ xc

    cat = events.column("category", like="int")
    has_cat = cat >= 0
    top, share = _top_category(row[has_cat], cat[has_cat].astype(np.int64), n)
    out["top_category"] = top
    out["top_category_share"] = share
    return pd.DataFrame(out, index=pd.Index(ids, name="subscriber"))[list(HISTORY_FEATURES)]


def _open_cart(events: EventBatch, row: np.ndarray, n: int, now: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Value (0: none) and age in days (NaN: none) of every row's open cart."""
    typ, t = events.type, events.time
    add = np.flatnonzero(typ == EVENT_TYPES.code("add_to_cart"))
    value = np.zeros(n)
    age = np.full(n, np.nan)
    if len(add) == 0:
        return value, age
    closing = (typ == EVENT_TYPES.code("purchase_completed")) | (
        typ == EVENT_TYPES.code("cart_cleared"))
    last_close = _last_time(row[closing], t[closing], n)
    v = np.nan_to_num(events.column("cart_value")[add])
    order = np.lexsort((v, t[add], row[add]))          # per row: latest, then largest
    r, tt, vv = row[add][order], t[add][order], v[order]
    last = np.r_[r[1:] != r[:-1], True]
    r, tt, vv = r[last], tt[last], vv[last]
    is_open = tt > last_close[r]
    value[r[is_open]] = vv[is_open]
    age[r[is_open]] = (now - tt[is_open]) / DAY_S
    return value, age


def _top_category(row: np.ndarray, cat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent category per row (ties: smallest code; -1 none) and its share."""
    top = np.full(n, -1, np.int64)
    share = np.full(n, np.nan)
    if len(row) == 0:
        return top, share
    c_max = int(cat.max()) + 1
    if n * c_max < 2**62:                      # pack (row, category) into one key
        key, counts = np.unique(row * c_max + cat, return_counts=True)
        prow, pcat = key // c_max, key % c_max
    else:
        order = np.lexsort((cat, row))
        r, c = row[order], cat[order]
        start = np.flatnonzero(np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])])
        prow, pcat = r[start], c[start]
        counts = np.diff(np.r_[start, len(r)])
    # per row: the largest count, the smallest category among equals
    order = np.lexsort((pcat, -counts, prow))
    prow, pcat, counts = prow[order], pcat[order], counts[order]
    head = np.r_[True, prow[1:] != prow[:-1]]
    top[prow[head]] = pcat[head]
    totals = np.bincount(prow, weights=counts, minlength=n)
    share[prow[head]] = counts[head] / totals[prow[head]]
    return top, share
