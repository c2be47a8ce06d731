"""The simulated world of one shard: the loop the runtime drives tick by tick.

A :class:`World` owns subscribers ``[start, stop)`` (a :class:`~sim.population.Population`)
and everything that will happen to them: the organic session schedule of the current
day and a buffer of future events (rest of sessions, organic cart returns, email
responses). The driver moves time; the world never reads a clock::

    world = World(Population.generate(n, seed=1, start=k), seed=1)
    clock = SimClock(start=world.now, step=900)
    for _ in range(ticks):
        world.send(emails)               # emails delivered at clock.now (tick boundary)
        t0, t1 = clock.advance()
        events = world.step(t0, t1)      # EventBatch of everything in (t0, t1]
        catalog = world.catalog_events(t0, t1)  # CatalogBatch: price drops, restocks

``catalog_events`` is a pure function of the seed, the preset and the interval (the
catalog, :mod:`sim.catalog`, is global): every shard returns the same batch, any number
of times, so the runtime may ask any one shard (or all) and pass it to the engine as
``engine.process(events, until=t1, catalog=catalog)``.

Guarantees:

* :meth:`step` returns the events with ``t0 < time <= t1`` sorted by (time, subscriber);
  intervals must be contiguous (``t0 == world.now``), so the caller never receives an
  event earlier than one already handed over;
* :meth:`send` accepts emails delivered at ``time >= now`` and buffers their responses,
  which all lie strictly after the send;
* results depend only on the seed and the subscribers' ids, never on how subscribers
  are split into shards: concatenating the events of shards ``[0, n/2)`` and
  ``[n/2, n)`` (and sorting by time, subscriber) gives the events of ``[0, n)`` bit for
  bit;
* the world pickles (a few hundred bytes per subscriber) for checkpoints and Ray.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from policies.errors import LateEventError, SpecError
from policies.events import EventBatch
from policies.triggers.catalog import CatalogBatch
from sim import _events as E
from sim._buffer import EventBuffer
from sim.behavior import (
    SessionSchedule,
    daily_update,
    realize_sessions,
    schedule_day,
)
from sim.catalog import Catalog
from sim.clock import DAY
from sim.delays import within_window
from sim.population import Population
from sim.response import EmailBatch, probabilities
from sim.response_sparse import apply_fatigue, respond
from sim.rng import KeyedRandom, check_seed
from sim.state import apply_events, valid_mask

__all__ = ["SEND_CHUNK", "World", "subscriber_parts"]


#: Emails per part of a large :meth:`World.send` (bounds the memory of a campaign tick:
#: its draws take about 0.5 kB per email).
SEND_CHUNK = 1 << 18


def subscriber_parts(emails: EmailBatch, size: int) -> Iterator[EmailBatch]:
    """``emails`` in parts of about ``size`` rows (more when one subscriber has more),
    every subscriber's emails in one part and in their order; the batch itself when it
    is not larger than ``size``."""
    n = len(emails)
    if n <= size:
        yield emails
        return
    sub = emails.subscriber
    order = None if bool((sub[1:] >= sub[:-1]).all()) else np.argsort(sub, kind="stable")
    key = sub if order is None else sub[order]
    a = 0
    while a < n:
        b = n if a + size >= n else int(np.searchsorted(key, key[a + size - 1], side="right"))
        yield emails.take(np.arange(a, b) if order is None else np.sort(order[a:b]))
        a = b


class World:
    """One shard of the simulated world.

    Parameters
    ----------
    population : Population
        The shard's subscribers; the world takes ownership and mutates its state.
    seed : int
        Required; the same seed as the population for a reproducible run.
    now : int, optional
        Start time (s); defaults to ``population.time``.
    bucket_seconds : int
        Accepted for compatibility (an int > 0); the future-event buffer no longer
        buckets by time (:mod:`sim._buffer`), and results never depended on it.
    """

    def __init__(
        self,
        population: Population,
        *,
        seed: int | None = None,
        now: int | None = None,
        bucket_seconds: int = 3600,
    ) -> None:
        self._seed = check_seed(seed)
        if not isinstance(population, Population):
            raise SpecError(f"population: expected a Population, got {type(population).__name__}")
        if isinstance(bucket_seconds, bool) or not isinstance(bucket_seconds, int) or (
            bucket_seconds <= 0
        ):
            raise SpecError(f"bucket_seconds: expected an int > 0, got {bucket_seconds!r}")
        self._pop = population
        self._rng = KeyedRandom(self._seed)
        self._catalog = Catalog(self._seed, population.preset)
        self._now = int(population.time if now is None else now)
        self._bucket = bucket_seconds
        self._buffer = EventBuffer()
        self._sessions = SessionSchedule.empty()
        self._next_day = self._now // DAY  # first day whose sessions are not scheduled
        self._first_day = self._next_day
        self._emitted = 0
        self._sent = 0

    # -- read-only views ---------------------------------------------------------

    @property
    def now(self) -> int:
        """End of the last interval stepped (s); emails may be sent at or after it."""
        return self._now

    @property
    def population(self) -> Population:
        """The live subscriber state (do not mutate)."""
        return self._pop

    @property
    def catalog(self) -> Catalog:
        """The run's product catalog (prices, margins, stock; the same on every shard)."""
        return self._catalog

    @property
    def seed(self) -> int:
        """The seed of the run."""
        return self._seed

    @property
    def start(self) -> int:
        """First subscriber id of the shard."""
        return self._pop.start

    @property
    def stop(self) -> int:
        """One past the last subscriber id of the shard."""
        return self._pop.stop

    def pending(self) -> int:
        """Number of buffered future events (sessions not yet started excluded)."""
        return self._buffer.pending()

    def stats(self) -> dict[str, int]:
        """Counters: events emitted, emails sent, events and sessions pending."""
        return {"events_emitted": self._emitted, "emails_sent": self._sent,
                "events_pending": self.pending(), "sessions_pending": len(self._sessions)}

    def subscribers(self, now: int | None = None, columns: Sequence[str] | None = None,
                    rows: np.ndarray | None = None) -> pd.DataFrame:
        """The ``subscribers`` table (docs/domain.md) at ``now`` (default: :attr:`now`):
        only ``columns`` and ``rows`` if given (see :meth:`Population.to_pandas`)."""
        return self._pop.to_pandas(self._now if now is None else now, columns, rows)

    # -- the loop ----------------------------------------------------------------

    def step(self, t0: int, t1: int) -> EventBatch:
        """Advance from ``t0`` (must equal :attr:`now`) to ``t1``; return events in (t0, t1]."""
        t0, t1 = _interval(t0, t1)
        if t0 != self._now:
            raise LateEventError(
                f"t0: expected the end of the previous step {self._now}, got {t0}"
            )
        out: list[E.Events] = []
        last_day = t1 // DAY
        while self._next_day <= last_day:
            day = self._next_day
            # emit what happens before the day starts, then update and schedule the day
            boundary = day * DAY
            if boundary > self._now:
                out.append(self._advance(boundary))
            if day > self._first_day:
                daily_update(self._pop, self._rng, day)
            sched = schedule_day(self._pop, self._rng, day, after=self._now)
            self._sessions = SessionSchedule.concat([self._sessions, sched])
            self._next_day += 1
        out.append(self._advance(t1))
        ev = E.concat(out)
        self._emitted += E.size(ev)
        return E.to_batch(ev)

    def catalog_events(self, t0: int, t1: int) -> CatalogBatch:
        """The catalog's events with ``t0 < time <= t1`` (price drops, back in stock),
        sorted by (time, product, type); pure: the same on every shard, at any time."""
        return self._catalog.events(*_interval(t0, t1))

    def _advance(self, t1: int) -> E.Events:
        """Start sessions in (now, t1], emit buffered events <= t1, update state."""
        n_start = int(np.searchsorted(self._sessions.start, t1, side="right"))
        if n_start:
            starting = self._sessions.take(slice(0, n_start))
            self._sessions = self._sessions.take(slice(n_start, None))
            self._push(realize_sessions(self._pop, self._rng, starting, self._catalog))
        ev = self._buffer.pop_sorted(t1)  # by (time, subscriber), ties in push order
        if E.size(ev):
            keep = valid_mask(self._pop, ev, self._catalog)
            if not keep.all():
                ev = E.take(ev, keep)
            apply_events(self._pop, ev)
        self._now = t1
        return ev

    def send(self, emails: EmailBatch) -> None:
        """Deliver ``emails`` (times >= :attr:`now`); their responses are buffered.

        The fatigue state changes at once; engagement, purchases and unsubscribes change
        when the response events are emitted by :meth:`step`. A large batch is drawn in
        parts of about :data:`SEND_CHUNK` emails (:func:`subscriber_parts`): each
        subscriber's emails in one part, the same results as at once (an email's draws are
        keyed by its subscriber, time and rank among that subscriber's emails; a part
        changes only its own subscribers' fatigue; ties in the buffer are ordered per
        subscriber).
        """
        if not isinstance(emails, EmailBatch):
            raise SpecError(f"emails: expected an EmailBatch, got {type(emails).__name__}")
        if len(emails) == 0:
            return
        if emails.time.min() < self._now:
            raise LateEventError(
                f"emails.time: expected times >= now={self._now}, got {int(emails.time.min())}"
            )
        self._pop.index_of(emails.subscriber)
        for part in subscriber_parts(emails, SEND_CHUNK):
            events, noise = respond(self._pop, part, self._rng)
            apply_fatigue(self._pop, part, noise)
            self._push(events)
        self._sent += len(emails)

    def expected(self, emails: EmailBatch, window: int | None = None) -> pd.DataFrame:
        """Ground truth of ``emails`` if delivered now: one row per email (the per-send
        truth that journey paths are summed from). Does not change state or draw random
        numbers.

        Parameters
        ----------
        emails : EmailBatch
        window : int, optional
            Count only responses landing within ``window`` s of delivery (the basis on
            which the runtime counts them: :func:`sim.delays.within_window`); None: at
            any time after delivery.

        Returns
        -------
        pandas.DataFrame
            The email's keys: ``subscriber``, ``time``, ``campaign``, ``kind``,
            ``series_index``, ``alert_product``, ``drop_fraction``, ``incentive``,
            ``segment``, ``lapsed``; the response model's probabilities ``p_open``,
            ``p_human_open``, ``p_machine_open``, ``p_click``, ``p_click_given_open``,
            ``p_purchase``, ``p_purchase_given_click``, ``p_in_stock``, ``order_value``
            (paid, net of discounts), ``order_margin``, ``margin_rate``, ``discount_value``,
            ``p_unsubscribe``, ``p_purchase_anyway``; expected values per email
            ``expected_revenue`` (net of discounts), ``expected_margin``,
            ``expected_discount``; and vs no send ``p_incremental_purchase``,
            ``expected_incremental_revenue``, ``expected_incremental_margin``. With a
            ``window``, ``p_open``, ``p_click``, ``p_purchase``, ``p_unsubscribe``, the
            expected values and the incremental ones count responses within it. Every
            purchase probability includes ``p_in_stock`` (the catalog's stock when the
            purchase lands).
        """
        pr = probabilities(self._pop, emails, self._catalog)
        if window is not None:
            if isinstance(window, bool) or not isinstance(window, numbers.Integral) or (
                    window < 0):
                raise SpecError(f"window: expected int seconds >= 0, got {window!r}")
            pr = {**pr, **within_window(self._pop, emails, pr, int(window))}
        df = pd.DataFrame({"subscriber": emails.subscriber, "time": emails.time,
                           "campaign": emails.campaign, "kind": emails.kind,
                           "series_index": emails.series_index,
                           "alert_product": emails.alert_product,
                           "drop_fraction": emails.drop_fraction,
                           "incentive": emails.incentive, "segment": pr["segment"],
                           "lapsed": pr["lapsed"]})
        for c in ("p_open", "p_human_open", "p_machine_open", "p_click", "p_click_given_open",
                  "p_purchase", "p_purchase_given_click", "p_in_stock", "order_value",
                  "order_margin", "margin_rate", "discount_value", "p_unsubscribe",
                  "p_purchase_anyway", "expected_revenue", "expected_margin",
                  "expected_discount", "p_incremental_purchase"):
            df[c] = pr[c]
        inc = pr["p_incremental_purchase"]
        df["expected_incremental_revenue"] = inc * pr["order_value"]
        df["expected_incremental_margin"] = inc * pr["order_margin"]
        return df

    # -- buffer --------------------------------------------------------------------

    def _push(self, ev: E.Events) -> None:
        if E.size(ev) == 0:
            return
        if ev["time"].min() <= self._now:
            raise LateEventError(  # an internal invariant: nothing is generated in the past
                f"internal: event at {int(ev['time'].min())} not after now={self._now}"
            )
        self._buffer.push(ev)

    # -- pickling ------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """State with the future-event buffer packed into one set of columns.

        The buffer holds one chunk per :meth:`send` / session batch, so a day's worth is
        hundreds of arrays; a checkpoint ships ``("chunks", rows per chunk, columns)``
        instead (cheap to pickle out of band). The chunks keep their order, so a
        restored world emits the same events.
        """
        state = self.__dict__.copy()
        state["_buffer"] = ("chunks", *self._buffer.pack())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        packed = state["_buffer"]
        if len(packed) == 3:
            buffer = EventBuffer.unpack(packed[1], packed[2])
        else:  # an older checkpoint: (bucket per event, columns) in bucket, push order
            _bucket, ev = packed
            buffer = EventBuffer()
            buffer.push(ev)  # ties share a bucket, where rows are in push order
        self.__dict__.update({**state, "_buffer": buffer})

    def __repr__(self) -> str:
        return (f"World(subscribers=[{self.start}, {self.stop}), now={self._now}, "
                f"pending={self.pending()})")


def _interval(t0: Any, t1: Any) -> tuple[int, int]:
    """``(t0, t1)`` as ints with ``t1 > t0``; raises :class:`SpecError`."""
    for name, value in (("t0", t0), ("t1", t1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SpecError(f"{name}: expected int seconds since the epoch, got {value!r}")
    if int(t1) <= int(t0):
        raise SpecError(f"t1: expected a time after t0={t0}, got {t1}")
    return int(t0), int(t1)
