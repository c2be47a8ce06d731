"""A pool of trigger-engine shards on Ray, driven asynchronously (the load test's runtime).

Each shard is an :class:`~actors.engine_shard.EngineShard` in its own Ray actor
(:func:`~actors.engine_shard.remote_engine_shard`). Calls return *handles* (Ray object
references) at once; a shard's mailbox is its queue, so a caller that dispatches batches
on its own schedule (open-loop arrival) sees overload as backlog and latency.
:meth:`EnginePool.wait_any` tells which handle finished first, :meth:`EnginePool.get`
fetches values. Checkpoints are handles owned by the caller's process, so they outlive
a killed shard; :meth:`EnginePool.restart` kills a shard and continues it from a
checkpoint on a warm spare actor or a new one (the caller then re-sends the batches
after the checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from actors.engine_shard import remote_engine_shard
from policies.errors import SpecError
from policies.events import EventBatch
from policies.triggers import RuleSet

__all__ = ["EnginePool"]


class EnginePool:
    """Engine shards as Ray actors (Ray must be running: :func:`actors.init_ray`).

    Parameters
    ----------
    rules : RuleSet
        The rules every shard runs.
    tables : sequence of pandas.DataFrame
        Shard ``j``'s subscriber table (indexed by subscriber id), one per shard.
    engine : {"fast", "reference"}
        Engine implementation inside the shards.
    spare : bool
        Also start one idle actor that :meth:`restart` uses first (a warm standby).
    who : str
        Name of the caller, for the error when Ray is not running.
    """

    def __init__(self, rules: RuleSet, tables: Sequence[pd.DataFrame], *,
                 engine: str = "fast", spare: bool = False, who: str = "engine pool") -> None:
        import ray

        if not ray.is_initialized():
            raise SpecError(f"{who}: call ray.init() first")
        self._ray = ray
        self.rules = rules
        self.engine = engine
        self._cls = remote_engine_shard()
        self._empty = tables[0].iloc[:0] if len(tables) else pd.DataFrame()
        self.actors = [self._cls.remote(rules, table, shard=j, engine=engine)
                       for j, table in enumerate(tables)]
        self.spare = (self._cls.remote(rules, self._empty, shard=-1, engine=engine)
                      if spare else None)

    def __len__(self) -> int:
        return len(self.actors)

    def put(self, value: Any) -> Any:
        """A handle of ``value`` in the object store (sent to shards by reference)."""
        return self._ray.put(value)

    def warmup(self) -> None:
        """Load every actor's compiled code (spare included); returns when done."""
        actors = [*self.actors, *([self.spare] if self.spare is not None else [])]
        self._ray.get([a.warmup.remote() for a in actors])

    def process(self, j: int, events: Any, *, seq: int, until: int | None = None,
                time_offset: int = 0) -> Any:
        """Handle of shard ``j``'s :class:`~actors.engine_shard.ShardReply` to batch
        ``seq`` (``events``: an :class:`EventBatch` or a handle of one; see
        :meth:`EngineShard.process`)."""
        return self.actors[j].process.remote(events, seq=seq, until=until,
                                             time_offset=time_offset)

    def sweep(self, j: int, *, seq: int, until: int) -> Any:
        """Handle of shard ``j``'s reply to an empty batch ``seq`` deciding everything due
        by ``until`` (s)."""
        return self.actors[j].process.remote(EventBatch.empty(), seq=seq, until=until)

    def checkpoint(self, j: int) -> Any:
        """Handle of shard ``j``'s :class:`~actors.engine_shard.ShardCheckpoint`."""
        return self.actors[j].checkpoint.remote()

    def get(self, handles: Any) -> Any:
        """The value of a handle (or the values of a list of handles)."""
        return self._ray.get(handles)

    def wait_any(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        """The first of ``handles`` to finish within ``timeout`` s (empty list: none)."""
        ready, _ = self._ray.wait(list(handles), num_returns=1, timeout=timeout)
        return list(ready)

    def wait_all(self, handles: Sequence[Any]) -> None:
        """Return when every handle has finished."""
        self._ray.wait(list(handles), num_returns=len(handles))

    def restart(self, j: int, checkpoint: Any) -> Any:
        """Kill shard ``j`` and continue it from ``checkpoint`` (a checkpoint handle) on
        the spare actor if there is one, else on a new actor process; returns the handle
        of the restore (its value: the checkpoint's ``seq``)."""
        self._ray.kill(self.actors[j], no_restart=True)
        if self.spare is not None:
            self.actors[j], self.spare = self.spare, None
        else:
            self.actors[j] = self._cls.remote(self.rules, self._empty, shard=j,
                                              engine=self.engine)
        return self.actors[j].restore.remote(checkpoint)

    def memory(self) -> list[dict[str, int]]:
        """Every shard's :meth:`EngineShard.memory` (waits for their queues)."""
        return list(self._ray.get([a.memory.remote() for a in self.actors]))

    def stats(self) -> list[pd.DataFrame]:
        """Every shard's :meth:`EngineShard.stats` (waits for their queues)."""
        return list(self._ray.get([a.stats.remote() for a in self.actors]))

    def kill(self) -> None:
        """Kill the shards now, with whatever their mailboxes still hold."""
        for a in self.actors:
            self._ray.kill(a, no_restart=True)

    def shutdown(self) -> None:
        """Kill the shards and the spare."""
        self.kill()
        if self.spare is not None:
            self._ray.kill(self.spare, no_restart=True)
