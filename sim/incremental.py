"""The true incremental effect of one email on a subscriber's orders: the truth uplift
models are checked against.

:func:`incremental_orders` compares, from the population's state at a day boundary
``now`` (the state *before* :meth:`~sim.world.World.send`), the expected number of
``purchase_completed`` events in ``(now, now + horizon_days]`` if the email is delivered
at ``now`` and if it is not. Deterministic; no random number is drawn.

Organic orders follow the session model of :mod:`sim.behavior` along the same
deterministic day-by-day path as :func:`sim.truth.outlook` (expected sessions a day
times the chance that a session ends in an order, at once or by a return of its cart
before the horizon, plus a return already scheduled). The email acts through every
channel the world has:

* its own order (campaign or cart reminder), landing within the window with the
  probability :func:`sim.delays.within_window` gives;
* what that order does to the rest of the window (:mod:`sim.state`): it empties the cart
  (a scheduled return is dropped: the order was going to happen anyway), multiplies
  intent by ``intent_after_purchase`` (satiation: fewer organic orders after it), makes
  the subscriber a customer (a lapsed one shops at the full session rate again) and
  counts as an open and a click for engagement;
* without an order: the engagement gained from the expected human open and click;
* either way the fatigue (NPE) the email costs, which lowers engagement over the days.

So ``uplift = p (1 + O_buy) + (1 - p) O_nobuy - O_0`` where ``p`` is the chance of the
email's order within the window and ``O_*`` are organic orders from the states after an
email order, after no email order, and without the email. Left out (as in
:func:`sim.truth.outlook`): intent noise, the six-sessions-a-day cap, the few hours
between delivery and the email's order, the satiation that organic orders themselves
cause (the same with and without the email, to first order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.errors import SpecError
from sim.behavior import expected_daily_update, session_rate_of
from sim.catalog import Catalog
from sim.clock import DAY, HOUR
from sim.delays import within_window
from sim.population import NEVER, Population
from sim.presets import LIFECYCLE_STAGES, Preset
from sim.response import EmailBatch, probabilities

__all__ = ["INCREMENTAL_COLUMNS", "incremental_orders"]

_STAGE = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}
#: Columns of :func:`incremental_orders`.
INCREMENTAL_COLUMNS: tuple[str, ...] = ("p_email_order", "orders_without", "orders_with",
                                        "uplift_orders")


def _organic_orders(p: Preset, now: int, horizon_days: int, eng: np.ndarray,
                    intent: np.ndarray, npe: np.ndarray, pop: Population,
                    last_purchase: np.ndarray, lapsed0: np.ndarray,
                    return_time: np.ndarray) -> np.ndarray:
    """Expected organic orders in ``(now, now + horizon_days]`` from the given state."""
    base_eng = pop.engagement_base.astype(np.float64)
    base_intent = pop.intent_base.astype(np.float64)
    lifecycle = pop.lifecycle
    buying = ((lifecycle == _STAGE["customer"]) | (lifecycle == _STAGE["new_customer"])
              | (last_purchase == now))
    orders = np.zeros(len(eng))
    for k in range(horizon_days):
        day_start = int(now) + k * DAY
        if k:  # the day's update (daily_update without its zero-mean intent noise)
            eng, intent, npe = expected_daily_update(p, eng, intent, npe, base_eng,
                                                     base_intent)
        since = np.where(last_purchase == NEVER, np.inf, (day_start - last_purchase) / DAY)
        lapsed = lapsed0 | (buying & (since > p.lapse_after_days))
        rate = session_rate_of(p, eng, intent, lapsed)
        cart = np.clip(p.cart_probability * intent, 0.0, 1.0)
        buy = np.clip(p.session_purchase_probability * (0.6 + 1.4 * intent), 0.0, 0.95)
        ret = np.clip(p.return_probability * (0.4 + 2.2 * intent), 0.0, 1.0)
        left_s = (horizon_days - k - 0.5) * DAY
        in_time = 1.0 - np.exp(-left_s / (p.return_delay_mean_hours * HOUR))
        orders += rate * cart * (buy + (1.0 - buy) * ret * in_time)
    scheduled = (return_time > now) & (return_time <= now + horizon_days * DAY)
    return orders + scheduled


def incremental_orders(pop: Population, now: int, email: EmailBatch, *,
                       horizon_days: int = 7, catalog: Catalog | None = None
                       ) -> pd.DataFrame:
    """True expected orders with and without ``email``, per subscriber.

    Parameters
    ----------
    pop : Population
        The state at ``now``, before the email is sent (not changed).
    now : int
        A day boundary (a multiple of 86400 s) the world has stepped to.
    email : EmailBatch
        One email per subscriber of ``pop`` (any order), delivered at ``now``.
    horizon_days : int
        The window ``(now, now + horizon_days]``, whole days (>= 1).
    catalog : Catalog, optional
        The world's catalog: the email's order counts only when what it buys is in stock
        (:func:`sim.response.probabilities`); None: always.

    Returns
    -------
    pandas.DataFrame
        Index ``subscriber`` (the ids of ``pop``), float64 columns
        :data:`INCREMENTAL_COLUMNS`: the chance of the email's own order within the
        window, expected orders (all, organic included) without and with the email, and
        their difference ``uplift_orders`` (orders per subscriber).
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise SpecError(f"horizon_days: expected an integer >= 1, got {horizon_days!r}")
    if isinstance(now, bool) or not isinstance(now, int | np.integer) or now % DAY:
        raise SpecError(f"now: expected a day boundary (int seconds, multiple of {DAY}), "
                        f"got {now!r}")
    if not isinstance(email, EmailBatch):
        raise SpecError(f"email: expected an EmailBatch, got {type(email).__name__}")
    n = len(pop)
    row = pop.index_of(email.subscriber)
    if len(email) != n or len(np.unique(row)) != n:
        raise SpecError(f"email: expected one email per subscriber ({n}), got {len(email)} "
                        f"emails for {len(np.unique(row))} subscribers")
    if bool(np.any(email.time != now)):
        raise SpecError(f"email.time: expected every email delivered at now={now}")
    p = pop.preset
    at = np.empty(n, np.int64)
    at[row] = np.arange(n)
    pr = probabilities(pop, email, catalog)
    win = within_window(pop, email, pr, horizon_days * DAY)
    p_order = np.clip(win["p_purchase"][at], 0.0, 1.0)
    p_open = pr["p_human_open"][at]
    p_click = pr["p_click"][at]
    live = pop.subscribed.astype(np.float64)
    cb = np.clip(np.asarray(p.subject_clickbait, np.float64)[email.subject_style[at]]
                 + 0.3 * email.urgency[at], 0.0, 1.0)
    npe0 = pop.npe.astype(np.float64)
    npe1 = npe0 + live * (-p.npe_email_cost - p.npe_clickbait_cost * 2.0 * (cb - 0.5))
    eng0 = pop.engagement.astype(np.float64)
    intent0 = pop.intent.astype(np.float64)
    lapsed0 = pop.lifecycle == _STAGE["lapsed"]
    last, ret = pop.last_purchase, pop.return_time
    stay = np.maximum(1.0 - p_order, 1e-12)
    bump = (np.clip(p_open - p_order, 0.0, 1.0) * p.engagement_open_bump
            + np.clip(p_click - p_order, 0.0, 1.0) * p.engagement_click_bump) / stay
    without = _organic_orders(p, now, horizon_days, eng0, intent0, npe0, pop, last, lapsed0,
                              ret)
    no_buy = _organic_orders(p, now, horizon_days, np.minimum(eng0 + bump, 1.0), intent0,
                             npe1, pop, last, lapsed0, ret)
    eng_buy = np.minimum(eng0 + p.engagement_open_bump + p.engagement_click_bump, 1.0)
    after_buy = _organic_orders(p, now, horizon_days, eng_buy,
                                intent0 * p.intent_after_purchase, npe1, pop,
                                np.full(n, now, np.int64), np.zeros(n, bool),
                                np.zeros(n, np.int64))
    with_ = p_order * (1.0 + after_buy) + (1.0 - p_order) * no_buy
    return pd.DataFrame({"p_email_order": p_order, "orders_without": without,
                         "orders_with": with_, "uplift_orders": with_ - without},
                        index=pd.Index(pop.ids, name="subscriber"))
