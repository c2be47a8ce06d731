"""``triggerlab trigger-demo``: trigger rules over a generated event stream, no simulator.

Generates a subscriber table and a realistic event stream (:mod:`experiments.synthetic`),
feeds it to the trigger engine one hour at a time as a production runtime would, reports
a small share of sends as failed (to exercise retries), and prints what happened per
rule. Try your own rule file with ``--rules my_rules.yaml``. (This was the interim
``triggerlab demo`` before the simulator existed.)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

#: The engine counters printed (the stream is fed in order: nothing is ever late here).
COLUMNS = ("entered", "fired", "cancelled", "expired", "suppressed", "pending", "failed",
           "retried")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscribers", type=int, default=5000, help="population size")
    parser.add_argument("--days", type=float, default=7.0, help="length of the stream, days")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--engine", choices=("fast", "reference"), default="fast", help="engine implementation"
    )
    parser.add_argument("--rules", default=None, help="YAML rules file (default: reference rules)")
    parser.add_argument(
        "--failure-rate", type=float, default=0.02, help="share of sends reported as failed"
    )


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    stats: Any  # pandas.DataFrame, per rule
    decisions: Any  # policies.triggers.Decisions
    n_events: int
    n_subscribers: int
    pending: int
    failures_reported: int
    seconds: float


def run_demo(
    subscribers: int = 5000,
    days: float = 7.0,
    seed: int = 0,
    engine: str = "fast",
    rules: Any = None,
    failure_rate: float = 0.02,
) -> DemoResult:
    """Generate the population and stream, run the engine hour by hour, return results."""
    import time

    import numpy as np

    from experiments.synthetic import DEFAULT_START, generate_events, generate_subscribers
    from policies.triggers import Decisions, TriggerEngine, default_rules, load_rules

    if subscribers <= 0 or days <= 0:
        raise ValueError(f"--subscribers and --days must be positive, got {subscribers}, {days}")
    if not 0 <= failure_rate < 1:
        raise ValueError(f"--failure-rate: expected a share in [0, 1), got {failure_rate}")
    rng = np.random.default_rng(seed)
    subs = generate_subscribers(subscribers, rng)
    stream = generate_events(subs, rng, days=days)
    ruleset = default_rules() if rules is None else load_rules(rules)
    started = time.perf_counter()
    eng = TriggerEngine(ruleset, subscribers=subs, engine=engine)
    out = []
    first = int(stream.time[0]) if len(stream) else DEFAULT_START
    end = max(DEFAULT_START + int(days * 86400), int(stream.time[-1]) if len(stream) else 0)
    hours = np.arange(first - first % 3600 + 3600, end + 3600, 3600)  # hourly ticks
    bounds = np.searchsorted(stream.time, hours, side="right")
    lo = 0
    n_failed = 0
    for now, hi in zip(hours.tolist(), bounds.tolist(), strict=True):
        d = eng.process(stream[lo:hi], until=now)  # this hour's events, then what is due
        lo = hi
        out.append(d)
        fires = d.of_kind("fire")
        if len(fires) and failure_rate > 0:
            # only the latest send of a (subscriber, rule) can be reported failed
            key = fires.subscriber * len(ruleset.rules) + fires.rule
            _, last = np.unique(key[::-1], return_index=True)
            latest = fires[np.sort(len(fires) - 1 - last)]
            failed = latest[rng.random(len(latest)) < failure_rate]
            if len(failed):
                n_failed += len(failed)
                out.append(eng.report_failures(failed, now))
    decisions = Decisions.concat(out, ruleset.ids)
    seconds = time.perf_counter() - started
    stats = eng.stats()
    pending = eng.n_pending()
    return DemoResult(stats, decisions, len(stream), subscribers, pending, n_failed, seconds)


def run(args: argparse.Namespace) -> int:
    result = run_demo(
        subscribers=args.subscribers, days=args.days, seed=args.seed, engine=args.engine,
        rules=args.rules, failure_rate=args.failure_rate,
    )
    print(
        f"triggerlab demo: {result.n_subscribers:,} subscribers, {result.n_events:,} events "
        f"over {args.days:g} days (seed {args.seed}), {args.engine} engine, "
        f"{args.failure_rate:.0%} of sends reported failed"
    )
    table = result.stats[list(COLUMNS)].copy()
    table.loc["total"] = table.sum()
    print()
    print(table.to_string())
    total = table.loc["total"]
    closed = total[["fired", "cancelled", "expired", "suppressed", "pending"]].sum()
    print(
        f"entered + failed = {total['entered'] + total['failed']:,} = fired + cancelled + "
        f"expired + suppressed + pending = {closed:,}"
    )
    print()
    print(
        f"{len(result.decisions):,} decisions; {result.pending:,} triggers still pending at "
        f"the end; engine time {result.seconds:.2f} s"
    )
    return 0
