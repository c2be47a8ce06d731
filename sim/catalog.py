"""The product catalog: list prices, margins, sales and stock-outs (docs/catalog.md).

The catalog is global: a pure function of ``(seed, preset)`` and time, identical on every
shard (its draws are keyed by product and day, never by subscriber or shard). Products
are ``category * PRODUCTS_PER_CATEGORY + j`` for ``j < PRODUCTS_PER_CATEGORY``, the ids
the sessions of :mod:`sim.behavior` view and cart.

* **List price**: log-normal. A category's log-mean offset takes ``category_price_share``
  of the log-variance ``item_price_sigma**2``, the product the rest; prices are scaled so
  that their mean over the catalog is ``item_price_mean``, then rounded to cents.
* **Margin rate** per category, uniform in ``margin_rate_mean +- margin_rate_spread``, a
  fraction of the list price: a product's unit cost is ``list price (1 - margin rate)``,
  so a sale of depth ``d`` gives up ``d`` x list price of margin per unit.
* **Sales**: on each day a product starts a sale with probability
  ``price_drop_rate_per_day``, at a uniform second of the day, of depth uniform in
  ``[price_drop_min, price_drop_max]`` and an exponential length of mean
  ``price_drop_mean_days`` (clipped to [1 h, MAX_EVENT_DAYS]). The price at ``t`` is
  the list price less the deepest sale running at ``t`` (``start <= t < end``). A
  ``price_drop`` event is emitted at a sale's start when the price falls there.
* **Stock-outs**: on each day a product runs out with probability
  ``stockout_rate_per_day`` at a uniform second, for an exponential time of mean
  ``restock_mean_days`` (same clipping). A product is out of stock at ``t`` while a
  stock-out runs; ``back_in_stock`` is emitted at a stock-out's end unless another one
  still runs. Stock is exogenous (purchases do not deplete it): a quantity depleted by
  purchases would need every shard's purchases, and the catalog must be the same on all.

Example
-------
>>> cat = Catalog(7)
>>> len(cat), int(cat.category[12_345 % len(cat)]) == (12_345 % len(cat)) // 1000
(12000, True)
>>> b = cat.events(1_704_067_200, 1_704_067_200 + 86_400)
>>> set(b.type_name(i) for i in range(len(b))) <= {"price_drop", "back_in_stock"}
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd

from policies.errors import SpecError
from policies.triggers.catalog import CatalogBatch
from policies.triggers.journeys import CATALOG_EVENT_TYPES
from sim.clock import DAY, HOUR
from sim.presets import Preset, get_preset
from sim.rng import PURPOSES, KeyedRandom, check_seed, normal_from_uniforms

__all__ = ["MAX_EVENT_DAYS", "PRODUCTS_PER_CATEGORY", "Catalog"]

#: Products per category: product ids are ``category * PRODUCTS_PER_CATEGORY + j``.
PRODUCTS_PER_CATEGORY = 1000
#: Longest sale or stock-out, days: the state at ``t`` depends on the draws of the
#: ``MAX_EVENT_DAYS + 1`` days up to ``t``'s day.
MAX_EVENT_DAYS = 14

_PRICE_DROP = CATALOG_EVENT_TYPES.index("price_drop")
_BACK_IN_STOCK = CATALOG_EVENT_TYPES.index("back_in_stock")
_CACHE_DAYS = 64  # days of drawn spans kept (pure: dropping them only costs time)
_WINDOW_DAYS = 7  # a new window of spans covers at least this many days after its first


@dataclass(frozen=True)
class _Spans:
    """Time spans of one kind (sales or stock-outs), arrays of shape (k,)."""

    product: np.ndarray  # int64
    start: np.ndarray  # int64 s, inclusive
    end: np.ndarray  # int64 s, exclusive
    depth: np.ndarray  # float64: sale depth in [0, 1); stock-outs: -1

    @classmethod
    def concat(cls, parts: list[_Spans]) -> _Spans:
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("product", "start", "end", "depth")))


@dataclass(frozen=True)
class _Index:
    """Spans grouped by product: those of product ``p`` are ``offsets[p]:offsets[p + 1]``."""

    spans: _Spans
    offsets: np.ndarray  # int64 (n_products + 1,)
    count: np.ndarray  # int64 (n_products,): spans per product

    @classmethod
    def build(cls, spans: _Spans, n_products: int) -> _Index:
        o = np.argsort(spans.product, kind="stable")
        s = _Spans(spans.product[o], spans.start[o], spans.end[o], spans.depth[o])
        count = np.bincount(s.product, minlength=n_products).astype(np.int64)
        offsets = np.zeros(n_products + 1, np.int64)
        np.cumsum(count, out=offsets[1:])
        return cls(s, offsets, count)

    def lookup(self, product: np.ndarray, t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(depth, out, sale)`` of every query (int64 ids and times in s, (m,)): the
        largest depth among the sales of ``product`` running at ``t`` (``start <= t <
        end``; 0 if none), float64 (m,), whether a stock-out (depth < 0) runs then, bool
        (m,), and the positions with depth > 0, int64. A numba kernel;
        :meth:`state_reference` is its numpy specification."""
        s = self.spans
        return _lookup_kernel(self.offsets, s.start, s.end, s.depth, product, t)

    def state_reference(self, product: np.ndarray, t: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(some, depth, out)``: the positions ``some`` of the queries whose product has
        spans here, and for those the largest depth among the sales running at ``t``
        (``start <= t < end``; 0 if none), float64, and whether a stock-out (depth < 0)
        runs then, bool. Every other query is at list price and in stock."""
        some = np.flatnonzero(self.count[product])
        if len(some) == 0:
            return some, np.zeros(0, np.float64), np.zeros(0, bool)
        ps, ts = product[some], t[some]
        lo, count = self.offsets[ps], self.count[ps]
        best = np.zeros(len(some), np.float64)
        gone = np.zeros(len(some), bool)
        s = self.spans
        for i in range(int(count.max())):
            j = np.minimum(lo + i, len(s.start) - 1)
            run = (i < count) & (s.start[j] <= ts) & (ts < s.end[j])
            d = s.depth[j]
            best = np.where(run, np.maximum(best, d), best)
            gone |= run & (d < 0)
        return some, best, gone


@numba.njit(cache=True, nogil=True, inline="always")
def span_state(offsets: np.ndarray, start: np.ndarray, end: np.ndarray, depth: np.ndarray,
               p: int, t: int) -> tuple[float, bool]:  # pragma: no cover - compiled
    """Numba: ``(depth, out)`` of product ``p`` at ``t`` from spans grouped by product
    (:meth:`Catalog.spans`): the deepest running sale (0 if none), a stock-out runs."""
    b, g = 0.0, False
    for j in range(offsets[p], offsets[p + 1]):
        if start[j] <= t and t < end[j]:
            d = depth[j]
            b = max(b, d)
            g = g or d < 0
    return b, g


@numba.njit(cache=True, nogil=True)
def _lookup_kernel(offsets: np.ndarray, start: np.ndarray, end: np.ndarray,
                   depth: np.ndarray, product: np.ndarray, t: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """:meth:`_Index.lookup`: each query walks the spans of its product."""
    m = len(product)
    best = np.zeros(m, np.float64)
    gone = np.zeros(m, np.bool_)
    sale = np.empty(m, np.int64)
    n_sale = 0
    for i in range(m):
        b, g = span_state(offsets, start, end, depth, product[i], t[i])
        best[i] = b
        gone[i] = g
        if b > 0:
            sale[n_sale] = i
            n_sale += 1
    return best, gone, sale[:n_sale]


@numba.njit(cache=True, nogil=True)
def _extent(product: np.ndarray, t: np.ndarray
            ) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """``(min product, max product, min t, max t)`` of m >= 1 queries, one pass."""
    p0 = p1 = product[0]
    t0 = t1 = t[0]
    for i in range(1, len(product)):
        p0, p1 = min(p0, product[i]), max(p1, product[i])
        t0, t1 = min(t0, t[i]), max(t1, t[i])
    return p0, p1, t0, t1


class Catalog:
    """The products of a run: list prices, margins, and the sales and stock-outs of
    every day (drawn lazily, keyed by ``(seed, product, day)``).

    Parameters
    ----------
    seed : int
        The run's seed (required).
    preset : str, Preset or mapping
        The population preset: ``n_categories``, item prices and the catalog fields.
    """

    def __init__(self, seed: int | None, preset: str | Preset | Mapping[str, Any] = "retail"
                 ) -> None:
        self._seed = check_seed(seed)
        self._preset = get_preset(preset)
        self._build()

    def _build(self) -> None:
        p = self._preset
        self._rng = KeyedRandom(self._seed)
        n_cat = p.n_categories
        n = n_cat * PRODUCTS_PER_CATEGORY
        uc = self._rng.dense_uniforms(0, n_cat, 0, PURPOSES["catalog"], k=3)
        up = self._rng.dense_uniforms(0, n, 1, PURPOSES["catalog"], k=2)
        s2 = p.item_price_sigma**2
        s_cat = np.sqrt(s2 * p.category_price_share)
        s_prod = np.sqrt(s2 * (1.0 - p.category_price_share))
        cat = np.arange(n, dtype=np.int64) // PRODUCTS_PER_CATEGORY
        log_price = (s_cat * normal_from_uniforms(uc[:, 0], uc[:, 1]))[cat] + (
            s_prod * normal_from_uniforms(up[:, 0], up[:, 1]))
        raw = np.exp(log_price)
        self._category = cat
        self._list_price = np.maximum(np.round(raw * (p.item_price_mean / raw.mean()), 2), 0.01)
        margin = p.margin_rate_mean + p.margin_rate_spread * (2.0 * uc[:, 2] - 1.0)
        self._category_margin = np.clip(margin, 0.0, 1.0)
        self._days: dict[int, tuple[_Spans, _Spans]] = {}
        self._windows: dict[tuple[int, int], _Index] = {}
        self._empty = _Index.build(_EMPTY, n)
        self._events: dict[int, CatalogBatch] = {}

    # -- static ---------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self._seed

    @property
    def preset(self) -> Preset:
        """The preset the catalog was drawn from."""
        return self._preset

    def __len__(self) -> int:
        return len(self._category)

    @property
    def product_id(self) -> np.ndarray:
        """All product ids, int64 (n,) (= positions)."""
        return np.arange(len(self), dtype=np.int64)

    @property
    def category(self) -> np.ndarray:
        """Category of every product, int64 (n,)."""
        return self._category

    @property
    def list_price(self) -> np.ndarray:
        """List (undiscounted) price of every product, currency, float64 (n,)."""
        return self._list_price

    @property
    def category_margin_rate(self) -> np.ndarray:
        """Gross margin rate of every category (fraction of the list price), (n_categories,)."""
        return self._category_margin

    @property
    def margin_rate(self) -> np.ndarray:
        """Gross margin rate of every product (its category's), float64 (n,)."""
        return self._category_margin[self._category]

    @property
    def unit_cost(self) -> np.ndarray:
        """Cost of one unit of every product, currency: ``list_price (1 - margin_rate)``."""
        return np.round(self._list_price * (1.0 - self.margin_rate), 2)

    # -- state at a time ---------------------------------------------------------

    def state(self, product: np.ndarray, t: np.ndarray | int
              ) -> tuple[np.ndarray, np.ndarray]:
        """``(price, in_stock)`` of ``product`` (int ids, (m,)) at time ``t`` (s; scalar
        or (m,)): price in currency, float64 (m,), and whether it is in stock, bool (m,).
        :meth:`state_reference` is its specification."""
        product = np.asarray(product, np.int64)
        t = np.asarray(t, np.int64)
        if t.shape != product.shape:
            t = np.broadcast_to(t, product.shape)
        if len(product) == 0:
            return np.zeros(0, np.float64), np.zeros(0, bool)
        p0, p1, t0, t1 = _extent(product, t)
        if p0 < 0 or p1 >= len(self):
            self._query(product, t)  # raises
        depth, out, sale = self._window_of(t0 // DAY, t1 // DAY).lookup(product, t)
        return self.sale_price(product, depth, sale), ~out

    def sale_price(self, product: np.ndarray, depth: np.ndarray, sale: np.ndarray
                   ) -> np.ndarray:
        """Price of ``product`` (int ids, (m,)) given the depth of its deepest running
        sale (float64 (m,), 0 if none) and the positions ``sale`` where depth > 0:
        ``round(list price (1 - depth), 2)`` there, the list price elsewhere, float64."""
        price = self._list_price[product]
        if len(sale):
            price[sale] = (price[sale] * (1.0 - depth[sale])).round(2)
        return price

    def spans(self, t_lo: int, t_hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
        """``(offsets, start, end, depth)``: the sales and stock-outs (depth -1) that can
        run at any time in ``[t_lo, t_hi]`` (s), grouped by product (those of product
        ``p`` are ``offsets[p]:offsets[p + 1]``), for kernels that look states up
        themselves (``start <= t < end``, as in :meth:`state`)."""
        idx = self._window_of(int(t_lo) // DAY, int(t_hi) // DAY)
        s = idx.spans
        return idx.offsets, s.start, s.end, s.depth

    def state_reference(self, product: np.ndarray, t: np.ndarray | int
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`state` with the numpy span lookup (:meth:`_Index.state_reference`)."""
        product, t = self._query(product, t)
        some, depth, out = self._window(t).state_reference(product, t)
        price = self._list_price[product]
        stock = np.ones(len(product), bool)
        if len(some):
            sale = depth > 0
            on_sale = some[sale]
            price[on_sale] = np.round(price[on_sale] * (1.0 - depth[sale]), 2)
            stock[some[out]] = False
        return price, stock

    def price(self, product: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        """Price of ``product`` at time ``t`` (s), currency, float64 (m,)."""
        return self.state(product, t)[0]

    def in_stock(self, product: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        """Whether ``product`` is in stock at time ``t`` (s), bool (m,)."""
        return self.state(product, t)[1]

    def to_pandas(self, t: int) -> pd.DataFrame:
        """The products table at time ``t``: category, list price, price, margin rate,
        unit cost and in-stock flag, indexed by ``product_id``."""
        ids = self.product_id
        return pd.DataFrame(
            {"category": self._category, "list_price": self._list_price,
             "price": self.price(ids, t), "margin_rate": self.margin_rate,
             "unit_cost": self.unit_cost, "in_stock": self.in_stock(ids, t)},
            index=pd.Index(ids, name="product_id"))

    # -- events ------------------------------------------------------------------

    def events(self, t0: int, t1: int) -> CatalogBatch:
        """Catalog events with ``t0 < time <= t1``, sorted by (time, product, type)."""
        if t1 <= t0:
            return CatalogBatch.empty()
        parts = []
        for day in range(int(t0) // DAY, int(t1) // DAY + 1):
            b = self._day_events(day)
            keep = (b.time > t0) & (b.time <= t1)
            parts.append(b[keep])
        return CatalogBatch.concat(parts)

    def _day_events(self, day: int) -> CatalogBatch:
        hit = self._events.get(day)
        if hit is not None:
            return hit
        sales = self._day(day)[0]
        # a sale's start is a price drop when the price falls there
        new = self.price(sales.product, sales.start)
        old = self.price(sales.product, sales.start - 1)
        drop = new < old
        # a stock-out ending today is a restock unless another stock-out still runs
        ending = _Spans.concat([self._day(d)[1] for d in range(day - MAX_EVENT_DAYS, day + 1)])
        today = (ending.end >= day * DAY) & (ending.end < (day + 1) * DAY)
        rp, rt = ending.product[today], ending.end[today]
        price, back = self.state(rp, rt)
        rp, rt, price = rp[back], rt[back], price[back]
        n_drop, n_back = int(drop.sum()), len(rp)
        batch = CatalogBatch(
            np.concatenate([sales.start[drop], rt]),
            np.concatenate([np.full(n_drop, _PRICE_DROP, np.int64),
                            np.full(n_back, _BACK_IN_STOCK, np.int64)]),
            np.concatenate([sales.product[drop], rp]),
            np.concatenate([old[drop], np.full(n_back, np.nan)]),
            np.concatenate([new[drop], price]),
        )
        batch = batch[np.lexsort((batch.type, batch.product_id, batch.time))]
        self._events[day] = batch
        _trim(self._events)
        return batch

    # -- draws -------------------------------------------------------------------

    def _day(self, day: int) -> tuple[_Spans, _Spans]:
        """The sales and the stock-outs (depth -1) that start on ``day`` (UTC day)."""
        hit = self._days.get(day)
        if hit is not None:
            return hit
        p = self._preset
        u = self._rng.dense_uniforms(0, len(self), day, PURPOSES["catalog_day"], k=7)
        cap = float(MAX_EVENT_DAYS * DAY)

        def spans(rate: float, mean_days: float, cols: tuple[int, int, int]) -> _Spans:
            idx = np.flatnonzero(u[:, cols[0]] < rate)
            start = day * DAY + np.floor(u[idx, cols[1]] * DAY).astype(np.int64)
            length = np.clip(-np.log(u[idx, cols[2]]) * mean_days * DAY, float(HOUR), cap)
            return _Spans(idx.astype(np.int64), start, start + length.astype(np.int64),
                          np.full(len(idx), -1.0))

        sales = spans(p.price_drop_rate_per_day, p.price_drop_mean_days, (0, 1, 2))
        depth = p.price_drop_min + (p.price_drop_max - p.price_drop_min) * u[sales.product, 3]
        sales = _Spans(sales.product, sales.start, sales.end, depth)
        outs = spans(p.stockout_rate_per_day, p.restock_mean_days, (4, 5, 6))
        self._days[day] = (sales, outs)
        _trim(self._days)
        return sales, outs

    def _window(self, t: np.ndarray) -> _Index:
        """Sales and stock-outs (depth -1) that overlap the days of the times ``t``,
        grouped by product (cached for the last few ranges of days)."""
        if len(t) == 0:
            return self._empty
        return self._window_of(int(t.min()) // DAY, int(t.max()) // DAY)

    def _window_of(self, lo: int, hi: int) -> _Index:
        """:meth:`_window` of the UTC days ``lo..hi``: a cached window that covers them
        (a lookup only sees the spans running at its time, so any covering window gives
        the same states), else a new one of days ``lo..max(hi, lo + _WINDOW_DAYS)``."""
        for (a, b), hit in self._windows.items():
            if a <= lo and hi <= b:
                return hit
        hi = max(hi, lo + _WINDOW_DAYS)
        days = [self._day(d) for d in range(lo - MAX_EVENT_DAYS, hi + 1)]
        spans = _Spans.concat([x for sales, outs in days for x in (sales, outs)])
        keep = (spans.end > lo * DAY) & (spans.start < (hi + 1) * DAY)
        out = _Index.build(_Spans(spans.product[keep], spans.start[keep], spans.end[keep],
                                  spans.depth[keep]), len(self))
        self._windows[(lo, hi)] = out
        if len(self._windows) > 16:
            self._windows.pop(next(iter(self._windows)))
        return out

    def _query(self, product: np.ndarray, t: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        product = np.asarray(product, np.int64)
        t = np.asarray(t, np.int64)
        if t.shape != product.shape:
            t = np.broadcast_to(t, product.shape)
        if len(product) and (product.min() < 0 or product.max() >= len(self)):
            bad = product[(product < 0) | (product >= len(self))][0]
            raise SpecError(f"product: expected ids in [0, {len(self)}), got {int(bad)}")
        return product, t

    # -- pickling ----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Only the seed and the preset: everything else is recomputed (pure)."""
        return {"seed": self._seed, "preset": self._preset}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._seed = state["seed"]
        self._preset = state["preset"]
        self._build()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Catalog):
            return NotImplemented
        return self._seed == other._seed and self._preset == other._preset

    def __repr__(self) -> str:
        return f"Catalog(seed={self._seed}, products={len(self)})"


_Z = np.zeros(0, np.int64)
_EMPTY = _Spans(_Z, _Z, _Z, np.zeros(0, np.float64))




def _trim(cache: dict[int, Any]) -> None:
    """Keep the ``_CACHE_DAYS`` latest days of a day-keyed cache."""
    while len(cache) > _CACHE_DAYS:
        cache.pop(min(cache))
