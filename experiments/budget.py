"""Up-front memory and time estimates of an experiment; refuses what cannot fit.

A spec with ``subscribers: 1000000000000`` or ``replications: 1000000000`` is valid
YAML and a valid design, but would run for years or end in ``MemoryError`` after
allocating for minutes. :func:`check_budget` refuses it before any work, with the
estimate in the message; ``triggerlab validate`` prints the estimate of valid specs.

The model is deliberately simple (docs: README "Validating a spec")::

    bytes   ~ BYTES_PER_SUBSCRIBER * subscribers * concurrent_runs
              + BYTES_PER_RUN_DAY * runs * days
              [+ BYTES_PER_SUBSCRIBER_RUN_SEGMENTS * subscribers * runs  with analysis.segments]
              [+ BYTES_PER_SUBSCRIBER_DAY_SCORING * subscribers * days * concurrent_runs
                 with scoring]
    seconds ~ SECONDS_PER_SUBSCRIBER_DAY * subscribers * days * arms * replications

``concurrent_runs`` is 1 for the inline executor and for sharded Ray runs (runs go one
after the other), and ``min(runs, CPUs)`` for unsharded Ray runs (one task per run).
The constants are measured: ~2.8 KB of peak memory per simulated subscriber for the
full loop in one process (BENCHMARKS.md: 1M subscribers ~ 2.2-2.5 GB; a 20k-subscriber,
7-day, 2-arm run measured 5.6 KB per subscriber including pandas' fixed costs), and
0.25 s per 10k subscriber-days (the same run measured 0.14 s on a loaded 2-core machine;
BENCHMARKS.md's larger runs ~0.5 s). ``bytes`` is what a run adds to the process already
loaded, compared with the memory available now. They are estimates within a
factor of ~2; the refusal only triggers when the estimate exceeds the machine's
*available* memory, so anything refused would almost surely not have fitted.
With ``analysis.segments`` the per-subscriber tables of every run are kept until the run
folder is written: 480 B per subscriber and run measured (10k subscribers, 2 runs, loaded
back from the run folder), counted as 1 KB for the copies made while gathering them.
With ``scoring`` (dynamic segments) every shard keeps its event log, which the refreshes
read: 66 B per subscriber and day measured (retail preset, 3,000 subscribers, 7 days:
0.64 events per subscriber-day at 104 B each), counted as 100 B.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from experiments.design import ExperimentSpec
from policies.errors import SpecError

__all__ = [
    "BYTES_PER_RUN_DAY",
    "BYTES_PER_SUBSCRIBER",
    "BYTES_PER_SUBSCRIBER_DAY_SCORING",
    "BYTES_PER_SUBSCRIBER_RUN_SEGMENTS",
    "SECONDS_PER_SUBSCRIBER_DAY",
    "Estimate",
    "available_memory",
    "check_budget",
    "estimate",
    "format_bytes",
    "format_seconds",
]

BYTES_PER_SUBSCRIBER = 2_800
BYTES_PER_RUN_DAY = 20_000
BYTES_PER_SUBSCRIBER_RUN_SEGMENTS = 1_000
BYTES_PER_SUBSCRIBER_DAY_SCORING = 100
SECONDS_PER_SUBSCRIBER_DAY = 0.25 / 10_000


@dataclass(frozen=True)
class Estimate:
    """Estimated peak memory (bytes) and single-core wall time (seconds) of a spec."""

    bytes: float
    seconds: float
    runs: int
    concurrent_runs: int


def estimate(spec: ExperimentSpec, *, executor: str | None = None,
             shards: int | None = None) -> Estimate:
    """The :class:`Estimate` of running ``spec`` (``executor``/``shards`` override it)."""
    executor = executor or spec.executor
    shards = shards or spec.shards
    runs = int(spec.replications) * len(spec.arms)
    concurrent = 1
    if executor == "ray" and shards == 1:
        concurrent = max(1, min(runs, os.cpu_count() or 1))
    days = float(spec.days)
    subs = float(spec.subscribers)
    mem = (BYTES_PER_SUBSCRIBER * subs * concurrent
           + BYTES_PER_RUN_DAY * runs * max(days, 1.0))
    if spec.segments:
        mem += BYTES_PER_SUBSCRIBER_RUN_SEGMENTS * subs * runs
    if spec.scoring is not None:
        mem += BYTES_PER_SUBSCRIBER_DAY_SCORING * subs * days * concurrent
    seconds = SECONDS_PER_SUBSCRIBER_DAY * subs * days * runs
    return Estimate(bytes=mem, seconds=seconds, runs=runs, concurrent_runs=concurrent)


def available_memory() -> int | None:
    """Bytes of memory available to a new process now, or None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes as ``512 MB``, ``2.3 GB``, ``2.8e+06 TB``."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if n >= size:
            v = n / size
            return f"{v:.3g} {unit}" if v < 1e6 else f"{v:.2e} {unit}"
    return f"{n / 2**10:.0f} KB"


def format_seconds(s: float) -> str:
    """``s`` seconds as ``42 s``, ``3.5 min``, ``2.1 h``, ``5.3 days``, ``1.2e+05 years``."""
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 2 * 365 * 86400:
        return f"{s / 86400:.1f} days"
    y = s / (365 * 86400)
    return f"{y:.3g} years" if y < 1e6 else f"{y:.2e} years"


def check_budget(spec: ExperimentSpec, *, executor: str | None = None,
                 shards: int | None = None, available: int | None = None) -> Estimate:
    """The :class:`Estimate` of ``spec``; SpecError if its memory cannot fit.

    ``available`` defaults to :func:`available_memory` (the check is skipped when that
    is unknown).
    """
    est = estimate(spec, executor=executor, shards=shards)
    avail = available_memory() if available is None else available
    if avail is not None and est.bytes > avail:
        field = ("population.subscribers" if BYTES_PER_SUBSCRIBER * float(spec.subscribers)
                 * est.concurrent_runs >= BYTES_PER_RUN_DAY * est.runs * float(spec.days)
                 else "replications")
        raise SpecError(
            f"{field}: the run would need about {format_bytes(est.bytes)} of memory "
            f"({spec.subscribers:,} subscribers x {est.concurrent_runs} concurrent run(s), "
            f"{est.runs:,} run(s) x {float(spec.days):g} days; estimate) but "
            f"{format_bytes(avail)} is available; and would take about "
            f"{format_seconds(est.seconds)} on one core. Use fewer subscribers, arms, "
            "replications or days")
    return est
