"""A subscriber shard: subscribers ``[start, stop)``, their world and trigger engine.

:class:`ShardCore` is plain Python (no Ray); the inline executor calls it directly and
the Ray executor wraps it in an actor. One :meth:`ShardCore.step` per tick:

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

It returns the choices (outbox emails the policy must decide, with contexts) and the
rewards, as small columnar dicts. Everything else (counters, truth, logs) stays in the
shard's state, so a checkpoint holds it and a replay cannot count anything twice.
"""

from __future__ import annotations

import copy
import pickle
import resource
from typing import Any

import numpy as np
import pandas as pd

from actors.config import SimulationConfig
from actors.emails import EmailStore, campaign_code, email_id, email_id_of, source_of
from actors.metrics import METRICS, TRUTH_COLUMNS, to_fixed
from actors.plan import REWARD_PROBABILITY, RunPlan
from policies.ab import hash_unit
from policies.errors import SpecError
from policies.events import EVENT_TYPES, EventBatch
from policies.features import FEATURE_NAMES, subscriber_features
from policies.triggers import KINDS, TriggerEngine, segment_mask
from sim.clock import DAY
from sim.population import Population
from sim.presets import SUBJECT_STYLES, get_preset
from sim.response import EmailBatch, probabilities
from sim.world import World

__all__ = ["HOLDOUT_SALT", "ShardCore", "process_cpu_seconds"]

#: Salt of the holdout hash (with the seed): ``hash_unit(id, f"{HOLDOUT_SALT}-{seed}")``.
HOLDOUT_SALT = "triggerlab-holdout"
_M = {m: i for i, m in enumerate(METRICS)}
_FIRE, _CANCEL, _EXPIRE, _SUPPRESS = (KINDS.index(k) for k in
                                      ("fire", "cancel", "expire", "suppress"))
_KIND_METRIC = {_FIRE: _M["fires"], _CANCEL: _M["cancels"], _EXPIRE: _M["expires"],
                _SUPPRESS: _M["suppressions"]}
_D = len(FEATURE_NAMES)
EVENT_CODES = {name: EVENT_TYPES.code(name) for name in (
    "purchase_completed", "email_open", "email_click", "unsubscribe")}


def process_cpu_seconds() -> float:
    """CPU time (user + system, s) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return float(ru.ru_utime + ru.ru_stime)


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
        ids = pop.ids
        self.group = holdout_groups(ids, seed, config.holdout_fraction)
        self.seq = np.zeros(len(ids), np.int64)
        self.layout = self.plan.layout
        self.counts = self.layout.new_counts()
        self.truth = self.layout.new_truth()
        for g in (0, 1):
            self.counts[:, self.layout.site, 0, g, _M["subscribers"]] = int(
                np.sum(self.group == g))
        self.table = self.world.subscribers()
        self.engine: TriggerEngine | None = None
        self._seg_numeric: list[np.ndarray] = []
        if config.rules is not None:
            self.engine = TriggerEngine(config.rules, subscribers=self.table)
            self._seg_numeric = self._numeric_segments(self.table)
        self._engagement = self.table["engagement_score"].to_numpy(np.float64)
        self.table = self._slim(self.table)
        camp = config.campaign
        self._camp_offset = (
            None if camp is None
            else camp.local_hour * 3600 - pop.utc_offset_minutes.astype(np.int64) * 60
        )
        self._camp_range = ((0, 0) if self._camp_offset is None else
                            (int(self._camp_offset.min()), int(self._camp_offset.max())))
        k = len(self.plan.arm_names)
        store_cols: dict[str, tuple[Any, tuple[int, ...]]] = {
            "email_id": (np.int64, ()), "subscriber": (np.int64, ()), "time": (np.int64, ()),
            "source": (np.int64, ()), "arm": (np.int64, ()), "group": (np.int64, ()),
            "propensity": (np.float64, ()), "clicks": (np.int64, ()),
            "orders": (np.int64, ()), "revenue": (np.int64, ()),
            "expected": (np.float64, ()),
        }
        if config.record_decisions and k:
            store_cols["expected_arms"] = (np.float64, (k,))
        if self.plan.store_contexts:
            store_cols["context"] = (np.float64, (_D,))
        self.sent = EmailStore(store_cols)
        self.outbox = self._empty_outbox()
        self.awaiting = np.zeros(0, bool)  # outbox rows waiting for the learner's arms
        self.position = 0
        self.decision_log: list[dict[str, np.ndarray]] = []
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
        """The shard state as plain objects and numpy arrays, not copied into bytes (Ray
        ships the arrays out of band); :meth:`from_state` continues from it."""
        return self.__getstate__()

    @staticmethod
    def from_state(state: dict[str, Any]) -> ShardCore:
        """A shard continuing from :meth:`state` (arrays are copied: they may be
        read-only views of Ray's object store)."""
        if not isinstance(state, dict) or "world" not in state:
            raise SpecError(f"checkpoint: expected a ShardCore.state() dict, got "
                            f"{type(state).__name__}")
        core = ShardCore.__new__(ShardCore)
        core.__setstate__(copy.deepcopy(state))
        return core

    def checkpoint(self) -> bytes:
        """The whole shard state as bytes (restore with :meth:`restore`)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def restore(data: bytes) -> ShardCore:
        """A shard from :meth:`checkpoint` bytes; it continues where it was."""
        core = pickle.loads(data)
        if not isinstance(core, ShardCore):
            raise SpecError(f"checkpoint: expected ShardCore bytes, got {type(core).__name__}")
        return core

    # -- the tick --------

    def step(self, tick: int, arms: dict[str, np.ndarray] | None) -> dict[str, Any]:
        """Run ``tick`` (see the module docstring); ``arms`` answers the choices of tick
        ``tick - decision_lag_ticks`` (the learner's output, all shards' emails in
        canonical order; None before that tick exists)."""
        if tick != self.position:
            raise SpecError(f"tick: expected {self.position} (shard [{self.start}, "
                            f"{self.stop}) position), got {tick}")
        cfg = self.config
        t0, t1 = cfg.tick_bounds(tick)
        self._apply_arms(arms, tick - self.config.decision_lag_ticks, t0)
        n_sent = self._deliver(t0)
        events = self.world.step(t0, t1)
        self.n_events += len(events)
        if cfg.record_events:
            self.event_log.append(events)
        self._attribute(events)
        if self.engine is not None:
            decisions = self.engine.process(events, until=t1)
            self._decisions(decisions)
        if self._camp_offset is not None:
            self._campaign(t0, t1)
        rewards = self._finalize(t1 - cfg.reward_window_seconds)
        if t0 // DAY != t1 // DAY:
            self._refresh_table(t1)
        choices = self._choices()
        self.position += 1
        return {"tick": tick, "choices": choices, "rewards": rewards,
                "n_events": len(events), "n_sent": n_sent}

    def steps(self, first: int, count: int,
              arms: list[dict[str, np.ndarray] | None] | None) -> list[dict[str, Any]]:
        """Run ticks ``first .. first + count - 1``; ``arms[j]`` (or None) answers the
        choices of tick ``first + j - decision_lag_ticks`` (see :meth:`step`)."""
        if arms is not None and len(arms) != count:
            raise SpecError(f"arms: expected {count} learner outputs, got {len(arms)}")
        return [self.step(first + j, None if arms is None else arms[j]) for j in range(count)]

    # -- outbox --------

    def _empty_outbox(self) -> dict[str, np.ndarray]:
        z = np.zeros(0, np.int64)
        box = {"email_id": z, "subscriber": z, "due": z, "source": z, "arm": z,
               "propensity": np.zeros(0), "deliver_at": z, "due_tick": z}
        if self.plan.store_contexts:
            box["context"] = np.zeros((0, _D))
        return box

    def _enqueue(self, subscriber: np.ndarray, due: np.ndarray, source: np.ndarray,
                 decided: bool) -> None:
        """Add emails that became due to the outbox (ids drawn from the per-subscriber
        counter); ``decided``: the policy chooses their arm."""
        m = len(subscriber)
        if m == 0:
            return
        order = np.lexsort((source, subscriber, due))
        subscriber, due, source = subscriber[order], due[order], source[order]
        row = subscriber - self.start
        # per-subscriber rank of each email among this batch
        seq = self.seq[row].copy()
        if len(np.unique(row)) != m:
            first = np.zeros(m, np.int64)
            srt = np.argsort(row, kind="stable")
            rs = row[srt]
            starts = np.r_[0, np.flatnonzero(rs[1:] != rs[:-1]) + 1]
            run = np.arange(m) - np.repeat(starts, np.diff(np.r_[starts, m]))
            first[srt] = run
            seq = seq + first
        np.add.at(self.seq, row, 1)
        new = {"email_id": email_id(subscriber, seq), "subscriber": subscriber, "due": due,
               "source": source, "arm": np.full(m, -1, np.int64),
               "propensity": np.ones(m), "deliver_at": np.full(m, -1, np.int64),
               "due_tick": np.full(m, self.position, np.int64)}
        if self.plan.store_contexts:
            new["context"] = self._contexts(row)
        self.outbox = {k: np.concatenate([self.outbox[k], new[k]]) for k in self.outbox}
        self.awaiting = np.concatenate([self.awaiting, np.full(m, decided, bool)])

    def _contexts(self, row: np.ndarray) -> np.ndarray:
        return subscriber_features(self.table.iloc[row])

    def _choices(self) -> dict[str, np.ndarray]:
        sel = self.awaiting & (self.outbox["due_tick"] == self.position)
        out = {k: self.outbox[k][sel] for k in ("email_id", "subscriber", "due", "source")}
        if self.plan.policy_contexts:
            out["context"] = self.outbox["context"][sel]
        return out

    def _apply_arms(self, arms: dict[str, np.ndarray] | None, due_tick: int,
                    t0: int) -> None:
        """Set the learner's arms (for the emails offered in ``due_tick``) and their
        delivery time (``t0``, or the ``send_hour`` arm's hour)."""
        box = self.outbox
        need = np.flatnonzero(self.awaiting & (box["due_tick"] == due_tick))
        if len(need) == 0:
            return
        if arms is None:
            raise SpecError(f"arms: shard [{self.start}, {self.stop}) awaits arms for "
                            f"{len(need)} emails, got none")
        ids = arms["email_id"]
        mine = (ids >> 24 >= self.start) & (ids >> 24 < self.stop)
        ids, arm, prop = ids[mine], arms["arm"][mine], arms["propensity"][mine]
        order = np.argsort(ids)
        pos = np.searchsorted(ids[order], box["email_id"][need])
        pos = np.minimum(pos, len(ids) - 1) if len(ids) else pos
        if len(ids) == 0 or not np.array_equal(ids[order][pos], box["email_id"][need]):
            raise SpecError(f"arms: missing arms for emails of shard [{self.start}, "
                            f"{self.stop})")
        box["arm"][need] = arm[order][pos]
        box["propensity"][need] = prop[order][pos]
        deliver = np.full(len(need), t0, np.int64)
        variants = self.plan.variants
        if variants is not None and variants.decides == "send_hour":
            hours = variants.codes()[0][box["arm"][need]]
            off = self.world.population.utc_offset_minutes[
                box["subscriber"][need] - self.start].astype(np.int64) * 60
            local = (t0 + off) % DAY
            deliver = t0 + (hours * 3600 - local) % DAY
        box["deliver_at"][need] = deliver
        self.awaiting[need] = False

    def _deliver(self, now: int) -> int:
        """Send outbox emails due for delivery at ``now`` (the emails the policy does not
        decide once ``decision_lag_ticks`` have passed); returns the number sent."""
        box = self.outbox
        if len(box["email_id"]) == 0:
            return 0
        fixed = ((box["deliver_at"] < 0) & ~self.awaiting
                 & (box["due_tick"] <= self.position - self.config.decision_lag_ticks))
        box["deliver_at"][fixed] = now
        ready = (box["deliver_at"] >= 0) & (box["deliver_at"] <= now)
        if not ready.any():
            return 0
        go = {k: v[ready] for k, v in box.items()}
        self.outbox = {k: v[~ready] for k, v in box.items()}
        self.awaiting = self.awaiting[~ready]
        row = go["subscriber"] - self.start
        live = self.world.population.subscribed[row]
        if not live.all():
            go = {k: v[live] for k, v in go.items()}
            row = row[live]
        m = len(row)
        if m == 0:
            return 0
        batch = self._email_batch(go, row, go["arm"], now)
        self._add_truth(go, row, batch, now)
        self.world.send(batch)
        cfg = self.config
        day = np.full(m, (now - cfg.start) // DAY, np.int64)
        arm_slot = go["arm"] + 1
        group = self.group[row]
        self.layout.add(self.counts, day, go["source"], arm_slot, group, _M["sends"])
        self.n_emails += m
        return m

    def _email_batch(self, go: dict[str, np.ndarray], row: np.ndarray, arm: np.ndarray,
                     now: int) -> EmailBatch:
        """The emails of ``go`` with the variant of arm ``arm`` (-1: the fixed variant)."""
        cfg = self.config
        source = go["source"]
        m = len(source)
        trig = source > 0
        kind = np.zeros(m, np.int64)
        urgency = np.zeros(m, bool)
        if len(self.plan.rule_kind):
            r = np.where(trig, source - 1, 0)
            kind = np.where(trig, self.plan.rule_kind[r], 0)
            urgency = np.where(trig, self.plan.rule_urgency[r], False)
        camp_style = SUBJECT_STYLES.index(cfg.campaign.subject_style) if cfg.campaign else 0
        style = np.where(trig, 0, camp_style).astype(np.int64)
        strategy = np.full(m, -1, np.int64)
        level = np.zeros(m, np.int64)
        hour = np.full(m, -1, np.int64)
        decided = arm >= 0
        variants = self.plan.variants
        if variants is not None and decided.any():
            value, lvl = variants.codes()
            a = np.where(decided, arm, 0)
            if variants.decides == "subject_style":
                style = np.where(decided, value[a], style)
            elif variants.decides == "send_hour":
                hour = np.where(decided, value[a], hour)
            else:
                strategy = np.where(decided, value[a], strategy)
                rule_level = (self._engagement[row] > 0.6).astype(np.int64)
                level = np.where(decided, np.where(lvl[a] >= 0, lvl[a], rule_level), level)
        return EmailBatch(
            subscriber=go["subscriber"], time=np.full(m, now, np.int64),
            campaign=campaign_code(go["email_id"], source), kind=kind, subject_style=style,
            strategy=strategy, personalization=level, urgency=urgency,
            incentive=np.zeros(m), send_hour=hour)

    def _add_truth(self, go: dict[str, np.ndarray], row: np.ndarray, batch: EmailBatch,
                   now: int) -> None:
        """Ground truth of delivered emails: true probabilities of the chosen variant and
        the expected reward of every arm (one response-model call on the stacked batch)."""
        cfg = self.config
        pop = self.world.population
        key = REWARD_PROBABILITY[cfg.reward]
        m = len(row)
        k = len(self.plan.arm_names)
        decided = go["arm"] >= 0
        idx = np.flatnonzero(decided) if k else np.zeros(0, np.int64)
        parts = [batch]
        if len(idx):
            sub = {name: v[idx] for name, v in go.items()}
            rows_k = np.tile(row[idx], k)
            sub_k = {name: np.tile(v, k) if v.ndim == 1 else np.tile(v, (k, 1))
                     for name, v in sub.items()}
            arms_k = np.repeat(np.arange(k, dtype=np.int64), len(idx))
            parts.append(self._email_batch(sub_k, rows_k, arms_k, now))
        pr = probabilities(pop, EmailBatch.concat(parts) if len(parts) > 1 else batch)
        chosen = pr[key][:m]
        per_arm = np.zeros((m, k))
        if len(idx):
            per_arm[idx] = pr[key][m:].reshape(k, len(idx)).T
        pr = {name: v[:m] for name, v in pr.items()}
        regret = np.where(decided, per_arm.max(axis=1) - chosen if k else 0.0, 0.0)
        cols = np.column_stack([
            np.ones(m, np.int64), to_fixed(pr["p_open"]), to_fixed(pr["p_click"]),
            to_fixed(pr["p_purchase"]), to_fixed(pr["expected_revenue"]),
            to_fixed(pr["p_incremental_purchase"]), to_fixed(regret),
            *[to_fixed(per_arm[:, a]) for a in range(k)],
        ]).astype(np.int64)
        assert cols.shape[1] == len(TRUTH_COLUMNS) + k
        self.layout.add_truth(self.truth, go["source"], go["arm"] + 1, self.group[row], cols)
        rows: dict[str, np.ndarray] = {
            "email_id": go["email_id"], "subscriber": go["subscriber"],
            "time": np.full(m, now, np.int64), "source": go["source"], "arm": go["arm"],
            "group": self.group[row], "propensity": go["propensity"],
            "clicks": np.zeros(m, np.int64), "orders": np.zeros(m, np.int64),
            "revenue": np.zeros(m, np.int64), "expected": chosen,
        }
        if "expected_arms" in self.sent.cols:
            rows["expected_arms"] = per_arm
        if "context" in self.sent.cols:
            rows["context"] = go["context"]
        self.sent.append(rows)

    # -- responses, engine, campaign --------

    def _attribute(self, ev: EventBatch) -> None:
        if len(ev) == 0:
            return
        cfg = self.config
        day = (ev.time - cfg.start) // DAY
        typ = ev.type
        purchase = typ == EVENT_CODES["purchase_completed"]
        revenue_cents = np.rint(np.nan_to_num(ev.column("revenue")) * 100).astype(np.int64)
        if purchase.any():
            grp = self.group[ev.subscriber[purchase] - self.start]
            site = np.full(int(purchase.sum()), self.layout.site, np.int64)
            zero = np.zeros(len(site), np.int64)
            self.layout.add(self.counts, day[purchase], site, zero, grp, _M["orders_all"])
            self.layout.add(self.counts, day[purchase], site, zero, grp, _M["revenue_all"],
                            revenue_cents[purchase])
        camp = ev.column("campaign_id")
        resp = np.flatnonzero(camp >= 0)
        if len(resp) == 0:
            return
        pos = self.sent.positions(email_id_of(ev.subscriber[resp], camp[resp]))
        ok = pos >= 0
        resp, pos = resp[ok], pos[ok]
        cols = self.sent.cols
        within = ev.time[resp] <= cols["time"][pos] + cfg.reward_window_seconds
        resp, pos = resp[within], pos[within]
        if len(resp) == 0:
            return
        typ_r = typ[resp]
        machine = ev.column("machine")[resp]
        src, arm, grp = source_of(camp[resp]), cols["arm"][pos] + 1, cols["group"][pos]
        d = day[resp]
        is_open = typ_r == EVENT_CODES["email_open"]
        for metric, mask, vals in (
            ("opens", is_open, 1),
            ("machine_opens", is_open & (machine == 1), 1),
            ("human_opens", is_open & (machine != 1), 1),
            ("clicks", typ_r == EVENT_CODES["email_click"], 1),
            ("orders", typ_r == EVENT_CODES["purchase_completed"], 1),
            ("revenue", typ_r == EVENT_CODES["purchase_completed"], revenue_cents[resp]),
            ("unsubscribes", typ_r == EVENT_CODES["unsubscribe"], 1),
        ):
            if mask.any():
                v = vals[mask] if isinstance(vals, np.ndarray) else vals
                self.layout.add(self.counts, d[mask], src[mask], arm[mask], grp[mask],
                                _M[metric], v)
        click = typ_r == EVENT_CODES["email_click"]
        buy = typ_r == EVENT_CODES["purchase_completed"]
        np.add.at(cols["clicks"], pos[click], 1)
        np.add.at(cols["orders"], pos[buy], 1)
        np.add.at(cols["revenue"], pos[buy], revenue_cents[resp][buy])

    def _decisions(self, dec: Any) -> None:
        if len(dec) == 0:
            return
        cfg = self.config
        row = dec.subscriber - self.start
        grp = self.group[row]
        day = (dec.time - cfg.start) // DAY
        src = dec.rule + 1
        zero = np.zeros(len(dec), np.int64)
        for code, metric in _KIND_METRIC.items():
            mask = dec.kind == code
            if mask.any():
                self.layout.add(self.counts, day[mask], src[mask], zero[mask], grp[mask], metric)
        fire = (dec.kind == _FIRE) & (grp == 0)
        fire &= self.world.population.subscribed[row]
        if fire.any():
            self._enqueue(dec.subscriber[fire], dec.time[fire], src[fire],
                          self.plan.decides_triggers)

    def _campaign(self, t0: int, t1: int) -> None:
        cfg = self.config
        camp = cfg.campaign
        assert camp is not None and self._camp_offset is not None
        off = self._camp_offset
        first_day = cfg.start // DAY
        lo_off, hi_off = self._camp_range
        for d in range((t0 - hi_off) // DAY, (t1 - lo_off) // DAY + 1):
            if d < first_day or (d - first_day) % camp.every_days:
                continue
            if d * DAY + hi_off <= t0 or d * DAY + lo_off > t1:
                continue
            times = d * DAY + off
            due = (times > t0) & (times <= t1) & (times >= cfg.start)
            due &= self.world.population.subscribed
            if due.any():
                rows = np.flatnonzero(due)
                self._enqueue(rows + self.start, times[rows],
                              np.zeros(len(rows), np.int64), self.plan.decides_campaign)

    # -- rewards --------

    def _reward_values(self, done: dict[str, np.ndarray]) -> np.ndarray:
        reward = self.config.reward
        if reward == "click":
            return (done["clicks"] > 0).astype(np.float64)
        if reward == "order":
            return (done["orders"] > 0).astype(np.float64)
        return done["revenue"] / 100.0

    def _finalize(self, sent_before: int) -> dict[str, np.ndarray]:
        done = self.sent.pop_until(sent_before)
        reward = self._reward_values(done)
        if self.config.record_decisions and len(reward):
            self.decision_log.append(self._log_rows(done, reward))
        learn = done["arm"] >= 0
        out = {"email_id": done["email_id"][learn], "subscriber": done["subscriber"][learn],
               "time": done["time"][learn], "arm": done["arm"][learn],
               "reward": reward[learn]}
        if self.plan.policy_contexts:
            out["context"] = done["context"][learn]
        return out

    def _log_rows(self, done: dict[str, np.ndarray], reward: np.ndarray) -> dict[str, Any]:
        rows = {k: done[k] for k in ("email_id", "subscriber", "time", "source", "arm",
                                     "propensity", "expected")}
        rows["reward"] = reward
        if "expected_arms" in done:
            rows["expected_arms"] = done["expected_arms"]
        rows["context"] = done["context"]
        return rows

    # -- subscriber table --------

    def _numeric_segments(self, table: pd.DataFrame) -> list[np.ndarray]:
        assert self.config.rules is not None
        out = []
        for rule in self.config.rules.rules:
            preds = tuple(p for p in rule.segment
                          if p.column in table.columns and table[p.column].dtype.kind in "biuf")
            out.append(segment_mask(table, preds))
        return out

    def _refresh_table(self, now: int) -> None:
        """Refresh the subscriber table; push to the engine only the rows whose segment
        inputs changed (string columns by value, numeric predicates by outcome)."""
        new = self.world.subscribers(now)
        if self.engine is not None and self.config.rules is not None:
            changed = np.zeros(len(new), bool)
            text_cols = {p.column for r in self.config.rules.rules for p in r.segment
                         if p.column in new.columns and new[p.column].dtype.kind not in "biuf"}
            for c in sorted(text_cols):
                changed |= (new[c].to_numpy() != self.table[c].to_numpy())
            numeric = self._numeric_segments(new)
            for a, b in zip(numeric, self._seg_numeric, strict=True):
                changed |= a != b
            self._seg_numeric = numeric
            if changed.any():
                self.engine.update_subscribers(new.iloc[np.flatnonzero(changed)])
        self.table = self._slim(new)
        self._engagement = new["engagement_score"].to_numpy(np.float64)

    def _slim(self, table: pd.DataFrame) -> pd.DataFrame:
        """The columns the shard reads later: all (contexts) or the segments' text ones."""
        if self.plan.store_contexts:
            return table
        rules = self.config.rules.rules if self.config.rules is not None else ()
        keep = sorted({p.column for r in rules for p in r.segment if p.column in table.columns})
        return table[keep]

    # -- results --------

    def finish(self) -> dict[str, Any]:
        """Counters, truth and logs of the shard (pending emails are logged with the reward
        observed so far; nothing is fed to the learner any more)."""
        if self.config.record_decisions:
            done = self.sent.pop_all()
            if len(done["email_id"]):
                self.decision_log.append(self._log_rows(done, self._reward_values(done)))
        decisions = None
        if self.config.record_decisions:
            parts = self.decision_log
            decisions = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} \
                if parts else None
        events = EventBatch.concat(self.event_log) if self.config.record_events else None
        return {"start": self.start, "stop": self.stop, "counts": self.counts,
                "truth": self.truth, "decisions": decisions, "events": events,
                "n_events": self.n_events, "n_emails": self.n_emails,
                "peak_rss": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
                "cpu_s": process_cpu_seconds() - self._cpu0,
                "engine_stats": None if self.engine is None else self.engine.stats()}
