"""The load test against a running trigger service (``triggerlab loadtest --target``).

:func:`run_target` publishes an event pool open-loop to the service's event stream,
reads the service's decision stream and progress markers
(:mod:`actors.service.progress`), and reports throughput, publish-to-decision latency
and the check against the reference engine.

**Publishing.** Events (time-sorted) are offered at ``rate`` per second: every
``window`` seconds (a *round*) the events due by then are published, cut into slices
of at most ``max_batch`` events spanning at most the service's grace in event time
(so that a shard reading its partitions interleaved never sees an event older than its
watermark), each slice as one message per partition (Arrow IPC), or one JSON event per
message. A round is published whether or not the service keeps up (open loop); when
the publisher itself falls behind its schedule, that lag is reported.

**Latency.** For an event ``e`` of shard ``s`` (the shard owning its partition):

* ``pub(e)``: the wall time the publish call carrying ``e`` started;
* ``done(e)``: the ``emitted`` time of the first progress marker of ``s`` whose watermark
  is ``>= time(e)``. The shard publishes a marker after each step, once that step's
  decisions are stored on the decision stream; so at ``done(e)``, ``e`` is applied and
  every decision due by its time that it causes is emitted. An event that causes no
  decision is timed the same way: the marker says it was applied;
* ``release(e)``: the earliest ``pub(f)`` of an event ``f`` of ``s`` with ``time(f) >=
  time(e) + grace``: until ``f`` is read, the watermark (latest time - grace) cannot pass
  ``e``. This is the wait the grace imposes.

``latency(e) = done(e) - max(pub(e), release(e))`` (the figure without the grace) and
``latency_with_grace(e) = done(e) - pub(e)``. Events that no marker covers by the end
(within the grace of their shard's newest event) are counted as *held* and have no
latency. Both clocks are the wall clock (``time.time()``): run the service and the load
test on one machine, or on machines with synchronized clocks.

**Check.** Each shard's decisions received on the decision stream must equal, row for
row (:data:`actors.service.parity.COMPARED`), the reference run
(:func:`actors.service.parity.reference_decisions`) of the published events of its
subscribers up to its final watermark, with the same rules, policy and seed. The
service must start fresh (nothing read yet): the reference starts from an empty engine.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from actors.service.codec import encode_messages
from actors.service.endpoints import Endpoint
from actors.service.partitioning import partition_of
from actors.service.progress import ProgressMarker
from actors.service.transport import OutMessage, Source
from policies import checks
from policies.errors import SpecError, TriggerLabValueError
from policies.events import EventBatch

__all__ = ["FORMATS", "TargetConfig", "TargetResult", "decision_times", "open_stream",
           "run_target",
           "target_table", "tile"]

#: Wire formats the load test publishes.
FORMATS = ("arrow", "json")
DAY = 86_400
_QS = (50.0, 95.0, 99.0)


@dataclass(frozen=True)
class TargetConfig:
    """How :func:`run_target` loads the service.

    Parameters
    ----------
    rate : float
        Offered events per second (> 0).
    duration : float
        Seconds of offered load (> 0, at most a day).
    fmt : {"arrow", "json"}
        Batched Arrow IPC messages, or one JSON event per message.
    window : float
        Seconds between publish rounds (> 0).
    max_batch : int
        Events per Arrow message at most (>= 1).
    service_timeout : float
        Seconds to wait for progress markers of every partition before publishing.
    drain_timeout : float
        Seconds to wait after the last publish for the service to apply everything.
    progress : float
        Seconds between progress lines.
    """

    rate: float
    duration: float
    fmt: str = "arrow"
    window: float = 0.02
    max_batch: int = 50_000
    service_timeout: float = 60.0
    drain_timeout: float = 60.0
    progress: float = 1.0

    def __post_init__(self) -> None:
        for name, value, high in (("rate", self.rate, None),
                                  ("duration", self.duration, float(DAY)),
                                  ("batch-window", self.window, 60.0),
                                  ("service-timeout", self.service_timeout, None),
                                  ("drain-timeout", self.drain_timeout, None),
                                  ("progress", self.progress, None)):
            checks.check_number(name, value, error=SpecError, low=0.0, low_open=True,
                                high=high)
        checks.check_int("batch-size", self.max_batch, error=SpecError, low=1)
        if self.fmt not in FORMATS:
            raise SpecError(f"format: expected one of {FORMATS}, got {self.fmt!r}")
        if self.rate * self.duration < 1:
            raise SpecError(f"rate x duration: expected at least one event, got "
                            f"{self.rate:g}/s for {self.duration:g} s")


@dataclass
class TargetResult:
    """What :func:`run_target` measured: ``summary`` (figures), ``check`` (the
    reference comparison) and ``passed`` (drained and equal)."""

    summary: dict[str, Any]
    check: dict[str, Any]
    passed: bool
    markers: list[ProgressMarker] = field(default_factory=list, repr=False)


def tile(events: EventBatch, n: int) -> EventBatch:
    """The first ``n`` events of ``events`` (time-sorted) repeated, each repeat shifted
    later by whole days past the pool's span (time keeps moving forward)."""
    if len(events) >= n:
        return events[:n]
    span = int(events.time[-1] - events.time[0])
    shift = (span // DAY + 1) * DAY
    reps = -(-n // len(events))
    parts = []
    for k in range(reps):
        parts.append(EventBatch(events.subscriber, events.time + k * shift, events.type,
                                {c: events.column(c) for c in events.columns}))
    return EventBatch.concat(parts)[:n]


@dataclass
class _Round:
    """One publish round: its messages, event index range and shard event counts."""

    lo: int
    hi: int
    due: float                      # seconds after the start
    messages: list[OutMessage]
    per_shard: dict[int, int]       # messages per shard


def _rounds(events: EventBatch, config: TargetConfig, grace: int, n_partitions: int,
            owner: np.ndarray) -> list[_Round]:
    """The publish plan: rounds of ``window`` seconds, each cut into slices (at most
    ``max_batch`` events, at most ``grace`` s of event time), encoded."""
    per_round = config.rate * config.window
    n = len(events)
    out = []
    k = 0
    while True:
        lo, hi = round(k * per_round), min(n, round((k + 1) * per_round))
        if lo >= n:
            break
        k += 1
        if hi <= lo:
            continue
        msgs: list[OutMessage] = []
        t = events.time
        a = lo
        while a < hi:
            b = min(hi, a + config.max_batch,
                    int(np.searchsorted(t[a:hi], t[a] + grace, side="right")) + a)
            msgs += encode_messages(events[a:b], n_partitions, config.fmt)  # type: ignore[arg-type]
            a = b
        counts = Counter(int(owner[m.partition]) for m in msgs)
        out.append(_Round(lo, hi, (hi - 1) / config.rate, msgs, dict(counts)))
    return out


class _Reader:
    """Progress markers and decision rows read from the service's output streams."""

    def __init__(self, progress: Source, decisions: Source) -> None:
        self.progress = progress
        self.decisions = decisions
        self.markers: list[ProgressMarker] = []
        self.last: dict[int, ProgressMarker] = {}
        self.frames: list[pd.DataFrame] = []
        self.n_rows: Counter[int] = Counter()

    def poll(self, timeout: float) -> None:
        for m in self.progress.poll(1000, max(timeout, 0.001)):
            marker = ProgressMarker.from_json(m.payload)
            self.markers.append(marker)
            self.last[marker.shard] = marker
        for m in self.decisions.poll(1000, 0.001):
            df = pa.ipc.open_stream(m.payload).read_all().to_pandas()
            self.frames.append(df)
            self.n_rows.update(df["shard"].astype(int).tolist())

    def rows(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()


def _say_nothing(text: str) -> None:
    pass


def run_target(events: EventBatch, subscribers: pd.DataFrame, rules: Any,
               endpoint: Endpoint, config: TargetConfig, *, policy: Any = None,
               policy_seed: int = 0, n_partitions: int = 4,
               say: Callable[[str], None] = _say_nothing) -> TargetResult:
    """Load the service on ``endpoint`` (see the module docstring).

    Parameters
    ----------
    events : EventBatch
        The pool, time-sorted; tiled (:func:`tile`) to ``rate x duration`` events.
    subscribers : pandas.DataFrame
        The subscriber table the service was started with (for the check).
    rules : RuleSet
    endpoint : Endpoint
        A ``nats`` or ``kafka`` event stream.
    policy : Policy, optional
        A fresh policy as the service builds it (the check draws the same keyed arms).
    policy_seed : int
        The service's ``--seed``.
    n_partitions : int
        Partitions of the stream when the load test creates it.
    say : callable
        Receives the progress lines.
    """
    from actors.service.parity import comparable

    if endpoint.kind == "file":
        raise SpecError("target: expected nats://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC, "
                        "got a Parquet log")
    n_events = round(config.rate * config.duration)
    offered = tile(events, n_events)
    group = f"loadtest-{os.getpid()}-{time.time_ns()}"
    sink = open_stream(endpoint, n_partitions)
    opened: list[Any] = [sink]
    try:
        n_part = sink.partitions
        progress = endpoint.reader("progress", n_part, f"{group}-progress")
        opened.append(progress)
        decisions = endpoint.reader("decisions", n_part, f"{group}-decisions")
        opened.append(decisions)
        progress.seek(progress.end_positions())            # type: ignore[attr-defined]
        decisions.seek(decisions.end_positions())          # type: ignore[attr-defined]
        reader = _Reader(progress, decisions)
        base = _wait_for_service(reader, n_part, endpoint, config.service_timeout)
        return _run(offered, subscribers, rules, config, sink, reader, base, n_part,
                    policy, policy_seed, say, comparable, repr(endpoint))
    finally:
        for c in opened:
            c.close()


def open_stream(endpoint: Endpoint, n_partitions: int) -> Any:
    """A sink on ``endpoint``'s event stream, created with ``n_partitions`` if missing
    (an existing stream keeps its partition count)."""
    try:
        return endpoint.sink(None)
    except TriggerLabValueError as exc:
        if "does not exist" not in str(exc):
            raise
        return endpoint.sink(n_partitions)


def _wait_for_service(reader: _Reader, n_part: int, endpoint: Endpoint,
                      timeout: float) -> dict[int, ProgressMarker]:
    """The first marker of each shard, once the shards' partitions cover the stream."""
    deadline = time.monotonic() + timeout
    base: dict[int, ProgressMarker] = {}
    while True:
        reader.poll(0.2)
        for m in reader.markers:
            base.setdefault(m.shard, m)
        covered = sorted({p for m in base.values() for p in m.partitions})
        if covered == list(range(n_part)):
            break
        if time.monotonic() > deadline:
            missing = sorted(set(range(n_part)) - set(covered))
            raise TriggerLabValueError(
                f"--target: no service reads partitions {missing} of {endpoint!r}: no "
                f"progress marker within {timeout:g} s (start `triggerlab serve --source "
                f"...` on this stream first)")
    used = {s: m for s, m in base.items() if m.messages}
    if used:
        n = sum(m.messages for m in used.values())
        raise TriggerLabValueError(
            f"--target: the service on {endpoint!r} has already read {n:,} messages; the "
            f"check needs a fresh service: serve a new stream with a new --checkpoint-dir")
    graces = {m.grace for m in base.values()}
    if len(graces) != 1:
        raise TriggerLabValueError(f"--target: the shards report different graces {graces}")
    return base


def _run(offered: EventBatch, subscribers: pd.DataFrame, rules: Any, config: TargetConfig,
         sink: Any, reader: _Reader, base: dict[int, ProgressMarker], n_part: int,
         policy: Any, policy_seed: int, say: Callable[[str], None],
         comparable: Any, target: str) -> TargetResult:
    grace = next(iter(base.values())).grace
    owner = np.empty(n_part, np.int64)
    for m in base.values():
        owner[list(m.partitions)] = m.shard
    shard_of = owner[partition_of(offered.subscriber, n_part)]
    rounds = _rounds(offered, config, grace, n_part, owner)
    n_msgs = sum(len(r.messages) for r in rounds)
    say(f"loadtest: {len(offered):,} events in {n_msgs:,} {config.fmt} messages to "
        f"{len(base)} shard(s) over {n_part} partition(s), grace {grace} s; offering "
        f"{config.rate:,.0f} events/s for {config.duration:g} s")
    pub = np.full(len(offered), np.nan)
    lag = np.zeros(len(rounds))
    sent: Counter[int] = Counter()
    start_wall, start = time.time(), time.monotonic()
    next_line = start + config.progress
    for i, r in enumerate(rounds):
        while True:
            now = time.monotonic()
            if now >= start + r.due:
                break
            reader.poll(min(0.05, start + r.due - now))
        lag[i] = time.monotonic() - start - r.due
        pub[r.lo:r.hi] = time.time()
        sink.publish(r.messages)
        sent.update(r.per_shard)
        if time.monotonic() >= next_line:
            say(_line(time.monotonic() - start, r.hi, reader, base, lag[i]))
            next_line = time.monotonic() + config.progress
    published_s = time.monotonic() - start
    deadline = time.monotonic() + config.drain_timeout
    while True:
        reader.poll(0.05)
        done = all(
            s in reader.last and reader.last[s].messages - base[s].messages >= sent[s]
            and reader.n_rows[s] >= reader.last[s].written - base[s].written
            for s in base)
        if done or time.monotonic() > deadline:
            break
        if time.monotonic() >= next_line:
            say(_line(time.monotonic() - start, len(offered), reader, base, lag[-1]))
            next_line = time.monotonic() + config.progress
    say(_line(time.monotonic() - start, len(offered), reader, base, lag[-1]))
    done_at, release = decision_times(offered.time, shard_of, pub, reader.markers, grace)
    decided = ~np.isnan(done_at)
    last_emitted = float(np.nanmax(done_at)) if decided.any() else start_wall
    with_grace = (done_at - pub)[decided]
    excl = (done_at - np.maximum(pub, release))[decided & ~np.isnan(release)]
    applied = sum(reader.last[s].events - base[s].events for s in base if s in reader.last)
    rows = reader.rows()
    kinds = Counter(rows["kind"].astype(str).tolist()) if len(rows) else Counter()
    last = {s: reader.last.get(s, base[s]) for s in base}
    wall = max(last_emitted - start_wall, 1e-9)
    summary: dict[str, Any] = {
        "target": target, "format": config.fmt, "shards": len(base),
        "partitions": n_part, "grace_s": grace, "events_offered": len(offered),
        "messages": n_msgs, "target_rate": config.rate, "duration_s": config.duration,
        "publish_s": published_s,
        "published_rate": len(offered) / max(published_s, 1e-9),
        "publisher_lag_max_ms": 1000 * float(lag.max()) if len(lag) else 0.0,
        "events_applied": int(applied), "throughput_eps": applied / wall,
        "events_decided": int(decided.sum()), "events_held": int((~decided).sum()),
        "decisions": len(rows), **{f"decisions_{k}": int(v) for k, v in kinds.items()},
        "dead_bad": sum(m.dead_bad for m in last.values()),
        "dead_late": sum(m.dead_late for m in last.values()),
        "dead_foreign": sum(m.dead_foreign for m in last.values()),
        "drained": bool(all(last[s].messages - base[s].messages >= sent[s] for s in base)),
    }
    for name, values in (("latency", excl), ("latency_with_grace", with_grace)):
        ps = (np.percentile(values, _QS, method="inverted_cdf").tolist() if len(values)
              else [math.nan] * 3)
        for q, v in zip(("p50", "p95", "p99"), ps, strict=True):
            summary[f"{name}_{q}_ms"] = 1000 * v
        summary[f"{name}_max_ms"] = 1000 * float(values.max()) if len(values) else math.nan
    summary.update(step_costs(reader.markers))
    check = _check(offered, shard_of, subscribers, rules, last, rows, policy, policy_seed,
                   comparable)
    passed = summary["drained"] and check["passed"]
    return TargetResult(summary, check, passed, reader.markers)


def decision_times(times: np.ndarray, shard_of: np.ndarray, pub: np.ndarray,
                   markers: list[ProgressMarker], grace: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(done, release)`` per event (module docstring; NaN where undefined).

    Parameters
    ----------
    times : int64 ndarray (n,)
        Event times, seconds.
    shard_of : int64 ndarray (n,)
        The shard owning each event's partition.
    pub : float64 ndarray (n,)
        When each event's publish call started (wall seconds).
    markers : list of ProgressMarker
        In the order each shard emitted them.
    grace : int
        The service's grace, seconds.

    Returns
    -------
    done : float64 ndarray (n,)
        ``emitted`` of the first marker of the event's shard with watermark >= its time.
    release : float64 ndarray (n,)
        The earliest ``pub`` of an event of the same shard at or after its time + grace.
    """
    done = np.full(len(times), np.nan)
    release = np.full(len(times), np.nan)
    for s in np.unique(shard_of).tolist():
        mine = np.flatnonzero(shard_of == s)
        ms = [m for m in markers if m.shard == s and m.watermark is not None]
        if ms:
            marks = np.maximum.accumulate(np.array([m.watermark for m in ms], np.int64))
            emitted = np.array([m.emitted for m in ms])
            k = np.searchsorted(marks, times[mine], side="left")
            ok = k < len(ms)
            done[mine[ok]] = emitted[k[ok]]
        order = mine[np.argsort(times[mine], kind="stable")]
        suffix = np.minimum.accumulate(pub[order][::-1])[::-1]
        j = np.searchsorted(times[order], times[mine] + grace, side="left")
        has = j < len(order)
        release[mine[has]] = suffix[j[has]]
    return done, release


def step_costs(markers: list[ProgressMarker]) -> dict[str, float]:
    """Median wall time between a shard's consecutive markers of steps that applied
    events, and median events such a step applied (``step_ms_p50``,
    ``step_events_p50``): while a shard is saturated, what one step (poll, decode,
    engine, log, publish) costs."""
    dts, des = [], []
    by: dict[int, list[ProgressMarker]] = {}
    for m in markers:
        by.setdefault(m.shard, []).append(m)
    for ms in by.values():
        for a, b in pairwise(ms):
            if b.events > a.events and not b.heartbeat:
                dts.append(b.emitted - a.emitted)
                des.append(b.events - a.events)
    if not dts:
        return {"step_ms_p50": math.nan, "step_events_p50": math.nan}
    return {"step_ms_p50": 1000 * float(np.median(dts)),
            "step_events_p50": float(np.median(des))}


def _line(elapsed: float, published: int, reader: _Reader, base: dict[int, ProgressMarker],
          lag: float) -> str:
    applied = sum(reader.last[s].events - base[s].events for s in base if s in reader.last)
    marks = [reader.last[s].watermark for s in base if s in reader.last]
    wm = ("none yet" if not marks or any(w is None for w in marks) else
          time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(min(w for w in marks if w))))
    return (f"loadtest: {elapsed:.1f} s | published {published:,} | applied {applied:,} | "
            f"decisions {sum(reader.n_rows.values()):,} | watermark {wm} | publisher "
            f"behind {max(0.0, 1000 * lag):,.0f} ms")


def _check(offered: EventBatch, shard_of: np.ndarray, subscribers: pd.DataFrame,
           rules: Any, last: dict[int, ProgressMarker], rows: pd.DataFrame, policy: Any,
           seed: int, comparable: Any) -> dict[str, Any]:
    """Each shard's received decisions against the reference run up to its watermark."""
    from actors.service.parity import COMPARED, reference_decisions

    missing = extra = n_ref = 0
    dup = 0
    if len(rows):
        dup = int(rows.duplicated(["trigger_id", "kind", "attempt"]).sum())
    for s, marker in last.items():
        mine = offered[shard_of == s]
        got = rows[rows["shard"].astype(int) == s] if len(rows) else pd.DataFrame(
            columns=COMPARED)
        if marker.watermark is None or not len(mine):
            extra += len(got)
            continue
        ref = reference_decisions(mine, subscribers, end=int(marker.watermark), rules=rules,
                                  policy=policy, seed=seed)
        n_ref += len(ref)
        a = Counter(_tuples(ref))
        b = Counter(_tuples(comparable(got)) if len(got) else [])
        missing += sum((a - b).values())
        extra += sum((b - a).values())
    return {"reference_decisions": n_ref, "missing": missing, "extra": extra,
            "duplicate_ids": dup, "passed": missing == 0 and extra == 0 and dup == 0}


def _tuples(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    out = []
    for row in df.itertuples(index=False):
        out.append(tuple(None if isinstance(v, float) and v != v else v for v in row))
    return out


def _ms(value: float) -> str:
    return "n/a" if value is None or value != value else f"{value:,.1f} ms"


def target_table(result: TargetResult, *, p99_target_ms: float | None = None) -> str:
    """The summary of a target run, one line per figure."""
    s, c = result.summary, result.check
    kinds = ", ".join(f"{s.get(f'decisions_{k}', 0):,} {k}"
                      for k in ("fire", "cancel", "expire", "suppress"))
    lat = " ".join(f"{q} {_ms(s[f'latency_{q}_ms'])}" for q in ("p50", "p95", "p99", "max"))
    latg = " ".join(f"{q} {_ms(s[f'latency_with_grace_{q}_ms'])}"
                    for q in ("p50", "p95", "p99", "max"))
    return "\n".join([
        f"load test: {s['target']}, {s['shards']} shard(s) over {s['partitions']} "
        f"partition(s), {s['format']} messages, grace {s['grace_s']} s",
        f"  offered            {s['events_offered']:,} events in {s['messages']:,} messages "
        f"over {s['duration_s']:g} s (target {s['target_rate']:,.0f}/s); published at "
        f"{s['published_rate']:,.0f}/s, publisher behind schedule at most "
        f"{s['publisher_lag_max_ms']:,.0f} ms",
        f"  applied            {s['events_applied']:,} events, {s['throughput_eps']:,.0f} "
        f"events/s (first publish to last marker); "
        + ("all drained" if s["drained"] else "NOT DRAINED within the drain timeout")
        + f"; {s['events_held']:,} held by the watermark at the end",
        f"  latency            {lat}" + ("" if p99_target_ms is None else
                                         f"  (p99 target {p99_target_ms:g} ms)"),
        f"  with the grace     {latg}",
        f"  decisions          {s['decisions']:,}: {kinds}",
        f"  shard steps        median {_ms(s['step_ms_p50'])} between markers, "
        f"{s['step_events_p50']:,.0f} events a step",
        f"  dead letters       bad {s['dead_bad']:,}, late {s['dead_late']:,}, foreign "
        f"{s['dead_foreign']:,}",
        f"  check              {'PASSED' if c['passed'] else 'FAILED'}: "
        f"{c['reference_decisions']:,} reference decisions; missing {c['missing']:,}, "
        f"extra {c['extra']:,}, duplicate ids {c['duplicate_ids']:,}",
    ])
