"""The library's exception hierarchy.

Every error TriggerLab raises derives from :class:`TriggerLabError`. Errors caused by
bad input are also :class:`ValueError` (scikit-learn's ``InvalidParameterError``
pattern), so ``except ValueError`` keeps working for callers that do not know us.
Messages name the field, what was expected and what was received.

What is not certainly wrong but depends on data -- a rule whose segment no subscriber of
the table matches -- is a :class:`TriggerLabWarning` (a ``UserWarning``), never silence.
"""

from __future__ import annotations

__all__ = [
    "InvalidEventError",
    "LateEventError",
    "PolicyError",
    "RuleError",
    "RuleWarning",
    "SpecError",
    "StatsInputError",
    "TriggerLabError",
    "TriggerLabValueError",
    "TriggerLabWarning",
]


class TriggerLabError(Exception):
    """Base class of every error raised by TriggerLab."""


class InvalidEventError(TriggerLabError, ValueError):
    """An event record or column is malformed (missing field, unknown type, bad value)."""


class RuleError(TriggerLabError, ValueError):
    """A trigger rule file does not match the schema; the message gives the path."""


class LateEventError(TriggerLabError, ValueError):
    """Events arrived with a time before one the engine has already handled."""


class SpecError(TriggerLabError, ValueError):
    """An experiment spec or simulation parameter is invalid; the message gives the path."""


class PolicyError(TriggerLabError, ValueError):
    """A policy got bad input: wrong shape, unknown arm, reward outside its declared type."""


class StatsInputError(TriggerLabError, ValueError):
    """A statistics, off-policy evaluation or attribution function got invalid input.

    The message names the argument, what was expected and what was received.
    """


class TriggerLabValueError(TriggerLabError, ValueError):
    """A bad argument to a library call (unknown engine name, bad state dict, ...)."""


class TriggerLabWarning(UserWarning):
    """Base class of every warning TriggerLab issues."""


class RuleWarning(TriggerLabWarning):
    """A valid rule that cannot fire on the data it is given (a segment no subscriber
    of the table matches, a segment column the table lacks); the message names the rule."""
