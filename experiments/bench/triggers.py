"""Trigger-engine throughput: fast vs reference on the reference rules (default) or the
shipped journeys (``--rules journeys``: :mod:`experiments.bench._journeys`).

``python -m experiments.bench triggers --events 1000000 --subscribers 100000 [--json] [--record]``

Generates a realistic stream (:mod:`experiments.synthetic`), then in this one process:

* runs the fast engine over the whole stream in one ``process`` call (numba compile
  excluded: it is done on a warm-up engine first and reported as ``compile_s``), best of
  ``--repeat`` fresh engines;
* runs it again fed in 15-minute ticks (one ``process`` call per tick, as a shard does);
* runs the reference engine on the first ``--reference-events`` events of the same stream
  (it is ~100x slower; a time prefix keeps every subscriber and rule in play) and checks
  that the fast engine decides exactly the same on that prefix;
* reports events/s of each, the ratio, engine state bytes per subscriber and the peak
  resident memory of the process.

Timings are single-threaded (numba ``nogil`` kernels, no parallelism).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.bench._common import emit, peak_rss_bytes


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.bench triggers")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--reference-events", type=int, default=200_000,
                   help="prefix of the stream the reference engine runs on")
    p.add_argument("--repeat", type=int, default=3, help="fast runs; the best is reported")
    p.add_argument("--tick", type=int, default=900, help="seconds per tick in the streamed run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rules", choices=("reference", "journeys"), default="reference",
                   help="the reference rules, or the shipped journeys with catalog events")
    p.add_argument("--products", type=int, default=5000,
                   help="journeys: products in the generated stream")
    p.add_argument("--price-drops", type=int, default=50,
                   help="journeys: catalog price drops per day")
    p.add_argument("--new-customers", type=float, default=0.002,
                   help="journeys: share of subscribers becoming new customers per day")
    p.add_argument("--fanout", type=int, default=100_000,
                   help="journeys: subscribers interested in the product of one price drop")
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    args = _parse(argv)
    if args.rules == "journeys":
        from experiments.bench._journeys import run

        return run(args, argv)
    from experiments.synthetic import generate_events, generate_subscribers
    from policies.triggers import TriggerEngine, default_rules

    rules = default_rules()
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    subs = generate_subscribers(args.subscribers, rng)
    events = generate_events(subs, rng, n_events=args.events)
    gen_s = time.perf_counter() - t
    end = int(events.time[-1]) + 4 * 86400

    # compile (or load the numba cache) on a small warm-up run
    t = time.perf_counter()
    warm = TriggerEngine(rules, subscribers=subs.iloc[:100], engine="fast")
    warm.process(events[:1000], until=int(events.time[999]))
    compile_s = time.perf_counter() - t

    best = float("inf")
    engine = warm
    decisions = None
    for _ in range(max(1, args.repeat)):
        engine = TriggerEngine(rules, subscribers=subs, engine="fast")
        t = time.perf_counter()
        decisions = engine.process(events, until=end)
        best = min(best, time.perf_counter() - t)
    assert decisions is not None
    fast_eps = len(events) / best
    state_bytes = engine.state_nbytes()
    stats = engine.stats()

    # streamed: one call per tick
    streamed = TriggerEngine(rules, subscribers=subs, engine="fast")
    ticks = np.arange(int(events.time[0]) + args.tick, end + args.tick, args.tick)
    bounds = np.searchsorted(events.time, ticks, side="right")
    t = time.perf_counter()
    lo = 0
    n_streamed = 0
    for now, hi in zip(ticks.tolist(), bounds.tolist(), strict=True):
        n_streamed += len(streamed.process(events[lo:hi], until=now))
        lo = hi
    stream_s = time.perf_counter() - t
    stream_eps = len(events) / stream_s

    # reference on a prefix, and the fast engine on the same prefix must agree
    n_ref = min(args.reference_events, len(events))
    prefix = events[:n_ref]
    until = int(prefix.time[-1])
    ref = TriggerEngine(rules, subscribers=subs, engine="reference")
    t = time.perf_counter()
    ref_decisions = ref.process(prefix, until=until)
    ref_s = time.perf_counter() - t
    ref_eps = n_ref / ref_s
    check = TriggerEngine(rules, subscribers=subs, engine="fast")
    agree = bool(check.process(prefix, until=until).equals(ref_decisions)) and bool(
        check.stats().equals(ref.stats())
    )

    table = stats.to_string()
    figures = {
        "events": len(events),
        "subscribers": args.subscribers,
        "fast_events_per_s": fast_eps,
        "fast_wall_s": best,
        "fast_streamed_events_per_s": stream_eps,
        "ticks": len(ticks),
        "reference_events": n_ref,
        "reference_events_per_s": ref_eps,
        "speedup": fast_eps / ref_eps,
        "state_bytes_per_subscriber": state_bytes / args.subscribers,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "decisions": len(decisions),
        "streamed_decisions": n_streamed,
        "engines_agree_on_prefix": agree,
        "compile_s": compile_s,
        "generate_s": gen_s,
    }
    emit("triggers", argv, figures, as_json=args.json, record=args.record,
         title="triggers (fast vs reference engine, reference rules)", table=table)
    return 0 if agree and n_streamed == len(decisions) else 1
