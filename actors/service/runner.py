"""One engine shard at work: poll its source, step its :class:`~actors.service.shard.
ShardCore`, write decisions and dead letters, checkpoint. :func:`remote_shard_runner` is
the same class as a Ray actor.

**Effectively-once output.** Input is at least once (a restart replays from the saved
positions); the shard is deterministic, so a replay re-derives the same decisions. Every
:meth:`ShardRunner.step`:

1. polls up to ``max_messages`` messages and steps the core;
2. drops decisions already written (see below), writes the rest as the next decision-log
   part (atomically), then publishes them to the decision stream, one message per
   partition with the message id ``decisions-<shard>-<part>-<partition>``; dead letters go
   to the dead-letter stream;
3. every ``checkpoint_every`` steps, writes the checkpoint (core state: engine,
   watermark, policy, counters; the source positions; the next part number; the keys
   still expected from a replay) atomically, then commits the positions to the broker;
4. on a broker source, publishes a progress marker (:mod:`actors.service.progress`) to
   ``<stream>_progress`` after a step that read or wrote anything, and a heartbeat at
   most every ``heartbeat`` seconds while idle.

Before each poll the shard loads the policy state a learner published
(``<checkpoint dir>/policy/state.json``, :mod:`actors.service.learner`) when its version
is newer than the shard's; decisions record the version that chose them.

On start, a shard with a checkpoint restores it and seeks its source to the saved
positions. The parts numbered from the checkpoint's next part on were written after it:
their rows' keys ``(trigger_id, kind, attempt)`` form a multiset of decisions already
written, and a replayed decision with such a key is dropped once (so nothing is written
twice, and nothing is lost). Those parts are published again with their message ids, so
a part written but not yet published before a crash reaches the stream, and one already
published is deduplicated by the broker (NATS: within the stream's duplicate window, 2
minutes; Kafka's idempotent producer does not deduplicate across producer sessions: the
decision *stream* is at least once there, the decision *log* exactly once). Dead letters
are at least once (a replay sends them again), their counts exact (they are in the
checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from actors.service.attributes import decode_attributes
from actors.service.codec import DeadLetter, encode_table
from actors.service.decision_log import DecisionLog, decision_keys
from actors.service.endpoints import Endpoint
from actors.service.partitioning import partition_of
from actors.service.progress import ProgressMarker
from actors.service.shard import ShardConfig, ShardCore, ShardOutput
from actors.service.storage import Location
from actors.service.transport import (
    OutMessage,
    Positions,
    Sink,
    Source,
    advance,
    check_positions,
)
from policies import checks
from policies.errors import TriggerLabValueError

__all__ = ["CHECKPOINT_FILE", "Progress", "ShardRunner", "remote_shard_runner"]

#: The checkpoint's file name in ``<checkpoint dir>/shard-NNN/``.
CHECKPOINT_FILE = "checkpoint.pkl"
#: The learner's published policy state in ``<checkpoint dir>/policy/`` (the learner
#: module's ``POLICY_FILE``; read here so shards need not import the learner).
POLICY_FILE = "state.json"
_VERSION = 1


@dataclass(frozen=True)
class Progress:
    """What a shard reports after a step.

    Attributes
    ----------
    shard : int
    messages, events, decisions, dead_letters : int
        This step's counts (decisions written, after deduplication).
    watermark, max_seen : int or None
        Seconds since the epoch.
    held : int
        Events held by the watermark.
    backlog : int or None
        Messages in the owned partitions not yet read (None when the source cannot say).
    totals : dict
        The core's counters (:meth:`ShardCore.stats`).
    checkpointed : bool
        A checkpoint was written at the end of this step.
    """

    shard: int
    messages: int
    events: int
    decisions: int
    dead_letters: int
    watermark: int | None
    max_seen: int | None
    held: int
    backlog: int | None
    totals: dict[str, Any]
    checkpointed: bool


class ShardRunner:
    """An engine shard with its source, outputs and checkpoints (module docstring).

    Parameters
    ----------
    config : ShardConfig
    endpoint : Endpoint
        The event source (and where the output streams live).
    shard : int
    partitions : sequence of int
        Key partitions owned (for a ``file`` endpoint, of ``config.key_partitions``
        virtual ones: every shard reads the log and skips the others' subscribers).
    checkpoint_dir : path or URI
        Checkpoints go to ``<dir>/shard-NNN/checkpoint.pkl``.
    log_dir : path or URI, optional
        The decision log; default ``<checkpoint_dir>/decisions``.
    output_dir : str, optional
        For a ``file`` endpoint: where the decision and dead-letter streams are written
        (JSON lines); default ``<checkpoint_dir>/streams`` (local paths only).
    checkpoint_every : int
        Steps between checkpoints (>= 1).
    group : str
        Consumer group / durable name prefix.
    heartbeat : float
        Seconds between progress markers of an idle shard (broker sources).
    attributes : Endpoint, optional
        A stream of subscriber-attribute updates (:mod:`actors.service.attributes`),
        partitioned as the event stream (a broker), or a Parquet log every shard reads:
        polled before each step's events; its positions are checkpointed with them.
    catalog : Endpoint, optional
        The catalog stream (:mod:`actors.service.catalog`): a broadcast that this shard
        reads whole with its own consumer (``<group>-catalog-NNN``: all partitions of a
        broker stream, or a Parquet log), polled before each step's events; its
        positions are checkpointed with them.
    """

    def __init__(self, config: ShardConfig, endpoint: Endpoint, *, shard: int,
                 partitions: Sequence[int], checkpoint_dir: str | os.PathLike[str],
                 log_dir: str | os.PathLike[str] | None = None, output_dir: str | None = None,
                 checkpoint_every: int = 10, group: str = "triggerlab",
                 heartbeat: float = 1.0, attributes: Endpoint | None = None,
                 catalog: Endpoint | None = None) -> None:
        checks.check_int("checkpoint_every", checkpoint_every, error=TriggerLabValueError,
                         low=1)
        self.heartbeat = heartbeat
        self.n_written = 0
        self._last_marker = float("-inf")
        self.shard = shard
        self.endpoint = endpoint
        self.checkpoint_every = checkpoint_every
        self._store = Location.of(checkpoint_dir).child(f"shard-{shard:03d}")
        root = os.fspath(checkpoint_dir)
        self.log = DecisionLog(log_dir if log_dir is not None else f"{root}/decisions", shard)
        file_source = endpoint.kind == "file"
        state = self._load()
        if state is None:
            self.core = ShardCore(config, partitions, shard=shard,
                                  foreign="skip" if file_source else "dead_letter")
            self.positions: Positions = {}
            self.next_part = 0
            self.expected: Counter[tuple[str, str, int]] = Counter()
        else:
            self.core = ShardCore.from_state_dict(
                config, state["core"], foreign="skip" if file_source else "dead_letter")
            self.positions = check_positions(state["positions"])
            self.next_part = int(state["next_part"])
            self.expected = Counter(state["expected"])
        self.attr_positions: Positions = {} if state is None else check_positions(
            state.get("attr_positions", {}))
        self.cat_positions: Positions = {} if state is None else check_positions(
            state.get("cat_positions", {}))
        self.restored = state is not None
        out_dir = output_dir if output_dir is not None else f"{root}/streams"
        src_partitions = [0] if file_source else list(self.core.partitions)
        self.source = endpoint.source(src_partitions, group)
        self.decision_sink: Sink = endpoint.output(
            "decisions", config.key_partitions, f"{out_dir}/shard-{shard:03d}")
        self.dead_sink: Sink = endpoint.output(
            "dead", config.key_partitions, f"{out_dir}/shard-{shard:03d}")
        self.progress_sink: Sink | None = None if file_source else endpoint.output(
            "progress", config.key_partitions, None)
        if self.positions:
            self.source.seek(self.positions)
        else:
            self.positions = self.source.positions()
        self.attr_source: Source | None = None
        if attributes is not None:
            self.attr_source, self.attr_positions = _side_source(
                attributes, [0] if attributes.kind == "file" else list(self.core.partitions),
                f"{group}-attributes", self.attr_positions)
        self.cat_source: Source | None = None
        if catalog is not None:
            everything = [0] if catalog.kind == "file" else list(range(catalog.partitions()))
            self.cat_source, self.cat_positions = _side_source(
                catalog, everything, f"{group}-catalog-{shard:03d}", self.cat_positions)
        self._steps = 0
        self._policy_dir = Location.of(checkpoint_dir).child("policy")
        self._policy_mtime: int | None = None
        self.n_dropped_replays = 0
        self._republish()

    # -- start ----------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        data = self._store.read(CHECKPOINT_FILE)
        if data is None:
            return None
        state = pickle.loads(data)   # the service's own checkpoint file
        if not isinstance(state, dict) or state.get("version") != _VERSION:
            raise TriggerLabValueError(
                f"checkpoint: {self._store.file(CHECKPOINT_FILE)} is not a shard checkpoint "
                f"of version {_VERSION}")
        return state

    def _republish(self) -> None:
        """Parts written after the checkpoint: their keys are expected from the replay,
        and they are published again (deduplicated by their message ids)."""
        after = [k for k in self.log.part_numbers() if k >= self.next_part]
        for k in after:
            df = self.log.read([k])
            self.expected.update(decision_keys(df))
            self._publish(k, df)
        if after:
            self.next_part = after[-1] + 1

    # -- the loop -------------------------------------------------------------

    def step(self, max_messages: int = 1000, timeout: float = 0.5) -> Progress:
        """Poll, decide, write; checkpoint every ``checkpoint_every`` steps."""
        self._policy_update()
        dead: list[DeadLetter] = []
        clock = self.core.times
        if self.attr_source is not None:
            with clock.part("poll"):
                amsgs = self.attr_source.poll(max_messages, 0.01)
            with clock.part("decode"):
                rows, dead = decode_attributes(amsgs)
            self.core.counters.dead_bad += len(dead)
            dead += self.core.update(rows)
            self.attr_positions = advance(self.attr_positions, amsgs)
        if self.cat_source is not None:
            with clock.part("poll"):
                cmsgs = self.cat_source.poll(max_messages, 0.01)
            dead += self.core.catalog(cmsgs, now=int(time.time()))
            self.cat_positions = advance(self.cat_positions, cmsgs)
        with clock.part("poll"):
            msgs = self.source.poll(max_messages, timeout)
        out = self.core.step(msgs, now=int(time.time()))
        self.positions = advance(self.positions, msgs)
        if dead:
            out = dataclasses.replace(out, dead_letters=[*dead, *out.dead_letters])
        return self._finish(out, len(msgs))

    def _policy_update(self) -> None:
        """Load the learner's published policy state when it is newer than the shard's."""
        if self.core.policy is None:
            return
        info = self._policy_dir.fs.get_file_info(self._policy_dir.file(POLICY_FILE))
        if info.mtime_ns is None or info.mtime_ns == self._policy_mtime:
            return
        self._policy_mtime = info.mtime_ns
        data = self._policy_dir.read(POLICY_FILE)
        if data is None:
            return
        body = json.loads(data)
        if int(body["version"]) > self.core.policy_version:
            self.core.policy.load_state_dict(body["policy"])
            self.core.policy_version = int(body["version"])

    def advance_to(self, time_s: int) -> Progress:
        """:meth:`ShardCore.advance_to` (decide what is due by ``time_s - grace``), with
        the outputs written as by :meth:`step`."""
        return self._finish(self.core.advance_to(time_s), 0)

    def _finish(self, out: ShardOutput, n_messages: int) -> Progress:
        clock = self.core.times
        written = self._write(out.decisions)
        with clock.part("publish"):
            self._dead(out.dead_letters)
        self._steps += 1
        done = self._steps % self.checkpoint_every == 0
        if done:
            self.checkpoint()
        s = self.core.stats()
        with clock.part("progress"):
            self._mark(s, idle=not (n_messages or written))
        return Progress(self.shard, n_messages, out.n_events, written,
                        len(out.dead_letters), s["watermark"], s["max_seen"], s["held"],
                        self.backlog(), s, done)

    def _write(self, df: pd.DataFrame) -> int:
        if not len(df):
            return 0
        if self.expected:
            keep = []
            for key in decision_keys(df):
                if self.expected[key] > 0:
                    self.expected[key] -= 1
                    self.n_dropped_replays += 1
                    keep.append(False)
                else:
                    keep.append(True)
            self.expected += Counter()          # drop the zeros
            df = df[keep]
            if not len(df):
                return 0
        k = self.next_part
        with self.core.times.part("log"):
            self.log.write(k, df)
        self.next_part += 1
        with self.core.times.part("publish"):
            self._publish(k, df)
        self.n_written += len(df)
        return len(df)

    def _mark(self, s: dict[str, Any], *, idle: bool) -> None:
        """Publish a progress marker (after the step's decisions are stored)."""
        sink = self.progress_sink
        now = time.time()
        if sink is None or (idle and now - self._last_marker < self.heartbeat):
            return
        self._last_marker = now
        marker = ProgressMarker(
            self.shard, self.core.partitions, int(s["messages"]), int(s["events"]),
            self.n_written, s["watermark"], s["max_seen"], int(self.core.config.grace),
            int(s["dead_bad"]), int(s["dead_late"]), int(s["dead_foreign"]), now, idle)
        sink.publish([OutMessage(self.shard % sink.partitions, marker.to_json())])

    def _publish(self, part: int, df: pd.DataFrame) -> None:
        sink = self.decision_sink
        p = partition_of(df["subscriber"].to_numpy("int64"), sink.partitions)
        msgs = []
        for q in sorted(set(p.tolist())):
            table = pa.Table.from_pandas(df[p == q], preserve_index=False)
            msgs.append(OutMessage(q, encode_table(table),
                                   msg_id=f"decisions-{self.shard}-{part}-{q}"))
        sink.publish(msgs)

    def _dead(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        self.dead_sink.publish([
            OutMessage(d.partition % self.dead_sink.partitions, d.to_json(),
                       msg_id=f"dead-{d.partition}-{d.offset}-{d.row}-{d.field}-{i}")
            for i, d in enumerate(dead)])

    def backlog(self) -> int | None:
        """Messages not yet read, when the source can tell (NATS: as of the last poll; a
        file: rows left; Kafka: None)."""
        rows = getattr(self.source, "rows", None)
        if rows is not None:
            return int(rows) - int(self.positions.get(0, 0))
        backlog = getattr(self.source, "backlog", None)
        return backlog() if callable(backlog) else None

    # -- checkpoints ----------------------------------------------------------

    def checkpoint(self) -> float:
        """Write the checkpoint atomically, then commit the positions; returns seconds."""
        with self.core.times.part("checkpoint"):
            return self._checkpoint()

    def _checkpoint(self) -> float:
        t0 = time.perf_counter()
        state = {"version": _VERSION, "core": self.core.state_dict(),
                 "positions": dict(self.positions), "next_part": self.next_part,
                 "expected": dict(self.expected), "attr_positions": dict(self.attr_positions),
                 "cat_positions": dict(self.cat_positions)}
        self._store.write_atomic(CHECKPOINT_FILE,
                                 pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        if self.positions:
            self.source.commit(self.positions)
        if self.attr_source is not None and self.attr_positions:
            self.attr_source.commit(self.attr_positions)
        if self.cat_source is not None and self.cat_positions:
            self.cat_source.commit(self.cat_positions)
        return time.perf_counter() - t0

    def stats(self) -> dict[str, Any]:
        """The core's counters plus replay deduplication and part counts, and the wall
        seconds per part of the steps so far (``seconds``, :mod:`actors.service.timing`;
        since this runner started)."""
        return {**self.core.stats(), "dropped_replays": self.n_dropped_replays,
                "next_part": self.next_part, "restored": self.restored,
                "seconds": self.core.times.as_dict()}

    def process_id(self) -> int:
        """The process this shard runs in."""
        return os.getpid()

    def ready(self) -> int:
        """The shard number (lets a caller wait for an actor's construction)."""
        return self.shard

    def close(self, checkpoint: bool = True) -> None:
        """Checkpoint (by default), then close the source and sinks."""
        if checkpoint:
            self.checkpoint()
        for c in (self.source, self.decision_sink, self.dead_sink, self.progress_sink,
                  self.attr_source, self.cat_source):
            if c is not None:
                c.close()


def _side_source(endpoint: Endpoint, partitions: Sequence[int], group: str,
                 saved: Positions) -> tuple[Source, Positions]:
    """A side stream's source (attributes, catalog) over ``partitions``, sought to the
    ``saved`` positions of a checkpoint, and its positions (the source's own when none
    were saved)."""
    source = endpoint.source(partitions, group)
    if saved:
        source.seek(saved)
        return source, saved
    return source, source.positions()


def remote_shard_runner(**options: Any) -> Any:
    """:class:`ShardRunner` as a Ray actor class (``num_cpus=0``, no automatic restart:
    a new actor on the same checkpoint directory continues), ``options`` applied."""
    import ray

    return ray.remote(ShardRunner).options(**{"num_cpus": 0, "max_restarts": 0, **options})
