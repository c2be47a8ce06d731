"""A generated subscriber table and a realistic event stream, without the simulator.

A fast, stateless stand-in for :mod:`sim` where only the trigger engine is exercised:
``triggerlab trigger-demo``, the ``triggers`` benchmark and the load test's streams
(:mod:`experiments.loadtest.generator`). Its sends, opens and clicks are drawn as parts
of sessions, not as responses to emails: for ground truth, use the simulator.
Everything is vectorized numpy drawn from the ``numpy.random.Generator`` passed in.

The stream is made of *sessions*. A session may start from an email (``email_sent``
some hours before, ``email_open``, ``email_click`` with a ``link_type``), lands on a
page, views a few products (``time_on_page``, ``price``, ``category``) with page views
in between, and may go on along the funnel ``add_to_cart`` (``cart_value``) ->
``checkout_started`` -> ``purchase_completed`` or end with ``cart_cleared``. Active
subscribers (high ``engagement_score``) have more sessions; carts are more likely with
high ``conversion_readiness``. Most events (page views, opens, sends, short product
views) match no trigger condition, as in a real stream.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.event_schema import EVENT_TYPES, category_code
from policies.events import EventBatch
from policies.subscriber_schema import LIFECYCLE_STAGES

__all__ = ["DEFAULT_START", "LIFECYCLE_STAGES", "generate_events", "generate_subscribers"]

#: 2026-01-05 00:00 UTC, a Monday: the default start of generated streams.
DEFAULT_START = 1_767_571_200

_STAGE_P = (0.2, 0.3, 0.15, 0.25, 0.1)
_OFFSETS = np.array([-480, -360, -300, -240, 0, 60, 120, 330, 540, 600])
_OFFSET_P = np.array([0.12, 0.1, 0.2, 0.1, 0.12, 0.16, 0.06, 0.06, 0.04, 0.04])
_MAX_VIEWS = 8
_MEAN_EVENTS = 5.0  # about the mean number of events per generated session


def generate_subscribers(
    n: int, rng: np.random.Generator, *, start_id: int = 0, now: int = DEFAULT_START
) -> pd.DataFrame:
    """A subscriber table with the columns of docs/domain.md, indexed by ``subscriber``.

    Parameters
    ----------
    n : int
        Number of subscribers; ids are ``start_id .. start_id + n - 1``.
    rng : numpy.random.Generator
    now : int
        Seconds since the epoch; sign-ups happen in the two years before.
    """
    if n < 0:
        raise ValueError(f"n: expected >= 0 subscribers, got {n}")
    engagement = rng.beta(2.0, 3.0, n)
    return pd.DataFrame(
        {
            "lifecycle_stage": np.array(LIFECYCLE_STAGES, dtype=object)[
                rng.choice(len(LIFECYCLE_STAGES), n, p=_STAGE_P)
            ],
            "engagement_score": engagement,
            "conversion_readiness": rng.beta(2.0, 5.0, n),
            "educational_seeker": rng.random(n) < 0.3,
            "preferred_hour": rng.integers(0, 24, n),
            "utc_offset_minutes": rng.choice(_OFFSETS, n, p=_OFFSET_P / _OFFSET_P.sum()),
            "days_since_engagement": rng.exponential(4.0 + 30.0 * (1 - engagement)),
            "price_sensitivity": rng.beta(2.0, 2.0, n),
            "top_category": rng.integers(0, 12, n),
            "subscribed": np.ones(n, bool),
            "signup_time": now - rng.integers(0, 2 * 365 * 86400, n),
        },
        index=pd.Index(np.arange(start_id, start_id + n, dtype=np.int64), name="subscriber"),
    )


# session template: slot -> event type (the product-view block repeats _MAX_VIEWS times)
def _template() -> list[str]:
    slots = ["email_sent", "email_open", "email_click", "page_view"]
    for _ in range(_MAX_VIEWS):
        slots += ["product_view", "page_view"]
    slots += ["product_click", "price_check", "add_to_cart", "page_view", "checkout_started",
              "purchase_completed", "cart_cleared", "page_view"]
    return slots


def _sessions(
    subscribers: pd.DataFrame, rng: np.random.Generator, n_sessions: int, start: int, span: int,
    products: int = 0,
) -> dict[str, np.ndarray]:
    ids = subscribers.index.to_numpy(np.int64)
    n_subs = len(ids)
    slots = _template()
    codes = np.array([EVENT_TYPES.code(s) for s in slots], np.int64)
    k = len(slots)
    engagement = subscribers["engagement_score"].to_numpy(np.float64)
    readiness = subscribers["conversion_readiness"].to_numpy(np.float64)
    weight = 0.1 + engagement
    who = rng.choice(n_subs, n_sessions, p=weight / weight.sum())
    begin = start + rng.integers(0, span, n_sessions)

    present = np.zeros((n_sessions, k), bool)
    from_email = rng.random(n_sessions) < 0.35
    present[:, 2] = from_email & (rng.random(n_sessions) < 0.7)
    visit = rng.random(n_sessions) < 0.45  # else: an email that was (maybe) opened, no visit
    present[:, 0] = True
    present[:, 1] = from_email | (rng.random(n_sessions) < 0.2)
    present[:, 2] &= visit
    present[:, 3] = visit
    views = np.where(visit, np.minimum(rng.geometric(0.4, n_sessions), _MAX_VIEWS), 0)
    for j in range(_MAX_VIEWS):
        present[:, 4 + 2 * j] = views > j
        present[:, 5 + 2 * j] = (views > j) & (rng.random(n_sessions) < 0.8)
    base = 4 + 2 * _MAX_VIEWS
    present[:, base] = visit & (rng.random(n_sessions) < 0.3)  # product_click
    present[:, base + 1] = visit & (rng.random(n_sessions) < 0.1)  # price_check
    cart = visit & (rng.random(n_sessions) < 0.05 + 0.5 * readiness[who])
    present[:, base + 2] = cart
    present[:, base + 3] = cart & (rng.random(n_sessions) < 0.5)
    checkout = cart & (rng.random(n_sessions) < 0.45)
    present[:, base + 4] = checkout
    buy = checkout & (rng.random(n_sessions) < 0.65)
    present[:, base + 5] = buy
    present[:, base + 6] = cart & ~buy & (rng.random(n_sessions) < 0.15)
    present[:, base + 7] = visit & (rng.random(n_sessions) < 0.6)

    gaps = rng.exponential(50.0, (n_sessions, k)).astype(np.int64) + 1
    gaps[:, 0] = 0
    offsets = np.cumsum(gaps, axis=1) - gaps[:, :3].sum(axis=1, keepdims=True)
    # the email went out hours before the session; the open shortly before the click
    offsets[:, 0] = -rng.integers(1800, 12 * 3600, n_sessions)
    offsets[:, 1] = -rng.integers(5, 600, n_sessions)
    times = begin[:, None] + offsets

    rows, cols = np.nonzero(present)
    time = times[rows, cols]
    etype = codes[cols]
    sub = ids[who[rows]]
    n = len(time)
    is_view = etype == EVENT_TYPES.code("product_view")
    is_page = etype == EVENT_TYPES.code("page_view")
    is_click = etype == EVENT_TYPES.code("email_click")
    money = np.isin(etype, [EVENT_TYPES.code(e) for e in
                            ("add_to_cart", "checkout_started", "purchase_completed")])
    session_cart = np.round(rng.lognormal(np.log(38.0), 0.7, n_sessions), 2)
    cart_value = np.where(money, session_cart[rows], np.nan)
    time_on_page = np.where(
        is_view | is_page, np.round(rng.lognormal(np.log(22.0), 0.9, n), 1), np.nan
    )
    price = np.where(is_view, np.round(rng.lognormal(np.log(30.0), 0.8, n), 2), np.nan)
    link_words = np.array(
        [category_code("link_type", w) for w in ("product", "category", "content", "other")]
    )
    link_type = np.where(is_click, link_words[rng.choice(4, n, p=[0.55, 0.2, 0.15, 0.1])], -1)
    category = np.where(is_view | money, rng.integers(0, 12, n), -1)

    out = {
        "subscriber": sub, "time": time, "type": etype, "cart_value": cart_value,
        "time_on_page": time_on_page, "price": price, "link_type": link_type,
        "category": category,
    }
    if products > 0:
        out["product_id"] = _products(rng.spawn(1)[0], products, rows, cols, etype, n_sessions)
    return out


def _products(rng: np.random.Generator, products: int, rows: np.ndarray, slots: np.ndarray,
              etype: np.ndarray, n_sessions: int) -> np.ndarray:
    """``product_id`` of each event (-1 when it shows no product): view ``j`` of session
    ``rows`` shows the session's ``j``-th product, the funnel events its first."""
    popularity = 1.0 / np.arange(1, products + 1)
    shown = rng.choice(products, (n_sessions, _MAX_VIEWS), p=popularity / popularity.sum())
    view = np.clip((slots - 4) // 2, 0, _MAX_VIEWS - 1)
    funnel = [EVENT_TYPES.code(e) for e in ("product_click", "price_check", "add_to_cart",
                                             "checkout_started", "purchase_completed")]
    is_view = etype == EVENT_TYPES.code("product_view")
    return np.where(is_view, shown[rows, view],
                    np.where(np.isin(etype, funnel), shown[:, 0][rows], -1)).astype(np.int64)


def generate_events(
    subscribers: pd.DataFrame,
    rng: np.random.Generator,
    *,
    days: float = 7.0,
    start: int = DEFAULT_START,
    n_events: int | None = None,
    sessions_per_day: float = 0.6,
    products: int = 0,
) -> EventBatch:
    """A time-sorted event stream for ``subscribers`` over ``days`` days from ``start``.

    Parameters
    ----------
    subscribers : DataFrame
        As from :func:`generate_subscribers` (uses ``engagement_score`` and
        ``conversion_readiness``).
    rng : numpy.random.Generator
    days : float
        Length of the period, days.
    start : int
        Seconds since the epoch (UTC) of the period start.
    n_events : int, optional
        Exact number of events wanted; sessions are drawn to match it (then a random
        excess is dropped). Otherwise ``sessions_per_day`` per average subscriber.
    sessions_per_day : float
        Mean sessions per subscriber per day (scaled by engagement).
    products : int
        With ``products > 0``, a ``product_id`` column (codes ``0 .. products - 1``,
        popularity ~ 1 / rank): each product view of a session shows one product, and
        its click, price check, cart, checkout and purchase are of the first product
        viewed. Drawn from a generator spawned from ``rng``, so every other column is
        the same as without it.

    Returns
    -------
    EventBatch
        Sorted by time; columns ``cart_value``, ``time_on_page``, ``price`` (float, NaN
        when absent), ``link_type``, ``category`` (int codes, -1 when absent).
    """
    ids = subscribers.index.to_numpy(np.int64)
    n_subs = len(ids)
    if n_subs == 0:
        return EventBatch.empty()
    span = int(days * 86400)
    if n_events is not None:
        n_sessions = int(n_events / _MEAN_EVENTS * 1.1) + 10
    else:
        n_sessions = int(sessions_per_day * days * n_subs)
    while True:
        cols = _sessions(subscribers, rng, n_sessions, start, span, products)
        if n_events is None or len(cols["time"]) >= n_events:
            break
        n_sessions = int(n_sessions * 1.2 * n_events / max(len(cols["time"]), 1)) + 10
    time = cols.pop("time")
    sub = cols.pop("subscriber")
    etype = cols.pop("type")
    order = np.argsort(time, kind="stable")
    if n_events is not None and len(time) > n_events:
        order = np.sort(rng.choice(order, n_events, replace=False))
        order = order[np.argsort(time[order], kind="stable")]
    return EventBatch(
        sub[order],
        time[order],
        etype[order],
        {
            name: col[order] for name, col in cols.items()
        },
    )
