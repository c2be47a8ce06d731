"""The trigger engine: decides which behavioral-trigger emails go out, and when.

>>> import pandas as pd
>>> from policies import EventBatch
>>> from policies.triggers import TriggerEngine, default_rules
>>> subs = pd.DataFrame(
...     {"lifecycle_stage": ["prospect"], "engagement_score": [0.8],
...      "days_since_engagement": [1.0], "utc_offset_minutes": [0]},
...     index=pd.Index([7], name="subscriber"))
>>> engine = TriggerEngine(default_rules(), subscribers=subs, engine="reference")
>>> t0 = 1_700_000_000 - 1_700_000_000 % 86400 + 12 * 3600      # noon UTC
>>> events = EventBatch.from_records(
...     [{"subscriber": 7, "time": t0, "type": "add_to_cart", "cart_value": 40.0}])
>>> d = engine.process(events, until=t0 + 86400)
>>> d.to_pandas()[["rule", "kind", "time", "attempt"]].values.tolist()
[['cart_abandonment_24h', 'fire', 1700049600, 1]]

Contract (both implementations obey it; decisions never depend on how the stream is cut
into :meth:`TriggerEngine.process` calls):

1. Events are handled in time order (a batch is stably sorted by time). Before an event
   is handled, every pending instance due at or before its time is decided; ``until``
   decides everything due at or before it.
2. Entry: at an event whose type appears in a rule's ``when``, the subscriber enters the
   rule when every condition holds -- at least ``count`` events of its type satisfying
   its ``where`` lie in ``(t - within, t]`` -- no ``exclude`` event lies in
   ``(t - W, t]`` (W: the rule's largest ``within``), the subscriber matches ``segment``
   (unknown subscriber or missing attribute: no match), has no pending instance of the
   rule, and ``reentry`` allows it (``once``: never fired before; ``cooldown``: counted
   from the last fire). Events of subscribers missing from the table, and events of
   types no rule mentions, are ignored (they only move the clock).
3. The instance is due at entry + ``delay``. An ``exclude`` event after entry and before
   the send cancels it.
4. At the due time: quiet hours (subscriber local time, ``utc_offset_minutes``, missing
   = UTC) postpone the send to their end; a send that would fall after entry +
   ``expire`` expires; the frequency cap suppresses sends beyond ``max`` per rolling
   ``per`` seconds, the highest ``priority`` first among sends due at the same time
   (then rule order). Decisions' ``time`` is the due time.
5. ``report_failures(ids, now)``: after the k-th failure the send is retried at
   ``now + backoff * k`` with the same trigger id and attempt k + 1; after
   ``max_attempts`` failures, or when a newer instance of the rule is already pending,
   it is cancelled. A failed send does not count toward the frequency cap; a repeated
   report of the same failure is ignored. Every id is checked (the latest send of its
   rule to its subscriber, :class:`~policies.triggers.decisions.TriggerIdError` if not)
   before anything due by ``now`` is decided, so a bad report changes nothing; a send
   that a newer send of its rule supersedes while those are decided is cancelled (the
   newer instance was pending when the failure happened).
6. Late events (before the last ``until`` or an event already handled) raise
   :class:`~policies.errors.LateEventError`; with ``on_late="drop"`` they are skipped
   and counted (point 8). Events outside the engine's time range ``[min_time,
   max_time)`` (default 2000-01-01 to 2100-01-01; a live service passes
   ``max_time=now + skew`` and moves it with :meth:`TriggerEngine.set_time_range`) raise
   :class:`~policies.errors.InvalidEventError` before anything is handled; with
   ``on_late="drop"`` they are skipped and counted as ``out_of_range`` (point 8; an event
   both out of range and late counts there only). They never move the clock. ``until``
   and ``now`` must lie in the range too.
7. ``trigger_id`` is ``"<rule>:<subscriber>:<entered_at>"``.
8. Counters, per rule (:meth:`TriggerEngine.stats`; kept in checkpoints): ``entered``,
   instances created; ``fired``, ``cancelled``, ``expired``, ``suppressed``, the
   decisions of that kind returned so far (a send retried twice is fired three times;
   cancellations by ``report_failures`` included); ``pending``, instances waiting now
   (retries included); ``failed``, failures reported (a repeated report not again);
   ``retried``, the failures that scheduled a retry (the others were cancelled);
   ``late``, dropped late events of a type the rule mentions (in ``when`` or
   ``exclude``; an event counts for each such rule); ``out_of_range``, likewise, dropped
   events outside the time range (point 6). :meth:`TriggerEngine.n_late` and
   :meth:`TriggerEngine.n_out_of_range` count every dropped event once, whatever its type
   or subscriber. At every moment
   ``entered + failed = fired + cancelled + expired + suppressed + pending``: an entry
   opens an instance, a reported failure reopens it, and one decision closes it each
   time. So every instance entered is now exactly one of: pending, sent (``fired -
   failed``: its latest send was not reported failed), cancelled, expired, suppressed.
9. Journeys (rules with ``steps``; both engines): docs/journeys.md, "Semantics: the
   engine contract", points 1-11 --
   the same-second order (due first, then the event's exits, wait-until matches,
   entries), zero-duration steps and how quiet hours (postpone, the rest shifts), the
   cap (``suppress``), smart sending (``skip``) and ``expire`` treat a send, one
   instance per rule and subscriber, retries in one retry slot, trigger ids
   ``"<rule>:<subscriber>:<entered_at>:<node>"``, the ``step``/``path``/``propensity``
   columns and ``exit``/``skip``/``branch``/``split`` kinds, A/B and policy splits,
   catalog (``process(..., catalog=CatalogBatch)``), attribute
   (``update_subscribers(df, at=t)``) and inactivity entries. Points 1-8 hold for
   journeys too: decisions do not depend on cuts or checkpoints.
"""

from __future__ import annotations

import copy
import numbers
import pickle
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policies.errors import InvalidEventError, LateEventError, RuleWarning, TriggerLabValueError
from policies.event_schema import (
    EVENT_TYPES,
    MAX_TIME,
    MIN_TIME,
    check_time_bounds,
    time_range_error,
)
from policies.events import EventBatch
from policies.subscriber_schema import check_subscriber_table
from policies.triggers._fast import FastCore
from policies.triggers._fast_journeys import FastJourneyCore
from policies.triggers._migrate import STATE_VERSION, STATE_VERSIONS, upgrade
from policies.triggers._reference import STAT_NAMES as _CORE_STAT_NAMES
from policies.triggers._reference_journeys import JourneyCore
from policies.triggers.catalog import CatalogBatch
from policies.triggers.decisions import Decisions
from policies.triggers.diagnostics import SegmentWatch, diagnose
from policies.triggers.journeys import AttributeEntry
from policies.triggers.rules import load_rules
from policies.triggers.ruleset import RuleSet

__all__ = ["ENGINES", "STAT_NAMES", "TriggerEngine"]

#: Available implementations.
ENGINES: tuple[str, ...] = ("fast", "reference")
#: Columns of :meth:`TriggerEngine.stats` (contract point 8): the implementations'
#: counters, then the events dropped for a time outside the engine's range (counted by
#: the engine front, the same for both implementations).
STAT_NAMES: tuple[str, ...] = (*_CORE_STAT_NAMES, "out_of_range")


def _time(name: str, value: Any, min_time: int = MIN_TIME, max_time: int = MAX_TIME) -> int:
    """``until`` / ``now``: int seconds in the engine's range [min_time, max_time)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidEventError(f"{name}: expected int seconds since the epoch, got {value!r}")
    if not min_time <= int(value) < max_time:
        raise InvalidEventError(f"{name}: {time_range_error(int(value), min_time, max_time)}")
    return int(value)


class TriggerEngine:
    """Behavioral trigger engine over columnar event batches.

    Parameters
    ----------
    rules : RuleSet, dict, YAML text or path
        The rules; anything :func:`~policies.triggers.load_rules` accepts.
    subscribers : pandas.DataFrame
        Indexed by int64 subscriber id; the attributes that ``segment`` refers to and
        ``utc_offset_minutes``. Subscribers missing from it never enter a rule. A bad
        cell in a column the engine reads raises
        :class:`~policies.errors.TriggerLabValueError` naming column, row and value; a
        rule that cannot fire on the table gets a :class:`~policies.errors.RuleWarning`
        (see :meth:`diagnostics`).
    engine : {"fast", "reference"}
        ``fast``: numpy state and a numba-compiled loop; ``reference``: one event at a
        time in plain Python (the executable spec). Both decide identically.
    on_late : {"raise", "drop"}
        What to do with events before the engine clock, and with events outside
        ``[min_time, max_time)``: raise, or skip and count them (:meth:`stats`).
    min_time, max_time : int
        The event times the engine accepts, seconds since the epoch (default
        2000-01-01 to 2100-01-01, as the batch builders); ``until`` and ``now`` must lie
        in the range too. Move them with :meth:`set_time_range`.
    policies : mapping of str to Policy, optional
        The policies journey splits name (``split: {policy: NAME}``); their arms are the
        split's paths in order. The engine only calls ``select``: updating them between
        :meth:`process` calls is the caller's business.
    seed : int
        Seeds the generators of policy splits (keyed by seed, trigger id and node).

    Notes
    -----
    The other parameters are stored unchanged; the subscriber table is read, not kept
    (the engine keeps only what its rules read of it). The state is picklable
    (:meth:`state_dict` / :meth:`from_state_dict`) and there is no global state, so an
    engine can live inside a Ray actor per shard.
    """

    def __init__(
        self,
        rules: RuleSet | Mapping[str, Any] | str | Path,
        *,
        subscribers: pd.DataFrame,
        engine: str = "fast",
        on_late: str = "raise",
        policies: Mapping[str, Any] | None = None,
        seed: int = 0,
        min_time: int = MIN_TIME,
        max_time: int = MAX_TIME,
    ) -> None:
        self.rules = rules
        self.engine = engine
        self.on_late = on_late
        self.policies = policies
        self.seed = seed
        if engine not in ENGINES:
            raise TriggerLabValueError(f"engine: expected 'fast' or 'reference', got {engine!r}")
        if on_late not in ("raise", "drop"):
            raise TriggerLabValueError(f"on_late: expected 'raise' or 'drop', got {on_late!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise TriggerLabValueError(f"seed: expected an int >= 0, got {seed!r}")
        if policies is not None and not isinstance(policies, Mapping):
            raise TriggerLabValueError(
                f"policies: expected a mapping of name to Policy, got {type(policies).__name__}")
        self.min_time: int
        self.max_time: int
        self.min_time, self.max_time = check_time_bounds(min_time, max_time)
        self._ruleset: RuleSet = rules if isinstance(rules, RuleSet) else load_rules(rules)
        _check_table(subscribers, self._ruleset)
        self._core: FastCore | JourneyCore
        if engine == "fast" and any(r.journey is not None for r in self._ruleset.rules):
            self._core = FastJourneyCore(self._ruleset, subscribers, policies, int(seed))
        elif engine == "fast":
            self._core = FastCore(self._ruleset, subscribers)
        else:
            self._core = JourneyCore(self._ruleset, subscribers, policies, int(seed))
        self._clock: int | None = None
        self._out_of_range: np.ndarray = np.zeros(len(self._ruleset), np.int64)  # per rule
        self._n_out_of_range: int = 0  # every dropped event once
        self._watch: SegmentWatch = SegmentWatch()
        self._observe(subscribers)

    # -- properties -------------------------------------------------------------

    @property
    def ruleset(self) -> RuleSet:
        """The validated rule set (``rules`` loaded)."""
        return self._ruleset

    @property
    def clock(self) -> int | None:
        """Latest time handled (last event or ``until``), seconds; None before any."""
        return self._clock

    # -- operations -------------------------------------------------------------

    def process(self, events: EventBatch, until: int | None = None,
                catalog: CatalogBatch | None = None) -> Decisions:
        """Handle ``events`` in time order, then decide everything due by ``until``.

        Parameters
        ----------
        events : EventBatch
            Any order; stably sorted by time here.
        catalog : CatalogBatch, optional
            Catalog events (no subscriber) for journeys with a catalog entry; at equal
            times they come after ``events``. They must not be before the engine clock
            (:class:`LateEventError`, whatever ``on_late``) nor after ``until``.
        until : int, optional
            Seconds since the epoch, >= the batch's last event; pending sends due at or
            before it are decided. Without it, only what is due by the last event is.
            Event times and ``until`` must lie in ``[MIN_TIME, MAX_TIME)``
            (2000-01-01 to 2100-01-01), else :class:`InvalidEventError`.

        Returns
        -------
        Decisions
            Sorted by time, subscriber, rule.

        Raises
        ------
        LateEventError
            Some events (or ``until``) are before the engine clock (``on_late="raise"``).
        """
        if not isinstance(events, EventBatch):
            raise InvalidEventError(f"events: expected an EventBatch, got {type(events).__name__}")
        batch = self._in_range(events.sort_by_time())
        until_t = None if until is None else _time("until", until, self.min_time, self.max_time)
        clock = self._clock
        if clock is not None and until_t is not None and until_t < clock:
            raise LateEventError(
                f"until: {until_t} is before the engine clock {clock} (by {clock - until_t} s)"
            )
        if len(batch) and clock is not None and batch.time[0] < clock:
            late = batch.time < clock
            n_late = int(late.sum())
            if self.on_late == "raise":
                raise LateEventError(
                    f"{n_late} of {len(batch)} events are late: before the engine clock "
                    f"{clock} by up to {clock - int(batch.time[0])} s "
                    "(pass on_late='drop' to skip and count them)"
                )
            self._core.count_late(batch[late])
            batch = batch[~late]
        if len(batch) and until_t is not None and until_t < batch.time[-1]:
            raise InvalidEventError(
                f"until: expected >= the batch's last event time {int(batch.time[-1])}, "
                f"got {until_t}"
            )
        cat = self._catalog(catalog, clock, until_t)
        if isinstance(self._core, JourneyCore | FastJourneyCore):
            decisions = self._core.process(batch, until_t, cat)
        else:
            decisions = self._core.process(batch, until_t)
        times = [t for t in (clock, until_t) if t is not None]
        if len(batch):
            times.append(int(batch.time[-1]))
        if cat is not None and len(cat):
            times.append(int(cat.time[-1]))
        self._clock = max(times) if times else None
        return decisions

    @staticmethod
    def _catalog(catalog: Any, clock: int | None, until: int | None) -> CatalogBatch | None:
        """The catalog batch sorted by time, checked against the clock and ``until``."""
        if catalog is None:
            return None
        if not isinstance(catalog, CatalogBatch):
            raise InvalidEventError(
                f"catalog: expected a CatalogBatch, got {type(catalog).__name__}")
        cat = catalog.sort_by_time()
        if len(cat) and clock is not None and cat.time[0] < clock:
            raise LateEventError(f"catalog: {int((cat.time < clock).sum())} catalog events are "
                                 f"before the engine clock {clock}")
        if len(cat) and until is not None and cat.time[-1] > until:
            raise InvalidEventError(f"until: expected >= the last catalog event time "
                                    f"{int(cat.time[-1])}, got {until}")
        return cat

    def report_failures(self, trigger_ids: Iterable[str] | Decisions, now: int) -> Decisions:
        """Report sends that failed at ``now``: retry them later or cancel them.

        Everything due by ``now`` is decided first (as ``process(empty, until=now)``),
        and those decisions are returned together with the cancellations.

        Parameters
        ----------
        trigger_ids : iterable of str, or Decisions
            Ids of fired sends (``Decisions.trigger_id``).
        now : int
            Seconds since the epoch, not before the engine clock.
        """
        ids = (
            list(trigger_ids.trigger_id)
            if isinstance(trigger_ids, Decisions)
            else [str(t) for t in trigger_ids]
        )
        now_t = _time("now", now, self.min_time, self.max_time)
        # every id is checked before anything is decided, so a bad id changes nothing
        targets = self._core.failure_targets(ids)
        due = self.process(EventBatch.empty(), until=now_t)
        failed = self._core.report_failures(targets, now_t)
        return Decisions.concat([due, failed]).sorted()

    def _in_range(self, batch: EventBatch) -> EventBatch:
        """The time-sorted ``batch`` without its events outside ``[min_time, max_time)``
        (``on_late="drop"``: counted, point 8), or :class:`InvalidEventError` naming the
        first one."""
        lo, hi = self.min_time, self.max_time
        if not len(batch) or (batch.time[0] >= lo and batch.time[-1] < hi):
            return batch
        out = (batch.time < lo) | (batch.time >= hi)
        if self.on_late == "raise":
            t = int(batch.time[np.flatnonzero(out)[0]])
            raise InvalidEventError(
                f"events.time: {time_range_error(t, lo, hi)} ({int(out.sum())} of "
                f"{len(batch)} events outside the engine's range; build batches with "
                "EventBatch.from_records / from_pandas and the same min_time / max_time to "
                "check every row, or pass on_late='drop' to skip and count them)"
            )
        names = EVENT_TYPES.names
        dropped = [names[c] for c in batch.type[out].tolist() if 0 <= c < len(names)]
        for r, rule in enumerate(self._ruleset.rules):
            mentioned = {c.event for c in rule.when} | set(rule.exclude)
            self._out_of_range[r] += sum(name in mentioned for name in dropped)
        self._n_out_of_range += int(out.sum())
        return batch[~out]

    def set_time_range(self, min_time: int | None = None, max_time: int | None = None) -> None:
        """Move the accepted event-time range (None keeps a bound): a live service calls
        ``set_time_range(max_time=now + skew)`` before each batch."""
        self.min_time, self.max_time = check_time_bounds(
            self.min_time if min_time is None else min_time,
            self.max_time if max_time is None else max_time)

    def update_subscribers(self, subscribers: pd.DataFrame, at: int | None = None) -> Decisions:
        """Insert or replace subscribers' attributes (rows indexed by subscriber id).

        With journeys, everything due by ``at`` (or by the engine clock) is decided first,
        as ``process(empty, until=at)`` — branches test the attributes of the moment they
        are decided — and those decisions are returned; then subscribers who start to pass
        an ``attribute`` entry enter at ``at`` (seconds, not before the clock; required when
        a rule has an attribute entry). Without journeys nothing is decided (an empty
        batch is returned). Issues a :class:`~policies.errors.RuleWarning` for each rule
        whose :meth:`diagnostics` warning appears or changes.
        """
        _check_table(subscribers, self._ruleset)
        core = self._core
        if not isinstance(core, JourneyCore | FastJourneyCore) or core.step_names is None:
            if at is not None:
                _time("at", at, self.min_time, self.max_time)
            self._core.update_subscribers(subscribers)
            self._observe(subscribers)
            return Decisions.empty(self._ruleset.ids)
        has_attribute_entry = any(
            r.journey is not None and isinstance(r.journey.entry, AttributeEntry)
            for r in self._ruleset.rules)
        if at is None and has_attribute_entry:
            raise TriggerLabValueError(
                "at: required when a rule has an attribute entry (the time of the change, "
                "seconds since the epoch)")
        sweep = at if at is not None else self._clock
        due = (self.process(EventBatch.empty(),
                            until=_time("at", sweep, self.min_time, self.max_time))
               if sweep is not None
               else Decisions.empty(self._ruleset.ids, core.step_names))
        entered = core.update_attributes(subscribers, at)
        self._observe(subscribers)
        return Decisions.concat([due, entered]).sorted()

    def diagnostics(self) -> pd.DataFrame:
        """Can each rule fire on the subscribers the engine knows? One row per rule:
        ``in_segment`` (subscribers passing its segment now), ``missing_columns``
        (segment columns no table given had), ``unseen_values`` (segment ``equals``/``in``
        values no subscriber had) and ``warning`` (empty when none); see
        :mod:`policies.triggers.diagnostics`. Both engines give the same table."""
        return diagnose(self._ruleset, self._watch, self._core.segment_counts(),
                        self._core.n_subscribers())

    def _observe(self, subscribers: pd.DataFrame) -> None:
        self._watch.observe(self._ruleset, subscribers)
        for text in self._watch.new_warnings(self.diagnostics()):
            warnings.warn(text, RuleWarning, stacklevel=3)

    def stats(self) -> pd.DataFrame:
        """The counters of contract point 8, per rule (rows, in rule order), int64.

        Columns :data:`STAT_NAMES`: entered, fired, cancelled, expired, suppressed,
        pending, failed, retried, late, out_of_range. ``entered + failed == fired +
        cancelled + expired
        + suppressed + pending`` in every row; ``fired`` .. ``suppressed`` equal
        :meth:`Decisions.counts` of every decision returned; ``pending`` sums to
        :meth:`n_pending`; ``retried <= failed <= fired``.
        """
        return pd.DataFrame(
            np.column_stack([self._core.stats_array(), self._out_of_range]),
            index=pd.Index(self._ruleset.ids, name="rule"),
            columns=list(STAT_NAMES),
        )

    def n_pending(self) -> int:
        """Number of trigger instances waiting to be decided (retries included)."""
        return self._core.n_pending()

    def n_late(self) -> int:
        """Number of late events dropped (``on_late="drop"``), each counted once."""
        return int(self._core.n_late)

    def n_out_of_range(self) -> int:
        """Number of events dropped for a time outside ``[min_time, max_time)``
        (``on_late="drop"``), each counted once."""
        return self._n_out_of_range

    def state_nbytes(self) -> int:
        """Bytes of engine state (fast: array sizes; reference: pickled size)."""
        if isinstance(self._core, FastCore):
            return self._core.state_nbytes()
        return len(pickle.dumps(self._core.__dict__, protocol=pickle.HIGHEST_PROTOCOL))

    # -- checkpoints --------------------------------------------------------------

    def state_dict(self, deep: bool = True) -> dict[str, Any]:
        """The whole engine state (rules included), picklable.

        ``deep=False`` returns the live arrays instead of a copy (~200 bytes per
        subscriber saved per call): serialize it before the engine processes more
        events, as a checkpoint does.
        """
        core = self._core.__dict__
        return {
            "version": STATE_VERSION,
            "engine": self.engine,
            "on_late": self.on_late,
            "seed": self.seed,
            "min_time": self.min_time,
            "max_time": self.max_time,
            "out_of_range": self._out_of_range.copy(),
            "n_out_of_range": self._n_out_of_range,
            "rules": self._ruleset,
            "clock": self._clock,
            "core": copy.deepcopy(core) if deep else dict(core),
            "segment_watch": copy.deepcopy(self._watch),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TriggerEngine:
        """Rebuild an engine from :meth:`state_dict` output; it continues where it was.

        A version-1 state (written before the counters of contract point 8) is read too:
        its decisions continue exactly; ``failed`` is derived from the identity and
        :meth:`n_late` starts at the largest per-rule ``late`` (version 1 kept no total).
        A state written before the engine had a time range of its own gets the default
        range and no ``out_of_range`` counts.
        """
        version = state.get("version") if isinstance(state, Mapping) else None
        if type(version) is not int or version not in STATE_VERSIONS:
            got = f"version {version!r}" if isinstance(state, Mapping) else type(state).__name__
            listed = ", ".join(map(str, STATE_VERSIONS[:-1]))
            raise TriggerLabValueError(
                f"state: expected a TriggerEngine.state_dict() of version {listed} or "
                f"{STATE_VERSIONS[-1]}, got {got}"
            )
        state = upgrade(state)
        core: FastCore | JourneyCore
        if state["engine"] == "fast":
            cls_ = FastJourneyCore if "jinfo" in state["core"] else FastCore
            core = cls_.__new__(cls_)
            core.__dict__.update(copy.deepcopy(dict(state["core"])))
        else:
            core = JourneyCore.restore(copy.deepcopy(dict(state["core"])))
        self = cls.__new__(cls)
        self.rules = state["rules"]
        self.engine = state["engine"]
        self.on_late = state["on_late"]
        self.policies = None
        self.seed = state.get("seed", 0)
        self._ruleset = state["rules"]
        self._core = core
        self._clock = state["clock"]
        self.min_time, self.max_time = check_time_bounds(state.get("min_time", MIN_TIME),
                                                         state.get("max_time", MAX_TIME))
        self._out_of_range = np.array(
            state.get("out_of_range", np.zeros(len(self._ruleset), np.int64)), np.int64)
        self._n_out_of_range = int(state.get("n_out_of_range", 0))
        watch = state.get("segment_watch")  # absent from checkpoints of older versions
        self._watch = (copy.deepcopy(watch) if isinstance(watch, SegmentWatch)
                       else SegmentWatch.everything_seen(self._ruleset))
        return self

    def __repr__(self) -> str:
        return (
            f"TriggerEngine(rules={list(self._ruleset.ids)}, engine={self.engine!r}, "
            f"clock={self._clock})"
        )


def _check_table(df: Any, rules: RuleSet) -> None:
    """The subscriber table: unique int64 ids, and valid cells in every column the engine
    reads -- ``utc_offset_minutes`` and the segments' columns (documented ones against
    their domain, others tested with min/max must hold numbers); the same table is valid
    for both engines (:func:`~policies.subscriber_schema.check_subscriber_table`)."""
    segment = [p for r in rules.rules for p in r.segment]
    check_subscriber_table(df, ["utc_offset_minutes", *(p.column for p in segment)],
                           numeric=[p.column for p in segment if p.op in ("min", "max")])
