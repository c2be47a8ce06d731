"""The service's policy learner: rewards from a feedback stream, joined to the decision log
by trigger id, update the policy; versioned states go to the shards.

An ESP webhook relay publishes one message per response to a send: a JSON object
``{"trigger_id": "...", "reward": 1.0, "time": 1767600000}`` (``time``: when the response
happened, int seconds since the epoch), or Arrow IPC tables with those columns.
:class:`FeedbackLearner` follows the decision log (the fires a policy chose, with arm,
subscriber and context) and the feedback. Its **clock** is the latest feedback time read
(but not past the latest decision in the log, so a feedback stream read ahead of the
service waits for it).
Once a send's **reward window** has closed (clock >= send time + window), it applies one
update for it: the rewards of its feedback timed within the window, summed (capped at 1
for a binary policy), or 0 when none came -- each send reaches the policy exactly once,
and a late click does not count (it is counted as ``outside``). Sends are applied in the
order (send time, trigger id). Malformed feedback is counted as dead letters (with the
reason, :func:`decode_feedback`); feedback for a send not yet in the log waits for it
until the clock passes its time + window, then is counted as unmatched (an unknown id).

After a step that applied updates, every ``publish_every`` steps, the learner writes the
policy state with the next **version** to ``<checkpoint dir>/policy/state.json``
(atomically); shards load a newer version at their next step and record it in the
``policy_version`` column of their decisions. :meth:`FeedbackLearner.checkpoint` keeps
the policy, the feedback positions, the log parts read and the open sends.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from actors.service.codec import DeadLetter, sniff
from actors.service.decision_log import DecisionLog
from actors.service.endpoints import Endpoint
from actors.service.runner import POLICY_FILE
from actors.service.shard import ShardConfig
from actors.service.storage import Location
from actors.service.transport import Message, Positions, advance, check_positions
from policies import checks
from policies.errors import TriggerLabValueError
from policies.event_schema import MAX_TIME, MIN_TIME, time_range_error
from policies.features import FEATURE_NAMES

__all__ = ["POLICY_FILE", "FeedbackLearner", "LearnerProgress", "decode_feedback",
           "read_policy_state"]

_VERSION = 1


@dataclass(frozen=True)
class LearnerProgress:
    """What one :meth:`FeedbackLearner.step` did: messages read, feedback rows accepted,
    sends applied (their window closed), sends open, dead letters, the version published
    now (None); the current version and the sends applied so far."""

    messages: int
    feedback: int
    applied: int
    open_sends: int
    dead_letters: int
    published: int | None
    version: int = 0
    applied_total: int = 0


def decode_feedback(messages: Sequence[Message]) -> tuple[pd.DataFrame, list[DeadLetter]]:
    """``(trigger_id, reward, time)`` rows of feedback messages, and dead letters for the
    rest (not JSON / Arrow, no ``trigger_id`` text, a reward that is not a finite number,
    a time that is not int seconds in the event time range)."""
    ids: list[str] = []
    rewards: list[float] = []
    times: list[int] = []
    dead: list[DeadLetter] = []
    for msg in messages:
        kind = sniff(msg.payload)
        rows: list[Any]
        try:
            if kind == "json":
                rows = [json.loads(msg.payload)]
            elif kind == "arrow":
                with pa.ipc.open_stream(pa.py_buffer(msg.payload)) as reader:
                    rows = reader.read_all().to_pylist()
            else:
                raise ValueError(f"not a JSON object nor an Arrow IPC stream (starts with "
                                 f"{msg.payload[:16]!r})")
        except (ValueError, pa.ArrowException) as exc:
            dead.append(DeadLetter(msg.partition, msg.offset, None, "message",
                                   f"feedback: {exc}"[:200], msg.payload))
            continue
        for r, row in enumerate(rows):
            where = None if kind == "json" else r
            tid = row.get("trigger_id") if isinstance(row, dict) else None
            value = row.get("reward") if isinstance(row, dict) else None
            if not isinstance(tid, str) or not tid:
                dead.append(DeadLetter(msg.partition, msg.offset, where, "trigger_id",
                                       f"expected a trigger id string, got {tid!r}",
                                       row if isinstance(row, dict) else {"value": row}))
            elif (isinstance(value, bool) or not isinstance(value, int | float)
                  or not math.isfinite(value)):
                dead.append(DeadLetter(msg.partition, msg.offset, where, "reward",
                                       f"expected a finite number, got {value!r}", row))
            elif (isinstance(t := row.get("time"), bool) or not isinstance(t, int)
                  or not MIN_TIME <= t < MAX_TIME):
                got = time_range_error(t) if isinstance(t, int) and not isinstance(t, bool) \
                    else f"expected int seconds since the epoch, got {t!r}"
                dead.append(DeadLetter(msg.partition, msg.offset, where, "time", got[:200],
                                       row))
            else:
                ids.append(tid)
                rewards.append(float(value))
                times.append(t)
    return pd.DataFrame({"trigger_id": pd.Series(ids, dtype=object),
                         "reward": np.array(rewards, np.float64),
                         "time": np.array(times, np.int64)}), dead


def read_policy_state(checkpoint_dir: str) -> dict[str, Any] | None:
    """The published ``{"version", "policy"}`` state, or None before the first."""
    data = Location.of(checkpoint_dir).child("policy").read(POLICY_FILE)
    return None if data is None else dict(json.loads(data))


class FeedbackLearner:
    """Learns from feedback (see the module docstring).

    Parameters
    ----------
    config : ShardConfig
        The service's config (its policy is the one learned).
    feedback : Endpoint
        The feedback stream (one partition or several: the learner reads them all).
    checkpoint_dir : path or URI
        The service's: the decision log is read from ``<dir>/decisions`` (or ``log_dir``),
        the learner's checkpoint goes to ``<dir>/learner/``, states to ``<dir>/policy/``.
    reward_window : int
        Seconds after a send during which its feedback counts (> 0).
    publish_every : int
        Steps between published versions (>= 1).
    """

    def __init__(self, config: ShardConfig, feedback: Endpoint, *, checkpoint_dir: str,
                 reward_window: int, log_dir: str | None = None, publish_every: int = 1,
                 group: str = "triggerlab-learner") -> None:
        checks.check_int("reward_window", reward_window, error=TriggerLabValueError, low=1)
        checks.check_int("publish_every", publish_every, error=TriggerLabValueError, low=1)
        policy = config.make_policy()
        if policy is None:
            raise TriggerLabValueError("policy: the learner needs the service's policy, got "
                                       "None")
        self.policy = policy
        self.config = config
        self.reward_window = reward_window
        self.publish_every = publish_every
        root = os.fspath(checkpoint_dir)
        self._root = root
        self._log_root = log_dir if log_dir is not None else f"{root}/decisions"
        self._store = Location.of(root).child("learner")
        self._published = Location.of(root).child("policy")
        state = self._load()
        self.version = 0 if state is None else int(state["version"])
        self.parts_read: dict[int, int] = {} if state is None else dict(state["parts_read"])
        self.sends = pd.DataFrame() if state is None else state["sends"]
        self.feedback_clock: int | None = None if state is None else state["feedback_clock"]
        self.log_clock: int | None = None if state is None else state["log_clock"]
        self.waiting = decode_feedback([])[0] if state is None else state["waiting"]
        self.n_applied = 0 if state is None else int(state["n_applied"])
        self.n_unmatched = 0 if state is None else int(state["n_unmatched"])
        self.n_dead = 0 if state is None else int(state["n_dead"])
        self.n_outside = 0 if state is None else int(state["n_outside"])
        if state is not None:
            self.policy.load_state_dict(state["policy"])
        self.source = feedback.source(list(range(feedback.partitions())), group)
        self.positions: Positions = (check_positions(state["positions"]) if state is not None
                                     else self.source.positions())
        if state is not None and self.positions:
            self.source.seek(self.positions)
        self._steps = 0

    def _load(self) -> dict[str, Any] | None:
        data = self._store.read("checkpoint.pkl")
        if data is None:
            return None
        state = pickle.loads(data)   # the service's own checkpoint file
        if not isinstance(state, dict) or state.get("format") != _VERSION:
            raise TriggerLabValueError("checkpoint: not a learner checkpoint of version "
                                       f"{_VERSION}")
        return state

    # -- the loop -------------------------------------------------------------

    def step(self, max_messages: int = 1000, timeout: float = 0.5) -> LearnerProgress:
        """Read feedback and new log parts; apply the sends whose window closed."""
        self._follow_log()
        msgs = self.source.poll(max_messages, timeout)
        self.positions = advance(self.positions, msgs)
        fb, dead = decode_feedback(msgs)
        self.n_dead += len(dead)
        if len(fb):
            self.feedback_clock = max(int(fb["time"].max()), self.feedback_clock or 0)
        pool = pd.concat([self.waiting, fb], ignore_index=True) if len(fb) else self.waiting
        if len(pool) and len(self.sends):
            sent = self.sends.set_index("trigger_id")["time"]
            at = pool["trigger_id"].map(sent)
            known = at.notna().to_numpy()
            inside = known & (pool["time"].to_numpy() <= at.fillna(0).to_numpy()
                              + self.reward_window)
            self.n_outside += int((known & ~inside).sum())
            extra = pool[inside].groupby("trigger_id")["reward"].sum()
            self.sends["reward"] += self.sends["trigger_id"].map(extra).fillna(0.0).to_numpy()
            pool = pool[~known]
        # feedback whose send did not show up within a window names no send
        clock = self.clock
        if clock is not None and len(pool):
            stale = pool["time"].to_numpy() + self.reward_window < clock
            self.n_unmatched += int(stale.sum())
            pool = pool[~stale]
        self.waiting = pool.reset_index(drop=True)
        applied = self._apply()
        self._steps += 1
        published = None
        if applied and self._steps % self.publish_every == 0:
            published = self.publish()
        return LearnerProgress(len(msgs), len(fb), applied, len(self.sends), len(dead),
                               published, self.version, self.n_applied)

    @property
    def clock(self) -> int | None:
        """The learner's time: the latest feedback time read, but not past the latest
        decision of the log (a feedback stream read ahead of the service waits for it);
        None before both."""
        if self.feedback_clock is None or self.log_clock is None:
            return None
        return min(self.feedback_clock, self.log_clock)

    def _follow_log(self) -> None:
        """New fires of the decision log become open sends (reward 0 so far)."""
        base = Location.of(self._log_root)
        shards = sorted(int(n[6:]) for n in _dirs(base) if n.startswith("shard-"))
        frames = []
        for s in shards:
            log = DecisionLog(self._log_root, s)
            new = [k for k in log.part_numbers() if k >= self.parts_read.get(s, 0)]
            if new:
                frames.append(log.read(new))
                self.parts_read[s] = new[-1] + 1
        if not frames:
            return
        df = pd.concat(frames, ignore_index=True)
        self.log_clock = max(int(df["time"].max()), self.log_clock or 0)
        fires = df[(df["kind"] == "fire") & (df["arm_index"] >= 0)]
        keep = ["trigger_id", "subscriber", "time", "arm_index",
                *[f"x_{f}" for f in FEATURE_NAMES if f"x_{f}" in fires.columns]]
        new = fires[keep].assign(reward=0.0)
        self.sends = new if not len(self.sends) else pd.concat([self.sends, new],
                                                               ignore_index=True)

    def _apply(self) -> int:
        """Update the policy with the sends whose window closed; returns how many."""
        clock = self.clock
        if clock is None or not len(self.sends):
            return 0
        done = self.sends["time"].to_numpy() + self.reward_window <= clock
        if not done.any():
            return 0
        batch = self.sends[done].sort_values(["time", "trigger_id"], kind="stable")
        self.sends = self.sends[~done].reset_index(drop=True)
        reward = batch["reward"].to_numpy(float)
        if self.policy.reward_type == "binary":
            reward = np.minimum(reward, 1.0)
        xcols = [f"x_{f}" for f in FEATURE_NAMES]
        contextual = getattr(self.policy, "n_features", None) is not None
        x = batch[xcols].to_numpy(float) if contextual else None
        subs = batch["subscriber"].to_numpy(np.int64)
        self.policy.update(batch["arm_index"].to_numpy(np.int64), reward, x,
                           subscribers=subs if self.policy.requires_subscribers else None)
        self.n_applied += len(batch)
        return len(batch)

    def publish(self) -> int:
        """Write the policy state as the next version; returns it."""
        self.version += 1
        body = {"version": self.version, "policy": self.policy.state_dict()}
        self._published.write_atomic(POLICY_FILE, json.dumps(body).encode())
        return self.version

    def checkpoint(self) -> None:
        """Write the learner's checkpoint atomically, then commit the feedback positions."""
        state = {"format": _VERSION, "version": self.version,
                 "policy": self.policy.state_dict(), "positions": dict(self.positions),
                 "parts_read": dict(self.parts_read), "sends": self.sends,
                 "waiting": self.waiting, "feedback_clock": self.feedback_clock,
                 "log_clock": self.log_clock, "n_applied": self.n_applied,
                 "n_unmatched": self.n_unmatched, "n_dead": self.n_dead,
                 "n_outside": self.n_outside}
        self._store.write_atomic("checkpoint.pkl", pickle.dumps(state))
        if self.positions:
            self.source.commit(self.positions)

    def close(self, checkpoint: bool = True) -> None:
        if checkpoint:
            self.checkpoint()
        self.source.close()


def _dirs(loc: Location) -> list[str]:
    import pyarrow.fs as pafs

    info = loc.fs.get_file_info(pafs.FileSelector(loc.path, allow_not_found=True))
    return [i.base_name for i in info if i.type == pafs.FileType.Directory]


def remote_learner(**options: Any) -> Any:
    """:class:`FeedbackLearner` as a Ray actor class (``num_cpus=0``)."""
    import ray

    return ray.remote(FeedbackLearner).options(**{"num_cpus": 0, "max_restarts": 0,
                                                  **options})
