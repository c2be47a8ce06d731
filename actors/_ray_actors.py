"""Ray actor wrappers of :class:`~actors.shard.ShardCore` and
:class:`~actors.learner.LearnerCore` (imported only by the Ray executor).

Construction is lazy (``init``) so that an error while building a shard (bad rules
reaching a worker, say) is a task error carrying its message, not a dead actor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

from actors.checkpoint_store import StoredCheckpoint, read_checkpoint, write_checkpoint
from actors.config import SimulationConfig
from actors.learner import LearnerCore
from actors.messages import Arms, ShardResult, TickOutput
from actors.shard import ShardCore, process_cpu_seconds
from policies.segments.dynamic import Cutoff, top_cutoff

__all__ = ["LearnerActor", "ShardActor", "cutoff_task"]


@ray.remote(num_cpus=0)
def cutoff_task(q: float, *parts: tuple[np.ndarray, np.ndarray]) -> Cutoff:
    """The top-``q`` cutoff over every shard's refresh answer."""
    return top_cutoff(list(parts), q)


@ray.remote
class ShardActor:
    """A :class:`ShardCore` in its own process."""

    def __init__(self) -> None:
        self.core: ShardCore | None = None

    def init(self, config: SimulationConfig, start: int, stop: int,
             checkpoint: dict[str, Any] | StoredCheckpoint | None) -> int:
        """Build the shard, or continue from a checkpoint (a state, or a file on shared
        storage, read here on the shard's node)."""
        state = (read_checkpoint(checkpoint) if isinstance(checkpoint, StoredCheckpoint)
                 else checkpoint)
        self.core = (ShardCore(config, start, stop) if state is None
                     else ShardCore.from_state(state))
        return self.core.position

    @ray.method(num_returns=2)
    def steps(self, first: int, count: int, arms: list[Arms | None] | None
              ) -> tuple[list[TickOutput], int]:
        """The ticks' outputs (for the learner) and their number of events (for the
        driver)."""
        assert self.core is not None
        out = self.core.steps(first, count, arms)
        return out, sum(o.n_events for o in out)

    @ray.method(num_returns=2)
    def checkpoint(self) -> tuple[dict[str, Any], int]:
        """The shard's state and its position (a small second result, which the driver
        reads to learn that the checkpoint succeeded without fetching the state)."""
        assert self.core is not None
        return self.core.state(), self.core.position

    def save(self, uri: str) -> StoredCheckpoint:
        """Write the shard's checkpoint to the file ``uri`` (shared storage)."""
        assert self.core is not None
        return write_checkpoint(uri, self.core.state(), self.core.position)

    def refresh(self, now: int) -> tuple[np.ndarray, np.ndarray] | None:
        assert self.core is not None
        return self.core.refresh(now)

    def set_target(self, cutoff: Cutoff) -> int:
        assert self.core is not None
        return self.core.set_target(cutoff)

    def position(self) -> int:
        return -1 if self.core is None else self.core.position

    def finish(self) -> ShardResult:
        assert self.core is not None
        return self.core.finish()

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


@ray.remote
class LearnerActor:
    """A :class:`LearnerCore` in its own process."""

    def __init__(self) -> None:
        self.core: LearnerCore | None = None

    def init(self, config: SimulationConfig,
             state: dict[str, Any] | StoredCheckpoint | None) -> int:
        self.core = LearnerCore(config)
        saved = read_checkpoint(state) if isinstance(state, StoredCheckpoint) else state
        if saved is not None:
            self.core.restore(saved)
        return self.core.position

    def decide_block(self, first: int, count: int, *outputs: list[TickOutput]
                     ) -> list[Arms]:
        assert self.core is not None
        return self.core.decide_block(first, count, outputs)

    def checkpoint(self) -> dict[str, Any]:
        assert self.core is not None
        return self.core.checkpoint()

    def save(self, uri: str) -> StoredCheckpoint:
        """Write the learner's checkpoint to the file ``uri`` (shared storage)."""
        assert self.core is not None
        return write_checkpoint(uri, self.core.checkpoint(), self.core.position)

    def position(self) -> int:
        return -1 if self.core is None else self.core.position

    def policy_state(self) -> dict[str, Any]:
        assert self.core is not None
        return self.core.policy.state_dict()

    def cpu_s(self) -> float:
        """CPU seconds (user + system) of this actor's process so far."""
        return process_cpu_seconds()

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()
