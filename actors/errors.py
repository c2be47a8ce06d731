"""Errors of the runtime (input errors are :class:`~policies.errors.SpecError`).

* :class:`ShardError` -- a shard or the learner raised; the run stops with its message;
* :class:`ActorLost` -- an actor or one of its results was lost (the driver recovers
  from a checkpoint);
* :class:`InternalError` -- an invariant of the runtime itself does not hold (a bug,
  not a bad input): messages out of order, arms missing for emails, a corrupt state.
"""

from __future__ import annotations

from policies.errors import TriggerLabError

__all__ = ["ActorLost", "InternalError", "ShardError"]


class ShardError(TriggerLabError, RuntimeError):
    """A shard or the learner raised; the run stops with its message."""


class ActorLost(TriggerLabError, RuntimeError):
    """An actor or one of its results was lost (recoverable from a checkpoint)."""


class InternalError(TriggerLabError, RuntimeError):
    """An internal invariant of the runtime does not hold (a bug, not a bad input)."""
