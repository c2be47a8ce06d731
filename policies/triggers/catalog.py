"""Catalog events: product-level events with no subscriber (``price_drop``,
``back_in_stock``), the input of journeys with a catalog entry (docs/journeys.md).

A :class:`CatalogBatch` is passed beside the subscriber events:
``engine.process(events, until=..., catalog=batch)``. At equal times catalog events come
after subscriber events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from policies.checks import is_int, is_real
from policies.errors import InvalidEventError
from policies.event_schema import MAX_TIME, MIN_TIME, time_range_error
from policies.triggers.journeys import CATALOG_EVENT_TYPES

__all__ = ["CatalogBatch", "drop_fraction"]

_PRICE_DROP = CATALOG_EVENT_TYPES.index("price_drop")


def drop_fraction(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """A price drop as a fraction of the price before, ``(old - new) / old`` (float64,
    elementwise; NaN where ``old`` is 0 or a price is missing)."""
    old = np.asarray(old, np.float64)
    new = np.asarray(new, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(old != 0, (old - new) / old, np.nan)


@dataclass(frozen=True, eq=False)
class CatalogBatch:
    """Catalog events as equally long arrays, shape (n,).

    Parameters
    ----------
    time : int64
        Seconds since the epoch, in [MIN_TIME, MAX_TIME).
    type : int64
        Index into :data:`~policies.triggers.journeys.CATALOG_EVENT_TYPES`.
    product_id : int64
        The product (>= 0).
    old_price, new_price : float64
        Currency units (>= 0; NaN = missing; ``back_in_stock`` has no old price).

    Entry properties of a catalog journey: ``product_id``, ``new_price``, and for a
    price drop ``old_price``, ``drop`` (old - new) and ``drop_fraction`` (drop / old).

    >>> b = CatalogBatch.from_records([{"time": 1_700_000_000, "type": "price_drop",
    ...     "product_id": 7, "old_price": 50.0, "new_price": 40.0}])
    >>> b.properties(0)
    {'product_id': 7, 'new_price': 40.0, 'old_price': 50.0, 'drop': 10.0, 'drop_fraction': 0.2}
    """

    time: np.ndarray
    type: np.ndarray
    product_id: np.ndarray
    old_price: np.ndarray
    new_price: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("time", "type", "product_id", "old_price", "new_price"):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != (n,):
                raise InvalidEventError(f"catalog.{name}: expected an array of shape ({n},)")
        if n and (self.time.min() < MIN_TIME or self.time.max() >= MAX_TIME):
            bad = int(self.time[(self.time < MIN_TIME) | (self.time >= MAX_TIME)][0])
            raise InvalidEventError(f"catalog.time: {time_range_error(bad)}")
        if n and ((self.type < 0) | (self.type >= len(CATALOG_EVENT_TYPES))).any():
            raise InvalidEventError(
                f"catalog.type: expected codes of {', '.join(CATALOG_EVENT_TYPES)}")
        if n and (self.product_id < 0).any():
            raise InvalidEventError("catalog.product_id: expected ids >= 0")
        for name in ("old_price", "new_price"):
            arr = getattr(self, name)
            if n and ((arr < 0) | np.isinf(arr)).any():
                raise InvalidEventError(f"catalog.{name}: expected finite prices >= 0 or NaN")
        if n:
            rise = (self.type == _PRICE_DROP) & (self.new_price >= self.old_price)
            if rise.any():
                i = int(np.flatnonzero(rise)[0])
                raise InvalidEventError(
                    f"catalog.new_price: a price_drop's new price must be below its old "
                    f"price, got {self.new_price[i]} from {self.old_price[i]}")

    @classmethod
    def empty(cls) -> CatalogBatch:
        """No catalog events."""
        z = np.zeros(0, np.int64)
        f = np.zeros(0, np.float64)
        return cls(z, z, z, f, f)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> CatalogBatch:
        """From mappings with ``time``, ``type`` (name), ``product_id`` and the prices
        (``old_price`` optional for ``back_in_stock``)."""
        rows = list(records)
        cols: dict[str, list[Any]] = {k: [] for k in ("time", "type", "product_id",
                                                     "old_price", "new_price")}
        for i, rec in enumerate(rows):
            t, kind, product = rec.get("time"), rec.get("type"), rec.get("product_id")
            if not is_int(t):
                raise InvalidEventError(f"catalog[{i}].time: expected int seconds, got {t!r}")
            if kind not in CATALOG_EVENT_TYPES:
                raise InvalidEventError(f"catalog[{i}].type: expected one of "
                                        f"{', '.join(CATALOG_EVENT_TYPES)}, got {kind!r}")
            if not is_int(product):
                raise InvalidEventError(
                    f"catalog[{i}].product_id: expected an int id, got {product!r}")
            prices = []
            for name in ("old_price", "new_price"):
                v = rec.get(name)
                if v is not None and not is_real(v):
                    raise InvalidEventError(f"catalog[{i}].{name}: expected a number, got {v!r}")
                prices.append(np.nan if v is None else float(v))
            cols["time"].append(int(cast(int, t)))
            cols["type"].append(CATALOG_EVENT_TYPES.index(kind))
            cols["product_id"].append(int(cast(int, product)))
            cols["old_price"].append(prices[0])
            cols["new_price"].append(prices[1])
        return cls(np.array(cols["time"], np.int64), np.array(cols["type"], np.int64),
                   np.array(cols["product_id"], np.int64),
                   np.array(cols["old_price"], np.float64),
                   np.array(cols["new_price"], np.float64))

    @classmethod
    def concat(cls, parts: Iterable[CatalogBatch]) -> CatalogBatch:
        """The batches one after the other."""
        kept = [b for b in parts if len(b)]
        if not kept:
            return cls.empty()
        if len(kept) == 1:
            return kept[0]
        return cls(*(np.concatenate([getattr(b, f) for b in kept])
                     for f in ("time", "type", "product_id", "old_price", "new_price")))

    def __len__(self) -> int:
        return len(self.time)

    def __getitem__(self, key: slice | np.ndarray) -> CatalogBatch:
        return CatalogBatch(self.time[key], self.type[key], self.product_id[key],
                            self.old_price[key], self.new_price[key])

    def sort_by_time(self) -> CatalogBatch:
        """Stably sorted by time."""
        return self[np.argsort(self.time, kind="stable")]

    def type_name(self, i: int) -> str:
        """The event type of row ``i``."""
        return CATALOG_EVENT_TYPES[int(self.type[i])]

    def properties(self, i: int) -> dict[str, Any]:
        """The entry properties of row ``i`` (NaN prices are None)."""
        def price(v: float) -> float | None:
            return None if v != v else float(v)

        old, new = price(self.old_price[i]), price(self.new_price[i])
        out: dict[str, Any] = {"product_id": int(self.product_id[i]), "new_price": new}
        if self.type_name(i) == "price_drop":
            drop = None if old is None or new is None else old - new
            frac = float(drop_fraction(self.old_price[i], self.new_price[i]))
            out.update(old_price=old, drop=drop, drop_fraction=None if frac != frac else frac)
        return out
