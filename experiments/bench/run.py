"""Benchmark of the full simulation loop on the ``ray`` and ``inline`` executors.

``python -m experiments.bench run --subscribers 1000000 --days 30 --shards 2``

The run: the default preset, the three reference trigger rules (``--rules journeys``: the
shipped journey set, policies/triggers/example_journeys.yaml, and the reference-rules run
beside it for the ratio), the weekly campaign,
a 3-arm Thompson-sampling subject-line policy deciding every email (``--draws keyed``:
each email's arm keyed by its trigger id, as the trigger service draws), 15-minute ticks.
Prints wall time, events/s, simulated subscriber-days/s and peak memory per process
for Ray (``--shards``) and inline, the ray/inline speed ratio, and a scaling table of
Ray runs on 1, 2 and 4 shards (``--scaling``; ``--scaling-subscribers`` to make it
smaller). Targets (2 cores): 1M subscribers x 30 days <= 120 s on Ray with 2 shards;
Ray on 2 shards >= 1.5x faster than inline.

It also prints the CPU seconds of every process of the Ray run (shards, learner, driver)
and two bounds on the ratio: ``cpu_bound_speedup`` (inline CPU over the busiest shard's:
what idle cores for the learner and the driver would give) and
``ratio_cpu_bound_on_this_machine`` (the Ray run's total CPU spread perfectly over this
machine's cores). When the second is below a target, no scheduling can reach it.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from experiments.bench._common import emit, peak_rss_bytes

NAME = "run"


def _rules(name: str) -> Any:
    """The rule set of ``--rules``: ``reference`` or ``journeys``."""
    from policies.triggers import default_rules, example_journeys

    return example_journeys() if name == "journeys" else default_rules()


def state_bytes(config: Any, subscribers: int = 20_000, days: float = 2.0) -> dict[str, float]:
    """Bytes per subscriber of the world's and the engine's state after ``days`` of a run
    of ``config`` on ``subscribers`` (one shard): the world's per-subscriber arrays
    (population, its pending event buffer) and the engine's state arrays."""
    import dataclasses

    from actors import ShardCore

    # without the policy (no learner needed); it holds no per-subscriber state
    cfg = dataclasses.replace(config, subscribers=subscribers, days=days, policy=None)
    core = ShardCore(cfg, 0, subscribers)
    for k in range(cfg.n_ticks):
        core.step(k, None)
    world = core.world.population.nbytes / subscribers
    engine = core.engine.state_nbytes() / subscribers if core.engine is not None else 0.0
    return {"world_bytes_per_subscriber": world, "engine_bytes_per_subscriber": engine}


def _config(subscribers: int, days: float, seed: int, checkpoint_every: int = 96,
            decision_lag_ticks: int = 1, rules: str = "reference",
            draws: str = "batch") -> Any:
    from actors import PolicyConfig, SimulationConfig

    return SimulationConfig(
        seed=seed, subscribers=subscribers, days=days, tick_seconds=900,
        rules=_rules(rules),
        policy=PolicyConfig(name="thompson",
                            params={"arm_names": ["plain", "question", "dont_miss"]},
                            decides="subject_style", scope="all", draws=draws),
        checkpoint_every=checkpoint_every, decision_lag_ticks=decision_lag_ticks,
    )


class _MemoryProbe:
    """Every ``every`` ticks of an inline run: the shard's bytes by part
    (:meth:`ShardCore.memory`); keeps the most seen in total and its tick."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.best: dict[str, int] = {}
        self.tick = -1

    def __call__(self, driver: Any, tick: int) -> None:
        if tick % self.every:
            return
        parts = driver.executor.shards[0].memory()
        if sum(parts.values()) > sum(self.best.values()):
            self.best, self.tick = parts, tick


def _one(config: Any, executor: str, shards: int, ticks_per_call: int = 1,
         probe: _MemoryProbe | None = None) -> dict[str, Any]:
    from actors.driver import Driver
    from actors.shard import process_cpu_seconds

    cpu0 = process_cpu_seconds()
    t = time.perf_counter()
    result = Driver(config, executor, shards, progress=False, ticks_per_call=ticks_per_call,
                    on_tick=probe).run()
    wall = time.perf_counter() - t
    info = result.info
    # CPU seconds of the busiest shard process (inline: of this process, for this run)
    cpu = process_cpu_seconds() - cpu0 if executor == "inline" else max(info["cpu_s"])
    # every process of the run: shards, learner, driver (inline: this process)
    total = (cpu if executor == "inline" else
             sum(info["cpu_s"]) + (info["learner_cpu_s"] or 0.0) + info["driver_cpu_s"])
    return {"wall_s": wall, "events": info["events"], "emails": info["emails"],
            "events_per_s": info["events"] / wall,
            "subscriber_days_per_s": config.subscribers * float(config.days) / wall,
            "peak_rss_shard_mb": max(info["peak_rss_bytes"]) / 2**20,
            "max_shard_cpu_s": cpu, "total_cpu_s": total,
            "learner_cpu_s": info["learner_cpu_s"], "driver_cpu_s": info["driver_cpu_s"],
            "sends": float(result.metrics.query("metric == 'sends'")["value"].sum())}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.bench run",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checkpoint-every", type=int, default=96,
                    help="ticks between checkpoints of the Ray runs (0 = none)")
    ap.add_argument("--decision-lag-ticks", type=int, default=1,
                    help="ticks from an email becoming due to its delivery (changes results)")
    ap.add_argument("--ticks-per-call", type=int, default=1,
                    help="ticks per remote call on Ray (does not change results)")
    ap.add_argument("--scaling", default="1,2,4",
                    help="comma-separated shard counts for the Ray scaling table ('' = none)")
    ap.add_argument("--scaling-subscribers", type=int, default=None,
                    help="population of the scaling runs (default: --subscribers)")
    ap.add_argument("--executor", choices=("both", "inline", "ray"), default="both",
                    help="run inline, on Ray, or both (default) and compare")
    ap.add_argument("--skip-inline", action="store_true", help="only Ray runs (--executor ray)")
    ap.add_argument("--skip-ray", action="store_true",
                    help="only inline runs, no scaling (--executor inline)")
    ap.add_argument("--skip-reference", action="store_true",
                    help="with --rules journeys: not the reference-rules run for the ratio")
    ap.add_argument("--memory", action="store_true",
                    help="inline: where the shard's bytes go (world, engine, outbox, truth, "
                         "metrics, tables, logs) at the tick they peak, per subscriber")
    ap.add_argument("--log-dir", default=None,
                    help="record the event and decision logs, streamed to Parquet there "
                         "(an empty directory or pyarrow.fs URI)")
    ap.add_argument("--rules", choices=("reference", "journeys"), default="reference",
                    help="the trigger rules: the three reference rules, or the shipped "
                         "journey set (then the reference-rules run too, for the ratio)")
    ap.add_argument("--draws", choices=("batch", "keyed"), default="batch",
                    help="how the policy draws its arms (batch)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    args.skip_ray = args.skip_ray or args.executor == "inline"
    args.skip_inline = args.skip_inline or args.executor == "ray"

    if args.skip_ray and args.skip_inline:
        raise SystemExit("--skip-ray and --skip-inline: nothing to run")
    config = _config(args.subscribers, args.days, args.seed, args.checkpoint_every,
                     args.decision_lag_ticks, args.rules, args.draws)
    if args.log_dir is not None:
        import dataclasses

        config = dataclasses.replace(config, log_uri=args.log_dir, record_events=True,
                                     record_decisions=True)
    probe = _MemoryProbe(every=max(1, 6 * 3600 // config.tick_seconds)) if args.memory else None
    figures: dict[str, Any] = {
        "subscribers": args.subscribers, "days": args.days, "rules": args.rules,
        "draws": args.draws,
        "shards": args.shards, "checkpoint_every": args.checkpoint_every,
        "decision_lag_ticks": args.decision_lag_ticks, "ticks_per_call": args.ticks_per_call,
        "ticks": config.n_ticks,
    }
    ray_run: dict[str, Any] | None = None
    inline: dict[str, Any] | None = None
    if not args.skip_ray:
        from actors.ray_runtime import init_ray

        init_ray(log_to_driver=False, configure_logging=False, include_dashboard=False)
        ray_run = _one(config, "ray", args.shards, args.ticks_per_call)
        figures.update({
            "events": ray_run["events"], "emails": ray_run["emails"],
            "ray_wall_s": ray_run["wall_s"], "ray_events_per_s": ray_run["events_per_s"],
            "ray_subscriber_days_per_s": ray_run["subscriber_days_per_s"],
            "ray_peak_rss_per_shard_mb": ray_run["peak_rss_shard_mb"],
            "ray_max_shard_cpu_s": ray_run["max_shard_cpu_s"],
            "ray_learner_cpu_s": ray_run["learner_cpu_s"],
            "ray_driver_cpu_s": ray_run["driver_cpu_s"],
            "ray_total_cpu_s": ray_run["total_cpu_s"],
        })
    if not args.skip_inline:
        inline = _one(config, "inline", 1, probe=probe)
        figures.update({
            "events": inline["events"], "emails": inline["emails"],
            "inline_wall_s": inline["wall_s"], "inline_events_per_s": inline["events_per_s"],
            "inline_subscriber_days_per_s": inline["subscriber_days_per_s"],
            "inline_peak_rss_mb": inline["peak_rss_shard_mb"],
            "inline_cpu_s": inline["max_shard_cpu_s"],
        })
        if probe is not None:
            n = args.subscribers
            figures["memory_peak_tick"] = probe.tick
            for part, b in probe.best.items():
                figures[f"memory_{part}_bytes_per_subscriber"] = b / n
            figures["memory_parts_bytes_per_subscriber"] = sum(probe.best.values()) / n
            figures["inline_peak_rss_bytes_per_subscriber"] = (
                inline["peak_rss_shard_mb"] * 2**20 / n)
        if args.rules == "journeys" and not args.skip_reference:   # the ratio's run
            ref = _one(_config(args.subscribers, args.days, args.seed, args.checkpoint_every,
                               args.decision_lag_ticks, "reference", args.draws), "inline", 1)
            figures.update({
                "reference_inline_wall_s": ref["wall_s"],
                "journeys_vs_reference_wall_ratio": inline["wall_s"] / ref["wall_s"],
                "reference_emails": ref["emails"],
            })
    if not args.skip_inline and ray_run is not None:
        assert inline is not None
        if inline["events"] != ray_run["events"] or inline["sends"] != ray_run["sends"]:
            raise SystemExit("inline and ray runs differ: determinism broken")
        figures.update({
            "ray_speedup_vs_inline": inline["wall_s"] / ray_run["wall_s"],
            # what idle cores would give: inline CPU over the busiest shard's CPU
            "cpu_bound_speedup": inline["max_shard_cpu_s"] / ray_run["max_shard_cpu_s"],
            # the best ratio this machine allows for the Ray run's CPU: all its processes'
            # CPU spread perfectly over the cores (and no shard faster than its own CPU)
            "ratio_cpu_bound_on_this_machine": inline["max_shard_cpu_s"] / max(
                ray_run["max_shard_cpu_s"], ray_run["total_cpu_s"] / (os.cpu_count() or 1)),
        })
    for key, value in state_bytes(config).items():
        figures[f"{args.rules}_{key}"] = value
    lines = []
    counts = [] if args.skip_ray else [int(s) for s in args.scaling.split(",") if s.strip()]
    if counts:
        n = args.scaling_subscribers or args.subscribers
        cfg = _config(n, args.days, args.seed, args.checkpoint_every, args.decision_lag_ticks,
                      args.rules, args.draws)
        lines.append(f"scaling (ray, {n:,} subscribers x {args.days:g} days)")
        lines.append(f"{'shards':>6} {'wall_s':>9} {'events/s':>12} {'sub-days/s':>12} "
                     f"{'peak MB/shard':>14} {'max shard CPU s':>16}")
        for s in counts:
            r = (ray_run if (ray_run is not None and s == args.shards
                             and n == args.subscribers)
                 else _one(cfg, "ray", s, args.ticks_per_call))
            lines.append(f"{s:>6} {r['wall_s']:>9.1f} {r['events_per_s']:>12,.0f} "
                         f"{r['subscriber_days_per_s']:>12,.0f} {r['peak_rss_shard_mb']:>14,.0f} "
                         f"{r['max_shard_cpu_s']:>16,.1f}")
            figures[f"scaling_{s}_shards_wall_s"] = r["wall_s"]
    figures["driver_peak_rss_mb"] = peak_rss_bytes() / 2**20
    figures["load_avg_1m"] = os.getloadavg()[0]
    emit(NAME, argv, figures, as_json=args.json, record=args.record,
         title="Full simulation loop (ray vs inline)", table="\n".join(lines) or None)
    return 0
