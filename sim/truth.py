"""What the simulator knows about every subscriber at a time ``now``: the truth that
segments and propensity scores are checked against.

:func:`outlook` computes, from the population's state at a day boundary ``now`` (the
world has stepped to it, so the day's update is applied), deterministically and without
drawing a random number:

* ``segment`` -- the hidden response segment (:func:`sim.response.segments`, code into
  :data:`~sim.presets.SEGMENTS`);
* ``p_purchase`` -- the probability of at least one ``purchase_completed`` in
  ``(now, now + horizon_days]``: organic sessions, abandoned carts that come back, a
  return already scheduled, and (with ``email``) a purchase from that email;
* ``p_inactive`` -- the probability of no site session (no ``page_view``) in
  ``(now, now + inactive_days]``;
* with ``email`` (one email per subscriber, delivered at ``now``; pass the state
  *before* :meth:`~sim.world.World.send`): ``p_open``, ``p_unsubscribe`` (in response
  to it) and ``p_churn = 1 - (1 - p_inactive)(1 - p_unsubscribe)``.

How: days are independent Poisson session counts (:func:`sim.behavior.session_rate_of`)
whose sessions each buy with probability ``cart (buy + (1 - buy) return F)`` (the
session model of :mod:`sim.behavior`; ``F`` the chance that a return lands before the
horizon, taken from the middle of the day), so that ``P(no purchase) = prod_d
exp(-rate_d q_d)``. The state is carried forward day by day along the deterministic part
of :func:`sim.behavior.daily_update`: engagement and fatigue exactly, intent along its
mean path (its daily noise has mean zero), lapsing of customers exactly (on the path
without a purchase, the one that matters). What is left out, each of small effect and
measured by ``tests/sim/test_truth.py`` against replicated futures: the curvature of the
intent noise, the cap of six sessions a day, a later cart cancelling a scheduled return,
engagement gained from opens during the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.errors import SpecError
from sim.behavior import expected_daily_update, session_rate_of
from sim.catalog import Catalog
from sim.clock import DAY, HOUR
from sim.population import NEVER, Population
from sim.presets import LIFECYCLE_STAGES
from sim.response import EmailBatch, probabilities, segments

__all__ = ["OUTLOOK_COLUMNS", "outlook"]

_STAGE = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}
#: Columns of :func:`outlook` (the last three only with an email).
OUTLOOK_COLUMNS: tuple[str, ...] = ("segment", "p_purchase", "p_inactive", "p_open",
                                    "p_unsubscribe", "p_churn")


def outlook(pop: Population, now: int, *, horizon_days: int = 7, inactive_days: int = 14,
            email: EmailBatch | None = None, catalog: Catalog | None = None
            ) -> pd.DataFrame:
    """True per-subscriber probabilities from the state of ``pop`` at ``now``.

    Parameters
    ----------
    pop : Population
        The state at ``now`` (not changed).
    now : int
        A day boundary (a multiple of 86400 s) the world has stepped to.
    horizon_days, inactive_days : int
        Windows of ``p_purchase`` and ``p_inactive``, whole days (>= 1).
    email : EmailBatch, optional
        One email per subscriber of ``pop`` (any order), delivered at ``now``.
    catalog : Catalog, optional
        The world's catalog: the email's purchase counts only when what it buys is in
        stock (:func:`sim.response.probabilities`); None: always.

    Returns
    -------
    pandas.DataFrame
        Index ``subscriber`` (the ids of ``pop``), columns of :data:`OUTLOOK_COLUMNS`
        (probabilities, float64; ``segment`` int64).
    """
    for name, value in (("horizon_days", horizon_days), ("inactive_days", inactive_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{name}: expected an integer >= 1, got {value!r}")
    if isinstance(now, bool) or not isinstance(now, int | np.integer) or now % DAY:
        raise SpecError(f"now: expected a day boundary (int seconds, multiple of {DAY}), "
                        f"got {now!r}")
    p = pop.preset
    n = len(pop)
    eng = pop.engagement.astype(np.float64)
    intent = pop.intent.astype(np.float64)
    base_eng = pop.engagement_base.astype(np.float64)
    base_intent = pop.intent_base.astype(np.float64)
    npe = pop.npe.astype(np.float64)
    lifecycle = pop.lifecycle
    buying = (lifecycle == _STAGE["customer"]) | (lifecycle == _STAGE["new_customer"])
    lapsed0 = lifecycle == _STAGE["lapsed"]
    log_no_buy = np.zeros(n)
    log_no_visit = np.zeros(n)
    for k in range(max(horizon_days, inactive_days)):
        day_start = int(now) + k * DAY
        if k:  # the day's update (daily_update without its zero-mean intent noise)
            eng, intent, npe = expected_daily_update(p, eng, intent, npe, base_eng,
                                                     base_intent)
        since = np.where(pop.last_purchase == NEVER, np.inf,
                         (day_start - pop.last_purchase) / DAY)
        lapsed = lapsed0 | (buying & (since > p.lapse_after_days))
        rate = session_rate_of(p, eng, intent, lapsed)
        if k < inactive_days:
            log_no_visit -= rate
        if k < horizon_days:
            cart = np.clip(p.cart_probability * intent, 0.0, 1.0)
            buy = np.clip(p.session_purchase_probability * (0.6 + 1.4 * intent), 0.0, 0.95)
            ret = np.clip(p.return_probability * (0.4 + 2.2 * intent), 0.0, 1.0)
            left_s = (horizon_days - k - 0.5) * DAY          # from mid-day to the horizon
            mean_s = p.return_delay_mean_hours * HOUR
            in_time = 1.0 - np.exp(-left_s / mean_s) if left_s > 1800 else 0.0
            log_no_buy -= rate * cart * (buy + (1.0 - buy) * ret * in_time)
    scheduled = (pop.return_time > now) & (pop.return_time <= now + horizon_days * DAY)
    no_buy = np.where(scheduled, 0.0, np.exp(log_no_buy))
    out: dict[str, np.ndarray] = {"segment": segments(pop, np.arange(n))}
    if email is None:
        out["p_purchase"] = 1.0 - no_buy
        out["p_inactive"] = np.exp(log_no_visit)
        return pd.DataFrame(out, index=pd.Index(pop.ids, name="subscriber"))
    if not isinstance(email, EmailBatch):
        raise SpecError(f"email: expected an EmailBatch, got {type(email).__name__}")
    row = pop.index_of(email.subscriber)
    if len(email) != n or len(np.unique(row)) != n:
        raise SpecError(f"email: expected one email per subscriber ({n}), got {len(email)} "
                        f"emails for {len(np.unique(row))} subscribers")
    if bool(np.any(email.time != now)):
        raise SpecError(f"email.time: expected every email delivered at now={now}")
    pr = probabilities(pop, email, catalog)
    at = np.empty(n, np.int64)
    at[row] = np.arange(n)
    p_open, p_unsub, p_email_buy = (pr[c][at] for c in ("p_open", "p_unsubscribe",
                                                        "p_purchase"))
    out["p_purchase"] = 1.0 - no_buy * (1.0 - p_email_buy)
    out["p_inactive"] = np.exp(log_no_visit)
    out["p_open"] = p_open
    out["p_unsubscribe"] = p_unsub
    out["p_churn"] = 1.0 - (1.0 - out["p_inactive"]) * (1.0 - p_unsub)
    return pd.DataFrame(out, index=pd.Index(pop.ids, name="subscriber"))
