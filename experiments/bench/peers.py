"""``python -m experiments.bench peers``: the same toy model here and in Mesa 3.

Toy model (from the simulation issue): ``--subscribers`` subscribers (100,000), hourly
steps for ``--hours`` hours (one week), each subscriber-hour opens an email with
P = 0.02 and views a product with P = 0.01, emitted as events.

* ``triggerlab``: this project's engine primitives -- keyed Philox uniforms per
  (seed, subscriber block, hour, purpose) (:meth:`sim.rng.KeyedRandom.dense_uniforms`,
  the bulk draws the simulator uses, independent of shard boundaries) and a columnar
  :class:`~policies.events.EventBatch` per step;
* ``numpy``: the same vectorized loop with a plain ``numpy.random.Generator`` (no
  keying), the upper bound of a vectorized numpy model;
* ``mesa``: Mesa 3, one agent per subscriber whose ``step`` draws from the model's
  random generator and appends its events, ``model.agents.do("step")`` each hour. It is
  run on ``--mesa-subscribers`` x ``--mesa-hours`` (smaller) and reported per
  subscriber-hour, i.e. scaled linearly (Mesa's cost is linear in agents x steps).

Prints subscriber-hours per second (wall and per CPU-second of this process, the
figure that does not depend on other load) for each and the ratio triggerlab / mesa.

``--model shop`` compares the full shop instead (target: >= 50x per
subscriber-hour): this project's :class:`sim.World` (population, ``world.step`` per
``--tick`` s, the daily campaign to every subscribed subscriber at ``--campaign-hour``
UTC through ``world.send``; organic sessions, funnel, email response and state
updates) against :class:`experiments.bench.mesa_shop.ShopModel`, an independent Mesa 3
model of the same behavior (one agent per subscriber stepped hourly, its own state and
the model's random numbers, the same population and campaign). Both times include
generating the population and building the model. The Mesa run (``--mesa-subscribers``
x ``--mesa-hours``, by default 2,000 x ``--hours``) is scaled per subscriber-hour. The event
rates per subscriber-day of both are printed side by side, on the same subscribers
(the world's first ``--mesa-subscribers``) over the same first ``--mesa-hours``, with the
z-score of each difference (the check that it is the same shop; its full form is
tests/experiments/test_mesa_shop.py), next to the world's rates over its whole run.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from experiments.bench._common import emit

P_OPEN = 0.02
P_VIEW = 0.01
T0 = 1_704_067_200


def run_triggerlab(n: int, hours: int, seed: int) -> tuple[float, float, int]:
    from policies.event_schema import EVENT_TYPES
    from policies.events import EventBatch
    from sim.rng import KeyedRandom

    rng = KeyedRandom(seed)
    ids = np.arange(n, dtype=np.int64)
    open_code, view_code = EVENT_TYPES.code("email_open"), EVENT_TYPES.code("product_view")
    events = 0
    t, c = time.perf_counter(), time.process_time()
    for h in range(hours):
        u = rng.dense_uniforms(0, n, h, purpose=50, k=2)
        o = np.flatnonzero(u[:, 0] < P_OPEN)
        v = np.flatnonzero(u[:, 1] < P_VIEW)
        now = T0 + 3600 * (h + 1)
        batch = EventBatch(
            np.concatenate([ids[o], ids[v]]),
            np.full(len(o) + len(v), now, np.int64),
            np.concatenate([np.full(len(o), open_code), np.full(len(v), view_code)]),
        )
        events += len(batch)
    return time.perf_counter() - t, time.process_time() - c, events


def run_numpy(n: int, hours: int, seed: int) -> tuple[float, float, int]:
    g = np.random.default_rng(seed)
    events = 0
    t, c = time.perf_counter(), time.process_time()
    for _ in range(hours):
        u = g.random((2, n))
        o = np.flatnonzero(u[0] < P_OPEN)
        v = np.flatnonzero(u[1] < P_VIEW)
        events += len(o) + len(v)
    return time.perf_counter() - t, time.process_time() - c, events


def run_mesa(n: int, hours: int, seed: int) -> tuple[float, float, int]:
    import mesa

    class Subscriber(mesa.Agent):  # type: ignore[misc, unused-ignore]  # Any without mesa
        def step(self) -> None:
            model: Any = self.model
            r = model.random
            if r.random() < P_OPEN:
                model.log.append((self.unique_id, model.now, "email_open"))
            if r.random() < P_VIEW:
                model.log.append((self.unique_id, model.now, "product_view"))

    class Toy(mesa.Model):  # type: ignore[misc, unused-ignore]  # Any without mesa
        def __init__(self, n: int, seed: int) -> None:
            super().__init__(seed=seed)
            self.now = T0
            self.log: list[tuple[int, int, str]] = []
            for _ in range(n):
                Subscriber(self)

        def step(self) -> None:
            self.now += 3600
            self.agents.do("step")

    model = Toy(n, seed)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(hours):
        model.step()
    return time.perf_counter() - t, time.process_time() - c, len(model.log)


def run_shop(args: argparse.Namespace, argv: list[str]) -> int:
    """``--model shop``: the world vs the Mesa shop model, per subscriber-hour."""
    from experiments.bench.mesa_shop import (
        METRICS,
        Tally,
        compare,
        format_table,
        mesa_tally,
        run_mesa,
        run_world,
        warm_world,
    )

    n, h = args.subscribers, args.hours
    mn = 2_000 if args.mesa_subscribers is None else args.mesa_subscribers
    mh = h if args.mesa_hours is None else args.mesa_hours
    if mn > n or mh > h:
        raise SystemExit("peers --model shop: expected --mesa-subscribers <= --subscribers "
                         "and --mesa-hours <= --hours (the rates are compared on the same "
                         "subscribers and hours)")
    same = Tally(0, mn)
    warmup_cpu = warm_world(seed=args.seed, preset=args.preset, tick=args.tick,
                            campaign_hour=args.campaign_hour)
    world = run_world(n, seed=args.seed, hours=h, preset=args.preset, tick=args.tick,
                      campaign_hour=args.campaign_hour, tally=same, tally_hours=mh)
    mesa_run = run_mesa(mn, seed=args.seed, hours=mh, preset=args.preset,
                        campaign_hour=args.campaign_hour)
    model, mesa_s, mesa_cpu = mesa_run.model, mesa_run.seconds, mesa_run.cpu_seconds
    table = compare(same, mesa_tally(model, mn), mh / 24)
    table["triggerlab_all"] = [world.totals[m] / (n * h / 24) for m in METRICS]
    ours, ours_c = n * h / world.seconds, n * h / world.cpu_seconds
    mesa_rate, mesa_c = mn * mh / mesa_s, mn * mh / mesa_cpu
    ratio, ratio_c = ours / mesa_rate, ours_c / mesa_c
    world_events = sum(world.totals[m] for m in METRICS[:9])
    figures: dict[str, Any] = {
        "shop_model": f"preset {args.preset}, daily campaign at {args.campaign_hour}:00 UTC "
                      "to every subscribed subscriber, full behavior and response model",
        "triggerlab_run": f"{n:,} subscribers x {h} h, tick {args.tick} s",
        "triggerlab_s": world.seconds,
        "triggerlab_cpu_s": world.cpu_seconds,
        "triggerlab_setup_s": world.setup_seconds,
        "triggerlab_warmup_cpu_s": warmup_cpu,
        "triggerlab_timing": "after a warm-up world (200 x 48 h, not timed): one-time "
                             "process set-up (numba) excluded",
        "triggerlab_subscriber_hours_per_s": ours,
        "triggerlab_subscriber_hours_per_cpu_s": ours_c,
        "triggerlab_events_per_subscriber_hour": world_events / (n * h),
        "triggerlab_emails": world.emails,
        "mesa_run": f"{mn:,} agents x {mh} h, hourly steps (scaled per subscriber-hour)",
        "mesa_s": mesa_s,
        "mesa_cpu_s": mesa_cpu,
        "mesa_setup_s": mesa_run.setup_seconds,
        "mesa_subscriber_hours_per_s": mesa_rate,
        "mesa_subscriber_hours_per_cpu_s": mesa_c,
        "mesa_events_per_subscriber_hour": len(model.log) / (mn * mh),
        "ratio_triggerlab_over_mesa": ratio,
        "ratio_triggerlab_over_mesa_cpu": ratio_c,
        "max_abs_z_same_subscribers": float(table["z"].abs().max()),
        "target": ">= 50x per subscriber-hour",
        "target_met_wall": "yes" if ratio >= 50 else "no",
        "target_met_cpu": "yes" if ratio_c >= 50 else "no",
    }
    for m in METRICS:
        figures[f"{m}_per_subscriber_day_triggerlab"] = float(table.loc[m, "triggerlab"])
        figures[f"{m}_per_subscriber_day_mesa"] = float(table.loc[m, "mesa"])
    text = (f"rates per subscriber-day, subscribers [0, {mn:,}) over the first {mh} h in "
            f"both (z: difference / its standard error); triggerlab_all: the world's whole "
            f"run\n" + format_table(table))
    emit("peers", ["peers", *argv][1:], figures, as_json=args.json, record=args.record,
         title="peers: the shop (full behavior and response), this project vs Mesa 3",
         table=text)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench peers")
    parser.add_argument("--model", choices=("toy", "shop"), default="toy",
                        help="toy: P(open), P(view) per subscriber-hour; shop: sim.World "
                             "vs experiments.bench.mesa_shop")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--mesa-subscribers", type=int, default=None,
                        help="default 20,000 (toy), 2,000 (shop)")
    parser.add_argument("--mesa-hours", type=int, default=None,
                        help="default 24 (toy), --hours (shop)")
    parser.add_argument("--tick", type=int, default=900, help="shop: the world's tick, s")
    parser.add_argument("--preset", default="retail", help="shop: population preset")
    parser.add_argument("--campaign-hour", type=int, default=15,
                        help="shop: UTC hour of the daily campaign")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    if args.model == "shop":
        return run_shop(args, argv)

    n, h = args.subscribers, args.hours
    ours_s, ours_cpu, ours_events = run_triggerlab(n, h, args.seed)
    np_s, np_cpu, _ = run_numpy(n, h, args.seed)
    mn = 20_000 if args.mesa_subscribers is None else args.mesa_subscribers
    mh = 24 if args.mesa_hours is None else args.mesa_hours
    mesa_s, mesa_cpu, mesa_events = run_mesa(mn, mh, args.seed)
    ours, ours_c = n * h / ours_s, n * h / ours_cpu
    mesa_rate, mesa_c = mn * mh / mesa_s, mn * mh / mesa_cpu
    figures = {
        "toy_model": f"{n:,} subscribers x {h} h, P(open)={P_OPEN}, P(view)={P_VIEW}",
        "triggerlab_subscriber_hours_per_s": ours,
        "triggerlab_subscriber_hours_per_cpu_s": ours_c,
        "triggerlab_events_per_subscriber_hour": ours_events / (n * h),
        "numpy_generator_subscriber_hours_per_s": n * h / np_s,
        "numpy_generator_subscriber_hours_per_cpu_s": n * h / np_cpu,
        "mesa_run": f"{mn:,} agents x {mh} h (scaled per subscriber-hour)",
        "mesa_subscriber_hours_per_s": mesa_rate,
        "mesa_subscriber_hours_per_cpu_s": mesa_c,
        "mesa_events_per_subscriber_hour": mesa_events / (mn * mh),
        "expected_events_per_subscriber_hour": P_OPEN + P_VIEW,
        "ratio_triggerlab_over_mesa": ours / mesa_rate,
        "ratio_triggerlab_over_mesa_cpu": ours_c / mesa_c,
    }
    emit("peers", ["peers", *argv][1:], figures, as_json=args.json, record=args.record,
         title="peers: toy email model, this project vs Mesa 3")
    return 0
