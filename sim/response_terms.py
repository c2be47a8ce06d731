"""What the response model reads for the journey terms (docs/domain.md, "Responses to
journeys"): whether a subscriber is lapsed, their interest in a category, and the chance
that what an email's purchase names is in stock when it lands (from the catalog).
Deterministic; no random number is drawn."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sim._grouping import distinct_rows
from sim.catalog import PRODUCTS_PER_CATEGORY, Catalog
from sim.clock import DAY, HOUR
from sim.delays import CHECKOUT_DELAY_S, OPEN_DELAY_SIGMA, VIEW_DELAY_S, DelayModel
from sim.population import Population

if TYPE_CHECKING:
    from sim.response import EmailBatch

__all__ = ["VIEW_ANY_SHARE", "VIEW_SECOND_SHARE", "VIEW_TOP_SHARE", "category_interest",
           "lapsed", "p_in_stock"]

#: Share of a subscriber's product views in their top category, their second category
#: and a uniformly chosen category (:func:`sim.behavior.realize_sessions`).
VIEW_TOP_SHARE, VIEW_SECOND_SHARE, VIEW_ANY_SHARE = 0.6, 0.25, 0.15


def lapsed(pop: Population, row: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Whether each subscriber is lapsed at ``time`` (s) for the email response: no
    engagement (site visit, human open or click) for at least ``lapsed_inactive_days``,
    bool (n,)."""
    return (np.asarray(time, np.int64) - pop.last_engaged[row]
            ) >= pop.preset.lapsed_inactive_days * DAY


def category_interest(pop: Population, row: np.ndarray, category: np.ndarray) -> np.ndarray:
    """A subscriber's interest in a category: the share of their product views that land
    in it (:mod:`sim.behavior`: top category 60 %, second 25 %, any category 15 %),
    float64 (n,) in [0.15 / n_categories, 0.6 + 0.15 / n_categories]."""
    base = VIEW_ANY_SHARE / pop.preset.n_categories
    return (base + VIEW_TOP_SHARE * (pop.top_category[row] == category)
            + VIEW_SECOND_SHARE * (pop.second_category[row] == category))


def _in_stock_share(catalog: Catalog, category: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Share of the products of each ``category`` in stock at ``t`` (s, rounded down to
    the hour), float64 (n,): one catalog query per (category, hour)."""
    hour = (np.asarray(t, np.int64) // HOUR) * HOUR
    out = np.ones(len(category))
    inv, (cats, hours) = distinct_rows(np.asarray(category, np.int64), hour)
    if len(cats):   # every product of each (category, hour) in one catalog query
        j = np.arange(PRODUCTS_PER_CATEGORY, dtype=np.int64)
        stock = catalog.in_stock((cats[:, None] * PRODUCTS_PER_CATEGORY + j).ravel(),
                                 np.repeat(hours, PRODUCTS_PER_CATEGORY))
        out = stock.reshape(len(cats), PRODUCTS_PER_CATEGORY).mean(axis=1)[inv]
    return out


def p_in_stock(pop: Population, row: np.ndarray, emails: EmailBatch, catalog: Catalog,
                cart_open: np.ndarray, alert: np.ndarray, dh: np.ndarray) -> np.ndarray:
    """The chance that the product a purchase names is in stock when it lands, float64
    (n,): the cart's product (cart reminders) or the alert's product, else the share of
    the top category's products in stock (the product viewed after a click is uniform
    in it). Evaluated at the mean purchase time after delivery (the delay model's means;
    stock changes over those hours are rare: the error is below 0.1 % of orders)."""
    model = DelayModel.from_preset(pop.preset)
    mean_delay = (model.open_delay_median_hours * 3600.0 * (1.0 + dh / 6.0)
                  * math.exp(OPEN_DELAY_SIGMA**2 / 2) + model.click_delay_mean_s
                  + VIEW_DELAY_S[0] + VIEW_DELAY_S[1] / 2 + CHECKOUT_DELAY_S
                  + model.purchase_delay_mean_s)
    t = emails.time + mean_delay.astype(np.int64)
    product = np.where(cart_open, pop.cart_product[row].astype(np.int64),
                       np.where(alert, emails.alert_product, -1))
    named = product >= 0
    out = np.empty(len(emails))
    if named.any():
        out[named] = catalog.in_stock(product[named], t[named]).astype(np.float64)
    if (~named).any():
        out[~named] = _in_stock_share(catalog, pop.top_category[row][~named].astype(np.int64),
                                      t[~named])
    return out
