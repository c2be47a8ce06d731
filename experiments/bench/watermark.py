"""``python -m experiments.bench watermark``: what the event-time watermark costs a shard.

A stream of ``--rate`` events per second of event time, each event arriving up to
``--jitter`` seconds after later ones (uniform), is cut into ``--batches`` polls of
``--batch`` events; every poll is :meth:`Watermark.add` then :meth:`Watermark.release`
with ``--grace`` seconds (>= the jitter, so nothing is late). The figure is CPU time per
poll and per event (``time.process_time``, one process, one thread), with what is held
at the end: the cost that matters is a release's while many events are held.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from experiments.bench._common import emit, peak_rss_bytes

T0 = 1_767_614_400                                     # 2026-01-05 12:00 UTC


def measure(rate: int = 1000, grace: int = 300, jitter: int = 150, batch: int = 5000,
            batches: int = 400, seed: int = 0) -> dict[str, Any]:
    """The figures of the benchmark (see the module docstring)."""
    import pandas as pd

    from actors.service import Watermark
    from policies import EventBatch

    rng = np.random.default_rng(seed)
    polls = []
    for i in range(batches):
        t = T0 + (i * batch + np.arange(batch)) // rate - rng.integers(0, jitter + 1, batch)
        polls.append(EventBatch.from_pandas(pd.DataFrame({
            "subscriber": rng.integers(0, 10**6, batch), "time": t,
            "type": rng.choice(["page_view", "add_to_cart"], batch)})))
    wm = Watermark(grace)
    released = late = 0
    start = time.process_time()
    for b in polls:
        late += len(wm.add(b))
        out, _ = wm.release()
        released += len(out)
    cpu = time.process_time() - start
    return {"events": batches * batch, "batch": batch, "grace_s": grace, "jitter_s": jitter,
            "released": released, "late": late, "held_at_end": wm.n_held,
            "ms_per_poll": cpu / batches * 1e3, "ns_per_event": cpu / (batches * batch) * 1e9,
            "peak_rss_mb": peak_rss_bytes() / 2**20}


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench watermark")
    p.add_argument("--rate", type=int, default=1000, help="events per second of event time")
    p.add_argument("--grace", type=int, default=300, help="seconds")
    p.add_argument("--jitter", type=int, default=150, help="seconds an event may trail")
    p.add_argument("--batch", type=int, default=5000, help="events per poll")
    p.add_argument("--batches", type=int, default=400, help="polls")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if min(args.rate, args.batch, args.batches) < 1 or min(args.grace, args.jitter) < 0:
        p.error("--rate, --batch and --batches must be >= 1, --grace and --jitter >= 0")
    figures = measure(args.rate, args.grace, args.jitter, args.batch, args.batches, args.seed)
    emit("watermark", argv, figures, as_json=args.json, record=args.record,
         title="watermark (add + release per poll, one core)")
    return 0
