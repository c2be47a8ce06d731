"""Two executors behind one interface: ``inline`` (one process, no Ray) and ``ray``.

The driver talks to shards and the learner only through these methods, which return
*handles*; :meth:`get` turns a handle into its value or raises. Inline handles are the
values themselves (computed when submitted); Ray handles are object references, so
the driver can keep a bounded number of ticks in flight while Ray resolves the
dependencies between them (a shard's tick ``k + 1`` waits for the learner's arms of
tick ``k``, which wait for every shard's tick ``k``).

Errors: an exception raised inside a shard or the learner becomes :class:`ShardError`
(its message names the shard, the tick and the original error). The loss of an actor or
of its results (actor killed, node removed) becomes :class:`ActorLost`, which the
driver recovers from.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.checkpoint_store import CheckpointStore, StoredCheckpoint
from actors.config import SimulationConfig
from actors.errors import ActorLost, ShardError
from actors.learner import LearnerCore
from actors.messages import ShardResult
from actors.placement import assign_nodes, check_placement
from actors.shard import ShardCore
from policies.errors import SpecError
from policies.segments.dynamic import top_cutoff

__all__ = ["EXECUTORS", "ActorLost", "Executor", "InlineExecutor", "RayExecutor",
           "ShardError", "make_executor"]

#: Executor names accepted by :func:`actors.run_simulation`.
EXECUTORS: tuple[str, ...] = ("inline", "ray")


class Executor(Protocol):
    """What the driver (:mod:`actors.driver`) needs from an executor.

    Methods that submit work return *handles*; :meth:`get` turns handles into values.
    Attributes: ``name`` (``"inline"`` or ``"ray"``); ``recovers`` (whether losing an
    actor is recoverable: the driver then takes checkpoints and restores them);
    ``learner_cpu_s`` (CPU seconds of the learner's own process, set by :meth:`finish`;
    None when the learner runs in the driver's process).
    """

    name: str
    recovers: bool
    learner_cpu_s: float | None

    def start(self, config: SimulationConfig, ranges: Sequence[tuple[int, int]],
              learner: bool) -> None:
        """Create a shard per id range ``[a, b)`` of ``ranges`` and, if asked, the learner."""

    def step(self, i: int, first: int, count: int, arms: Any) -> tuple[Any, Any]:
        """Handles of ``(outputs, number of events)`` of shard ``i``'s ticks ``first ..
        first + count - 1`` (``outputs``: a list of :class:`~actors.messages.TickOutput`);
        ``arms``: the handle of the learner's outputs they need (or None)."""

    def decide(self, first: int, count: int, outputs: Sequence[Any]) -> Any:
        """Handle of the learner's arms (a list of :class:`~actors.messages.Arms`) for the
        ticks, from the shards' output handles."""

    def refresh(self, i: int, now: int) -> Any:
        """Handle of shard ``i``'s :meth:`ShardCore.refresh` at ``now`` (dynamic segments)."""

    def cutoff(self, parts: Sequence[Any], q: float) -> Any:
        """Handle of the :func:`~policies.segments.dynamic.top_cutoff` of the shards'
        refresh handles ``parts``."""

    def set_target(self, i: int, cutoff: Any) -> Any:
        """Handle of shard ``i``'s :meth:`ShardCore.set_target` with the ``cutoff`` handle."""

    def checkpoint_shard(self, i: int, tick: int) -> Any:
        """Handle of shard ``i``'s checkpoint (its :meth:`ShardCore.state`) at the start
        of ``tick``."""

    def checkpoint_learner(self, tick: int) -> Any:
        """Handle of the learner's checkpoint (:meth:`LearnerCore.checkpoint`) at the
        start of ``tick``."""

    def keep_checkpoint(self, i: int | None, handle: Any) -> Any:
        """What the driver keeps of checkpoint ``handle`` of shard ``i`` (None: the
        learner); raises the error of a failed checkpoint."""

    def get(self, handle: Any, timeout: float | None = None, who: int | None = -1,
            what: str = "") -> Any:
        """The value of a handle (or a list of handles); raises :class:`ShardError` or
        :class:`ActorLost` for a failed one (``who``: the shard, None the learner, -1
        unknown; ``what``: the call, for the message)."""

    def ready(self, handle: Any) -> bool:
        """Whether ``handle`` has finished (with a value or an error)."""

    def put(self, value: Any) -> Any:
        """A handle of ``value``."""

    def settle(self, handles: Sequence[Any], timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every handle is finished or failed."""

    def restore_shard(self, i: int, data: Any) -> None:
        """Shard ``i`` continues from kept checkpoint ``data`` (None: from the start)."""

    def restore_learner(self, state: dict[str, Any] | None) -> None:
        """The learner continues from ``state`` (None: from the start)."""

    def finish(self) -> tuple[list[ShardResult], dict[str, Any] | None]:
        """Every shard's :meth:`ShardCore.finish` and the policy's final state."""

    def shutdown(self) -> None:
        """Release the shards and the learner."""

    def describe(self) -> dict[str, Any]:
        """Where the actors run (for the result's ``info``)."""


@dataclass
class _Failed:
    error: BaseException


def ticks_label(first: int, count: int) -> str:
    """``"tick 7"`` or ``"ticks 6-7"``: the ticks of one call, for error messages."""
    return f"tick {first}" if count == 1 else f"ticks {first}-{first + count - 1}"


def _who(i: int | None, ranges: Sequence[tuple[int, int]]) -> str:
    if i is None:
        return "policy learner"
    a, b = ranges[i]
    return f"shard {i} (subscribers [{a}, {b}))"


class InlineExecutor:
    """Runs every shard and the learner in this process, one after the other."""

    name = "inline"
    #: Runs in one process: nothing is lost that a checkpoint could restore.
    recovers = False
    learner_cpu_s: float | None = None

    def start(self, config: SimulationConfig, ranges: Sequence[tuple[int, int]],
              learner: bool) -> None:
        self.config = config
        self.ranges = list(ranges)
        self.shards = [ShardCore(config, a, b) for a, b in self.ranges]
        self.learner = LearnerCore(config) if learner else None

    def _call(self, who: int | None, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            return _Failed(ShardError(f"{_who(who, self.ranges)} failed in {what}: "
                                      f"{type(exc).__name__}: {exc}").with_traceback(
                                          exc.__traceback__))

    def step(self, i: int, first: int, count: int, arms: Any) -> tuple[Any, Any]:
        """``(outputs, number of events)`` of shard ``i``'s ticks ``first ..
        first + count - 1``; ``arms``: the learner's outputs they need (or None)."""
        arms = self.get(arms) if arms is not None else None
        out = self._call(i, ticks_label(first, count), self.shards[i].steps, first, count,
                         arms)
        return out, (out if isinstance(out, _Failed) else sum(o.n_events for o in out))

    def decide(self, first: int, count: int, outputs: Sequence[Any]) -> Any:
        assert self.learner is not None
        values = [self.get(o) for o in outputs]
        return self._call(None, ticks_label(first, count), self.learner.decide_block,
                          first, count, values)

    def refresh(self, i: int, now: int) -> Any:
        return self._call(i, "refresh", self.shards[i].refresh, now)

    def cutoff(self, parts: Sequence[Any], q: float) -> Any:
        return top_cutoff(self.get(list(parts)), q)

    def set_target(self, i: int, cutoff: Any) -> Any:
        return self._call(i, "refresh", self.shards[i].set_target, self.get(cutoff))

    def checkpoint_shard(self, i: int, tick: int) -> Any:
        return self._call(i, "checkpoint", lambda: copy.deepcopy(self.shards[i].state()))

    def checkpoint_learner(self, tick: int) -> Any:
        assert self.learner is not None
        return self._call(None, "checkpoint", self.learner.checkpoint)

    def get(self, handle: Any, timeout: float | None = None, who: int | None = -1,
            what: str = "") -> Any:
        """Handles are the values (or the error, already naming its shard): nothing to
        wait for, so ``timeout``, ``who`` and ``what`` are not needed."""
        if isinstance(handle, list):
            return [self.get(h) for h in handle]
        if isinstance(handle, _Failed):
            raise handle.error
        return handle

    def ready(self, handle: Any) -> bool:
        return True

    def put(self, value: Any) -> Any:
        return value

    def keep_checkpoint(self, i: int | None, handle: Any) -> Any:
        """What the driver keeps of a checkpoint handle (here: the value)."""
        return self.get(handle)

    def restore_shard(self, i: int, data: dict[str, Any] | None) -> None:
        a, b = self.ranges[i]
        self.shards[i] = (ShardCore(self.config, a, b) if data is None
                          else ShardCore.from_state(data))

    def restore_learner(self, state: dict[str, Any] | None) -> None:
        self.learner = LearnerCore(self.config)
        if state is not None:
            self.learner.restore(state)

    def settle(self, handles: Sequence[Any], timeout: float) -> None:
        return None

    def finish(self) -> tuple[list[ShardResult], dict[str, Any] | None]:
        parts = [s.finish() for s in self.shards]
        pstate = None if self.learner is None else self.learner.policy.state_dict()
        return parts, pstate

    def shutdown(self) -> None:
        self.shards = []

    def describe(self) -> dict[str, Any]:
        """Where the actors run (one process: nothing to say)."""
        return {}


class RayExecutor:
    """Shards and the learner as Ray actors (local Ray by default, or ``address``).

    Ray is started once per process (``ray.init`` only if it is not running) and left
    running for the next run. Shards request ``shard_cpus`` CPUs each (default: half the
    cluster's CPUs per shard, at most 1) and are placed by ``placement``; the learner
    requests none and is placed by ``learner_node`` (:mod:`actors.placement`: by default
    shards pinned to nodes in proportion to their CPUs, the learner on the driver's
    node). Actors are not restarted by Ray: the driver recreates them from its own
    checkpoint (see :mod:`actors.driver`), kept in Ray's object store or, with ``store``,
    written by each actor to shared storage (:mod:`actors.checkpoint_store`).
    """

    name = "ray"
    #: Lost actors are recreated from the driver's checkpoints.
    recovers = True

    def __init__(self, address: str | None = None, shard_cpus: float | None = None,
                 placement: str = "balanced", learner_node: str = "driver",
                 store: CheckpointStore | None = None) -> None:
        check_placement(placement, learner_node)
        self.address = address
        self.shard_cpus = shard_cpus
        self.placement = placement
        self.learner_node = learner_node
        #: Where checkpoints go (None: Ray's object store, kept by the driver).
        self.store = store
        #: CPU seconds of the learner's process (restored learners: since restart),
        #: set by :meth:`finish`.
        self.learner_cpu_s: float | None = None

    def start(self, config: SimulationConfig, ranges: Sequence[tuple[int, int]],
              learner: bool) -> None:
        import ray

        from actors._ray_actors import LearnerActor, ShardActor

        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        self._ray = ray
        self.ranges = list(ranges)
        self.config_ref = ray.put(config)
        self._driver_node = ray.get_runtime_context().get_node_id()
        cpus = self.shard_cpus
        if cpus is None:
            total = float(ray.cluster_resources().get("CPU", 1.0))
            cpus = min(1.0, total / max(1, len(self.ranges)) * 0.5)
        self._shard_cls, self._learner_cls = ShardActor, LearnerActor
        self._shard_opts = {"num_cpus": cpus, "max_restarts": 0, "max_task_retries": 0}
        self.shards, self.learner = [], None
        self._learner_pin = self._learner_target() if learner else None   # checked first
        # the node each shard is pinned to (None: Ray's SPREAD)
        self._targets: list[str | None] = [None] * len(self.ranges)
        if self.placement == "balanced":
            self._targets = list(assign_nodes(self._alive_nodes(), len(self.ranges)))
        made = []
        for i in range(len(self.ranges)):
            made.append(self._new_shard(i, None))
            self.shards.append(made[-1][0])
        if learner:
            self.learner, lref = self._new_learner(None)
            self.get(lref, timeout=600, who=None, what="init")
        for i, (_, ref) in enumerate(made):
            self.get(ref, timeout=600, who=i, what="init")
        self._nodes = [self.node_of(i) for i in range(len(self.shards))]
        self._learner_at = (None if self.learner is None else
                            str(self._ray.get(self.learner.node.remote(), timeout=60)))

    def _alive_nodes(self) -> list[tuple[str, float]]:
        """``(node id, CPUs)`` of the alive nodes, the driver's first."""
        nodes = [(str(n["NodeID"]), float(n.get("Resources", {}).get("CPU", 0.0)))
                 for n in self._ray.nodes() if n.get("Alive")]
        return sorted(nodes, key=lambda nc: nc[0] != self._driver_node)

    def _pin(self, node: str | None) -> Any:
        """Scheduling strategy: soft affinity to ``node`` (None: Ray's SPREAD)."""
        if node is None:
            return "SPREAD"
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return NodeAffinitySchedulingStrategy(node_id=node, soft=True)

    def _new_shard(self, i: int, data: Any) -> tuple[Any, Any]:
        a, b = self.ranges[i]
        # ray.remote classes have .options at run time; their stubs do not say so
        actor = self._shard_cls.options(  # type: ignore[attr-defined]
            scheduling_strategy=self._pin(self._targets[i]), **self._shard_opts).remote()
        ref = actor.init.remote(self.config_ref, a, b, self._as_ref(data))
        return actor, ref

    def _as_ref(self, data: Any) -> Any:
        """``data`` as an argument that Ray ships once: None, a kept object reference
        (:meth:`keep_checkpoint`) or a file on storage as is, or a value put into the
        object store."""
        if data is None or isinstance(data, (self._ray.ObjectRef, StoredCheckpoint)):
            return data
        return self._ray.put(data)

    def _learner_target(self) -> str | None:
        """The node the learner is pinned to (None: anywhere)."""
        if self.learner_node == "any":
            return None
        if self.learner_node == "driver":
            return self._driver_node
        alive = [n for n, _ in self._alive_nodes()]
        if self.learner_node not in alive:
            raise SpecError(f"learner_node: {self.learner_node!r} is not an alive node of "
                            f"the Ray cluster (alive: {', '.join(alive)})")
        return self.learner_node

    def _new_learner(self, state: Any) -> tuple[Any, Any]:
        node = self._learner_pin
        opts: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, "max_task_retries": 0}
        if node is not None:
            opts["scheduling_strategy"] = self._pin(node)
        actor = self._learner_cls.options(**opts).remote()  # type: ignore[attr-defined]
        return actor, actor.init.remote(self.config_ref, self._as_ref(state))

    def step(self, i: int, first: int, count: int, arms: Any) -> tuple[Any, Any]:
        """References to ``(outputs, number of events)`` of shard ``i``'s ticks."""
        out, n_events = self.shards[i].steps.remote(first, count, arms)
        return out, n_events

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def ready(self, handle: Any) -> bool:
        done, _ = self._ray.wait([handle], timeout=0)
        return bool(done)

    def decide(self, first: int, count: int, outputs: Sequence[Any]) -> Any:
        assert self.learner is not None
        return self.learner.decide_block.remote(first, count, *outputs)

    def refresh(self, i: int, now: int) -> Any:
        return self.shards[i].refresh.remote(now)

    def cutoff(self, parts: Sequence[Any], q: float) -> Any:
        from actors._ray_actors import cutoff_task

        return cutoff_task.remote(q, *parts)

    def set_target(self, i: int, cutoff: Any) -> Any:
        return self.shards[i].set_target.remote(cutoff)

    def checkpoint_shard(self, i: int, tick: int) -> Any:
        """References ``(state, position)`` of shard ``i``'s checkpoint at ``tick`` (with
        a store: the reference of the :class:`StoredCheckpoint` the shard wrote)."""
        if self.store is not None:
            return self.shards[i].save.remote(self.store.shard_uri(tick, i))
        state, position = self.shards[i].checkpoint.remote()
        return state, position

    def checkpoint_learner(self, tick: int) -> Any:
        assert self.learner is not None
        if self.store is not None:
            return self.learner.save.remote(self.store.learner_uri(tick))
        return self.learner.checkpoint.remote()

    def keep_checkpoint(self, i: int | None, handle: Any) -> Any:
        """What the driver keeps of checkpoint ``handle`` of shard ``i`` (None: the
        learner), so that it outlives the actor that made it.

        A shard on the driver's node: the reference itself. The driver owns the object
        and the node's object store holds it, which survives the actor; fetching it
        would only map ~230 MB per 500k-subscriber shard into the driver (~1 s the first
        time). Elsewhere (and the learner's small state): the value, fetched to the
        driver's node, so that removing the shard's node does not lose it. With a store:
        the :class:`StoredCheckpoint` record of the file the actor wrote."""
        if i is None or self.store is not None:
            return self.get(handle, timeout=600, who=i, what="checkpoint")
        state, position = handle
        self.get(position, timeout=600, who=i, what="checkpoint")  # raises the task's error
        if self._nodes[i] == self._driver_node:
            return state
        return self.get(state, timeout=600, who=i, what="checkpoint")

    def get(self, handle: Any, timeout: float | None = None, who: int | None = -1,
            what: str = "") -> Any:
        from ray import exceptions as rex

        try:
            return self._ray.get(handle, timeout=timeout)
        except rex.GetTimeoutError:
            raise ShardError(f"{self._label(who)} did not answer within {timeout} s "
                             f"({what})") from None
        except rex.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, rex.RayError) and not isinstance(cause, rex.RayTaskError):
                raise ActorLost(f"{self._label(who)}: {type(cause).__name__}") from exc
            raise ShardError(f"{self._label(who)} failed in {what}: "
                             f"{type(cause).__name__}: {cause}") from exc
        except rex.RayError as exc:
            raise ActorLost(f"{self._label(who)}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc

    def _label(self, who: int | None) -> str:
        if who == -1:
            return "a Ray actor"
        return _who(who, self.ranges)

    def settle(self, handles: Sequence[Any], timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every handle is finished or failed (a
        checkpoint handle is a pair of references)."""
        flat = [x for h in handles for x in (h if isinstance(h, tuple) else (h,))
                if isinstance(x, self._ray.ObjectRef)]
        if flat:
            self._ray.wait(flat, num_returns=len(flat), timeout=timeout)

    def restore_shard(self, i: int, data: Any) -> None:
        from ray import exceptions as rex

        try:
            self._ray.get(self.shards[i].position.remote(), timeout=60)
            a, b = self.ranges[i]
            ref = self.shards[i].init.remote(self.config_ref, a, b, self._as_ref(data))
            self.get(ref, timeout=600, who=i, what="restore")
        except (rex.RayError, ActorLost):
            self._ray.kill(self.shards[i], no_restart=True)
            if self.placement == "balanced":   # the least loaded alive node per CPU
                current: list[str | None] = [n if j != i else None
                                             for j, n in enumerate(self._nodes)]
                self._targets[i] = assign_nodes(self._alive_nodes(), len(current),
                                                current)[i]
            self.shards[i], ref = self._new_shard(i, data)
            self.get(ref, timeout=600, who=i, what="restore")
            self._nodes[i] = self.node_of(i)

    def restore_learner(self, state: dict[str, Any] | None) -> None:
        from ray import exceptions as rex

        assert self.learner is not None
        try:
            self.get(self.learner.init.remote(self.config_ref, state), timeout=600,
                     who=None, what="restore")
        except (rex.RayError, ActorLost):
            self._ray.kill(self.learner, no_restart=True)
            self.learner, ref = self._new_learner(state)
            self.get(ref, timeout=600, who=None, what="restore")
            self._learner_at = str(self._ray.get(self.learner.node.remote(), timeout=60))

    def describe(self) -> dict[str, Any]:
        """Where the actors run: ``shard_nodes`` (node id per shard), ``learner_node``,
        ``nodes`` (distinct nodes used by shards), ``placement``."""
        return {"placement": self.placement, "shard_nodes": list(self._nodes),
                "nodes": len(set(self._nodes)), "learner_node": self._learner_at,
                "driver_node": self._driver_node}

    def node_of(self, i: int) -> str:
        """Ray node id hosting shard ``i``."""
        return str(self._ray.get(self.shards[i].node.remote(), timeout=60))

    def finish(self) -> tuple[list[ShardResult], dict[str, Any] | None]:
        parts = [self.get(a.finish.remote(), timeout=600, who=i, what="finish")
                 for i, a in enumerate(self.shards)]
        pstate = None
        if self.learner is not None:
            pstate, self.learner_cpu_s = self.get(
                [self.learner.policy_state.remote(), self.learner.cpu_s.remote()],
                timeout=600, who=None, what="finish")
        return parts, pstate

    def shutdown(self) -> None:
        """Kill the actors (also those of a :meth:`start` that failed half-way)."""
        learner = getattr(self, "learner", None)
        for a in [*getattr(self, "shards", []), *([learner] if learner is not None else [])]:
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:
                pass
        self.shards, self.learner = [], None


def make_executor(name: str, address: str | None = None, *, placement: str = "balanced",
                  learner_node: str = "driver",
                  store: CheckpointStore | None = None) -> Executor:
    """The executor called ``name`` (``inline`` or ``ray``); ``placement``,
    ``learner_node`` and ``store`` are the Ray executor's (:class:`RayExecutor`)."""
    if name == "inline":
        if address is not None:
            raise SpecError(f"address: only the ray executor connects to a cluster, "
                            f"got address={address!r} with executor='inline'")
        if store is not None:
            raise SpecError("checkpoint_uri: only the ray executor keeps checkpoints "
                            "(an inline run has nothing to recover), got executor='inline'")
        check_placement(placement, learner_node)
        return InlineExecutor()
    if name == "ray":
        return RayExecutor(address, placement=placement, learner_node=learner_node,
                           store=store)
    raise SpecError(f"executor: expected one of {', '.join(EXECUTORS)}, got {name!r}")
