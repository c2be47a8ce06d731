"""Drive a load test: engine shards on Ray, open-loop arrival, measurement, checks.

The driver (this process) dispatches each shard's batches when they arrive by the plan
(:func:`experiments.loadtest.generator.plan`), never waiting for the shard to keep up;
a shard's Ray mailbox is its queue, so overload shows up as backlog and latency. A
batch's latency is measured per event: from the event's arrival (its scheduled time at
the generator; with ``--max``, the batch's dispatch) to the moment the shard's reply with
the decisions is available to the driver.

The shards run in an :class:`actors.engine_pool.EnginePool` (this module never touches
Ray itself). Checkpoints are engine states returned by the shards (owned by the driver,
so they outlive a killed shard). With a kill, the pool kills the shard and continues it
from the latest checkpoint (on a warm spare or a new actor); the driver re-sends every
batch after it; replies for batches already received are compared with the originals
and not counted twice.

The correctness check runs the reference engine offline over exactly the events offered
to the subscribers of a deterministic sample (all of them for small runs) and compares
decisions row for row; it also checks that no trigger instance was decided twice and
that the decisions received equal the shards' own counters.

The module is about 500 lines on purpose: the dispatch loop and the result it assembles
(:meth:`_Driver.finish`) read the same per-batch bookkeeping of one driver object.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from actors.engine_pool import EnginePool
from actors.engine_shard import ShardReply
from experiments.loadtest.checks import (
    compare_decisions,
    counter_mismatch_count,
    duplicate_instances,
    same_decisions,
    weighted_percentiles,
)
from experiments.loadtest.config import LoadTestConfig, LoadTestResult
from experiments.loadtest.generator import (
    Plan,
    Stream,
    check_coverage,
    partition,
    plan,
    sample_mask,
)
from policies.errors import RuleWarning, SpecError
from policies.events import EventBatch
from policies.triggers import ALL_KINDS, KINDS, STAT_NAMES, Decisions, RuleSet, TriggerEngine

__all__ = ["LoadTestConfig", "LoadTestResult", "run_loadtest"]

# ---------------------------------------------------------------------------


@dataclass
class _Shard:
    j: int
    batch_refs: list[Any]
    last_time: np.ndarray  # last event time of each pool batch
    next_k: int = 0
    inflight: deque = field(default_factory=deque)  # (kind, k, ref, dispatch_time)
    completed: int = 0  # batches completed the first time (contiguous prefix)
    replies: dict[int, Decisions] = field(default_factory=dict)
    checkpoint: tuple[int, Any] | None = None
    next_ckpt: float = 0.0
    alive: bool = True


class _Driver:
    def __init__(self, stream: Stream, rules: RuleSet, cfg: LoadTestConfig) -> None:
        self.cfg = cfg
        self.rules = rules
        #: decision kinds the shards count (journeys add theirs)
        self.kinds = (ALL_KINDS if any(r.journey is not None for r in rules.rules) else KINDS)
        self.stream = stream
        check_coverage(stream.events, stream.subscribers)
        ids = stream.subscribers.index.to_numpy(np.int64)
        if cfg.shards > len(ids):
            raise SpecError(f"shards: expected an integer in [1, {len(ids)}] (at most one "
                            f"shard per subscriber: {len(ids)} subscribers), got {cfg.shards}")
        self.sub_shard = partition(ids, cfg.shards, cfg.partition, ids=ids)
        shard_of = partition(stream.events.subscriber, cfg.shards, cfg.partition, ids=ids)
        self.plan: Plan = plan(
            stream, shard_of, cfg.shards, rate=cfg.rate, duration=cfg.duration,
            window=cfg.window, max_batch=cfg.max_batch, speedup=cfg.speedup,
        )
        self.max_mode = self.plan.rate is None
        if cfg.kill_at is not None and not self.max_mode and cfg.kill_at >= self.plan.duration:
            # the last batch arrives at plan.duration (a replay: its length / speedup);
            # a later kill would find the run over and kill nothing
            raise SpecError(
                f"kill-shard-at: expected seconds in [0, {self.plan.duration:.3g}) (before "
                f"the last batch arrives), got {cfg.kill_at:g}")
        if cfg.sweep_every is not None:
            self.sweep_every = cfg.sweep_every
        elif self.max_mode:
            self.sweep_every = 10
        else:
            self.sweep_every = max(1, round(0.25 / cfg.window))
        # logs: per completed batch (first time)
        self.log_done: list[float] = []
        self.log_n: list[int] = []
        self.log_counts: list[np.ndarray] = []
        self.log_shard: list[int] = []
        self.lat_values: list[np.ndarray] = []
        self.lat_weights: list[np.ndarray] = []
        self.lat_done: list[np.ndarray] = []
        self.dispatch_log: list[tuple[float, int]] = []  # max mode: (time, n)
        self.replayed_events = 0
        self.replay_mismatches = 0
        self.recovery: dict[str, Any] | None = None
        self._recovering: dict[str, Any] | None = None

    # -- setup ------------------------------------------------------------------

    def start(self, pool: EnginePool) -> None:
        p = self.plan
        self.pool = pool
        self.shards: list[_Shard] = []
        for j in range(p.n_shards):
            events = p.pools[j]
            refs = [pool.put(events[int(lo):int(hi)]) for lo, hi in p.bounds[j]]
            last = (events.time[np.maximum(p.bounds[j][:, 1] - 1, 0)] if len(events)
                    else np.zeros(0))
            self.shards.append(_Shard(j, refs, np.asarray(last, np.int64)))
        pool.warmup()
        ckpts = [pool.checkpoint(s.j) for s in self.shards]
        pool.wait_all(ckpts)
        for s, ref in zip(self.shards, ckpts, strict=True):
            s.checkpoint = (-1, ref)
            s.next_ckpt = self.cfg.checkpoint_every * (1 + s.j / len(self.shards))

    # -- helpers ------------------------------------------------------------------

    def _n_offered(self, s: _Shard) -> int:
        return len(self.plan.batch[s.j]) if not self.max_mode else 1 << 62

    def _pool_row(self, s: _Shard, k: int) -> tuple[int, int]:
        if self.max_mode:
            nb = len(s.batch_refs)
            return k % nb, k // nb
        return int(self.plan.batch[s.j][k]), int(self.plan.cycle[s.j][k])

    def _send(self, s: _Shard, k: int, now: float) -> None:
        row, cycle = self._pool_row(s, k)
        offset = cycle * self.plan.shift
        until = int(s.last_time[row]) + offset if (k + 1) % self.sweep_every == 0 else None
        ref = self.pool.process(s.j, s.batch_refs[row], seq=k, until=until, time_offset=offset)
        s.inflight.append(("batch", k, ref, now))

    def _dispatch(self, s: _Shard, now: float) -> None:
        if not s.alive:
            return
        if self.max_mode:
            if now >= self.cfg.duration or not s.batch_refs:
                return
            while sum(1 for x in s.inflight if x[0] == "batch") < self.cfg.max_inflight:
                row, _ = self._pool_row(s, s.next_k)
                self.dispatch_log.append((now, int(np.diff(self.plan.bounds[s.j][row])[0])))
                self._send(s, s.next_k, now)
                s.next_k += 1
            return
        arr = self.plan.arrival[s.j]
        while s.next_k < len(arr) and arr[s.next_k] <= now:
            self._send(s, s.next_k, now)
            s.next_k += 1

    def _maybe_checkpoint(self, s: _Shard, now: float) -> None:
        if s.alive and now >= s.next_ckpt and s.next_k > 0:
            ref = self.pool.checkpoint(s.j)
            s.inflight.append(("ckpt", s.next_k - 1, ref, now))
            s.next_ckpt = now + self.cfg.checkpoint_every

    def _complete(self, s: _Shard, item: tuple, done: float) -> None:
        kind, k, ref, sent = item
        if kind == "ckpt":
            s.checkpoint = (k, ref)
            return
        if kind == "restore":
            if self._recovering is not None:
                self._recovering["restored"] = done
            return
        reply: ShardReply = self.pool.get(ref)
        if k in s.replies:  # a replay after recovery: must equal what we already have
            self.replayed_events += reply.n_events
            if not same_decisions(s.replies[k], reply.decisions):
                self.replay_mismatches += 1
            return
        s.replies[k] = reply.decisions
        s.completed += 1
        self.log_done.append(done)
        self.log_n.append(reply.n_events)
        self.log_counts.append(reply.counts)
        self.log_shard.append(s.j)
        if self.max_mode:
            arrivals = np.array([sent])
            weights = np.array([float(reply.n_events)])
        else:
            smp = self.plan.samples[s.j][k]
            arrivals = smp[~np.isnan(smp)]
            weights = np.full(len(arrivals), reply.n_events / max(len(arrivals), 1))
        self.lat_values.append(done - arrivals)
        self.lat_weights.append(weights)
        self.lat_done.append(np.full(len(arrivals), done))
        rec = self._recovering
        if rec is not None and s.j == rec["shard"] and "caught_up" not in rec:
            arrived = (
                s.next_k if self.max_mode
                else int(np.searchsorted(self.plan.arrival[s.j], done, side="right"))
            )
            if k >= rec["next_k"] - 1 and arrived - (k + 1) <= 2:
                rec["caught_up"] = done

    def _kill(self, s: _Shard, now: float) -> None:
        t_kill = now
        s.alive = False
        lost = [x for x in s.inflight if x[0] == "batch"]
        s.inflight.clear()
        ckpt_seq, ckpt_ref = s.checkpoint  # type: ignore[misc]
        self._recovering = {
            "shard": s.j, "killed_at": t_kill, "checkpoint_seq": ckpt_seq,
            "next_k": s.next_k, "in_flight_lost": len(lost),
        }
        s.inflight.append(("restore", ckpt_seq, self.pool.restart(s.j, ckpt_ref), now))
        s.alive = True
        for k in range(ckpt_seq + 1, s.next_k):
            self._send(s, k, now)
        self._recovering["replayed_batches"] = s.next_k - (ckpt_seq + 1)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        cfg = self.cfg
        t0 = time.perf_counter()
        self.t0 = t0
        killed = cfg.kill_at is None
        end_offer = self.plan.duration if not self.max_mode else cfg.duration
        deadline = end_offer + cfg.drain_timeout
        while True:
            now = time.perf_counter() - t0
            if not killed and now >= cfg.kill_at:  # type: ignore[operator]
                self._kill(self.shards[cfg.kill_shard], now)
                killed = True
            for s in self.shards:
                self._dispatch(s, now)
                self._maybe_checkpoint(s, now)
            heads = {s.inflight[0][2]: s for s in self.shards if s.inflight}
            pending = any(
                s.next_k < self._n_offered(s) for s in self.shards
            ) and (not self.max_mode or now < cfg.duration)
            if not heads:
                if not pending:
                    break
                nxt = min(
                    (self.plan.arrival[s.j][s.next_k] for s in self.shards
                     if not self.max_mode and s.next_k < len(self.plan.arrival[s.j])),
                    default=now + 0.001,
                )
                time.sleep(max(0.0, min(nxt - now, 0.005)))
                continue
            if now > deadline:
                self.timed_out = True
                break
            timeout = 0.005
            if not self.max_mode:
                upcoming = [self.plan.arrival[s.j][s.next_k] for s in self.shards
                            if s.next_k < len(self.plan.arrival[s.j])]
                if upcoming:
                    timeout = max(0.0, min(timeout, min(upcoming) - now))
            ready = self.pool.wait_any(list(heads), timeout)
            done = time.perf_counter() - t0
            for ref in ready:
                s = heads[ref]
                item = s.inflight.popleft()
                self._complete(s, item, done)
        self.t_end = time.perf_counter() - t0
        self.end_offer = end_offer
        if not hasattr(self, "timed_out"):
            self.timed_out = False

    # -- results ------------------------------------------------------------------------

    def finish(self) -> LoadTestResult:
        cfg, p, pool = self.cfg, self.plan, self.pool
        # final sweep: decide everything due by the latest event offered anywhere
        last_times = []
        for s in self.shards:
            if s.next_k:
                row, cycle = self._pool_row(s, s.next_k - 1)
                last_times.append(int(s.last_time[row]) + cycle * p.shift)
        final_until = max(last_times) if last_times else int(self.stream.events.time[0])
        finals = []
        for s in self.shards:
            if not self.timed_out:
                finals.append(pool.sweep(s.j, seq=s.next_k, until=final_until))
        final_replies: list[ShardReply] = pool.get(finals)
        if self.timed_out:
            # the shards' mailboxes still hold unprocessed batches: do not wait for them
            pool.kill()
            memory = [{"state_bytes": 0, "subscribers": int((self.sub_shard == s.j).sum()),
                       "rss": 0, "peak_rss": 0} for s in self.shards]
            stats = [pd.DataFrame(0, index=pd.Index(self.rules.ids, name="rule"),
                                  columns=list(STAT_NAMES))
                     for _ in self.shards]
        else:
            memory = pool.memory()
            stats = pool.stats()
        # per-second table
        per_second = self._per_second()
        done = np.array(self.log_done)
        n = np.array(self.log_n, np.int64)
        processed = int(n.sum())
        if self.max_mode:
            offered = int(sum(x[1] for x in self.dispatch_log))
            first = min((x[0] for x in self.dispatch_log), default=0.0)
        else:
            offered = p.offered_events()
            first = 0.0
        last_done = float(done.max()) if len(done) else 0.0
        elapsed = max(last_done - first, 1e-9)
        lat = np.concatenate(self.lat_values) if self.lat_values else np.zeros(0)
        w = np.concatenate(self.lat_weights) if self.lat_weights else np.zeros(0)
        p50, p95, p99, pmax = weighted_percentiles(lat, w, (50, 95, 99, 100))
        grace = max(1.0, 0.05 * self.end_offer)
        drain = max(0.0, last_done - self.end_offer)
        if self.max_mode:
            sustained = processed == offered and not self.timed_out
        else:
            sustained = processed == offered and drain <= grace and not self.timed_out
        counts = (np.sum(self.log_counts, axis=0) if self.log_counts
                  else np.zeros(len(self.kinds)))
        state_bytes = sum(m["state_bytes"] for m in memory)
        n_subs = sum(m["subscribers"] for m in memory)
        summary: dict[str, Any] = {
            "mode": "max" if self.max_mode else ("replay" if cfg.speedup else "rate"),
            "source": self.stream.source,
            "subscribers": len(self.stream.subscribers),
            "shards": cfg.shards,
            "partition": cfg.partition,
            "target_rate": None if self.max_mode else float(p.rate or 0.0),
            "duration_s": float(self.end_offer),
            "events_offered": offered,
            "events_processed": processed,
            "throughput_eps": processed / elapsed,
            "elapsed_s": elapsed,
            "drain_s": drain,
            "sustained": bool(sustained),
            "timed_out": bool(self.timed_out),
            "latency_p50_ms": 1000 * p50,
            "latency_p95_ms": 1000 * p95,
            "latency_p99_ms": 1000 * p99,
            "latency_max_ms": 1000 * pmax,
            "max_backlog_events": int(per_second["backlog"].max()) if len(per_second) else 0,
            **{f"decisions_{k}": int(c) for k, c in zip(self.kinds, counts, strict=True)},
            "engine_bytes": int(state_bytes),
            "bytes_per_subscriber": state_bytes / max(n_subs, 1),
            "batches": len(n),
            "mean_batch_events": float(n.mean()) if len(n) else 0.0,
            "sweep_every_batches": self.sweep_every,
            "replayed_events": int(self.replayed_events),
        }
        shards_df = pd.DataFrame(
            [
                {
                    "shard": s.j,
                    "subscribers": m["subscribers"],
                    "events": int(n[np.array(self.log_shard) == s.j].sum()) if len(n) else 0,
                    "engine_bytes": m["state_bytes"],
                    "bytes_per_subscriber": m["state_bytes"] / max(m["subscribers"], 1),
                    "rss_bytes": m["rss"],
                    "peak_rss_bytes": m["peak_rss"],
                }
                for s, m in zip(self.shards, memory, strict=True)
            ]
        ).set_index("shard")
        all_dec = [
            Decisions.concat([s.replies[k] for k in sorted(s.replies)], self.rules.ids)
            for s in self.shards
        ]
        all_dec += [f.decisions for f in final_replies]
        stats_df = pd.concat(stats, keys=range(len(stats)), names=["shard", "rule"])
        check = self._check(all_dec, stats_df, final_until)
        recovery = None
        if self._recovering is not None:
            r = self._recovering
            recovery = {
                "shard": r["shard"],
                "restart": "warm standby" if cfg.standby else "cold (new actor process)",
                "killed_at_s": r["killed_at"],
                "checkpoint_seq": r["checkpoint_seq"],
                "replayed_batches": r["replayed_batches"],
                "in_flight_lost": r["in_flight_lost"],
                "restore_s": r.get("restored", float("nan")) - r["killed_at"],
                "recovery_s": r.get("caught_up", float("nan")) - r["killed_at"],
                "replayed_events": int(self.replayed_events),
                "replay_mismatches": int(self.replay_mismatches),
                "nothing_lost": bool(check["passed"] and self.replay_mismatches == 0),
            }
            check["passed"] = bool(check["passed"] and self.replay_mismatches == 0)
        elif cfg.kill_at is not None:  # asked for a kill that never happened: not a pass
            check["kill_missed"] = True
            check["passed"] = False
        return LoadTestResult(cfg, summary, per_second, shards_df, check, recovery,
                              stats_df.groupby(level="rule").sum())

    def _per_second(self) -> pd.DataFrame:
        done = np.array(self.log_done)
        n = np.array(self.log_n, np.int64)
        horizon = max([self.t_end, *(done.tolist() or [0.0])])
        secs = np.arange(int(np.ceil(horizon)) + 1)
        if self.max_mode:
            t_off = np.array([x[0] for x in self.dispatch_log])
            n_off = np.array([x[1] for x in self.dispatch_log], np.int64)
        else:
            t_off = np.concatenate(self.plan.arrival) if self.plan.arrival else np.zeros(0)
            n_off = np.concatenate([self.plan.sizes(j) for j in range(self.plan.n_shards)])
        bins = np.append(secs, np.inf)
        offered = np.histogram(t_off, bins=bins, weights=n_off)[0] if len(t_off) else 0 * secs
        processed = np.histogram(done, bins=bins, weights=n)[0] if len(done) else 0 * secs
        cum_off = np.cumsum(offered)
        cum_proc = np.cumsum(processed)
        df = pd.DataFrame(
            {"second": secs, "offered": offered.astype(np.int64),
             "processed": processed.astype(np.int64),
             "backlog": (cum_off - cum_proc).astype(np.int64)}
        )
        counts = np.array(self.log_counts).reshape(-1, len(self.kinds))
        for c, kind in enumerate(self.kinds):
            df[f"{kind}s"] = (
                np.histogram(done, bins=bins, weights=counts[:, c])[0].astype(np.int64)
                if len(done) else 0
            )
        lat = np.concatenate(self.lat_values) if self.lat_values else np.zeros(0)
        w = np.concatenate(self.lat_weights) if self.lat_weights else np.zeros(0)
        at = np.concatenate(self.lat_done) if self.lat_done else np.zeros(0)
        sec_of = np.floor(at).astype(np.int64)
        rows = []
        for sec in secs:
            m = sec_of == sec
            rows.append(weighted_percentiles(lat[m], w[m], (50, 95, 99, 100)) if m.any()
                        else [np.nan] * 4)
        q = np.array(rows) * 1000
        for i, name in enumerate(("p50_ms", "p95_ms", "p99_ms", "max_ms")):
            df[name] = q[:, i]
        return df.set_index("second")

    def _check(
        self, decisions: list[Decisions], stats: pd.DataFrame, final_until: int
    ) -> dict[str, Any]:
        p, cfg = self.plan, self.cfg
        got = Decisions.concat(decisions, self.rules.ids) if decisions else Decisions.empty(
            self.rules.ids)
        duplicates = duplicate_instances(got)
        counter_mismatch = counter_mismatch_count(got, stats)
        # 3. the reference engine, offline, over the events offered to a sample
        offered = sum(int(self._offered_sizes(s).sum()) for s in self.shards)
        fraction = min(1.0, cfg.check_events / max(offered, 1))
        parts = []
        for s in self.shards:
            pool = p.pools[s.j]
            mask = sample_mask(pool.subscriber, fraction)
            for k in range(s.next_k):
                row, cycle = self._pool_row(s, k)
                lo, hi = (int(x) for x in p.bounds[s.j][row])
                sel = np.flatnonzero(mask[lo:hi]) + lo
                if len(sel):
                    b = pool[sel]
                    parts.append(EventBatch(b.subscriber, b.time + cycle * p.shift, b.type,
                                            b.columns))
        events = EventBatch.concat(parts).sort_by_time()
        ids = self.stream.subscribers.index.to_numpy(np.int64)
        sample_ids = ids[sample_mask(ids, fraction)]
        table = self.stream.subscribers.loc[sample_ids]
        t = time.perf_counter()
        with warnings.catch_warnings():  # a sample's empty segment is not the rules' fault
            warnings.simplefilter("ignore", RuleWarning)
            ref_engine = TriggerEngine(self.rules, subscribers=table, engine="reference")
        ref = ref_engine.process(events, until=final_until)
        ref_seconds = time.perf_counter() - t
        mine = got[np.isin(got.subscriber, sample_ids)]
        missing, extra = compare_decisions(ref, mine)
        passed = duplicates == 0 and counter_mismatch == 0 and missing == 0 and extra == 0
        return {
            "passed": bool(passed and not self.timed_out),
            "sample_fraction": fraction,
            "sample_subscribers": len(sample_ids),
            "sample_events": len(events),
            "reference_decisions": len(ref),
            "loadtest_decisions_in_sample": len(mine),
            "missing": missing,
            "extra": extra,
            "duplicate_trigger_ids": duplicates,
            "counter_mismatch": counter_mismatch,
            "decisions_total": len(got),
            "reference_seconds": ref_seconds,
        }

    def _offered_sizes(self, s: _Shard) -> np.ndarray:
        rows = [self._pool_row(s, k)[0] for k in range(s.next_k)]
        b = self.plan.bounds[s.j][np.array(rows, np.int64)] if rows else np.zeros((0, 2))
        return (b[:, 1] - b[:, 0]).astype(np.int64)


def run_loadtest(stream: Stream, rules: RuleSet, config: LoadTestConfig) -> LoadTestResult:
    """Run a load test of ``rules`` over ``stream`` on Ray (started by the caller:
    :func:`actors.init_ray` or ``ray.init``).

    Returns
    -------
    LoadTestResult
        Summary figures, the per-second table, per-shard memory, the correctness check
        and, with a kill, the recovery figures.
    """
    driver = _Driver(stream, rules, config)
    tables = [stream.subscribers.iloc[np.flatnonzero(driver.sub_shard == j)]
              for j in range(driver.plan.n_shards)]
    pool = EnginePool(rules, tables, engine=config.engine,
                      spare=config.kill_at is not None and config.standby, who="run_loadtest")
    try:
        driver.start(pool)
        driver.run()
        return driver.finish()
    finally:
        pool.shutdown()

