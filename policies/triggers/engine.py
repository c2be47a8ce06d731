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
   report of the same failure is ignored.
6. Late events (before the last ``until`` or an event already handled) raise
   :class:`~policies.errors.LateEventError`; with ``on_late="drop"`` they are skipped
   and counted in :meth:`TriggerEngine.stats` against each rule that mentions their type.
7. ``trigger_id`` is ``"<rule>:<subscriber>:<entered_at>"``.
"""

from __future__ import annotations

import copy
import numbers
import pickle
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from policies.errors import InvalidEventError, LateEventError, RuleWarning, TriggerLabValueError
from policies.event_schema import MAX_TIME, MIN_TIME, time_range_error
from policies.events import EventBatch
from policies.subscriber_schema import check_subscriber_table
from policies.triggers._fast import FastCore
from policies.triggers._reference import STAT_NAMES, ReferenceCore
from policies.triggers.decisions import Decisions, parse_trigger_id
from policies.triggers.diagnostics import SegmentWatch, diagnose
from policies.triggers.rules import load_rules
from policies.triggers.ruleset import RuleSet

__all__ = ["ENGINES", "STAT_NAMES", "TriggerEngine"]

#: Available implementations.
ENGINES: tuple[str, ...] = ("fast", "reference")
_STATE_VERSION = 1


def _time(name: str, value: Any) -> int:
    """``until`` / ``now``: int seconds in the event range [MIN_TIME, MAX_TIME)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidEventError(f"{name}: expected int seconds since the epoch, got {value!r}")
    if not MIN_TIME <= int(value) < MAX_TIME:
        raise InvalidEventError(f"{name}: {time_range_error(int(value))}")
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
        What to do with events before the engine clock.

    Notes
    -----
    Parameters are stored unchanged; the state is picklable
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
    ) -> None:
        self.rules = rules
        self.subscribers: pd.DataFrame | None = subscribers
        self.engine = engine
        self.on_late = on_late
        if engine not in ENGINES:
            raise TriggerLabValueError(f"engine: expected 'fast' or 'reference', got {engine!r}")
        if on_late not in ("raise", "drop"):
            raise TriggerLabValueError(f"on_late: expected 'raise' or 'drop', got {on_late!r}")
        self._ruleset = rules if isinstance(rules, RuleSet) else load_rules(rules)
        _check_table(subscribers, self._ruleset)
        core_cls = FastCore if engine == "fast" else ReferenceCore
        self._core: FastCore | ReferenceCore = core_cls(self._ruleset, subscribers)
        self._clock: int | None = None
        self._watch = SegmentWatch()
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

    def process(self, events: EventBatch, until: int | None = None) -> Decisions:
        """Handle ``events`` in time order, then decide everything due by ``until``.

        Parameters
        ----------
        events : EventBatch
            Any order; stably sorted by time here.
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
        batch = events.sort_by_time()
        if len(batch) and (batch.time[0] < MIN_TIME or batch.time[-1] >= MAX_TIME):
            i = 0 if batch.time[0] < MIN_TIME else len(batch) - 1
            raise InvalidEventError(
                f"events.time: {time_range_error(int(batch.time[i]))} (build batches with "
                "EventBatch.from_records / from_pandas to check every row)"
            )
        until_t = None if until is None else _time("until", until)
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
        decisions = self._core.process(batch, until_t)
        times = [t for t in (clock, until_t) if t is not None]
        if len(batch):
            times.append(int(batch.time[-1]))
        self._clock = max(times) if times else None
        return decisions

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
        for tid in ids:
            parse_trigger_id(tid)
        now_t = _time("now", now)
        due = self.process(EventBatch.empty(), until=now_t)
        failed = self._core.report_failures(ids, now_t)
        return Decisions.concat([due, failed]).sorted()

    def update_subscribers(self, subscribers: pd.DataFrame) -> None:
        """Insert or replace subscribers' attributes (rows indexed by subscriber id).

        Issues a :class:`~policies.errors.RuleWarning` for each rule whose
        :meth:`diagnostics` warning appears or changes.
        """
        _check_table(subscribers, self._ruleset)
        self._core.update_subscribers(subscribers)
        self._observe(subscribers)

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
        """Counts per rule (rows) of entered, fired, cancelled, expired, suppressed,
        retried and late (columns)."""
        return pd.DataFrame(
            self._core.stats_array(),
            index=pd.Index(self._ruleset.ids, name="rule"),
            columns=list(STAT_NAMES),
        )

    def n_pending(self) -> int:
        """Number of trigger instances waiting to be decided (retries included)."""
        return self._core.n_pending()

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
            "version": _STATE_VERSION,
            "engine": self.engine,
            "on_late": self.on_late,
            "rules": self._ruleset,
            "clock": self._clock,
            "core": copy.deepcopy(core) if deep else dict(core),
            "segment_watch": copy.deepcopy(self._watch),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TriggerEngine:
        """Rebuild an engine from :meth:`state_dict` output; it continues where it was."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            raise TriggerLabValueError(
                f"state: expected a TriggerEngine.state_dict() of version {_STATE_VERSION}"
            )
        core: FastCore | ReferenceCore
        if state["engine"] == "fast":
            core = FastCore.__new__(FastCore)
        else:
            core = ReferenceCore.__new__(ReferenceCore)
        core.__dict__.update(copy.deepcopy(dict(state["core"])))
        self = cls.__new__(cls)
        self.rules = state["rules"]
        self.subscribers = None
        self.engine = state["engine"]
        self.on_late = state["on_late"]
        self._ruleset = state["rules"]
        self._core = core
        self._clock = state["clock"]
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
