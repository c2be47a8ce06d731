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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench peers")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--mesa-subscribers", type=int, default=20_000)
    parser.add_argument("--mesa-hours", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)

    n, h = args.subscribers, args.hours
    ours_s, ours_cpu, ours_events = run_triggerlab(n, h, args.seed)
    np_s, np_cpu, _ = run_numpy(n, h, args.seed)
    mn, mh = args.mesa_subscribers, args.mesa_hours
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
