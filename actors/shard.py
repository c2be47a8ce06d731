"""A subscriber shard: subscribers ``[start, stop)``, their world and trigger engine.

:class:`ShardCore` is plain Python (no Ray); the inline executor calls it directly and
the Ray executor wraps it in an actor. It composes the pieces of the pipeline:

* the :class:`~sim.world.World` of its subscribers and, with rules, a
  :class:`~policies.triggers.TriggerEngine`;
* the :class:`~actors.outbox.Outbox` (the send queue: emails due, their ids, arms and
  delivery times);
* the :class:`~actors.truth.Ledger` (counters, ground truth, attribution, rewards);
* the :class:`~actors.campaign.CampaignSchedule` (with a campaign).

One :meth:`ShardCore.step` per tick:

1. emails that became due ``L = config.decision_lag_ticks`` ticks ago get their arms
   (the learner's answer for that tick) and, with the emails of that tick that the
   policy does not decide, are delivered at the tick boundary ``t0`` (``send_hour``
   arms defer delivery to the first boundary at or after the chosen local hour); the
   ground truth of each delivered email (true probabilities for the chosen arm and for
   every arm) is added;
2. the world steps ``(t0, t1]``; response events are attributed to their email (via
   ``campaign_id``, :mod:`actors.emails`) within the reward window; organic orders
   are counted per group;
3. the trigger engine processes the events up to ``t1``; fires (treatment group,
   subscribed subscribers) and campaign sends due in ``(t0, t1]`` enter the outbox;
4. emails whose reward window closed by ``t1`` are finalized: their reward goes to the
   learner (policy-decided emails) and, if asked, to the decision log;
5. after a tick that crosses midnight UTC the subscriber table (segments, contexts) is
   refreshed.

With ``config.scoring`` the driver also calls :meth:`ShardCore.refresh` at the scoring
refreshes (between two ticks): scores from the shard's event log so far become
subscriber attributes; with ``config.target`` the driver then hands every shard the one
top-``q`` cutoff (:meth:`ShardCore.set_target`), and only targeted subscribers get emails.

It returns a :class:`~actors.messages.TickOutput`: the choices (outbox emails the
policy must decide, with contexts) and the rewards. Everything else (counters, truth,
logs) stays in the shard's state, so a checkpoint (:meth:`ShardCore.state`) holds it and
a replay cannot count anything twice.
"""

from __future__ import annotations

import copy
import resource
import warnings
from typing import Any

import numpy as np
import pandas as pd

from actors import truth as _truth
from actors.campaign import CampaignSchedule
from actors.config import SimulationConfig
from actors.errors import InternalError
from actors.journey_book import JourneyBook
from actors.logs import LogSink
from actors.memory import deep_nbytes, release_free_memory
from actors.messages import Arms, ShardResult, TickOutput
from actors.outbox import Outbox, email_batch
from actors.plan import RunPlan
from actors.series import SeriesCounter
from actors.truth import Ledger, true_probabilities
from policies.ab import hash_unit
from policies.errors import RuleWarning, SpecError
from policies.events import EventBatch
from policies.features import FEATURE_NAMES, subscriber_features
from policies.segments.dynamic import Cutoff, changed_rows, in_top, score_frame
from policies.segments.history import history_features
from policies.triggers import Predicate, TriggerEngine, segment_mask
from policies.triggers.catalog import drop_fraction
from policies.triggers.journeys import (
    CATALOG_EVENT_TYPES,
    AttributeEntry,
    attribute_tests,
    compile_journey,
)
from sim.clock import DAY
from sim.population import TABLE_COLUMNS, Population
from sim.presets import SUBJECT_STYLES, get_preset
from sim.world import World

__all__ = ["HOLDOUT_SALT", "ShardCore", "holdout_groups", "process_cpu_seconds"]

#: Salt of the holdout hash (with the seed): ``hash_unit(id, f"{HOLDOUT_SALT}-{seed}")``.
HOLDOUT_SALT = "triggerlab-holdout"
_D = len(FEATURE_NAMES)


def process_cpu_seconds() -> float:
    """CPU time (user + system, s) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return float(ru.ru_utime + ru.ru_stime)


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Row by row ``a != b`` of two columns of the same rows (bool (n,)); compared as
    arrays (Arrow strings without a Python object per row); NA counts as changed."""
    out = a.array != b.array
    return np.asarray(out.to_numpy(dtype=bool, na_value=True)
                      if isinstance(out, pd.api.extensions.ExtensionArray) else out, bool)


def holdout_groups(ids: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """Group code (0 treatment, 1 holdout) of subscriber ids, int64 (n,)."""
    if fraction <= 0:
        return np.zeros(len(ids), np.int64)
    return (hash_unit(ids, f"{HOLDOUT_SALT}-{seed}") < fraction).astype(np.int64)


class ShardCore:
    """The state and the per-tick loop of one shard (see the module docstring).

    Parameters
    ----------
    config : SimulationConfig
    start, stop : int
        The shard's subscriber ids ``[start, stop)``.
    """

    def __init__(self, config: SimulationConfig, start: int, stop: int) -> None:
        if not 0 <= start < stop <= config.subscribers:
            raise SpecError(f"shard: expected 0 <= start < stop <= {config.subscribers}, "
                            f"got [{start}, {stop})")
        self._cpu0 = process_cpu_seconds()
        self.config = config
        self.plan = RunPlan.from_config(config)
        self.start, self.stop = int(start), int(stop)
        seed = int(config.seed)  # type: ignore[arg-type]
        preset = get_preset(config.preset, **dict(config.preset_overrides))
        pop = Population.generate(stop - start, seed=seed, preset=preset, start=start,
                                  time=config.start)
        self.world = World(pop, seed=seed)
        self.group = holdout_groups(pop.ids, seed, config.holdout_fraction)
        self.table = self.world.subscribers()
        scoring = config.scoring
        self._history: list[EventBatch] = []
        self._scores = np.full((stop - start, 0 if scoring is None else len(scoring.columns)),
                               np.nan)
        self._add_scores(self.table)
        # None: everyone may get email; else who is in the top (nobody before a refresh)
        self._target: np.ndarray | None = (None if config.target is None
                                           else np.zeros(stop - start, bool))
        self._eligible = np.zeros(stop - start, bool)
        self.refreshes = 0
        # the subscriber table before any email: segments of a per-segment analysis
        self.start_table = self.table.copy() if config.record_subscribers else None
        self.engine: TriggerEngine | None = None
        self._seg_numeric: list[np.ndarray] = []
        if config.rules is not None:
            # a shard sees a slice of the population: whether a rule can fire is judged
            # on the whole one (experiments.rule_checks), not per slice
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuleWarning)
                self.engine = TriggerEngine(config.rules, subscribers=self.table, seed=seed)
            self._seg_numeric = self._numeric_segments(self.table)
        self._engagement = self.table["engagement_score"].to_numpy(np.float64, copy=True)
        self.table = self._slim(self.table)
        self.schedule = (None if config.campaign is None else
                         CampaignSchedule(config.campaign, config.start,
                                          pop.utc_offset_minutes))
        self._camp_style = (SUBJECT_STYLES.index(config.campaign.subject_style)
                            if config.campaign else 0)
        dim = _D if self.plan.store_contexts else None
        self.outbox = Outbox(self.start, self.stop, dim)
        self.series = SeriesCounter(self.plan, self.start, self.stop)
        self.journeys = (JourneyBook(config.rules.rules)
                         if config.rules is not None and self.plan.layout.has_journeys else None)
        self.ledger = Ledger(config, self.plan, self.start, self.group, dim)
        self.event_sink = (LogSink(config.log_uri, "events", self.start)
                           if config.log_uri is not None and config.record_events else None)
        for sink in self._sinks():   # a shard started again from scratch: its old parts
            sink.resume()
        self.position = 0
        self.event_log: list[EventBatch] = []
        self.n_events = 0
        self.n_emails = 0

    # -- checkpoints --------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.engine is not None:  # live arrays: pickled or shipped before the next step
            state["engine"] = self.engine.state_dict(deep=False)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        engine = state.get("engine")
        if engine is not None:
            state["engine"] = TriggerEngine.from_state_dict(engine)
        self.__dict__.update(state)
        self._cpu0 = process_cpu_seconds()  # CPU of this process only (restored shards undercount)

    def state(self) -> dict[str, Any]:
        """The shard's checkpoint: its state as plain objects and numpy arrays.

        The arrays are the shard's own (not copied), so the state must be pickled or
        shipped before the next step: Ray ships the arrays out of band, by reference;
        in one process take ``copy.deepcopy(core.state())``. :meth:`from_state`
        continues from it.
        """
        for sink in self._sinks():   # a checkpoint closes the logs' current parts
            sink.roll()
        return self.__getstate__()

    def _sinks(self) -> list[LogSink]:
        return [s for s in (self.event_sink, self.ledger.decision_sink) if s is not None]

    @staticmethod
    def from_state(state: dict[str, Any]) -> ShardCore:
        """A shard continuing from :meth:`state` (arrays are copied: they may be
        read-only views of Ray's object store)."""
        if not isinstance(state, dict) or "world" not in state:
            raise InternalError(f"checkpoint: expected a ShardCore.state() dict, got "
                                f"{type(state).__name__}")
        core = ShardCore.__new__(ShardCore)
        core.__setstate__(copy.deepcopy(state))
        for sink in core._sinks():   # parts a lost shard wrote after the checkpoint
            sink.resume()
        return core

    # -- the tick --------

    def step(self, tick: int, arms: Arms | None) -> TickOutput:
        """Run ``tick`` (see the module docstring); ``arms`` answers the choices of tick
        ``tick - decision_lag_ticks`` (the learner's output, all shards' emails in
        canonical order; None before that tick exists)."""
        if tick != self.position:
            raise InternalError(f"tick: expected {self.position} (shard [{self.start}, "
                                f"{self.stop}) position), got {tick}")
        cfg = self.config
        t0, t1 = cfg.tick_bounds(tick)
        variants = self.plan.variants
        hours = None if variants is None else variants.send_hours()
        send_hours = None if hours is None else (lambda: hours)
        self.outbox.apply_arms(arms, tick - cfg.decision_lag_ticks, t0, send_hours,
                               self.world.population.utc_offset_minutes)
        n_sent = self._deliver(t0)
        events = self.world.step(t0, t1)
        self.n_events += len(events)
        if self.event_sink is not None:
            self.event_sink.append({"subscriber": events.subscriber, "time": events.time,
                                    "type": events.type, **events.columns})
        elif cfg.record_events:
            self.event_log.append(events)
        if cfg.scoring is not None:
            self._history.append(events)
        self.ledger.attribute(events)
        if self.engine is not None:
            catalog = self.world.catalog_events(t0, t1) if self.plan.catalog_entries else None
            self._decisions(self.engine.process(events, until=t1, catalog=catalog))
        if self.schedule is not None:
            reach = self.world.population.subscribed
            if self._target is not None:
                reach = reach & self._target
            if cfg.campaign is not None and not cfg.campaign.holdout:   # holdout: none either
                reach = reach & (self.group == 0)
            for rows, times in self.schedule.due(t0, t1, reach):
                self._enqueue(rows + self.start, times, np.zeros(len(rows), np.int64),
                              self.plan.decides_campaign)
        rewards = self.ledger.finalize(t1 - cfg.reward_window_seconds,
                                       self.plan.policy_contexts)
        if t0 // DAY != t1 // DAY:
            self._refresh_table(t1)
        choices = self.outbox.choices(self.position, self.plan.policy_contexts)
        self.position += 1
        return TickOutput(tick, choices, rewards, len(events), n_sent)

    def steps(self, first: int, count: int,
              arms: list[Arms | None] | None) -> list[TickOutput]:
        """Run ticks ``first .. first + count - 1``; ``arms[j]`` (or None) answers the
        choices of tick ``first + j - decision_lag_ticks`` (see :meth:`step`)."""
        if arms is not None and len(arms) != count:
            raise InternalError(f"arms: expected {count} learner outputs, got {len(arms)}")
        return [self.step(first + j, None if arms is None else arms[j]) for j in range(count)]

    # -- the pipeline's steps --------

    def _enqueue(self, subscriber: np.ndarray, due: np.ndarray, source: np.ndarray,
                 decided: bool, email: np.ndarray | None = None,
                 series: np.ndarray | None = None, alert: np.ndarray | None = None,
                 drop: np.ndarray | None = None, entered_at: np.ndarray | None = None,
                 step: np.ndarray | None = None) -> None:
        """Emails that became due enter the outbox (``decided``: the policy chooses
        their arm; ``email``/``series``/``alert``/``drop``: of journey sends;
        ``entered_at``/``step``: of rule sends, :meth:`Outbox.enqueue`)."""
        self.outbox.enqueue(subscriber, due, source, decided, self.position,
                            self._contexts if self.plan.store_contexts else None,
                            email, series, alert, drop, entered_at, step)

    def _contexts(self, row: np.ndarray) -> np.ndarray:
        return subscriber_features(self.table.iloc[row])

    def _deliver(self, now: int) -> int:
        """Send outbox emails due for delivery at ``now`` (the emails the policy does not
        decide once ``decision_lag_ticks`` have passed) to subscribed recipients, with
        their ground truth; returns the number sent."""
        go = self.outbox.take_ready(now, self.position - self.config.decision_lag_ticks)
        if go is None:
            return 0
        row = go["subscriber"] - self.start
        live = self.world.population.subscribed[row]
        if not live.all():
            go = {k: v[live] for k, v in go.items()}
            row = row[live]
        m = len(row)
        if m == 0:
            return 0

        def as_arms(g: dict[str, np.ndarray], r: np.ndarray, a: np.ndarray) -> Any:
            return email_batch(self.plan, self._camp_style, self._engagement, g, r, a, now)

        batch = as_arms(go, row, go["arm"])
        # the truth in parts (bounded memory): an email's truth is its own, the ledger's
        # sums are fixed-point and its rows keep their order, so parts book the same
        size = _truth.TRUTH_CHUNK
        for a in range(0, m, size):
            part = slice(a, a + size)
            g = go if m <= size else {k: v[part] for k, v in go.items()}
            pr, chosen, per_arm = true_probabilities(
                self.world.population, self.plan, self.config, now, g, row[part],
                batch if m <= size else batch.take(part), as_arms, self.world.catalog)
            self.ledger.deliver(g, row[part], pr, chosen, per_arm, now)
            del pr, chosen, per_arm
        self.world.send(batch)
        self.ledger.count_sends(go, row, now)
        self.n_emails += m
        return m

    def _decisions(self, dec: Any) -> None:
        """Count the engine's decisions; treatment-group fires to subscribed subscribers
        enter the outbox."""
        if len(dec) == 0:
            return
        if self.journeys is not None and dec.step is not None:
            self.journeys.count(dec.rule, dec.step, dec.kind, dec.path,
                                self.group[dec.subscriber - self.start])
        fire = self.ledger.count_decisions(dec)
        fire &= self.world.population.subscribed[dec.subscriber - self.start]
        if self._target is not None:
            fire &= self._target[dec.subscriber - self.start]
        if not fire.any():
            return
        email = series = alert = drop = None
        if dec.step is not None:   # a rule set with journeys
            rule, step = dec.rule[fire], dec.step[fire]
            email = np.where(step >= 0, self.plan.node_email[rule, np.maximum(step, 0)], -1)
            series = self.series.index(rule, dec.subscriber[fire], dec.entered_at[fire],
                                       dec.attempt[fire])
            if self.plan.catalog_entries:
                alert, drop = self._alerts(self.plan.alert_event[rule], dec.entry_key[fire],
                                           dec.entered_at[fire])
        step = (dec.step[fire] if dec.step is not None
                else np.full(int(fire.sum()), -1, np.int64))
        self._enqueue(dec.subscriber[fire], dec.time[fire], dec.rule[fire] + 1,
                      self.plan.decides_triggers, email, series, alert, drop,
                      dec.entered_at[fire], step)

    def _alerts(self, event: np.ndarray, key: np.ndarray, entered_at: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """The alert product and price drop of sends (int64 and float64, (m,)): a catalog
        journey's send is an alert about its entry's product (the entry key); a
        ``price_drop`` entry's drop is the catalog's, ``(old - new) / old`` with the
        prices just before and at the entry (``entered_at``, s); other sends -1 and 0."""
        product = np.where((event >= 0) & (key >= 0), key, -1)
        drop = np.zeros(len(key))
        fell = (event == CATALOG_EVENT_TYPES.index("price_drop")) & (product >= 0)
        if fell.any():
            catalog = self.world.catalog
            p, t = product[fell], entered_at[fell]
            drop[fell] = np.clip(drop_fraction(catalog.price(p, t - 1), catalog.price(p, t)),
                                 0.0, 0.99)
        return product, drop

    # -- dynamic segments --------

    def refresh(self, now: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Score every subscriber of the shard on the history features of its events up
        to ``now`` (s; the tick boundary the driver calls this at) and write the scores
        into the subscriber table; the engine gets only the rows whose rule segments
        changed, at ``now``. Returns, when the run targets, the ids and ``target.by``
        scores of the subscribed subscribers (for :func:`top_cutoff`), else None."""
        scoring = self.config.scoring
        if scoring is None:
            raise InternalError("refresh: the run has no scoring")
        if now != self.config.tick_bounds(self.position)[0]:
            raise InternalError(f"refresh: expected the shard's time "
                                f"{self.config.tick_bounds(self.position)[0]}, got {now}")
        log = EventBatch.concat(self._history)
        self._history = [log]
        ids = self.world.population.ids
        feats = history_features(log, now, ids)
        # beside the history, the numeric columns of the subscriber table now (scorers
        # pick their columns: the uplift scorer reads some, the others none)
        table = self.world.subscribers(now)
        known = [c for c, t in table.dtypes.items()
                 if c not in feats.columns and c not in scoring.columns
                 and pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)]
        feats = feats.join(table[known])
        self._scores = score_frame(scoring.scorers, feats, scoring.columns).to_numpy()
        self._add_scores(self.table)
        self.refreshes += 1
        if self.start_table is not None and self.refreshes == 1:
            self._add_scores(self.start_table)   # segments by score: the first refresh's
        if self.engine is not None:
            numeric = self._numeric_segments(self.table)
            changed = changed_rows(self._seg_numeric, numeric)
            self._seg_numeric = numeric
            if changed.any():
                self._update_engine(self.table.iloc[np.flatnonzero(changed)], now)
        if self.config.target is None:
            return None
        self._eligible = self.world.population.subscribed.copy()
        col = self._scores[:, scoring.columns.index(self.config.target.by)]
        return ids[self._eligible], col[self._eligible]

    def set_target(self, cutoff: Cutoff) -> int:
        """Who gets email until the next refresh: the subscribers eligible at the last
        refresh inside ``cutoff`` (:func:`~policies.segments.dynamic.top_cutoff` over
        every shard); returns how many of this shard's."""
        if self._target is None or self.config.scoring is None or self.config.target is None:
            raise InternalError("set_target: the run does not target")
        col = self._scores[:, self.config.scoring.columns.index(self.config.target.by)]
        self._target = in_top(self.world.population.ids, col, cutoff) & self._eligible
        return int(self._target.sum())

    @property
    def targeted(self) -> np.ndarray | None:
        """Who may get email now (bool per shard row), None when the run does not target."""
        return None if self._target is None else self._target.copy()

    @property
    def scores(self) -> pd.DataFrame:
        """The current score columns (NaN before the first refresh), indexed by id."""
        cols = () if self.config.scoring is None else self.config.scoring.columns
        return pd.DataFrame(self._scores, columns=list(cols),
                            index=pd.Index(self.world.population.ids, name="subscriber"))

    def _add_scores(self, table: pd.DataFrame) -> None:
        """Write the current score columns into ``table`` (the shard's rows, in order)."""
        if self.config.scoring is not None:
            for j, c in enumerate(self.config.scoring.columns):
                table[c] = self._scores[:, j]

    # -- subscriber table --------

    def _numeric_segments(self, table: pd.DataFrame) -> list[np.ndarray]:
        """The outcome of each group of tests (:meth:`_test_groups`) on its numeric
        columns, one bool (n,) per group."""
        out = []
        for group in self._test_groups():
            preds = tuple(p for p in group
                          if p.column in table.columns and table[p.column].dtype.kind in "biuf")
            out.append(segment_mask(table, preds))
        return out

    def _test_groups(self) -> list[tuple[Predicate, ...]]:
        """The conjunctions of attribute tests the rules make: each rule's ``segment``
        and, for journeys, each branch case and the attribute entry."""
        assert self.config.rules is not None
        out: list[tuple[Predicate, ...]] = []
        for rule in self.config.rules.rules:
            out.append(tuple(rule.segment))
            if rule.journey is not None:
                out.extend(compile_journey(rule).path_segment)
                entry = rule.journey.entry
                if isinstance(entry, AttributeEntry):
                    out.append(tuple(entry.segment))
        return out

    def _update_engine(self, rows: pd.DataFrame, now: int) -> None:
        """Hand changed subscriber rows to the engine at ``now`` (s); with journeys, the
        decisions this makes (attribute entries, steps due by ``now``) go on as the
        tick's."""
        assert self.engine is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuleWarning)
            self._decisions(self.engine.update_subscribers(rows, at=now))

    def _refresh_table(self, now: int) -> None:
        """Refresh the subscriber table; push to the engine only the rows whose segment
        inputs changed (string columns by value, numeric predicates by outcome). Only the
        columns the shard reads are built for every row; changed rows get whole rows."""
        new = self.world.subscribers(now, columns=self._table_columns())
        self._add_scores(new)
        if self.engine is not None and self.config.rules is not None:
            changed = np.zeros(len(new), bool)
            text_cols = {p.column for g in self._test_groups() for p in g
                         if p.column in new.columns and new[p.column].dtype.kind not in "biuf"}
            for c in sorted(text_cols):
                changed |= _differs(new[c], self.table[c])
            numeric = self._numeric_segments(new)
            for a, b in zip(numeric, self._seg_numeric, strict=True):
                changed |= a != b
            self._seg_numeric = numeric
            if changed.any():
                rows = np.flatnonzero(changed)
                whole = self.world.subscribers(now, rows=rows)
                if self.config.scoring is not None:
                    for j, c in enumerate(self.config.scoring.columns):
                        whole[c] = self._scores[rows, j]
                self._update_engine(whole, now)
        self.table = self._slim(new)
        # a copy: a view would keep the frame's whole block of floats alive
        self._engagement = new["engagement_score"].to_numpy(np.float64, copy=True)
        del new
        release_free_memory()   # the day's temporaries: pages back to the system

    def _table_columns(self) -> list[str] | None:
        """The population columns a refresh builds for every row: the rules' attribute
        tests, what :meth:`_slim` keeps and the engagement score (None: all)."""
        if self.plan.store_contexts:
            return None
        tests = ({p.column for g in self._test_groups() for p in g}
                 if self.config.rules is not None else set())
        return sorted(({"engagement_score", *self._slim_columns()} | tests)
                      & set(TABLE_COLUMNS))

    def _slim(self, table: pd.DataFrame) -> pd.DataFrame:
        """The columns the shard reads later: all (contexts) or the segments' text ones."""
        if self.plan.store_contexts:
            return table
        return table[sorted(self._slim_columns() & set(table.columns))].copy()

    def _slim_columns(self) -> set[str]:
        """The columns :meth:`_slim` keeps (without contexts)."""
        rules = self.config.rules.rules if self.config.rules is not None else ()
        keep = {p.column for r in rules for p in attribute_tests(r)}
        if self.config.scoring is not None:  # refreshes write whole engine rows
            keep |= {"utc_offset_minutes", *self.config.scoring.columns}
        return keep

    # -- memory --------

    def memory(self) -> dict[str, int]:
        """Bytes of the shard's arrays by part (:func:`actors.memory.deep_nbytes`):
        ``world`` (population, pending events, sessions, catalog caches), ``engine``
        (trigger state), ``outbox`` (emails not yet delivered), ``truth`` (delivered
        emails in their reward windows, with their truth and rewards), ``metrics``
        (counters, truth sums, journey counts, per-subscriber books), ``tables`` (the
        subscriber table, groups, segment flags, journey series, campaign schedule,
        scores), ``logs`` (recorded events and decisions held in memory, streamed logs'
        buffers, the scoring history)."""
        seen: set[int] = set()
        led = self.ledger
        parts: dict[str, list[Any]] = {
            "world": [self.world],
            "engine": [self.engine],
            "outbox": [self.outbox],
            "truth": [led.sent],
            "metrics": [led.counts, led.truth, led.books, self.journeys],
            "tables": [self.table, self.start_table, self._engagement, self.group,
                       led.group, self._seg_numeric, self.series, self.schedule,
                       self._scores, self._target, self._eligible],
            "logs": [self.event_log, led.decision_log, self.event_sink, led.decision_sink,
                     self._history],
        }
        return {name: sum(deep_nbytes(o, seen) for o in objs) for name, objs in parts.items()}

    # -- results --------

    def finish(self) -> ShardResult:
        """Counters, truth and logs of the shard (pending emails are logged with the reward
        observed so far; nothing is fed to the learner any more)."""
        decisions = self.ledger.decisions()
        if self.event_sink is not None:
            self.event_sink.close()
        events = (EventBatch.concat(self.event_log)
                  if self.config.record_events and self.event_sink is None else None)
        return ShardResult(
            start=self.start, stop=self.stop, counts=self.ledger.counts,
            truth=self.ledger.truth, decisions=decisions, events=events,
            n_events=self.n_events, n_emails=self.n_emails,
            peak_rss=int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            cpu_s=process_cpu_seconds() - self._cpu0,
            engine_stats=None if self.engine is None else self.engine.stats(),
            subscriber_books=(None if self.ledger.books is None else self.ledger.books.frame(
                self.start, self.group, self.plan.layout.sources)),
            subscriber_table=self.start_table,
            journeys=None if self.journeys is None else self.journeys.counts)
