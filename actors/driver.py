"""The driver: advances simulated time tick by tick, keeps checkpoints, recovers.

Per tick ``k`` the driver submits one ``step`` to every shard (with the learner's arms of
tick ``k - L``, ``L = config.decision_lag_ticks``) and one ``decide`` to the learner (with
the shards' outputs of tick ``k``): a few remote calls per tick, never one per event or
subscriber. With the Ray executor these are object references, so up to
``max_in_flight`` ticks are submitted ahead (backpressure: never more) and Ray runs them
as their inputs become ready; with ``L >= 2`` the learner's ``decide(k)`` runs while the
shards run tick ``k + 1``.

The driver fetches only a count per shard and tick (events, for the progress bar) and
the learner's arms (so a learner error is reported as such); the shards' outputs go
from shard to learner without passing through it.

Checkpoints and recovery (Ray): every ``checkpoint_every`` ticks each shard and the
learner hand the driver their state, together with the arms of the last ``L`` ticks,
which the shards still await. States of shards on the driver's node stay in that node's
object store (the driver keeps the reference); others are fetched to it, so losing a
node does not lose them. With ``checkpoint_uri`` (shared storage, any ``pyarrow.fs``
URI: :mod:`actors.checkpoint_store`) each shard and the learner write their state there
instead, and the driver keeps only the files' records: nothing large reaches the
driver's node, and a shard recreated on any node reads its state from storage.

When an actor or one of its results is lost, the driver waits for
the ticks in flight to settle, restores every actor (recreating the lost ones) from the
last checkpoint and runs again from there: the run is deterministic, and shards keep
their counters in their state, so nothing is lost or counted twice and the run ends
with exactly the results of an uninterrupted run. ``on_tick`` is called again for the
ticks run again.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.checkpoint_store import CheckpointStore
from actors.config import SimulationConfig
from actors.errors import ActorLost, ShardError
from actors.executors import Executor, make_executor, ticks_label
from actors.logs import RunLogs, check_empty
from actors.placement import check_placement
from actors.plan import RunPlan
from actors.progress import ProgressBar
from actors.result import RunResult, merge_results
from policies.errors import SpecError
from sim.clock import DAY

__all__ = ["Driver", "run_simulation", "split_ranges"]


def split_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous id ranges covering ``0 .. n-1`` (sizes differ by <= 1)."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise SpecError(f"shards: expected an integer >= 1, got {shards!r}")
    if shards > n:
        raise SpecError(f"shards: expected at most one shard per subscriber ({n}), "
                        f"got {shards}")
    cuts = [n * i // shards for i in range(shards + 1)]
    return list(itertools.pairwise(cuts))


@dataclass
class _Checkpoint:
    """Actor states at the start of block ``position``, and the learner's outputs of the
    blocks before it that shards still await (block -> arms per tick)."""

    position: int = 0
    shards: list[Any] = field(default_factory=list)
    learner: Any = None
    arms: dict[int, Any] = field(default_factory=dict)


class Driver:
    """Runs one simulation (use :func:`run_simulation`).

    Parameters
    ----------
    config : SimulationConfig
    executor : {"inline", "ray"} or Executor
        An executor name or object (:class:`~actors.executors.Executor`).
    shards : int
    address : str, optional
        Ray cluster address (``ray`` executor only).
    checkpoint_uri : str or path, optional
        Write checkpoints to this shared storage (``ray`` executor only; a
        ``pyarrow.fs`` URI such as ``file:///mnt/shared/ckpt`` or ``s3://bucket/prefix``,
        or a local path), in a new directory per run (:mod:`actors.checkpoint_store`).
        None: Ray's object store, held by the driver. Opened and probed here (a bad URI
        fails before the run starts).
    placement : {"balanced", "spread"}
        How shards are placed on the cluster's nodes (``ray`` executor;
        :mod:`actors.placement`): pinned in proportion to the nodes' CPUs, or Ray's SPREAD.
    learner_node : str
        ``"driver"`` (the driver's node), ``"any"`` or a Ray node id (``ray`` executor).
    progress : bool or None
        Progress bar; None = only on a terminal.
    max_in_flight : int
        Blocks of ticks submitted ahead of the last finished one (>= 1).
    ticks_per_call : int
        Ticks each shard and the learner run per remote call (a block; >= 1, dividing
        ``config.decision_lag_ticks`` and ``config.checkpoint_every``). Results do not
        depend on it. With ``decision_lag_ticks / ticks_per_call >= 2`` the learner works
        on one block while the shards run the next; with 1 they take turns, but there
        are fewer calls per tick (each Ray call costs ~1-2 ms of CPU here).
    max_recoveries : int
        Actor losses tolerated before the run fails.
    tick_timeout : float
        Seconds to wait for one tick's results before failing (no hang).
    on_tick : callable, optional
        ``on_tick(driver, tick)`` after each finished tick (tests inject faults here).
    """

    def __init__(self, config: SimulationConfig, executor: str | Executor = "inline",
                 shards: int = 1,
                 address: str | None = None, progress: bool | None = None,
                 max_in_flight: int = 4, max_recoveries: int = 5,
                 tick_timeout: float = 900.0,
                 on_tick: Callable[[Driver, int], None] | None = None,
                 ticks_per_call: int = 1,
                 checkpoint_uri: str | os.PathLike[str] | None = None,
                 placement: str = "balanced", learner_node: str = "driver") -> None:
        if not isinstance(config, SimulationConfig):
            raise SpecError(f"config: expected a SimulationConfig, got {type(config).__name__}")
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or (
                max_in_flight < 1):
            raise SpecError(f"max_in_flight: expected an integer >= 1, got {max_in_flight!r}")
        b = ticks_per_call
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise SpecError(f"ticks_per_call: expected an integer >= 1, got {b!r}")
        if config.decision_lag_ticks % b or config.checkpoint_every % b:
            raise SpecError(f"ticks_per_call: expected a divisor of decision_lag_ticks "
                            f"({config.decision_lag_ticks}) and checkpoint_every "
                            f"({config.checkpoint_every}), got {b}")
        if config.scoring is not None and (DAY // config.tick_seconds) % b:
            raise SpecError(f"ticks_per_call: with scoring, expected a divisor of the "
                            f"{DAY // config.tick_seconds} ticks of a day (refreshes happen "
                            f"between calls), got {b}")
        self.block = b
        self.n_blocks = -(-config.n_ticks // b)
        self.lag_blocks = config.decision_lag_ticks // b
        self.config = config
        self.ranges = split_ranges(config.subscribers, shards)
        check_placement(placement, learner_node)
        if checkpoint_uri is not None and isinstance(executor, str) and executor != "ray":
            raise SpecError(f"checkpoint_uri: only the ray executor keeps checkpoints "
                            f"(an inline run has nothing to recover), got "
                            f"executor={executor!r}")
        #: Where checkpoints are written (None: Ray's object store).
        self.store = CheckpointStore(checkpoint_uri) if checkpoint_uri is not None else None
        if isinstance(executor, str):
            self.executor: Executor = make_executor(executor, address, placement=placement,
                                                    learner_node=learner_node,
                                                    store=self.store)
        else:
            if self.store is not None:
                if not hasattr(executor, "store"):
                    raise SpecError(f"checkpoint_uri: executor {executor.name!r} cannot "
                                    f"write checkpoints to storage")
                executor.store = self.store
            self.executor = executor
        self.plan = RunPlan.from_config(config)
        self.has_learner = config.policy is not None
        self.progress = progress
        self.max_in_flight = max_in_flight
        self.max_recoveries = max_recoveries
        self.tick_timeout = tick_timeout
        self.on_tick = on_tick
        self.recoveries = 0
        self.max_seen_in_flight = 0
        self._pending: dict[int, tuple[list[Any], list[Any], Any, list[Any], list[Any]]] = {}
        self._arms_log: dict[int, Any] = {}
        self._ckpt = _Checkpoint(0, [None] * len(self.ranges), None, {})

    @property
    def recovering(self) -> bool:
        """Whether faults are recoverable (an executor that recovers: Ray)."""
        return self.executor.recovers

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> RunResult:
        cfg = self.config
        t_start, cpu_start = time.perf_counter(), time.process_time()
        ex = self.executor
        if cfg.log_uri is not None:
            check_empty(cfg.log_uri)
        bar = ProgressBar(cfg.n_ticks, self.progress)
        try:
            # inside: actors made before a failing one (a shard's init error) are released
            ex.start(cfg, self.ranges, self.has_learner)
            done, nxt = 0, 0
            while done < self.n_blocks:
                while nxt < self.n_blocks and nxt - done < self.max_in_flight:
                    self._submit(nxt)
                    nxt += 1
                self.max_seen_in_flight = max(self.max_seen_in_flight, nxt - done)
                try:
                    n_events = self._collect(done)
                except ActorLost:
                    if not self.recovering:
                        raise
                    done = nxt = self._recover(done)
                    continue
                first, count = self._ticks(done)
                last = first + count - 1
                bar.update(last, cfg.tick_bounds(last)[1], n_events)
                if self.on_tick is not None:
                    for tick in range(first, last + 1):
                        self.on_tick(self, tick)
                done += 1
            parts, pstate = ex.finish()
        finally:
            bar.close()
            ex.shutdown()
        info = {"wall_s": time.perf_counter() - t_start, "ticks": cfg.n_ticks,
                "shards": len(self.ranges), "executor": ex.name, "seed": cfg.seed,
                "recoveries": self.recoveries, "max_in_flight": self.max_seen_in_flight,
                "ticks_per_call": self.block,
                # CPU of this process (inline: the whole run)
                "driver_cpu_s": time.process_time() - cpu_start,
                # CPU of the learner's process (Ray only)
                "learner_cpu_s": ex.learner_cpu_s,
                "checkpoint_uri": None if self.store is None else self.store.run_uri,
                "checkpoints_written": 0 if self.store is None else self.store.n_committed,
                "checkpoint_bytes": 0 if self.store is None else self.store.last_nbytes,
                # seconds the slowest actor took to serialize and write the last one
                "checkpoint_write_s": 0.0 if self.store is None else self.store.write_s,
                **ex.describe()}
        logs = (None if cfg.log_uri is None else
                RunLogs(cfg.log_uri, self.plan.layout, cfg.record_events, cfg.record_decisions))
        return merge_results(self.plan.layout, parts, pstate, info, cfg.record_decisions,
                             cfg.record_events,
                             cfg.rules.rules if cfg.rules is not None else (), logs)

    def _ticks(self, block: int) -> tuple[int, int]:
        """First tick and number of ticks of ``block``."""
        first = block * self.block
        return first, min(self.block, self.config.n_ticks - first)

    def _arms_input(self, block: int) -> Any:
        """The learner's output (arms per tick) that shards need in ``block``: that of
        block ``block - decision_lag_ticks / ticks_per_call``."""
        src = block - self.lag_blocks
        if src < 0 or not self.has_learner:
            return None
        if src in self._arms_log:
            return self._arms_log[src]
        return self._pending[src][2]

    def _submit(self, block: int) -> None:
        ex = self.executor
        first, count = self._ticks(block)
        arms = self._arms_input(block)
        steps = [ex.step(i, first, count, arms) for i in range(len(self.ranges))]
        outs = [o for o, _ in steps]
        arms_ref = ex.decide(first, count, outs) if self.has_learner else None
        extra = self._refresh(first + count)
        ckpts: list[Any] = []
        every = self.config.checkpoint_every
        end = first + count
        if self.recovering and every and end % every == 0 and end < self.config.n_ticks:
            ckpts = [ex.checkpoint_shard(i, end) for i in range(len(self.ranges))]
            if self.has_learner:
                ckpts.append(ex.checkpoint_learner(end))
        self._pending[block] = ([c for _, c in steps], outs, arms_ref, ckpts, extra)

    def _refresh(self, end: int) -> list[Any]:
        """Submit the scoring refresh (and targeting) due at the start of tick ``end``, if
        any (it runs after the shards' earlier ticks, before their later ones); returns
        the handles to check."""
        cfg, ex = self.config, self.executor
        sc = cfg.scoring
        if sc is None or end >= cfg.n_ticks:
            return []
        now = cfg.tick_bounds(end)[0]
        if (now - cfg.start) % DAY or not sc.is_refresh((now - cfg.start) // DAY):
            return []
        parts = [ex.refresh(i, now) for i in range(len(self.ranges))]
        if cfg.target is None:
            return parts
        cut = ex.cutoff(parts, cfg.target.top)
        return [*parts, cut, *(ex.set_target(i, cut) for i in range(len(self.ranges)))]

    def _get(self, handle: Any, who: int | None, what: str) -> Any:
        return self.executor.get(handle, timeout=self.tick_timeout, who=who, what=what)

    def _get_all(self, handles: list[Any], whos: list[int | None], what: str) -> list[Any]:
        """Values of ``handles`` (one Ray call); on failure, the error of the first failed
        handle, attributed to its shard (``whos[i]``) or the learner (None)."""
        ex = self.executor
        try:
            return list(ex.get(handles, timeout=self.tick_timeout, what=what))
        except (ShardError, ActorLost) as exc:
            for h, who in zip(handles, whos, strict=False):
                if ex.ready(h):                      # a failed one raises, attributed
                    self._get(h, who, what)
            raise exc

    def _collect(self, block: int) -> int:
        counts, _, arms_ref, ckpts, extra = self._pending[block]
        first, count = self._ticks(block)
        what = ticks_label(first, count)
        # the counts, the arms (which raises the learner's error) and the refresh's
        # answers (which raise a shard's refresh error) in one call
        handles = [*counts, *([arms_ref] if arms_ref is not None else []), *extra]
        whos: list[int | None] = [*range(len(counts)),
                                  *([None] if arms_ref is not None else []),
                                  *([-1] * len(extra))]
        n_events = sum(int(v) for v in self._get_all(handles, whos, what)[:len(counts)])
        n = len(self.ranges)
        states = [self.executor.keep_checkpoint(i if i < n else None, c)
                  for i, c in enumerate(ckpts)]
        del self._pending[block]
        if self.has_learner:
            self._arms_log[block] = arms_ref
            self._arms_log.pop(block - self.lag_blocks, None)
        if states:
            arms = {k: self._get(v, None, "checkpoint") for k, v in self._arms_log.items()}
            if self.store is not None:   # complete on storage: the previous one goes
                self.store.commit(first + count, states, arms, self.ranges)
            self._ckpt = _Checkpoint(block + 1, list(states[:n]),
                                     states[n] if self.has_learner else None, arms)
        return n_events

    # -- recovery ---------------------------------------------------------------------------------

    def _recover(self, first: int) -> int:
        """Restore every actor from the last checkpoint (taken at or before ``first``, the
        first unfinished block) and return its position; an actor lost during the
        recovery itself starts the recovery again."""
        while True:
            self.recoveries += 1
            if self.recoveries > self.max_recoveries:
                raise ShardError(f"run failed: more than {self.max_recoveries} actor losses "
                                 f"(last at tick {self._ticks(first)[0]})")
            try:
                return self._recover_once()
            except ActorLost:
                continue

    def _recover_once(self) -> int:
        ex = self.executor
        handles = [h for counts, outs, a, c, e in self._pending.values() for h in
                   [*counts, *outs, *([a] if a is not None else []), *c, *e]]
        ex.settle(handles, timeout=min(self.tick_timeout, 120.0))
        self._pending.clear()
        ck = self._ckpt
        for i in range(len(self.ranges)):
            ex.restore_shard(i, ck.shards[i])
        if self.has_learner:
            ex.restore_learner(ck.learner)
        self._arms_log = {k: ex.put(v) for k, v in ck.arms.items()}
        return ck.position


def run_simulation(config: SimulationConfig, executor: str = "inline", shards: int = 1,
                   address: str | None = None, progress: bool | None = None,
                   ticks_per_call: int = 1,
                   checkpoint_uri: str | os.PathLike[str] | None = None,
                   placement: str = "balanced", learner_node: str = "driver") -> RunResult:
    """Run ``config`` and return its :class:`~actors.result.RunResult`.

    Parameters
    ----------
    config : SimulationConfig
    executor : {"inline", "ray"}
        ``inline``: one process, no Ray. ``ray``: shards and the learner as Ray actors
        (local Ray, started once per process, or the cluster at ``address``).
    shards : int
        Number of subscriber shards (contiguous id ranges).
    address : str, optional
        Address of an existing Ray cluster (``"auto"``, ``"ray://host:10001"``, ...).
    progress : bool or None
        Progress bar (ticks, simulated date, events/s); None = only on a terminal.
    ticks_per_call : int
        Ticks per remote call (see :class:`Driver`); does not change results.
    checkpoint_uri : str or path, optional
        Shared storage for the checkpoints (``ray`` only; any ``pyarrow.fs`` URI, e.g.
        ``file:///mnt/shared/ckpt``, ``s3://bucket/prefix``); None: Ray's object store.
    placement : {"balanced", "spread"}
        Shards pinned to nodes in proportion to their CPUs, or Ray's SPREAD (``ray``).
    learner_node : str
        ``"driver"``, ``"any"`` or a Ray node id (``ray``).

    Same config => identical tables whatever the executor, number of shards, placement
    and checkpoint storage. Running on a cluster: docs/cluster.md.
    """
    return Driver(config, executor, shards, address=address, progress=progress,
                  ticks_per_call=ticks_per_call, checkpoint_uri=checkpoint_uri,
                  placement=placement, learner_node=learner_node).run()

