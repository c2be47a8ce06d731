"""Durations as written in rule files (``90s``, ``30m``, ``2h``, ``3d``) and clock times.

All durations are converted to whole seconds (int), at most :data:`MAX_DURATION`
(36500 days, about 100 years: longer ones would mean "never" and, added to a time, could
overflow the engines' int64 arithmetic). Clock times (``"22:00"``) are converted to
minutes after midnight.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_DURATION", "format_duration", "parse_clock", "parse_duration"]

#: Longest duration a rule may use, in seconds: 36500 days (about 100 years).
MAX_DURATION = 36500 * 86400

_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_duration(value: Any) -> int:
    """Seconds in a duration string like ``'90s'``, ``'30m'``, ``'2h'`` or ``'3d'``.

    Raises
    ------
    ValueError
        With the message ``expected a duration like '30m', got ...`` for anything else
        (numbers without a unit included: a bare ``30`` is ambiguous), and ``expected a
        duration of at most 36500d, got ...`` beyond :data:`MAX_DURATION`.

    Examples
    --------
    >>> parse_duration("90s"), parse_duration("2h"), parse_duration("3d")
    (90, 7200, 259200)
    """
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration like '30m', got {value!r}")
    digits = match.group(1).lstrip("0")
    seconds = (int(digits or "0") if len(digits) <= 18 else MAX_DURATION + 1) * _UNIT_SECONDS[
        match.group(2)]
    if seconds > MAX_DURATION:
        raise ValueError(f"expected a duration of at most 36500d (100 years), got {value!r}")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact duration string for ``seconds`` (inverse of :func:`parse_duration`).

    >>> format_duration(86400), format_duration(5400), format_duration(0)
    ('1d', '90m', '0s')
    """
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_clock(value: Any) -> int:
    """Minutes after midnight of a clock time ``'HH:MM'`` (24-hour).

    >>> parse_clock("22:00"), parse_clock("08:30")
    (1320, 510)
    """
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a clock time like '22:00', got {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))
