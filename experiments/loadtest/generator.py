"""The load generator: an event pool, its partition over shards, and the open-loop plan.

Everything here is pure numpy and runs before the clock starts:

1. a **pool** of events (time-sorted :class:`~policies.events.EventBatch`) and the
   subscriber table -- from the simulator's behavior model (:func:`behavior_stream`),
   from an event-type mix given on the command line (:func:`mix_stream`), or from a
   recorded log (:func:`replay_stream`);
2. a **partition** of subscribers over shards by id hash or id range
   (:func:`partition`);
3. a **plan** (:func:`plan`): each shard's events cut into batches, and for every
   batch the wall-clock second (from the start) at which its last event arrives.
   Arrival is open-loop: event ``g`` of the offered stream arrives at ``g / rate``
   (or at its recorded timestamp divided by ``speedup``) whether or not the engine has
   kept up. A pool smaller than the run is offered again and again, each repeat shifted
   later in event time by whole days, so the engine always sees time move forward.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from actors.service.partitioning import mix64, partition_of
from policies.errors import InvalidEventError, SpecError
from policies.event_schema import EVENT_TYPES, category_code
from policies.events import EventBatch
from policies.triggers import RuleSet

__all__ = [
    "SOURCES",
    "Plan",
    "Stream",
    "behavior_stream",
    "check_coverage",
    "mix_stream",
    "parse_mix",
    "partition",
    "plan",
    "read_subscriber_table",
    "replay_stream",
    "rule_columns",
    "sample_mask",
]

DAY = 86_400
#: Generated-stream sources: the simulator's behavior model, or the interim
#: session generator of :mod:`experiments.synthetic`.
SOURCES = ("sim", "synthetic")
_SAMPLE_POINTS = 16


@dataclass(frozen=True)
class Stream:
    """An event pool and the subscribers it refers to.

    Attributes
    ----------
    events : EventBatch
        Sorted by time (stable), shape (n,).
    subscribers : pandas.DataFrame
        The subscriber table (docs/domain.md), indexed by subscriber id.
    source : str
        Where it came from (``sim``, ``synthetic``, ``mix``, or the replayed path).
    """

    events: EventBatch
    subscribers: pd.DataFrame
    source: str


# ---------------------------------------------------------------------------
# pools


def rule_columns(rules: RuleSet) -> list[str]:
    """Event data columns that the rules' ``where`` predicates read, sorted."""
    return sorted({p.column for rule in rules.rules for c in rule.when for p in c.where})


def _project(batch: EventBatch, columns: list[str] | None) -> EventBatch:
    if columns is None:
        return batch
    return EventBatch(
        batch.subscriber, batch.time, batch.type,
        {name: batch.column(name) for name in columns},
    )


def behavior_stream(
    n_subscribers: int,
    n_events: int,
    *,
    seed: int,
    source: str = "sim",
    columns: list[str] | None = None,
) -> Stream:
    """At least ``n_events`` events of ``n_subscribers`` from a behavior model.

    Parameters
    ----------
    n_subscribers, n_events : int
        Subscribers (ids ``0 .. n-1``) and the number of events wanted (the pool is
        cut to exactly this many, keeping the earliest).
    seed : int
        Seed of the population and the stream.
    source : {"sim", "synthetic"}
        ``sim``: :class:`sim.world.World` organic behavior stepped a day at a time
        (no emails are sent, so no opens or clicks); ``synthetic``: the session
        generator of :mod:`experiments.synthetic` (emails, opens and clicks included).
    columns : list of str, optional
        Keep only these data columns (e.g. :func:`rule_columns`).
    """
    _positive("subscribers", n_subscribers)
    _positive("events", n_events)
    if source == "sim":
        from sim.population import Population
        from sim.world import World

        world = World(Population.generate(n_subscribers, seed=seed), seed=seed)
        subscribers = world.subscribers()
        parts: list[EventBatch] = []
        have, t = 0, world.now
        for _ in range(100_000):
            if have >= n_events:
                break
            day = _project(world.step(t, t + DAY), columns)
            t += DAY
            parts.append(day)
            have += len(day)
        events = EventBatch.concat(parts)
    elif source == "synthetic":
        from experiments.synthetic import generate_events, generate_subscribers

        rng = np.random.default_rng(seed)
        subscribers = generate_subscribers(n_subscribers, rng)
        days = max(1.0, n_events / (3.0 * n_subscribers))
        events = _project(generate_events(subscribers, rng, days=days, n_events=n_events),
                          columns)
    else:
        raise SpecError(f"source: expected one of {', '.join(SOURCES)}, got {source!r}")
    return Stream(events.sort_by_time()[:n_events], subscribers, source)


def parse_mix(text: str) -> dict[str, float]:
    """``"product_view=0.6,add_to_cart=0.1"`` -> weights per event type (summing to 1).

    >>> parse_mix("product_view=3, add_to_cart=1")
    {'product_view': 0.75, 'add_to_cart': 0.25}
    """
    out: dict[str, float] = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise SpecError(f"mix: expected TYPE=WEIGHT, got {part.strip()!r}")
        if name not in EVENT_TYPES:
            raise SpecError(
                f"mix: unknown event type {name!r}; known: {', '.join(EVENT_TYPES.names)}"
            )
        try:
            weight = float(value)
        except ValueError:
            raise SpecError(f"mix: {name}: expected a number, got {value.strip()!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise SpecError(f"mix: {name}: expected a weight >= 0, got {value.strip()!r}")
        out[name] = out.get(name, 0.0) + weight
    total = sum(out.values())
    if not out or total <= 0:
        raise SpecError(f"mix: expected at least one positive weight, got {text!r}")
    return {name: w / total for name, w in out.items()}


def mix_stream(
    n_subscribers: int,
    n_events: int,
    mix: Mapping[str, float],
    *,
    seed: int,
    events_per_subscriber_day: float = 3.0,
    columns: list[str] | None = None,
) -> Stream:
    """``n_events`` i.i.d. events of the given type ``mix``, a Poisson stream in time.

    Subscribers are drawn uniformly; events arrive (in event time) at
    ``n_subscribers * events_per_subscriber_day`` per day. Data columns are drawn per
    type: ``cart_value`` (lognormal, median 38) on cart / checkout / purchase events,
    ``time_on_page`` (lognormal, median 22 s) on product and page views, ``link_type``
    on email clicks (55 % product), ``category`` on views and cart events.
    """
    from experiments.synthetic import DEFAULT_START, generate_subscribers

    _positive("subscribers", n_subscribers)
    _positive("events", n_events)
    rng = np.random.default_rng(seed)
    subscribers = generate_subscribers(n_subscribers, rng)
    names = list(mix)
    codes = np.array([EVENT_TYPES.code(n) for n in names], np.int64)
    p = np.array([mix[n] for n in names], np.float64)
    etype = codes[rng.choice(len(codes), n_events, p=p / p.sum())]
    rate = n_subscribers * events_per_subscriber_day / DAY
    time = DEFAULT_START + np.floor(np.cumsum(rng.exponential(1.0 / rate, n_events)))
    sub = rng.integers(0, n_subscribers, n_events)

    def is_(*types: str) -> np.ndarray:
        return np.isin(etype, [EVENT_TYPES.code(t) for t in types])

    money = is_("add_to_cart", "checkout_started", "purchase_completed")
    viewed = is_("product_view", "page_view")
    clicks = is_("email_click")
    links = np.array([category_code("link_type", w) for w in ("product", "category", "other")])
    cols = {
        "cart_value": np.where(money, np.round(rng.lognormal(np.log(38.0), 0.7, n_events), 2),
                               np.nan),
        "time_on_page": np.where(viewed, np.round(rng.lognormal(np.log(22.0), 0.9, n_events), 1),
                                 np.nan),
        "link_type": np.where(clicks, links[rng.choice(3, n_events, p=[0.55, 0.25, 0.2])], -1),
        "category": np.where(viewed | money, rng.integers(0, 12, n_events), -1),
    }
    events = EventBatch(sub, time.astype(np.int64), etype, cols)
    return Stream(_project(events, columns), subscribers, "mix")


def replay_stream(
    path: str | Path,
    *,
    subscribers: pd.DataFrame | None = None,
    seed: int = 0,
    columns: list[str] | None = None,
) -> Stream:
    """A recorded log (Parquet or CSV in the :class:`EventBatch` columns), time-sorted.

    Parameters
    ----------
    path : str or Path
        ``.parquet`` / ``.pq`` or ``.csv`` with columns ``subscriber``, ``time`` (int
        seconds or aware timestamps), ``type`` (names or codes) and data columns.
    subscribers : DataFrame, optional
        The subscriber table; by default generated attributes (seeded) for the ids
        that occur in the log.
    """
    path = Path(path)
    df = _read_table(path, "replay")
    try:
        events = _project(EventBatch.from_pandas(df), columns).sort_by_time()
    except (InvalidEventError, ValueError, KeyError, TypeError) as exc:
        raise SpecError(f"replay: {path} is not an event log: {exc}") from None
    if len(events) == 0:
        raise SpecError(f"replay: {path} holds no events")
    if subscribers is None:
        from experiments.synthetic import generate_subscribers

        ids = np.unique(events.subscriber)
        subscribers = generate_subscribers(len(ids), np.random.default_rng(seed))
        subscribers.index = pd.Index(ids, name="subscriber")
    else:
        check_coverage(events, subscribers, "subscriber-table")
    return Stream(events, subscribers, str(path))


def check_table_path(path: Path, option: str) -> str:
    """``path``'s suffix (``.parquet``, ``.pq`` or ``.csv``) if it names an existing file;
    else a :class:`SpecError` naming ``option``."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise SpecError(f"{option}: expected a .parquet or .csv file, got {str(path)!r}")
    if not path.is_file():
        raise SpecError(f"{option}: no such file {str(path)!r}")
    return suffix


def _read_table(path: Path, option: str) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame; a :class:`SpecError` naming ``option`` for a
    missing, unreadable or corrupt file."""
    suffix = check_table_path(path, option)
    try:
        return pd.read_parquet(path) if suffix != ".csv" else pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{option}: cannot read {str(path)!r}: {first}") from None


def read_subscriber_table(path: str | Path) -> pd.DataFrame:
    """A subscriber table file (Parquet or CSV) indexed by its ``subscriber`` column.

    Raises :class:`SpecError` (naming ``subscriber-table``) for a missing or corrupt file,
    no ``subscriber`` column, ids that are not whole numbers, or duplicated ids.
    """
    table = _read_table(Path(path), "subscriber-table")
    if "subscriber" in table.columns:
        table = table.set_index("subscriber")
    if table.index.name != "subscriber":
        raise SpecError(f"subscriber-table: expected a 'subscriber' column, got columns "
                        f"{list(table.columns)[:8]}")
    if table.index.dtype.kind not in "iu":
        raise SpecError(f"subscriber-table: expected integer subscriber ids, got "
                        f"{table.index.dtype} (e.g. {table.index[:3].tolist()})")
    dup = table.index[table.index.duplicated()]
    if len(dup):
        raise SpecError(f"subscriber-table: expected one row per subscriber, got "
                        f"{len(dup):,} duplicated ids (e.g. {dup[:3].tolist()})")
    return table


def check_coverage(events: EventBatch, subscribers: pd.DataFrame, what: str = "subscribers"
                   ) -> None:
    """Every event's subscriber has a row in ``subscribers`` (once); else :class:`SpecError`.

    The load test checks the shards against the reference engine only for subscribers of
    the table, so events of subscribers it lacks would pass unchecked.
    """
    index = subscribers.index
    if not index.is_unique:
        dup = index[index.duplicated()]
        raise SpecError(f"{what}: expected one row per subscriber, got {len(dup):,} "
                        f"duplicated ids (e.g. {dup[:3].tolist()})")
    ids = np.unique(events.subscriber)
    lacking = ids[~np.isin(ids, index.to_numpy())]
    if len(lacking):
        raise SpecError(
            f"{what}: expected a row for every subscriber in the events, got none for "
            f"{len(lacking):,} of the {len(ids):,} (e.g. {lacking[:3].tolist()}); "
            f"their events would go unchecked"
        )


# ---------------------------------------------------------------------------
# partition


def partition(
    subscriber: np.ndarray, n_shards: int, method: str = "hash", *, ids: np.ndarray | None = None
) -> np.ndarray:
    """Shard of each subscriber id, int64 array like ``subscriber``.

    ``hash``: a 64-bit mix of the id modulo ``n_shards`` (balanced for any id set);
    ``range``: contiguous id ranges holding equal numbers of the known ``ids``
    (required; e.g. the subscriber table's index).
    """
    subscriber = np.asarray(subscriber, np.int64)
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise SpecError(f"shards: expected an int >= 1, got {n_shards!r}")
    if method == "hash":
        return partition_of(subscriber, n_shards)
    if method == "range":
        if ids is None or len(ids) == 0:
            raise SpecError("partition: method 'range' needs the known subscriber ids")
        known = np.sort(np.asarray(ids, np.int64))
        cuts = known[(np.arange(1, n_shards) * len(known)) // n_shards]
        return np.searchsorted(cuts, subscriber, side="right").astype(np.int64)
    raise SpecError(f"partition: expected 'hash' or 'range', got {method!r}")


def sample_mask(subscriber: np.ndarray, fraction: float) -> np.ndarray:
    """Deterministic subscriber sample: True for about ``fraction`` of ids (by hash)."""
    if fraction >= 1.0:
        return np.ones(len(subscriber), bool)
    h = mix64(np.asarray(subscriber, np.int64), 0xC0FFEE) >> np.uint64(11)
    return h < np.uint64(int(fraction * 2.0**53))


# ---------------------------------------------------------------------------
# the open-loop plan


@dataclass(frozen=True)
class Plan:
    """Batches per shard and when they arrive.

    Attributes
    ----------
    pools : list of EventBatch
        Shard ``j``'s share of the pool, time-sorted.
    positions : list of ndarray of int64
        Position in the whole pool of every event of ``pools[j]``.
    bounds : list of ndarray of int64, shape (k_j, 2)
        ``[lo, hi)`` rows of ``pools[j]`` forming its batches within one pass of the pool.
    batch : list of ndarray of int64, shape (m_j,)
        For each offered batch in order, the row of ``bounds[j]`` it sends.
    cycle : list of ndarray of int64, shape (m_j,)
        For each offered batch, which pass over the pool (its events are shifted by
        ``cycle * shift`` seconds).
    arrival : list of ndarray of float64, shape (m_j,)
        Seconds from the start at which each offered batch is complete (its last
        event arrived); empty in ``--max`` mode (arrival = dispatch).
    samples : list of ndarray of float64, shape (m_j, s)
        Arrival times of up to ``s`` evenly spaced events of each batch (NaN padded),
        for latency percentiles; each sample stands for ``n / s_used`` events.
    shift : int
        Event-time shift between passes over the pool, seconds (whole days).
    rate : float or None
        Offered events per second (None: as fast as possible).
    duration : float
        Seconds of offered load (the last batch's arrival, rate mode).
    """

    pools: list[EventBatch]
    positions: list[np.ndarray]
    bounds: list[np.ndarray]
    batch: list[np.ndarray]
    cycle: list[np.ndarray]
    arrival: list[np.ndarray]
    samples: list[np.ndarray]
    shift: int
    rate: float | None
    duration: float

    @property
    def n_shards(self) -> int:
        return len(self.pools)

    def sizes(self, shard: int) -> np.ndarray:
        """Events in each offered batch of ``shard``."""
        b = self.bounds[shard][self.batch[shard]]
        return b[:, 1] - b[:, 0]

    def offered_events(self) -> int:
        """Events offered by the whole plan (rate / replay mode)."""
        return int(sum(self.sizes(j).sum() for j in range(self.n_shards)))


def _cut(n: int, window_of: np.ndarray | None, max_batch: int) -> np.ndarray:
    """Batch bounds over ``n`` rows: break at window changes and every ``max_batch``."""
    if n == 0:
        return np.zeros((0, 2), np.int64)
    starts = [0]
    if window_of is not None and n > 1:
        starts = np.concatenate([[0], np.flatnonzero(np.diff(window_of) != 0) + 1]).tolist()
    out: list[tuple[int, int]] = []
    ends = [*starts[1:], n]
    for lo, hi in zip(starts, ends, strict=True):
        for a in range(lo, hi, max_batch):
            out.append((a, min(a + max_batch, hi)))
    return np.array(out, np.int64).reshape(-1, 2)


def plan(
    stream: Stream,
    shard_of: np.ndarray,
    n_shards: int,
    *,
    rate: float | None,
    duration: float,
    window: float = 0.02,
    max_batch: int = 50_000,
    speedup: float | None = None,
) -> Plan:
    """Cut the pool into per-shard batches and schedule their arrival.

    Parameters
    ----------
    stream : Stream
        The pool (time-sorted).
    shard_of : ndarray of int64, shape (n,)
        Shard of every pool event (:func:`partition` of its subscriber).
    n_shards : int
    rate : float or None
        Offered events per second; None for ``--max`` (batches of ``max_batch``).
    duration : float
        Seconds of offered load; the pool repeats as needed (rate mode). Ignored for
        a timestamp replay (``speedup``), which offers the log once.
    window : float
        Seconds of arrivals collected into one batch per shard (rate / replay mode).
    max_batch : int
        Upper bound on events per batch.
    speedup : float, optional
        Replay at recorded timestamps / ``speedup`` instead of at ``rate``.
    """
    ev = stream.events
    n = len(ev)
    if n == 0:
        raise SpecError("plan: the event pool is empty")
    if window <= 0 or max_batch < 1:
        raise SpecError(f"plan: expected window > 0 and max_batch >= 1, got {window}, {max_batch}")
    span = int(ev.time[-1]) - int(ev.time[0]) + 1
    shift = -(-span // DAY) * DAY
    win_pos: np.ndarray | None = None
    arr_pos: np.ndarray | None = None  # arrival of each pool position within one pass
    n_cycles = 1
    pool_n = n
    if speedup is not None:
        if speedup <= 0:
            raise SpecError(f"speedup: expected > 0, got {speedup}")
        arr_pos = (ev.time - ev.time[0]).astype(np.float64) / speedup
        win_pos = np.floor(arr_pos / window).astype(np.int64)
        rate = n / max(float(arr_pos[-1]), window)
    elif rate is not None:
        if rate <= 0 or duration <= 0:
            raise SpecError(f"rate and duration: expected > 0, got {rate}, {duration}")
        per_window = max(1, round(rate * window))
        pool_n = max(per_window, (n // per_window) * per_window)  # whole windows per pass
        pool_n = min(pool_n, n)
        total = max(per_window, round(rate * duration / per_window) * per_window)
        n_cycles = -(-total // pool_n)
        arr_pos = np.arange(1, pool_n + 1, dtype=np.float64) / rate
        win_pos = np.arange(pool_n, dtype=np.int64) // per_window
    pools, positions, bounds, batches, cycles, arrivals, samples = [], [], [], [], [], [], []
    for j in range(n_shards):
        pos = np.flatnonzero(shard_of[:pool_n] == j)
        pools.append(ev[pos])
        positions.append(pos)
        b = _cut(len(pos), None if win_pos is None else win_pos[pos], max_batch)
        bounds.append(b)
        if rate is None or arr_pos is None:
            k = len(b)
            batches.append(np.arange(k, dtype=np.int64))
            cycles.append(np.zeros(k, np.int64))
            arrivals.append(np.zeros(0))
            samples.append(np.zeros((0, _SAMPLE_POINTS)))
            continue
        # arrival samples of one pass
        smp = np.full((len(b), _SAMPLE_POINTS), np.nan)
        for i, (lo, hi) in enumerate(b):
            m = min(_SAMPLE_POINTS, hi - lo)
            rows = lo + ((np.arange(1, m + 1) * (hi - lo)) // m) - 1
            smp[i, :m] = arr_pos[pos[rows]]
        last = arr_pos[pos[b[:, 1] - 1]] if len(b) else np.zeros(0)
        pass_seconds = pool_n / rate if speedup is None else 0.0
        if speedup is None:
            total_events = max(1, round(rate * duration / max(1, round(rate * window))))
            total_events *= max(1, round(rate * window))
        else:
            total_events = pool_n
        k_batch, k_cycle, k_arr, k_smp = [], [], [], []
        for c in range(n_cycles):
            keep = np.ones(len(b), bool)
            if speedup is None:
                # only the part of this pass within the run's total
                keep = pos[b[:, 1] - 1] + c * pool_n < total_events
            idx = np.flatnonzero(keep)
            k_batch.append(idx)
            k_cycle.append(np.full(len(idx), c, np.int64))
            k_arr.append(last[idx] + c * pass_seconds)
            k_smp.append(smp[idx] + c * pass_seconds)
        batches.append(np.concatenate(k_batch))
        cycles.append(np.concatenate(k_cycle))
        arrivals.append(np.concatenate(k_arr))
        samples.append(np.concatenate(k_smp))
    offered = [a for a in arrivals if len(a)]
    dur = float(max(a[-1] for a in offered)) if offered else float(duration)
    return Plan(pools, positions, bounds, batches, cycles, arrivals, samples, shift,
                None if rate is None else float(rate), dur)


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise SpecError(f"{name}: expected an int >= 1, got {value!r}")
