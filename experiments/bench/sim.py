"""``python -m experiments.bench sim``: the simulated world in one process, no Ray.

Generates a population, then steps one :class:`~sim.World` over ``--days`` days of
``--tick``-second ticks with a weekly campaign to every subscribed subscriber and a
daily cart reminder (kind ``cart_abandonment``) to subscribers whose cart was
abandoned 24-48 h earlier (a state scan standing in for the trigger engine, which
has its own benchmark). Prints simulated subscriber-days per second, events per
second, pickled state bytes per subscriber and peak memory. The machine is shared, so
the rate is also given per CPU second of this process (``time.process_time``), the
single-core figure that does not depend on what else runs.
"""

from __future__ import annotations

import argparse
import pickle
import time

from experiments.bench._common import emit, peak_rss_bytes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench sim")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tick", type=int, default=900, help="tick length, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)

    from sim import DAY, EmailBatch, Population, SimClock, World

    n = args.subscribers
    t = time.perf_counter()
    pop = Population.generate(n, seed=args.seed)
    gen_s = time.perf_counter() - t
    world = World(pop, seed=args.seed)
    clock = SimClock(start=world.now, step=args.tick)
    end = world.now + args.days * DAY
    events = emails = 0
    state_bytes = 0
    send_s = 0.0
    t = time.perf_counter()
    cpu = time.process_time()
    while clock.now < end:
        now = clock.now
        if now % DAY == 15 * 3600:
            ts = time.perf_counter()
            day = (now - world.population.time) // DAY
            p = world.population
            batch = []
            if day % 7 == 1:
                batch.append(EmailBatch.make(p.ids[p.subscribed], now, campaign=1 + day // 7))
            age = now - p.cart_time
            stale = p.subscribed & (p.cart_value > 0) & (age > DAY) & (age <= 2 * DAY)
            if stale.any():
                batch.append(EmailBatch.make(p.ids[stale], now, campaign=1000 + day,
                                             kind="cart_abandonment"))
            for b in batch:
                world.send(b)
                emails += len(b)
            send_s += time.perf_counter() - ts
        if now % (7 * DAY) == 0:
            state_bytes = max(state_bytes, len(pickle.dumps(world, protocol=5)))
        events += len(world.step(*clock.advance()))
    loop_s = time.perf_counter() - t
    cpu_s = time.process_time() - cpu
    state_bytes = max(state_bytes, len(pickle.dumps(world, protocol=5)))
    figures = {
        "subscribers": n,
        "days": args.days,
        "tick_s": args.tick,
        "population_s": round(gen_s, 2),
        "simulate_s": round(loop_s, 2),
        "send_s": round(send_s, 2),
        "simulate_cpu_s": round(cpu_s, 2),
        "subscriber_days_per_s": float(n * args.days / loop_s),
        "subscriber_days_per_cpu_s": float(n * args.days / cpu_s),
        "subscriber_days_per_s_incl_population": float(n * args.days / (loop_s + gen_s)),
        "events": events,
        "events_per_s": float(events / loop_s),
        "emails": emails,
        "state_bytes_per_subscriber": round(state_bytes / n, 1),
        "population_bytes_per_subscriber": round(pop.nbytes / n, 1),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
        "targets": ">= 1e6 subscriber-days/s, <= 300 bytes/subscriber",
    }
    small = state_bytes / n <= 300
    figures["targets_met_wall"] = "yes" if small and n * args.days / loop_s >= 1e6 else "no"
    figures["targets_met_cpu"] = "yes" if small and n * args.days / cpu_s >= 1e6 else "no"
    emit("sim", ["sim", *argv][1:], figures, as_json=args.json, record=args.record,
         title="sim: population + behavior + response, one process")
    return 0
