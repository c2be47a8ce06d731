"""The subscriber population: a struct of arrays, one row per subscriber.

:meth:`Population.generate` draws every subscriber's traits from keyed random numbers
(:meth:`~sim.rng.KeyedRandom.dense_uniforms`, purpose ``population``), so subscriber ``i`` gets the
same traits whether the population is generated whole or in shards
(``generate(n, seed=s, start=k)`` makes ids ``k .. k+n-1``). The arrays hold both
traits (fixed) and state (evolving during a run: engagement, intent, fatigue, cart,
lifecycle, subscription). :meth:`Population.to_pandas` gives the ``subscribers`` table
of docs/domain.md.

Example
-------
>>> pop = Population.generate(1000, seed=1)
>>> df = pop.to_pandas()
>>> len(df), int(df.index[0]), sorted(set(df.lifecycle_stage))[:2]
(1000, 0, ['customer', 'lapsed'])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from policies.errors import SpecError
from sim.clock import DAY
from sim.presets import LIFECYCLE_STAGES, Preset, get_preset
from sim.rng import PURPOSES, KeyedRandom, check_seed

__all__ = ["DEFAULT_START_TIME", "NEVER", "Population", "kumaraswamy"]

#: Default snapshot time of a generated population: 2024-01-01T00:00:00Z.
DEFAULT_START_TIME = 1_704_067_200
#: Sentinel time meaning "never" (e.g. no purchase yet), seconds.
NEVER = -(2**62)

_STAGE = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}


def kumaraswamy(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """Inverse CDF of the Kumaraswamy(a, b) distribution on [0, 1] (a Beta look-alike)."""
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)


def _categorical(u: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, u, side="right").clip(0, len(w) - 1)


#: The columns of the ``subscribers`` table (docs/domain.md), in their order.
TABLE_COLUMNS: tuple[str, ...] = (
    "lifecycle_stage", "engagement_score", "conversion_readiness", "educational_seeker",
    "preferred_hour", "utc_offset_minutes", "days_since_engagement", "price_sensitivity",
    "top_category", "subscribed", "signup_time", "second_category", "n_purchases",
    "cart_value", "last_engaged_at",
)


def _table_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """``columns`` in table order; an unknown name is an error."""
    wanted = set(columns)
    unknown = sorted(wanted - set(TABLE_COLUMNS))
    if unknown:
        raise SpecError(f"columns: unknown subscriber table columns {unknown}; "
                        f"expected some of {list(TABLE_COLUMNS)}")
    return tuple(c for c in TABLE_COLUMNS if c in wanted)


@dataclass(eq=False)
class Population:
    """Subscribers ``start .. start+n-1`` as a struct of arrays (shape (n,) each).

    Traits: ``engagement_base``, ``intent_base`` (latent purchase intent, probability
    scale), ``educational_seeker``, ``privacy_proxy`` (mail-privacy proxy: machine
    opens), ``preferred_hour`` (local 0..23), ``utc_offset_minutes``,
    ``price_sensitivity`` in [0, 1], ``top_category``/``second_category`` (category
    affinities), ``signup_time`` (s).

    State: ``lifecycle`` (code into :data:`~sim.presets.LIFECYCLE_STAGES`),
    ``engagement`` in [0, 1], ``intent`` in [0, 1], ``npe`` (hidden net positive
    exposure; negative = fatigued), ``subscribed``, ``last_engaged`` and
    ``last_purchase`` (s, :data:`NEVER` if never), ``n_purchases``, the open cart
    (``cart_value`` currency, ``cart_items``, ``cart_time`` s of the last add,
    ``cart_seq`` bumped whenever a cart is bought, cleared or replaced,
    ``cart_product`` the product of the last add, int32, -1 if no cart,
    ``return_time`` s of a scheduled organic return purchase, 0 if none).
    """

    start: int
    time: int
    preset: Preset
    lifecycle: np.ndarray
    engagement: np.ndarray
    engagement_base: np.ndarray
    intent: np.ndarray
    intent_base: np.ndarray
    educational_seeker: np.ndarray
    privacy_proxy: np.ndarray
    preferred_hour: np.ndarray
    utc_offset_minutes: np.ndarray
    price_sensitivity: np.ndarray
    top_category: np.ndarray
    second_category: np.ndarray
    npe: np.ndarray
    subscribed: np.ndarray
    signup_time: np.ndarray
    last_engaged: np.ndarray
    last_purchase: np.ndarray
    n_purchases: np.ndarray
    cart_value: np.ndarray
    cart_items: np.ndarray
    cart_time: np.ndarray
    cart_seq: np.ndarray
    cart_product: np.ndarray
    return_time: np.ndarray

    _SCALARS: ClassVar[tuple[str, ...]] = ("start", "time", "preset")

    # -- construction --------------------------------------------------------

    @classmethod
    def generate(
        cls,
        n: int,
        *,
        seed: int | None = None,
        preset: str | Preset | Mapping[str, Any] = "retail",
        start: int = 0,
        time: int = DEFAULT_START_TIME,
    ) -> Population:
        """Draw ``n`` subscribers with ids ``start .. start+n-1``.

        Parameters
        ----------
        n : int
            Number of subscribers (>= 0).
        seed : int
            Required. Subscriber ``i``'s traits depend only on ``(seed, i)``.
        preset : str, Preset or mapping
            A name from :data:`~sim.presets.PRESETS`, a :class:`Preset`, or overrides.
        start : int
            First subscriber id (>= 0).
        time : int
            The simulated time the population describes, seconds since the epoch.
        """
        seed = check_seed(seed)
        p = get_preset(preset)
        for name, value in (("n", n), ("start", start)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise SpecError(f"{name}: expected an integer >= 0, got {value!r}")
        u = KeyedRandom(seed).dense_uniforms(start, start + n, 0, PURPOSES["population"], k=16)
        mix = p.mix()
        stage_w = [float(mix.get(s, 0.0)) for s in LIFECYCLE_STAGES]
        lifecycle = _categorical(u[:, 0], stage_w).astype(np.int8)
        lapsed = lifecycle == _STAGE["lapsed"]
        eng = kumaraswamy(u[:, 1], p.engagement_alpha, p.engagement_beta)
        eng = np.where(lapsed, eng * p.lapsed_engagement_factor, eng)
        intent = kumaraswamy(u[:, 2], p.intent_alpha, p.intent_beta)
        new = lifecycle == _STAGE["new_subscriber"]
        age_days = np.where(
            new,
            u[:, 3] * p.new_subscriber_days,
            p.new_subscriber_days + u[:, 3] * (p.max_signup_age_days - p.new_subscriber_days),
        )
        signup = time - (age_days * DAY).astype(np.int64)
        since_purchase = np.select(
            [
                lifecycle == _STAGE["new_customer"],
                lifecycle == _STAGE["customer"],
                lapsed,
            ],
            [
                u[:, 4] * 30.0,
                u[:, 4] * 0.8 * p.lapse_after_days,
                p.lapse_after_days + u[:, 4] * 200.0,
            ],
            default=np.nan,
        )
        bought = ~np.isnan(since_purchase)
        last_purchase = np.where(
            bought, time - (np.nan_to_num(since_purchase) * DAY).astype(np.int64), NEVER
        )
        n_purchases = np.select(
            [
                lifecycle == _STAGE["new_customer"],
                lifecycle == _STAGE["customer"],
                lapsed,
            ],
            [1, 2 + np.floor(u[:, 5] * 6), 1 + np.floor(u[:, 5] * 4)],
            default=0,
        ).astype(np.int32)
        since_engaged = -np.log(u[:, 6]) * (1.0 + 25.0 * (1.0 - eng) ** 2)
        since_engaged = np.minimum(since_engaged, age_days)
        top = np.floor(u[:, 7] * p.n_categories).astype(np.int8)
        second = ((top + 1 + np.floor(u[:, 8] * (p.n_categories - 1))) % p.n_categories).astype(
            np.int8
        )
        offsets = np.asarray(p.utc_offsets_minutes, np.int16)[
            _categorical(u[:, 9], p.utc_offset_weights)
        ]
        return cls(
            start=int(start),
            time=int(time),
            preset=p,
            lifecycle=lifecycle,
            engagement=eng.astype(np.float32),
            engagement_base=eng.astype(np.float32),
            intent=intent.astype(np.float32),
            intent_base=intent.astype(np.float32),
            educational_seeker=u[:, 10] < p.educational_share,
            privacy_proxy=u[:, 11] < p.privacy_proxy_share,
            preferred_hour=_categorical(u[:, 12], p.preferred_hour_weights).astype(np.int8),
            utc_offset_minutes=offsets,
            price_sensitivity=kumaraswamy(
                u[:, 13], p.price_sensitivity_alpha, p.price_sensitivity_beta
            ).astype(np.float32),
            top_category=top,
            second_category=second,
            npe=np.zeros(n, np.float32),
            subscribed=np.ones(n, bool),
            signup_time=signup.astype(np.int64),
            last_engaged=(time - (since_engaged * DAY)).astype(np.int64),
            last_purchase=last_purchase.astype(np.int64),
            n_purchases=n_purchases,
            cart_value=np.zeros(n, np.float32),
            cart_items=np.zeros(n, np.int8),
            cart_time=np.full(n, NEVER, np.int64),
            cart_seq=np.zeros(n, np.int32),
            cart_product=np.full(n, -1, np.int32),
            return_time=np.zeros(n, np.int64),
        )

    # -- access ----------------------------------------------------------------

    @classmethod
    def array_fields(cls) -> tuple[str, ...]:
        """Names of the per-subscriber arrays."""
        return tuple(f.name for f in fields(cls) if f.name not in cls._SCALARS)

    def __len__(self) -> int:
        return len(self.lifecycle)

    @property
    def stop(self) -> int:
        """One past the last subscriber id."""
        return self.start + len(self)

    @property
    def ids(self) -> np.ndarray:
        """Subscriber ids, int64 (n,)."""
        return np.arange(self.start, self.stop, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-subscriber arrays."""
        return int(sum(getattr(self, f).nbytes for f in self.array_fields()))

    def index_of(self, subscriber: np.ndarray) -> np.ndarray:
        """Row positions of subscriber ids; raises :class:`SpecError` for foreign ids."""
        sub = np.asarray(subscriber, np.int64)
        idx = sub - self.start
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            bad = sub[(idx < 0) | (idx >= len(self))][0]
            raise SpecError(
                f"subscriber: expected ids in [{self.start}, {self.stop}), got {int(bad)}"
            )
        return idx

    def readiness(self) -> np.ndarray:
        """Observable conversion readiness in [0, 1] (float64, (n,))."""
        has_cart = (self.cart_value > 0).astype(np.float64)
        return np.clip(1.6 * self.intent.astype(np.float64) + 0.25 * has_cart, 0.0, 1.0)

    def copy(self) -> Population:
        """A deep copy (arrays copied)."""
        kw: dict[str, Any] = {name: getattr(self, name) for name in self._SCALARS}
        kw.update({f: getattr(self, f).copy() for f in self.array_fields()})
        return Population(**kw)

    def slice(self, lo: int, hi: int) -> Population:
        """Subscribers with ids in ``[lo, hi)`` (copies)."""
        a, b = max(lo, self.start) - self.start, min(hi, self.stop) - self.start
        kw: dict[str, Any] = {"start": self.start + a, "time": self.time, "preset": self.preset}
        kw.update({f: getattr(self, f)[a:b].copy() for f in self.array_fields()})
        return Population(**kw)

    @classmethod
    def concat(cls, parts: Iterable[Population]) -> Population:
        """Join populations with consecutive id ranges."""
        parts = list(parts)
        if not parts:
            raise SpecError("parts: expected at least one population, got none")
        for a, b in itertools.pairwise(parts):
            if a.stop != b.start:
                raise SpecError(f"parts: expected consecutive ids, got {a.stop} then {b.start}")
        kw: dict[str, Any] = {"start": parts[0].start, "time": parts[0].time,
                              "preset": parts[0].preset}
        kw.update({f: np.concatenate([getattr(p, f) for p in parts]) for f in cls.array_fields()})
        return Population(**kw)

    def equals(self, other: Population) -> bool:
        """Same ids and bit-identical arrays."""
        return (
            self.start == other.start
            and len(self) == len(other)
            and all(
                np.array_equal(getattr(self, f), getattr(other, f), equal_nan=True)
                for f in self.array_fields()
            )
        )

    def to_pandas(self, now: int | None = None, columns: Sequence[str] | None = None,
                  rows: np.ndarray | None = None) -> pd.DataFrame:
        """The ``subscribers`` table (docs/domain.md), indexed by ``subscriber``.

        Parameters
        ----------
        now : int, optional
            Time (s) at which ``days_since_engagement`` is measured; defaults to
            :attr:`time`.
        columns : sequence of str, optional
            Only these columns of :data:`TABLE_COLUMNS` (kept in that order; default all):
            a large population's daily table costs only what is read of it.
        rows : int array, optional
            Only these rows (0-based positions, in the order given; default all).
        """
        t = self.time if now is None else int(now)
        names = TABLE_COLUMNS if columns is None else _table_columns(columns)
        sel: Any = slice(None) if rows is None else np.asarray(rows, np.int64)
        make: dict[str, Callable[[], np.ndarray]] = {
            "lifecycle_stage": lambda: np.array(LIFECYCLE_STAGES, dtype=object)[
                self.lifecycle[sel]],
            "engagement_score": lambda: self.engagement[sel].astype(np.float64),
            "conversion_readiness": lambda: self.readiness()[sel],
            "educational_seeker": lambda: self.educational_seeker[sel].copy(),
            "preferred_hour": lambda: self.preferred_hour[sel].astype(np.int64),
            "utc_offset_minutes": lambda: self.utc_offset_minutes[sel].astype(np.int64),
            "days_since_engagement": lambda: np.maximum(t - self.last_engaged[sel], 0) / DAY,
            "price_sensitivity": lambda: self.price_sensitivity[sel].astype(np.float64),
            "top_category": lambda: self.top_category[sel].astype(np.int64),
            "subscribed": lambda: self.subscribed[sel].copy(),
            "signup_time": lambda: self.signup_time[sel].copy(),
            "second_category": lambda: self.second_category[sel].astype(np.int64),
            "n_purchases": lambda: self.n_purchases[sel].astype(np.int64),
            "cart_value": lambda: self.cart_value[sel].astype(np.float64),
            "last_engaged_at": lambda: self.last_engaged[sel].astype(np.int64),
        }
        return pd.DataFrame({c: make[c]() for c in names},
                            index=pd.Index(self.ids[sel], name="subscriber"))
