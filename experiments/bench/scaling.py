"""Scaling model of the simulation loop on Ray, fitted here and checked against real runs.

``python -m experiments.bench scaling [--subscribers 200000] [--days 7] [--shards 1,2,4]``

1. Calibration, no Ray: one :class:`~actors.shard.ShardCore` and the
   :class:`~actors.learner.LearnerCore` stepped tick by tick in this process at two sizes
   (``--calibration-subscribers``), timing each shard tick and each learner tick (CPU s):
   the shard's fixed and per-subscriber cost per tick, its build cost, the learner's cost
   per tick and per email, the emails per subscriber-tick, a checkpoint's serialization.
2. The learner alone on synthetic ticks of 10^4 .. 10^6 emails (``--learner-emails``):
   seconds per tick against emails per tick (what a campaign tick costs at 100 M).
3. Ray's coordination: the stub-actor loop (:mod:`actors.ray_overhead`, actors that do no
   work) at 1, 2, 4 and 8 shards: the driver's hop per tick and its growth per shard; and
   tiny Ray runs (1 tick): a run's fixed start-up and shut-down.
4. The model (:mod:`actors.scaling`) predicts each ``--shards`` Ray run of
   ``--subscribers`` x ``--days``; the runs are made and compared (the cores the shards
   get are measured just before each run: this machine may be shared).
5. Predictions for ``--predict-subscribers`` x ``--predict-days`` on N nodes of C cores.

Same run configuration as ``python -m experiments.bench run`` (reference rules, weekly
campaign, Thompson sampling deciding every email, 15-minute ticks, lag 1, a checkpoint a
day). With the defaults the calibration takes 2-4 minutes here (load 3-7 from other
work) and each Ray run 40-90 s; to keep each invocation short, measure the calibration
once and the runs one by one::

    python -m experiments.bench scaling --shards '' --calibration /tmp/calib.json
    python -m experiments.bench scaling --shards 1 --calibration /tmp/calib.json
    python -m experiments.bench scaling --shards 2 --calibration /tmp/calib.json
    python -m experiments.bench scaling --shards 4 --calibration /tmp/calib.json

The model and the constants: :mod:`actors.scaling` and docs/cluster.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import pickle
import time
from typing import Any

import numpy as np

from experiments.bench._common import emit
from experiments.bench.run import _config, _one

NAME = "scaling"
#: The constants that are CPU seconds of this machine (scaled by the speed probe).
CPU_CONSTANTS = ("shard_tick_s", "subscriber_tick_s", "shard_init_s", "subscriber_init_s",
                 "learner_tick_s", "learner_email_s", "checkpoint_subscriber_s")
#: N nodes x C cores of the cluster predictions.
CLUSTERS = ((1, 16), (4, 16), (8, 16), (16, 16), (8, 32), (32, 16), (64, 16))


def _burn(seconds: float, out: Any) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    x = 0
    while time.perf_counter() - t0 < seconds:
        x += 1
    out.put(time.process_time() - c0)


def cores_available(k: int, seconds: float = 1.5) -> float:
    """Cores that ``k`` busy processes get here now (sum of their CPU s / wall s)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_burn, args=(seconds, q)) for _ in range(k)]
    for p in procs:
        p.start()
    cpu = sum(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join()
    return float(cpu / seconds)


def cpu_speed_probe(repeats: int = 5) -> float:
    """CPU seconds of a fixed memory-bound numpy task (sorts, gathers, sums of a few
    million numbers), the median of ``repeats``: on a machine shared with other work a CPU
    second does not buy a constant amount of work (caches, memory bandwidth), so the
    calibration's CPU constants are scaled by this probe's ratio before a run."""
    rng = np.random.default_rng(7)
    x = rng.random(2_000_000)
    idx = rng.integers(0, len(x), len(x))
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        np.sort(x)
        float(x[idx].sum())
        np.unique(idx[:500_000])
        times.append(time.process_time() - t0)
    return float(np.median(times))


def calibrate(subscribers: int, days: float, seed: int) -> dict[str, Any]:
    """One shard and the learner stepped in this process: CPU s per tick of each, emails
    per tick, build and checkpoint seconds, the biggest tick's output."""
    from actors import LearnerCore, ShardCore

    cfg = _config(subscribers, days, seed)
    t0 = time.process_time()
    shard = ShardCore(cfg, 0, subscribers)
    init_s = time.process_time() - t0
    learner = LearnerCore(cfg)
    ws, wl, es = np.zeros(cfg.n_ticks), np.zeros(cfg.n_ticks), np.zeros(cfg.n_ticks)
    arms, peak, peak_e = None, None, -1
    for k in range(cfg.n_ticks):
        a = time.process_time()
        out = shard.step(k, arms)
        b = time.process_time()
        arms = learner.decide(k, [out])
        ws[k], wl[k], es[k] = b - a, time.process_time() - b, len(out.choices)
        if es[k] > peak_e:
            peak, peak_e = out, int(es[k])
    t0 = time.process_time()
    blob = pickle.dumps(shard.state(), protocol=5)
    ckpt_s = time.process_time() - t0
    assert peak is not None
    rows = len(peak.choices) + len(peak.rewards)
    return {"subscribers": subscribers, "ticks": cfg.n_ticks, "init_s": init_s,
            "shard_tick_cpu_s": ws, "learner_tick_cpu_s": wl, "emails": es,
            "checkpoint_s": ckpt_s, "checkpoint_bytes": len(blob),
            "output_bytes_per_email": len(pickle.dumps(peak, protocol=5)) / max(1, rows)}


def learner_alone(emails: list[int], shards: int = 4, seed: int = 1) -> list[tuple[int, float]]:
    """Seconds of one :meth:`LearnerCore.decide` on a tick of ``e`` emails (and as many
    rewards) from ``shards`` shards, for each ``e``."""
    from actors import LearnerCore
    from actors.messages import Choices, Rewards, TickOutput

    learner = LearnerCore(_config(1000, 1.0, seed))
    rng = np.random.default_rng(seed)
    out = []
    for k, e in enumerate(emails):
        m = e // shards
        parts = []
        for j in range(shards):
            ids = np.arange(j * m, (j + 1) * m, dtype=np.int64)
            due = 1_767_000_000 + rng.integers(0, 900, m)
            parts.append(TickOutput(k, Choices(ids, ids, due, np.zeros(m, np.int64)),
                                    Rewards(ids, ids, due, rng.integers(0, 3, m),
                                            (rng.random(m) < 0.05).astype(float)), 0, m))
        t0 = time.process_time()
        learner.decide(k, parts)
        out.append((m * shards, time.process_time() - t0))
    return out


def calibration(sizes: list[int], args: Any, ticks: int, stub_loop: Any) -> dict[str, Any]:
    """Everything the model's constants come from: the inline runs at ``sizes``, the
    learner alone, the stub loop at 1, 2, 4, 8 (and ``--shards``) shards, and 1-tick Ray
    runs at 1 and 4 (and ``--shards``) shards."""
    probe0 = cpu_speed_probe()
    small, big = (calibrate(s, args.days, args.seed) for s in sizes)
    probe = (probe0 + cpu_speed_probe()) / 2
    alone = learner_alone([int(x) for x in args.learner_emails.split(",") if x.strip()])
    counts = {int(x) for x in args.shards.split(",") if x.strip()}
    e_tick = max(1, round(big["emails"].sum() / ticks / sizes[1] * args.subscribers))
    stub = {n: {**stub_loop(args.stub_ticks, n, e_tick, 1, 1), "ticks": args.stub_ticks}
            for n in sorted({1, 2, 4, 8} | counts)}
    tiny, tiny_cpu = {}, {}
    for n in sorted({1, 4} | counts):
        t0 = time.perf_counter()
        r = _one(_config(2000, 900 / 86400, args.seed), "ray", n)
        tiny[n] = time.perf_counter() - t0
        tiny_cpu[n] = ((r["learner_cpu_s"] or 0.0), r["driver_cpu_s"])
    # the hop against the emails a tick moves (shards -> learner -> shards), 2 shards
    hop_emails = {e: stub_loop(100, 2, e, 1, 1)["wall_s"] / 100 for e in (1_000, 10_000, 100_000)}
    return {"small": small, "big": big, "alone": alone, "stub": stub, "tiny": tiny,
            "hop_emails": hop_emails, "cpu_probe_s": probe,
            "tiny_cpu": tiny_cpu, "run_subscribers": args.subscribers,
            "load_avg_1m": os.getloadavg()[0]}


def _constants(small: dict[str, Any], big: dict[str, Any], stub: dict[int, dict[str, float]],
               tiny: dict[int, float], hop_emails: dict[Any, float]
               ) -> tuple[Any, dict[str, float]]:
    from actors.scaling import ScalingConstants, fit_line

    sizes = [small["subscribers"], big["subscribers"]]
    t = big["ticks"]
    a, b = fit_line(sizes, [small["shard_tick_cpu_s"].sum() / t,
                            big["shard_tick_cpu_s"].sum() / t])
    i0, i1 = fit_line(sizes, [small["init_s"], big["init_s"]])
    l0, l1 = fit_line(big["emails"], big["learner_tick_cpu_s"])
    ns = sorted(stub)
    # per tick: the stub loop's wall at one shard; each more shard adds the serial CPU
    # (driver and learner) that it costs per tick
    per_tick = {n: stub[n]["wall_s"] / stub[n]["ticks"] for n in ns}
    serial = [(stub[n]["driver_cpu_s"] + stub[n]["learner_cpu_s"]) / stub[n]["ticks"]
              for n in ns]
    h1 = max(0.0, fit_line(ns, serial)[1])
    hop_e = {int(k): v for k, v in hop_emails.items()}
    h2 = max(0.0, fit_line(sorted(hop_e), [hop_e[k] for k in sorted(hop_e)])[1])
    shard_call = float(np.mean([stub[n]["shard_cpu_s"] / stub[n]["ticks"] for n in ns]))
    r0, r1 = fit_line(sorted(tiny), [tiny[n] for n in sorted(tiny)])
    c = ScalingConstants(
        shard_tick_s=a, subscriber_tick_s=b, shard_init_s=max(0.0, i0),
        subscriber_init_s=i1, hop_s=per_tick[ns[0]] - h1 * ns[0], hop_shard_s=h1,
        hop_email_s=h2,
        learner_tick_s=max(0.0, l0), learner_email_s=l1,
        emails_per_subscriber_tick=float(big["emails"].sum()) / (sizes[1] * t),
        # measured on this machine's cores: core-seconds per shard's start-up
        startup_s=r0, startup_shard_s=max(0.0, r1) * (os.cpu_count() or 1),
        checkpoint_subscriber_s=big["checkpoint_s"] / sizes[1])
    extra = {"ray_call_cpu_ms_per_shard_tick": 1e3 * shard_call,
             "peak_emails_per_subscriber_tick": float(big["emails"].max()) / sizes[1],
             "checkpoint_bytes_per_subscriber": big["checkpoint_bytes"] / sizes[1],
             "output_bytes_per_email": big["output_bytes_per_email"]}
    return c, extra


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.bench scaling",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=200_000,
                    help="population of the Ray runs the model predicts")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--shards", default="1,2,4", help="shard counts of the Ray runs")
    ap.add_argument("--calibration-subscribers", default="25000,100000",
                    help="the two populations of the inline calibration runs")
    ap.add_argument("--learner-emails", default="10000,100000,1000000",
                    help="emails per tick of the learner-alone measurements")
    ap.add_argument("--stub-ticks", type=int, default=200)
    ap.add_argument("--predict-subscribers", type=int, default=100_000_000)
    ap.add_argument("--predict-days", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-per-subscriber", type=float, default=None,
                    help="bytes of a shard's peak memory per subscriber for the GB/node "
                         "column (default: fitted on the runs' peak RSS, 2+ shard counts)")
    ap.add_argument("--rss-base-mb", type=float, default=535.0,
                    help="a shard's peak memory without subscribers, with --rss-per-subscriber")
    ap.add_argument("--calibration", default=None, metavar="PATH",
                    help="JSON file of the calibration: read if it exists, else measured "
                         "and written (split the Ray runs over invocations of < 3 min)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.shards.split(",") if x.strip()]
    calib = [int(x) for x in args.calibration_subscribers.split(",") if x.strip()]
    if len(calib) != 2 or calib[0] >= calib[1] or min(calib) < 100:
        ap.error("--calibration-subscribers: expected two increasing sizes >= 100")
    if counts and (min(counts) < 1 or args.subscribers < max(counts)):
        ap.error("--shards: expected shard counts >= 1, at most --subscribers "
                 "('' = calibration and predictions only)")

    from actors.ray_overhead import measure_stub_loop
    from actors.ray_runtime import init_ray
    from actors.scaling import predict_wall

    load0 = os.getloadavg()[0]
    init_ray(log_to_driver=False, configure_logging=False, include_dashboard=False)
    cfg = _config(args.subscribers, args.days, args.seed)
    ticks = cfg.n_ticks
    if args.calibration and os.path.exists(args.calibration):
        with open(args.calibration, encoding="utf-8") as fh:
            cal = json.load(fh)
        for part in ("small", "big"):
            for key in ("shard_tick_cpu_s", "learner_tick_cpu_s", "emails"):
                cal[part][key] = np.asarray(cal[part][key])
        if [cal["small"]["subscribers"], cal["big"]["subscribers"]] != calib or (
                cal["big"]["ticks"] != ticks or cal["run_subscribers"] != args.subscribers):
            raise SystemExit(f"--calibration {args.calibration}: made for other sizes "
                             f"(delete it to measure again)")
    else:
        cal = calibration(calib, args, ticks, measure_stub_loop)
        if args.calibration:
            with open(args.calibration, "w", encoding="utf-8") as fh:
                json.dump(cal, fh, default=lambda a: a.tolist())
    small, big, alone = cal["small"], cal["big"], cal["alone"]
    stub = {int(n): v for n, v in cal["stub"].items()}
    tiny = {int(n): v for n, v in cal["tiny"].items()}
    tiny_cpu = {int(n): v for n, v in cal["tiny_cpu"].items()}
    c, extra = _constants(small, big, stub, tiny, cal["hop_emails"])
    checkpoints = (ticks - 1) // cfg.checkpoint_every

    lines = [f"Ray runs, {args.subscribers:,} subscribers x {args.days:g} days "
             f"({ticks} ticks), predicted vs measured (cores: what the shards got here "
             f"just before the run; speed: CPU s per unit of work vs the calibration's)",
             f"{'shards':>6} {'cores':>6} {'speed':>6} {'pred_s':>8} {'meas_s':>8} {'error':>7} "
             f"{'pred_s@2':>9} {'shard CPU s':>12} {'learner CPU s':>14} "
             f"{'driver CPU s':>13}"]
    figures: dict[str, Any] = {"subscribers": args.subscribers, "days": args.days,
                               "ticks": ticks, "checkpoints": checkpoints}
    measured: dict[int, dict[str, Any]] = {}
    for n in counts:
        if n not in stub:
            raise SystemExit(f"--calibration {args.calibration}: no stub loop at {n} "
                             f"shards (delete it to measure again)")
        cores = cores_available(min(n, os.cpu_count() or 1))   # just before the run
        speed = cpu_speed_probe() / cal["cpu_probe_s"]          # > 1: a CPU s buys less now
        cn = dataclasses.replace(c, **{k: getattr(c, k) * speed for k in CPU_CONSTANTS})
        # the hop and the start-up measured at n shards (else the model's lines)
        hop = stub[n]["wall_s"] / stub[n]["ticks"]
        pred = predict_wall(cn, args.subscribers, ticks, 1, cores, n, checkpoints, hop,
                            tiny.get(n))
        nominal = predict_wall(c, args.subscribers, ticks, 1, float(os.cpu_count() or 1), n,
                               checkpoints, hop, tiny.get(n))
        r = measured[n] = _one(cfg, "ray", n)
        err = pred["wall_s"] / r["wall_s"] - 1
        # hindsight: CPU of the run's processes (shards, learner, driver) per wall second
        figures[f"shards_{n}_cores_used_during_run"] = r["total_cpu_s"] / r["wall_s"]
        figures[f"shards_{n}_cpu_speed_ratio"] = speed
        lines.append(f"{n:>6} {cores:>6.2f} {speed:>6.2f} {pred['wall_s']:>8.1f} "
                     f"{r['wall_s']:>8.1f} {100 * err:>+6.1f}% {nominal['wall_s']:>9.1f} "
                     f"{r['max_shard_cpu_s']:>12.1f} {r['learner_cpu_s'] or 0:>14.2f} "
                     f"{r['driver_cpu_s']:>13.2f}")
        figures.update({f"shards_{n}_cores_available": cores,
                        f"shards_{n}_predicted_wall_s": pred["wall_s"],
                        f"shards_{n}_measured_wall_s": r["wall_s"],
                        f"shards_{n}_error_pct": 100 * err,
                        f"shards_{n}_max_shard_cpu_s": r["max_shard_cpu_s"],
                        f"shards_{n}_peak_rss_per_shard_mb": r["peak_rss_shard_mb"],
                        # CPU per tick beyond a 1-tick run's (start-up: imports, init)
                        f"shards_{n}_learner_cpu_ms_per_tick":
                            1e3 * ((r["learner_cpu_s"] or 0) - tiny_cpu[n][0]) / (ticks - 1),
                        f"shards_{n}_driver_cpu_ms_per_tick":
                            1e3 * (r["driver_cpu_s"] - tiny_cpu[n][1]) / (ticks - 1),
                        **{f"shards_{n}_predicted_{k}": pred[k] for k in (
                            "startup_s", "init_s", "shards_s", "hop_s", "learner_s",
                            "checkpoint_s")}})
    # the learner per tick against the tick's emails (inline calibration, biggest size)
    e, lt = big["emails"], big["learner_tick_cpu_s"]
    lines += ["", "learner seconds per tick vs emails per tick (inline, "
                  f"{calib[1]:,} subscribers; then the learner alone, synthetic ticks)",
              f"{'emails/tick':>14} {'ticks':>6} {'learner ms/tick':>16}"]
    for lo, hi in ((0, 100), (100, 1_000), (1_000, 10_000), (10_000, 10**9)):
        sel = (e >= lo) & (e < hi)
        if sel.any():
            lines.append(f"{f'{lo:,}-{hi:,}' if hi < 10**9 else f'>= {lo:,}':>14} "
                         f"{int(sel.sum()):>6} {1e3 * lt[sel].mean():>16.2f}")
    for n_e, sec in alone:
        lines.append(f"{n_e:>14,} {'alone':>6} {1e3 * sec:>16.1f}")
    lines += ["", "driver hop (stub loop, 2 shards, lag 1) vs emails per tick",
              f"{'emails/tick':>14} {'hop ms/tick':>12}"]
    hop_e = {int(k): v for k, v in cal["hop_emails"].items()}
    lines += [f"{k:>14,} {1e3 * v:>12.2f}" for k, v in sorted(hop_e.items())]
    lines += ["", "driver hop (stub loop, lag 1) vs shards",
              f"{'shards':>14} {'hop ms/tick':>12}"]
    lines += [f"{k:>14} {1e3 * v['wall_s'] / v['ticks']:>12.2f}" for k, v in sorted(stub.items())]
    figures.update({f"hop_2_shards_{k}_emails_ms_per_tick": 1e3 * v
                    for k, v in sorted(hop_e.items())})
    shard_throughput = 1 / (c.subscriber_tick_s + c.shard_tick_s / args.subscribers)
    figures.update({
        "shard_subscriber_ticks_per_cpu_s": shard_throughput,
        "shard_subscriber_ticks_per_cpu_s_asymptotic": 1 / c.subscriber_tick_s,
        **{f"{k}": v for k, v in c.as_dict().items()},
        **extra,
        **{f"stub_{n}_shards_wall_ms_per_tick": 1e3 * stub[n]["wall_s"] / stub[n]["ticks"]
           for n in sorted(stub)},
        **{f"tiny_run_{n}_shards_wall_s": tiny[n] for n in sorted(tiny)},
        **{f"learner_alone_{e}_emails_s": s for e, s in alone},
    })
    rss = [(args.subscribers / n, measured[n]["peak_rss_shard_mb"] * 2**20) for n in counts]
    if args.rss_per_subscriber is not None:
        m0, beta = args.rss_base_mb * 2**20, args.rss_per_subscriber
    elif len({x for x, _ in rss}) >= 2:
        beta, m0 = np.polyfit([x for x, _ in rss], [y for _, y in rss], 1)
        figures["shard_rss_base_mb"] = float(m0) / 2**20
        figures["shard_rss_bytes_per_subscriber"] = float(beta)
    else:
        m0, beta = 0.0, float("nan")

    big_s, big_t = args.predict_subscribers, round(args.predict_days * 86400 / 900)
    big_k = (big_t - 1) // cfg.checkpoint_every
    peak_e = extra["peak_emails_per_subscriber_tick"] * big_s
    lines += ["", f"predicted: {big_s:,} subscribers x {args.predict_days:g} days "
                  f"({big_t} ticks, {big_k} checkpoints), one shard per core; floor_s: the "
                  f"hop and the learner, which more nodes do not shorten",
              f"{'N':>4} {'C':>4} {'shards':>6} {'wall_s':>8} {'shards_s':>9} "
              f"{'hop_s':>7} {'learner_s':>10} {'other_s':>8} {'floor_s':>8} {'GB/node':>8}"]
    for nn, cc in CLUSTERS:
        p = predict_wall(c, big_s, big_t, nn, cc, None, big_k)
        other = p["startup_s"] + p["init_s"] + p["checkpoint_s"]
        gb = p["shards_per_node"] * (m0 + beta * p["subscribers_per_shard"]) / 1e9
        lines.append(f"{nn:>4} {cc:>4} {int(p['shards']):>6} {p['wall_s']:>8,.0f} "
                     f"{p['shards_s']:>9,.0f} {p['hop_s']:>7,.0f} {p['learner_s']:>10,.0f} "
                     f"{other:>8,.0f} {p['hop_s'] + p['learner_s']:>8,.0f} {gb:>8,.0f}")
        figures[f"predict_{nn}x{cc}_wall_s"] = p["wall_s"]
    figures.update({
        "predict_learner_s": c.learner_tick_s * big_t
        + c.learner_email_s * c.emails_per_subscriber_tick * big_s * big_t,
        "predict_peak_tick_emails": peak_e,
        "predict_peak_tick_learner_s": c.learner_tick_s + c.learner_email_s * peak_e,
        "predict_peak_tick_learner_input_gb": peak_e * extra["output_bytes_per_email"] / 1e9,
        "load_avg_1m_calibration": cal["load_avg_1m"],
        "load_avg_1m_start": load0, "load_avg_1m": os.getloadavg()[0]})
    emit(NAME, argv, figures, as_json=args.json, record=args.record,
         title="Scaling model of the simulation loop on Ray", table="\n".join(lines))
    return 0
