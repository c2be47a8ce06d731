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

import numpy as np

from sim import _events as E
from sim._events import T
from sim.catalog import Catalog
from sim.population import Population
from sim.presets import LIFECYCLE_STAGES

__all__ = ["apply_events", "valid_mask"]

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
    """Apply emitted events (time-sorted, already filtered) to ``pop`` in place."""
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
