"""An engine shard of the trigger service: messages in, decisions with arms out.

:class:`ShardCore` is plain Python (the tests drive it directly); the service's runner
(:mod:`actors.service.runner`) feeds it from a source and writes what it returns, and a
Ray actor wraps that runner. One :meth:`ShardCore.step` handles a list of messages:

1. **decode** (:func:`~actors.service.codec.decode_messages`): malformed messages and
   rows become dead letters with the reason;
2. **ownership**: the shard owns some partitions of the subscriber key space
   (:func:`~actors.service.partitioning.partition_of` with ``key_partitions``); an event
   of a subscriber it does not own is dead-lettered (``foreign="dead_letter"``: a
   producer published it to the wrong partition, and another shard decides for that
   subscriber) or skipped (``foreign="skip"``: every shard reads the whole stream, as
   with one Parquet log);
3. **watermark** (:class:`~actors.service.watermark.Watermark`, grace ``grace``): late
   events are dead-lettered with the reason, the others released in time order;
4. **engine**: :meth:`TriggerEngine.process(released, until=watermark)
   <policies.triggers.TriggerEngine.process>`;
5. **arms**: each fire's arm and propensity are drawn by the policy with the generator
   keyed by ``(seed, trigger id)`` (:func:`policies.keyed.select_keyed`), so they do not
   depend on batching, shard count, or a crash and replay;
6. the decisions as the decision-log table (:func:`~actors.service.decision_log.
   decision_table`).

**Attribute updates** (:meth:`ShardCore.update`): rows ``(subscriber, time,
attributes...)`` wait until the watermark reaches their time; then the engine decides
the events up to that time, applies the rows with :meth:`TriggerEngine.update_subscribers
<policies.triggers.TriggerEngine.update_subscribers>` (``at`` = their time: a journey's
attribute entry enters then, segments test the new values from then on), and goes on. An
update older than the watermark is dead-lettered as late, like an event.

**Catalog events** (:meth:`ShardCore.catalog`): product-level ``price_drop`` /
``back_in_stock`` events of the broadcast catalog stream (:mod:`actors.service.catalog`;
every shard reads all of it) wait, like updates, until the watermark reaches their time
(they do not move it); then the engine takes them with the events up to that time
(``process(..., catalog=...)``; at equal times after the subscriber events, before the
attribute updates of that second) and fans each out to the subscribers the shard owns.
One that arrives when the watermark is already at or past its time is dead-lettered as
late; once a catalog event of second ``t`` is handled, a subscriber event of second ``t``
that arrives later is late too (the engine could no longer take it before the catalog
event, so decisions would depend on arrival order). At most ``max_held`` catalog events
wait; beyond that they are dead-lettered (overload).

A dead letter never stops the shard; every one is counted by cause (:attr:`ShardCore.
counters`). :meth:`ShardCore.state_dict` holds engine, watermark and policy state and the
counters; :meth:`ShardCore.from_state_dict` continues exactly where it was.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from actors.config import PolicyConfig
from actors.registry import make_policy
from actors.service.attributes import attribute_groups
from actors.service.catalog import decode_catalog
from actors.service.codec import DeadLetter, decode_messages
from actors.service.decision_log import decision_table
from actors.service.partitioning import partition_of
from actors.service.timing import PartTimes
from actors.service.transport import Message
from actors.service.watermark import DEFAULT_MAX_HELD, Watermark
from policies import checks
from policies.base import Policy
from policies.errors import RuleWarning, SpecError, TriggerLabValueError
from policies.event_schema import MAX_TIME
from policies.events import EventBatch
from policies.features import REQUIRED_COLUMNS, subscriber_features
from policies.keyed import select_keyed
from policies.subscriber_schema import check_subscriber_table
from policies.triggers import (
    ALL_KINDS,
    CatalogBatch,
    Decisions,
    RuleSet,
    TriggerEngine,
    load_rules,
)
from policies.triggers.engine import ENGINES

__all__ = ["FOREIGN", "ShardConfig", "ShardCore", "ShardOutput"]

#: What a shard does with events of subscribers it does not own.
FOREIGN = ("dead_letter", "skip")
_STATE_VERSION = 1


@dataclass(frozen=True)
class ShardConfig:
    """What every shard of one service is built from (picklable; same for all shards).

    Parameters
    ----------
    rules : RuleSet
    subscribers : pandas.DataFrame
        The subscriber table (docs/domain.md), indexed by subscriber id; each shard keeps
        the rows it owns.
    policy : PolicyConfig or None
        The policy choosing each fire's variant (``scope`` ``triggers`` or ``all``).
    seed : int
        Keys the policy's draws (and the A/B salt), >= 0.
    reward : {"click", "order", "revenue"}
        What the policy learns from (as in a spec).
    grace : int
        Watermark grace, seconds.
    key_partitions : int
        Partitions of the subscriber key space (the stream's partition count).
    engine : {"fast", "reference"}
    max_held : int
        Watermark bound on held events.
    max_skew : int or None
        With the wall time ``now`` given to :meth:`ShardCore.step`, events later than
        ``now + max_skew`` seconds are dead-lettered (a clock gone wrong, or times in the
        wrong unit, would otherwise move the watermark past every later event). None:
        only the fixed range 2000-2100.
    split_policies : mapping of str to PolicyConfig, optional
        The policies journey splits name (``split: {policy: NAME}``), each built fresh
        with ``seed`` and ``reward``; the engine draws a split's path keyed by (seed,
        trigger id, node), so a replay or another shard count chooses the same path.
        They are not updated by the learner.
    """

    rules: RuleSet
    subscribers: pd.DataFrame
    policy: PolicyConfig | None = None
    seed: int = 0
    reward: str = "click"
    grace: int = 300
    key_partitions: int = 1
    engine: str = "fast"
    max_held: int = DEFAULT_MAX_HELD
    max_skew: int | None = 3600
    split_policies: Mapping[str, PolicyConfig] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rules, RuleSet):
            object.__setattr__(self, "rules", load_rules(self.rules))
        if not isinstance(self.subscribers, pd.DataFrame):
            raise TriggerLabValueError(
                f"subscribers: expected a pandas DataFrame, got {type(self.subscribers).__name__}")
        checks.check_int("seed", self.seed, error=TriggerLabValueError, low=0)
        checks.check_int("key_partitions", self.key_partitions, error=TriggerLabValueError,
                         low=1)
        if self.max_skew is not None:
            checks.check_int("max_skew", self.max_skew, error=TriggerLabValueError, low=0)
        if self.engine not in ENGINES:
            raise TriggerLabValueError(f"engine: expected one of {ENGINES}, got "
                                       f"{self.engine!r}")
        for name, pc in (self.split_policies or {}).items():
            if not isinstance(name, str) or not isinstance(pc, PolicyConfig):
                raise TriggerLabValueError(
                    f"split_policies[{name!r}]: expected a name and a PolicyConfig, got "
                    f"{type(pc).__name__}")
        if self.policy is not None and self.policy.scope == "campaign":
            raise SpecError("policy.scope: the service decides trigger sends; expected "
                            "'triggers' or 'all', got 'campaign'")

    def make_split_policies(self) -> dict[str, Policy]:
        """Fresh policies of :attr:`split_policies`, by name."""
        return {name: make_policy(pc.name, pc.params, decides=pc.decides, reward=self.reward,
                                  seed=self.seed)
                for name, pc in (self.split_policies or {}).items()}

    def make_policy(self) -> Policy | None:
        """A fresh policy of the config (as the simulator's runtime builds it)."""
        if self.policy is None:
            return None
        return make_policy(self.policy.name, self.policy.params, decides=self.policy.decides,
                           reward=self.reward, seed=self.seed)


@dataclass(frozen=True)
class ShardOutput:
    """What one :meth:`ShardCore.step` produced.

    Attributes
    ----------
    decisions : pandas.DataFrame
        The decision-log rows (:func:`~actors.service.decision_log.decision_table`).
    dead_letters : list of DeadLetter
    n_events : int
        Good events decoded from the messages.
    watermark : int or None
        The watermark after the step, seconds.
    """

    decisions: pd.DataFrame
    dead_letters: list[DeadLetter]
    n_events: int
    watermark: int | None


@dataclass
class _Counters:
    messages: int = 0
    events: int = 0
    dead_bad: int = 0
    dead_late: int = 0
    dead_foreign: int = 0
    skipped_foreign: int = 0
    updates: int = 0
    catalog: int = 0
    decisions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL_KINDS, 0))


class ShardCore:
    """One engine shard (see the module docstring).

    Parameters
    ----------
    config : ShardConfig
    partitions : sequence of int
        The key partitions this shard owns (in ``[0, config.key_partitions)``).
    shard : int
        This shard's number (in its decision rows).
    foreign : {"dead_letter", "skip"}
    """

    def __init__(self, config: ShardConfig, partitions: Sequence[int], *, shard: int = 0,
                 foreign: str = "dead_letter") -> None:
        if foreign not in FOREIGN:
            raise TriggerLabValueError(f"foreign: expected one of {FOREIGN}, got {foreign!r}")
        owned = sorted(set(partitions))
        for p in owned:
            checks.check_int("partitions", p, error=TriggerLabValueError, low=0,
                             high=config.key_partitions - 1)
        self.config = config
        self.partitions = tuple(owned)
        self.shard = shard
        self.foreign = foreign
        table = config.subscribers
        mine = np.isin(partition_of(table.index.to_numpy(np.int64), config.key_partitions),
                       owned)
        table = table[mine]
        with warnings.catch_warnings():   # a shard sees a slice: judged on the whole table
            warnings.simplefilter("ignore", RuleWarning)
            self.engine = TriggerEngine(config.rules, subscribers=table, engine=config.engine,
                                        policies=config.make_split_policies(),
                                        seed=config.seed)
        self.watermark = Watermark(config.grace, config.max_held)
        self.policy = config.make_policy()
        self.policy_version = 0
        self.counters = _Counters()
        self._pending: list[tuple[int, pd.DataFrame]] = []
        self._catalog = CatalogBatch.empty()
        self._table = table
        self._set_contexts(table)
        self.times = PartTimes()

    def _set_contexts(self, table: pd.DataFrame) -> None:
        has = all(c in table.columns for c in REQUIRED_COLUMNS)
        contextual = getattr(self.policy, "n_features", None) is not None
        if contextual and not has:
            missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
            raise SpecError(f"subscribers: the policy reads context features; the table "
                            f"lacks columns {missing}")
        self._ids = pd.Index(table.index.to_numpy(np.int64))
        self._contexts = subscriber_features(table) if has and len(table) else None
        self._contextual = contextual

    # -- the step -----------------------------------------------------------------

    def step(self, messages: Sequence[Message], now: int | None = None) -> ShardOutput:
        """Handle ``messages`` (see the module docstring); ``now`` is the wall time
        (seconds since the epoch) that bounds event times with ``config.max_skew``."""
        c = self.counters
        c.messages += len(messages)
        skew = self.config.max_skew
        max_time = MAX_TIME if now is None or skew is None else min(MAX_TIME, now + skew + 1)
        with self.times.part("decode"):
            decoded = decode_messages(messages, max_time=max_time)
        dead = list(decoded.dead_letters)
        c.dead_bad += len(dead)
        events, index = decoded.events, decoded.message_index
        part = partition_of(events.subscriber, self.config.key_partitions)
        own = np.isin(part, self.partitions)
        if not own.all():
            if self.foreign == "dead_letter":
                rows = np.flatnonzero(~own)
                for i, rec in zip(rows.tolist(), _records(events[rows]), strict=True):
                    msg = messages[int(index[i])]
                    dead.append(DeadLetter(
                        msg.partition, msg.offset, None, "subscriber",
                        f"subscriber {int(events.subscriber[i])} belongs to partition "
                        f"{int(part[i])}, not owned by shard {self.shard} (owns "
                        f"{list(self.partitions)})", rec))
                c.dead_foreign += int((~own).sum())
            else:
                c.skipped_foreign += int((~own).sum())
            events, index = events[own], index[own]
        c.events += len(events)
        with self.times.part("watermark"):
            dead += self._hold(events, index, messages)
        return ShardOutput(self._release(), dead, len(events), self.watermark.watermark)

    def advance_to(self, time: int) -> ShardOutput:
        """Treat ``time`` (s) as seen (an idle source's heartbeat, or the end of a finite
        stream: ``time = end + grace`` decides everything due by ``end``) and decide
        what that releases."""
        self.watermark.advance_to(time)
        return ShardOutput(self._release(), [], 0, self.watermark.watermark)

    def _hold(self, events: EventBatch, index: np.ndarray,
              messages: Sequence[Message]) -> list[DeadLetter]:
        """Give ``events`` to the watermark; dead letters for the late ones."""
        late = self.watermark.add(events)
        if not len(late):
            return []
        out = []
        for i, reason, rec in zip(late.rows.tolist(), late.reasons, _records(late.events),
                                  strict=True):
            msg = messages[int(index[i])]
            out.append(DeadLetter(msg.partition, msg.offset, None, "time", reason, rec))
        self.counters.dead_late += len(out)
        return out

    def update(self, rows: pd.DataFrame) -> list[DeadLetter]:
        """Attribute updates: ``rows`` with columns ``subscriber`` (int), ``time`` (int
        seconds: when the change happened) and the attributes (docs/domain.md); each is
        applied once the watermark reaches its time (module docstring). Returns dead
        letters for late rows (the others wait; rows of subscribers the shard does not
        own are skipped: their shard applies them)."""
        for col in ("subscriber", "time"):
            if col not in rows.columns:
                raise TriggerLabValueError(f"rows: expected a column {col!r}, got columns "
                                           f"{list(rows.columns)}")
        sub = rows["subscriber"].to_numpy(np.int64)
        t = rows["time"].to_numpy(np.int64)
        own = np.isin(partition_of(sub, self.config.key_partitions), self.partitions)
        floor = self.watermark.released_to
        late = own & (t < floor) if floor is not None else np.zeros(len(rows), bool)
        dead = [DeadLetter(-1, -1, int(i), "time",
                           f"late: attribute update time {int(t[i])} is before the "
                           f"watermark {floor} (grace {self.config.grace} s)",
                           {"subscriber": int(sub[i]), "time": int(t[i])})
                for i in np.flatnonzero(late)]
        self.counters.dead_late += len(dead)
        keep = rows[own & ~late]
        for at, frame in attribute_groups(keep):
            try:
                check_subscriber_table(frame)
            except (TriggerLabValueError, ValueError) as exc:
                self.counters.dead_bad += len(frame)
                dead += [DeadLetter(-1, -1, None, "attributes", str(exc),
                                    {"subscriber": int(s_), "time": at})
                         for s_ in frame.index]
                continue
            self._pending.append((at, frame))
        self._pending.sort(key=lambda x: x[0])      # stable: arrival order within a time
        return dead

    def catalog(self, messages: Sequence[Message], now: int | None = None
                ) -> list[DeadLetter]:
        """Catalog-stream messages (module docstring): the good events wait for the
        watermark; returns dead letters for bad, late and overflowing ones. ``now`` as in
        :meth:`step`."""
        skew = self.config.max_skew
        max_time = MAX_TIME if now is None or skew is None else min(MAX_TIME, now + skew + 1)
        with self.times.part("decode"):
            batch, index, dead = decode_catalog(messages, max_time=max_time)
        self.counters.dead_bad += len(dead)
        floor = self.watermark.released_to
        late = (batch.time <= floor) if floor is not None else np.zeros(len(batch), bool)
        room = max(0, self.config.max_held - len(self._catalog))
        over = np.flatnonzero(~late)[room:]
        refused = late.copy()
        refused[over] = True
        for i in np.flatnonzero(refused).tolist():
            msg = messages[int(index[i])]
            t = int(batch.time[i])
            reason = (f"late: catalog event time {t} is at or before the watermark {floor} "
                      f"(grace {self.config.grace} s)" if late[i] else
                      f"overload: {self.config.max_held} catalog events already wait for "
                      f"the watermark (max_held)")
            dead.append(DeadLetter(msg.partition, msg.offset, None, "time", reason,
                                   {"time": t, "type": batch.type_name(i),
                                    **batch.properties(i)}))
        self.counters.dead_late += int(late.sum())
        self.counters.dead_bad += len(over)
        kept = batch[~refused]
        self.counters.catalog += len(kept)
        if len(kept):
            self._catalog = CatalogBatch.concat([self._catalog, kept]).sort_by_time()
        return dead

    def _release(self) -> pd.DataFrame:
        with self.times.part("watermark"):
            released, until = self.watermark.release()
            cat = CatalogBatch.empty()
            if until is not None and len(self._catalog):
                due = self._catalog.time <= until
                cat, self._catalog = self._catalog[due], self._catalog[~due]
        closes = until is not None and len(cat) > 0 and int(cat.time[-1]) == until
        with self.times.part("engine"):
            out = self._decide(released, until, cat)
        if closes:
            self.watermark.close(int(until))   # type: ignore[arg-type]
        return self._table_of(out)

    def _decide(self, released: EventBatch, until: int | None,
                cat: CatalogBatch) -> Decisions:
        """The engine's decisions for the released events and catalog events up to
        ``until``, with the attribute updates due by then applied at their times."""
        if until is None or not self._pending or self._pending[0][0] > until:
            out = self.engine.process(released, until=until, catalog=cat)
        else:
            parts = []
            while self._pending and self._pending[0][0] <= until:
                at, frame = self._pending.pop(0)
                first, cfirst = released.time <= at, cat.time <= at
                parts.append(self.engine.process(released[first], until=at,
                                                 catalog=cat[cfirst]))
                released, cat = released[~first], cat[~cfirst]
                parts.append(self.engine.update_subscribers(frame, at=at))
                self.counters.updates += len(frame)
                self._apply_to_table(frame)
            parts.append(self.engine.process(released, until=until, catalog=cat))
            kept = [p for p in parts if len(p)] or parts[-1:]
            out = Decisions.concat(kept, self.engine.ruleset.ids)
        return out

    def _apply_to_table(self, frame: pd.DataFrame) -> None:
        """The shard's copy of its subscribers' attributes (for the policy's contexts)."""
        table = self._table
        new = frame.index.difference(table.index)
        if len(new):
            table = pd.concat([table, pd.DataFrame(index=new)])
        table = table.copy()
        for col in frame.columns:
            if col not in table.columns:
                table[col] = pd.Series(index=table.index, dtype=frame[col].dtype)
            table.loc[frame.index, col] = frame[col].to_numpy()
        self._table = table
        self._set_contexts(table)

    def _table_of(self, dec: Decisions) -> pd.DataFrame:
        """The decision rows, with arms for the fires the policy decides."""
        n = len(dec)
        for k, name in enumerate(ALL_KINDS):
            self.counters.decisions[name] += int(np.sum(dec.kind == k))
        arm = np.full(n, -1, np.int64)
        prop = np.full(n, np.nan)
        rows = self._ids.get_indexer(dec.subscriber)
        ctx = None
        if self._contexts is not None:     # NaN rows for subscribers the table lacks
            ctx = (np.where((rows >= 0)[:, None], self._contexts[np.maximum(rows, 0)], np.nan)
                   if n else np.zeros((0, self._contexts.shape[1])))
        policy = self.policy
        if policy is not None and n:
            fire = np.flatnonzero(dec.kind == ALL_KINDS.index("fire"))
            if len(fire):
                with self.times.part("arms"):
                    keys = dec.trigger_id[fire].tolist()
                    a, p = select_keyed(
                        policy, keys, self.config.seed,
                        contexts=None if not self._contextual or ctx is None else ctx[fire],
                        subscribers=dec.subscriber[fire], now=dec.time[fire])
                arm[fire], prop[fire] = a, p
        pc = self.config.policy
        with self.times.part("table"):
            return decision_table(
                dec, arm=arm, propensity=prop,
                arm_names=() if policy is None else tuple(policy.arm_names),
                policy="" if pc is None else pc.name, policy_version=self.policy_version,
                decides="" if pc is None else pc.decides, contexts=ctx, shard=self.shard)

    # -- state --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Engine, watermark and policy state with the counters (live engine arrays:
        serialize before the next step)."""
        c = self.counters
        return {
            "version": _STATE_VERSION, "shard": self.shard, "partitions": self.partitions,
            "engine": self.engine.state_dict(deep=False),
            "watermark": self.watermark.state_dict(),
            "policy": None if self.policy is None else self.policy.state_dict(),
            "policy_version": self.policy_version,
            "pending_updates": [(at, f.copy()) for at, f in self._pending],
            "catalog": self._catalog,
            "table": self._table if c.updates else None,
            "counters": {**{k: getattr(c, k) for k in ("messages", "events", "dead_bad",
                                                       "dead_late", "dead_foreign",
                                                       "skipped_foreign", "updates",
                                                       "catalog")},
                         "decisions": dict(c.decisions)},
        }

    @classmethod
    def from_state_dict(cls, config: ShardConfig, state: dict[str, Any], *,
                        foreign: str = "dead_letter") -> ShardCore:
        """A shard continuing from :meth:`state_dict` output, built on ``config``."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise TriggerLabValueError("state: expected a ShardCore.state_dict() of version "
                                       f"{_STATE_VERSION}")
        self = cls.__new__(cls)
        self.config = config
        self.partitions = tuple(state["partitions"])
        self.shard = int(state["shard"])
        self.foreign = foreign
        self.engine = TriggerEngine.from_state_dict(state["engine"])
        self.watermark = Watermark.from_state_dict(state["watermark"])
        self.policy = config.make_policy()
        if self.policy is not None and state["policy"] is not None:
            self.policy.load_state_dict(state["policy"])
        self.policy_version = int(state["policy_version"])
        counters = dict(state["counters"])
        self.counters = _Counters(decisions=dict(counters.pop("decisions")), **counters)
        self._pending = [(int(at), f.copy()) for at, f in state.get("pending_updates", [])]
        self._catalog = state.get("catalog", CatalogBatch.empty())
        table = state.get("table")
        if table is None:
            table = config.subscribers
            mine = np.isin(partition_of(table.index.to_numpy(np.int64), config.key_partitions),
                           self.partitions)
            table = table[mine]
        self._table = table
        self._set_contexts(table)
        self.times = PartTimes()
        return self

    def stats(self) -> dict[str, Any]:
        """Counters, the watermark, events held, decisions per kind."""
        c = self.counters
        return {"messages": c.messages, "events": c.events, "dead_bad": c.dead_bad,
                "dead_late": c.dead_late, "dead_foreign": c.dead_foreign,
                "skipped_foreign": c.skipped_foreign, "catalog": c.catalog,
                "catalog_held": len(self._catalog), "decisions": dict(c.decisions),
                "watermark": self.watermark.watermark, "held": self.watermark.n_held,
                "max_seen": self.watermark.max_seen}


def _records(events: EventBatch) -> list[dict[str, Any]]:
    """The rows of ``events`` as JSON-able dicts (for dead letters; missing -> None)."""
    out = []
    for row in events.to_pandas().to_dict("records"):
        out.append({k: (None if isinstance(v, float) and v != v else
                        v.item() if isinstance(v, np.generic) else v)
                    for k, v in row.items()})
    return out
