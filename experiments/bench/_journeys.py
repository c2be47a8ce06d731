"""``python -m experiments.bench triggers --rules journeys``: the shipped journey set.

Runs ``policies/triggers/example_journeys.yaml`` (a cart series with a wait-until and a
branch, a win-back on 30 days of inactivity, a price-drop alert fanned out from catalog
events, a welcome series on an attribute change) over generated streams with product
ids, catalog price drops and daily attribute changes:

* stream ``base``: the generated week as it comes (:mod:`experiments.synthetic`);
* stream ``dense``: the same events with enough of those that touch no rule's condition
  left out that at least half do.

An event *touches a condition* when its type and ``where`` match what some rule reads
on its path to a decision: an entry condition (``when``), ``exclude``, an ``exit``
criterion or a ``wait_until`` event. Events that only move an inactivity clock or the
catalog audience memory (views) are counted apart (``activity_share``). Both shares are
printed for both streams.

Each stream is run by the fast engine one day per ``process`` call (the day's attribute
changes first, with ``update_subscribers(changed, at=day start)``, the day's catalog
events beside its events), best of ``--repeat`` fresh engines; the reference engine runs
a time prefix of ``base`` (``--reference-events``) and the fast engine must decide
exactly the same on it. Then: engine state bytes per subscriber (journeys loaded, and
the reference rules alone), and the time to decide one price drop fanned out to
``--fanout`` subscribers who viewed the product.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

from experiments.bench._common import emit, peak_rss_bytes

DAY = 86400


def _subscribers(n: int, rng: np.random.Generator, start: int) -> pd.DataFrame:
    """The generated table plus ``last_engaged_at`` (what the win-back's clock starts
    from for a subscriber with no activity in the stream)."""
    from experiments.synthetic import generate_subscribers

    subs = generate_subscribers(n, rng, now=start)
    days = subs["days_since_engagement"].to_numpy()
    subs["last_engaged_at"] = (start - np.round(days * DAY)).astype(np.int64)
    return subs


def _catalog(events: Any, rng: np.random.Generator, per_day: int) -> Any:
    """``per_day`` price drops a day on products that were viewed (5 to 30 % off)."""
    from policies.triggers import CatalogBatch

    viewed = events.columns["product_id"]
    viewed = viewed[viewed >= 0]
    start, end = int(events.time[0]), int(events.time[-1])
    n = max(1, per_day * max(1, (end - start) // DAY))
    old = np.round(rng.lognormal(np.log(30.0), 0.6, n), 2)
    return CatalogBatch(
        time=np.sort(rng.integers(start, end + 1, n)).astype(np.int64),
        type=np.zeros(n, np.int64),  # price_drop
        product_id=rng.choice(viewed, n).astype(np.int64),
        old_price=old,
        new_price=np.round(old * (1 - rng.uniform(0.05, 0.3, n)), 2),
    )


def _changes(subs: pd.DataFrame, rng: np.random.Generator, days: int,
             share: float) -> list[pd.DataFrame]:
    """Per day, the rows of ``share`` of the prospects who become new customers."""
    stage = subs["lifecycle_stage"].to_numpy()
    pool = np.flatnonzero(stage == "prospect")
    rng.shuffle(pool)
    k = int(len(subs) * share)
    out = []
    for d in range(days):
        rows = subs.iloc[np.sort(pool[d * k:(d + 1) * k])].copy()
        rows["lifecycle_stage"] = "new_customer"
        out.append(rows)
    return out


def _masks(ruleset: Any, events: Any) -> tuple[np.ndarray, np.ndarray]:
    """(touches a condition, only moves an inactivity clock or the audience memory)."""
    from policies.event_schema import EVENT_TYPES
    from policies.triggers._fast import _event_mask
    from policies.triggers.journeys import CatalogEntry, Inactivity

    def of(event: str, where: tuple = ()) -> np.ndarray:
        m = events.type == EVENT_TYPES.code(event)
        for p in where:
            m &= _event_mask(events, p)
        return m

    touch = np.zeros(len(events), bool)
    activity = np.zeros(len(events), bool)
    for rule in ruleset.rules:
        for cond in rule.when:
            touch |= of(cond.event, cond.where)
        for name in rule.exclude:
            touch |= of(name)
        j = rule.journey
        if j is None:
            continue
        for ex in j.exits:
            touch |= of(ex.event, ex.where)
        for name, where in _wait_until_events(j.steps):
            touch |= of(name, where)
        if isinstance(j.entry, Inactivity):
            for name in j.entry.events:
                activity |= of(name)
        if isinstance(j.entry, CatalogEntry):
            for name in ("product_view", "add_to_cart", "purchase_completed"):
                activity |= of(name)
    return touch, activity & ~touch


def _wait_until_events(steps: Any) -> list[tuple[str, tuple]]:
    from policies.triggers.journeys import Branch, Split, WaitUntil

    out: list[tuple[str, tuple]] = []
    for step in steps:
        if isinstance(step, WaitUntil):
            out += [(e, step.where) for e in step.events]
            out += _wait_until_events(step.happened) + _wait_until_events(step.timed_out)
        elif isinstance(step, Branch):
            for case in step.cases:
                out += _wait_until_events(case.then)
        elif isinstance(step, Split):
            for path in step.paths:
                out += _wait_until_events(path.steps)
    return out


def _dense(events: Any, touch: np.ndarray, rng: np.random.Generator,
           target: float = 0.55) -> Any:
    """``events`` with others left out at random until ``target`` of them touch."""
    n_touch = int(touch.sum())
    keep_other = min(int(n_touch * (1 - target) / target), int((~touch).sum()))
    other = np.flatnonzero(~touch)
    keep = np.sort(np.concatenate([np.flatnonzero(touch),
                                   rng.choice(other, keep_other, replace=False)]))
    return events[keep]


def _feed_days(engine: Any, events: Any, catalog: Any, changes: list[pd.DataFrame],
               start: int, cut: int | None = None) -> list[Any]:
    """Feed one day per call (the day's attribute changes first, at its start), up to
    ``cut`` (inclusive) if given; the decisions of every call."""
    out = []
    for d, changed in enumerate(changes):
        lo = start + d * DAY
        if cut is not None and lo > cut:
            break
        end = lo + DAY - 1 if cut is None else min(lo + DAY - 1, cut)
        if len(changed):
            out.append(engine.update_subscribers(changed, at=lo))
        a, b = np.searchsorted(events.time, [lo, end + 1], side="left")
        c0, c1 = np.searchsorted(catalog.time, [lo, end + 1], side="left")
        out.append(engine.process(events[a:b], until=end, catalog=catalog[c0:c1]))
    return out


def _run_days(engine: Any, events: Any, catalog: Any, changes: list[pd.DataFrame],
              start: int) -> tuple[int, float]:
    """:func:`_feed_days` over the whole stream; (decisions, seconds)."""
    t0 = time.perf_counter()
    parts = _feed_days(engine, events, catalog, changes, start)
    return sum(len(p) for p in parts), time.perf_counter() - t0


def _fanout(rules: Any, n: int, seed: int, start: int) -> tuple[float, int]:
    """Seconds to decide one price drop of a product ``n`` subscribers viewed in the
    last 13 days, and how many entered."""
    from policies.event_schema import EVENT_TYPES
    from policies.events import EventBatch
    from policies.triggers import CatalogBatch, TriggerEngine

    rng = np.random.default_rng([seed, 1])
    subs = _subscribers(n, rng, start)
    t = np.sort(rng.integers(start, start + 13 * DAY, n)).astype(np.int64)
    views = EventBatch(subs.index.to_numpy(np.int64)[rng.permutation(n)], t,
                       np.full(n, EVENT_TYPES.code("product_view"), np.int64),
                       {"product_id": np.full(n, 7, np.int64)})
    engine = TriggerEngine(rules, subscribers=subs, engine="fast")
    at = start + 13 * DAY + 3600
    engine.process(views, until=at - 1)
    drop = CatalogBatch(time=np.array([at], np.int64), type=np.zeros(1, np.int64),
                        product_id=np.array([7], np.int64), old_price=np.array([50.0]),
                        new_price=np.array([40.0]))
    t0 = time.perf_counter()
    engine.process(EventBatch.empty(), until=at, catalog=drop)
    seconds = time.perf_counter() - t0
    stats = engine.stats()
    return seconds, int(stats.loc["price_drop_alert", "entered"])


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from experiments.synthetic import DEFAULT_START, generate_events
    from policies.triggers import Decisions, TriggerEngine, default_rules, example_journeys

    rules = example_journeys()
    rng = np.random.default_rng(args.seed)
    start = DEFAULT_START
    days = 7
    t = time.perf_counter()
    subs = _subscribers(args.subscribers, rng, start)
    base = generate_events(subs, rng, n_events=args.events, days=days, start=start,
                           products=args.products)
    catalog = _catalog(base, rng, args.price_drops)
    changes = _changes(subs, rng, days, args.new_customers)
    touch, activity = _masks(rules, base)
    dense = _dense(base, touch, rng)
    dense_touch, dense_activity = _masks(rules, dense)
    gen_s = time.perf_counter() - t

    t = time.perf_counter()  # compile (or load the numba cache) on a small warm-up run
    warm = TriggerEngine(rules, subscribers=subs.iloc[:100], engine="fast")
    warm.process(base[:1000], until=int(base.time[999]))
    compile_s = time.perf_counter() - t

    figures: dict[str, Any] = {"events": len(base), "subscribers": args.subscribers,
                               "catalog_events": len(catalog),
                               "attribute_changes": sum(len(c) for c in changes)}
    for name, events, tmask, amask in (("base", base, touch, activity),
                                       ("dense", dense, dense_touch, dense_activity)):
        best, n_dec = float("inf"), 0
        for _ in range(max(1, args.repeat)):
            engine = TriggerEngine(rules, subscribers=subs, engine="fast")
            n_dec, seconds = _run_days(engine, events, catalog, changes, start)
            best = min(best, seconds)
        figures[f"{name}_events"] = len(events)
        figures[f"{name}_touch_share"] = float(tmask.mean())
        figures[f"{name}_activity_share"] = float(amask.mean())
        figures[f"{name}_fast_events_per_s"] = len(events) / best
        figures[f"{name}_decisions"] = n_dec
        if name == "base":
            figures["state_bytes_per_subscriber"] = engine.state_nbytes() / args.subscribers
            table = engine.stats().to_string()

    # reference on a time prefix of base; the fast engine must agree on it
    n_ref = min(args.reference_events, len(base))
    prefix = base[:n_ref]
    cut = int(prefix.time[-1])
    engines: dict[str, Any] = {}
    decided: dict[str, Any] = {}
    wall: dict[str, float] = {}
    for kind in ("reference", "fast"):
        engines[kind] = TriggerEngine(rules, subscribers=subs, engine=kind)
        t0 = time.perf_counter()
        parts = _feed_days(engines[kind], prefix, catalog, changes, start, cut)
        wall[kind] = time.perf_counter() - t0
        decided[kind] = Decisions.concat(parts).sorted()
    agree = bool(decided["fast"].equals(decided["reference"])) and bool(
        engines["fast"].stats().equals(engines["reference"].stats()))
    ref_eps = n_ref / wall["reference"]
    figures["reference_events"] = n_ref
    figures["reference_events_per_s"] = ref_eps
    figures["speedup"] = figures["base_fast_events_per_s"] / ref_eps
    figures["engines_agree_on_prefix"] = agree
    figures["prefix_decisions"] = len(decided["reference"])

    plain = TriggerEngine(default_rules(), subscribers=subs, engine="fast")
    plain.process(base, until=int(base.time[-1]))
    figures["reference_rules_state_bytes_per_subscriber"] = (
        plain.state_nbytes() / args.subscribers)
    fan_s, fan_n = _fanout(rules, args.fanout, args.seed, start)
    figures["fanout_subscribers"] = args.fanout
    figures["fanout_entered"] = fan_n
    figures["fanout_s"] = fan_s
    figures["peak_rss_mb"] = peak_rss_bytes() / 2**20
    figures["compile_s"] = compile_s
    figures["generate_s"] = gen_s
    emit("triggers", argv, figures, as_json=args.json, record=args.record,
         title="triggers (fast vs reference engine, shipped journeys)", table=table)
    return 0 if agree and fan_n == args.fanout else 1
