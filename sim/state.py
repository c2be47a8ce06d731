"""State updates driven by the events the world hands over.

When the world emits events (in time order) it first drops cart-resolving events
that became stale (:func:`valid_mask`: an organic return or a cart reminder's purchase
for a cart that was already bought, cleared or replaced) and adds to cart or purchases
of a product out of stock at the time, then applies what happened
to the subscribers' state (:func:`apply_events`):

* human ``email_open`` / ``email_click`` raise engagement a little and, like site
  visits, reset ``last_engaged``;
* ``unsubscribe`` clears ``subscribed``;
* ``purchase_completed`` empties the cart (``cart_product`` -1), records the purchase, lowers intent
  (satiation) and moves the lifecycle (new subscriber / prospect -> new customer,
  new customer with two purchases -> customer, lapsed -> customer);
* ``cart_cleared`` empties the cart.
"""

from __future__ import annotations

import numba
import numpy as np

from sim import _events as E
from sim._events import T
from sim.catalog import Catalog
from sim.population import Population
from sim.presets import LIFECYCLE_STAGES

__all__ = ["apply_events", "apply_events_reference", "valid_mask"]

_STAGE = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}


def valid_mask(pop: Population, ev: E.Events, catalog: Catalog) -> np.ndarray:
    """Which of the (time-sorted) events are still valid, bool (m,).

    An ``add_to_cart`` or ``purchase_completed`` naming a product that is out of stock
    at its time (``catalog``) is not valid. A cart-resolving event (purchase or clear)
    with a token is valid if its token equals the subscriber's current cart sequence
    number and no earlier valid cart-resolving event of that subscriber is in the batch.
    """
    m = E.size(ev)
    typ = ev["type"]
    keep = np.ones(m, bool)
    buy = typ == T.purchase_completed
    named = np.flatnonzero(buy | (typ == T.add_to_cart))
    named = named[ev["product_id"][named] >= 0]
    if len(named):
        keep[named] = catalog.in_stock(ev["product_id"][named], ev["time"][named])
    res = np.flatnonzero((buy & keep) | (typ == T.cart_cleared))
    if len(res) == 0:
        return keep
    sub = ev["subscriber"][res]
    tok = ev["token"][res]
    row = sub - pop.start
    ok = (tok < 0) | (tok == pop.cart_seq[row])
    cand = res[ok]
    csub = sub[ok]
    # the first candidate per subscriber wins; later tokened ones are stale
    order = np.argsort(csub, kind="stable")
    first = np.ones(len(cand), bool)
    first[order[1:]] = csub[order[1:]] != csub[order[:-1]]
    later_tokened = ~first & (ev["token"][cand] >= 0)
    keep[res[~ok]] = False
    keep[cand[later_tokened]] = False
    return keep


def apply_events(pop: Population, ev: E.Events) -> None:
    """Apply emitted events (time-sorted, already filtered) to ``pop`` in place.

    One numba pass (:func:`_apply_kernel`); :func:`apply_events_reference` is its numpy
    specification (the same float32 arithmetic in the same order)."""
    if E.size(ev) == 0:
        return
    p = pop.preset
    codes = np.array([T.email_open, T.email_click, T.product_view, T.page_view,
                      T.unsubscribe, T.cart_cleared, T.purchase_completed,
                      _STAGE["new_subscriber"], _STAGE["prospect"], _STAGE["new_customer"],
                      _STAGE["customer"], _STAGE["lapsed"]], np.int64)
    _apply_kernel(codes, ev["type"], ev["subscriber"] - pop.start, ev["time"], ev["machine"],
                  np.float32(p.engagement_open_bump), np.float32(p.engagement_click_bump),
                  np.float32(p.intent_after_purchase), pop.last_engaged, pop.engagement,
                  pop.subscribed, pop.cart_value, pop.cart_items, pop.cart_product,
                  pop.return_time, pop.cart_seq, pop.last_purchase, pop.n_purchases,
                  pop.intent, pop.lifecycle)


@numba.njit(cache=True, nogil=True)
def _apply_kernel(codes, typ, row, t, machine, open_bump, click_bump, satiation,
                  last_engaged, engagement, subscribed, cart_value, cart_items, cart_product,
                  return_time, cart_seq, last_purchase, n_purchases, intent,
                  lifecycle):  # pragma: no cover - compiled
    """:func:`apply_events` on the population's arrays; ``codes``: the event types
    (email_open, email_click, product_view, page_view, unsubscribe, cart_cleared,
    purchase_completed) and stages (new_subscriber, prospect, new_customer, customer,
    lapsed)."""
    c_open, c_click, c_view, c_page, c_unsub, c_clear, c_buy = codes[:7]
    s_new, s_prospect, s_new_customer, s_customer, s_lapsed = codes[7:]
    m = len(typ)
    n_buy = 0
    for i in range(m):  # last engaged, unsubscribes, carts, purchases
        k, r = typ[i], row[i]
        if (k == c_open and machine[i] == 0) or k == c_click or k == c_view or k == c_page:
            last_engaged[r] = max(last_engaged[r], t[i])
        elif k == c_unsub:
            subscribed[r] = False
        elif k == c_clear or k == c_buy:
            cart_value[r] = 0.0
            cart_items[r] = 0
            cart_product[r] = -1
            return_time[r] = 0
            cart_seq[r] += 1
            if k == c_buy:
                last_purchase[r] = max(last_purchase[r], t[i])
                n_purchases[r] += 1
                n_buy += 1
    for i in range(m):  # engagement: human opens first, then clicks, then capped at 1
        if typ[i] == c_open and machine[i] == 0:
            engagement[row[i]] += open_bump
    for i in range(m):
        if typ[i] == c_click:
            engagement[row[i]] += click_bump
    for i in range(m):
        if (typ[i] == c_open and machine[i] == 0) or typ[i] == c_click:
            r = row[i]
            engagement[r] = min(engagement[r], np.float32(1.0))
    if n_buy == 0:
        return
    bought = np.empty(n_buy, np.int64)
    j = 0
    for i in range(m):
        if typ[i] == c_buy:
            bought[j] = row[i]
            j += 1
    bought.sort()
    for j in range(n_buy):  # once per buyer, after all their purchases are counted
        r = bought[j]
        if j and r == bought[j - 1]:
            continue
        intent[r] *= satiation
        lc, n = lifecycle[r], n_purchases[r]
        if lc == s_new or lc == s_prospect:
            lc = s_customer if n >= 2 else s_new_customer
        if lc == s_new_customer and n >= 2:
            lc = s_customer
        if lc == s_lapsed:
            lc = s_customer
        lifecycle[r] = lc


def apply_events_reference(pop: Population, ev: E.Events) -> None:
    """Apply emitted events (time-sorted, already filtered) to ``pop`` in place (numpy)."""
    if E.size(ev) == 0:
        return
    p = pop.preset
    typ = ev["type"]
    row = ev["subscriber"] - pop.start
    t = ev["time"]
    engaged = (
        ((typ == T.email_open) & (ev["machine"] == 0))
        | (typ == T.email_click)
        | (typ == T.product_view)
        | (typ == T.page_view)
    )
    if engaged.any():
        np.maximum.at(pop.last_engaged, row[engaged], t[engaged])
    human_open = (typ == T.email_open) & (ev["machine"] == 0)
    click = typ == T.email_click
    if human_open.any() or click.any():
        rows = np.concatenate([row[human_open], row[click]])
        bumps = np.concatenate([
            np.full(int(human_open.sum()), p.engagement_open_bump, np.float32),
            np.full(int(click.sum()), p.engagement_click_bump, np.float32),
        ])
        np.add.at(pop.engagement, rows, bumps)
        pop.engagement[rows] = np.minimum(pop.engagement[rows], np.float32(1.0))
    unsub = typ == T.unsubscribe
    if unsub.any():
        pop.subscribed[row[unsub]] = False
    clear = (typ == T.cart_cleared) | (typ == T.purchase_completed)
    if clear.any():
        r = row[clear]
        pop.cart_value[r] = 0.0
        pop.cart_items[r] = 0
        pop.cart_product[r] = -1
        pop.return_time[r] = 0
        np.add.at(pop.cart_seq, r, 1)
    buy = typ == T.purchase_completed
    if buy.any():
        r = row[buy]
        np.maximum.at(pop.last_purchase, r, t[buy])
        np.add.at(pop.n_purchases, r, 1)
        ur = np.unique(r)
        pop.intent[ur] *= np.float32(p.intent_after_purchase)
        lc = pop.lifecycle[ur]
        n = pop.n_purchases[ur]
        lc = np.where(
            (lc == _STAGE["new_subscriber"]) | (lc == _STAGE["prospect"]),
            np.where(n >= 2, _STAGE["customer"], _STAGE["new_customer"]),
            lc,
        )
        lc = np.where((lc == _STAGE["new_customer"]) & (n >= 2), _STAGE["customer"], lc)
        lc = np.where(lc == _STAGE["lapsed"], _STAGE["customer"], lc)
        pop.lifecycle[ur] = lc.astype(np.int8)
