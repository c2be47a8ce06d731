"""``python -m experiments.bench codec``: what the event wire formats cost per event.

Generates a realistic stream (:mod:`experiments.synthetic`), then, in this one process
and single-threaded, times (best of ``--repeat``):

* Arrow IPC, about ``--batch`` events per message: encode (``encode_messages`` of
  ``batch x partitions`` events, split by partition as a publisher does) and decode
  (``decode_messages``, with every check);
* the same decode when each message holds one bad row (the dead-letter path reads that
  message row by row);
* ``EventBatch.to_arrow`` / ``from_arrow`` (through pandas) for comparison;
* JSON, one event per message, on the first ``--json-events`` events: encode and decode.

Figures are CPU nanoseconds per event (``time.process_time`` of this process, all its
threads: the machine is shared, and CPU time is what a service shard pays), and bytes
per event on the wire.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from experiments.bench._common import emit, peak_rss_bytes


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def measure(events: int = 200_000, batch: int = 5000, json_events: int = 20_000,
            partitions: int = 8, repeat: int = 3, seed: int = 0) -> dict[str, Any]:
    """The figures of the benchmark (see the module docstring)."""
    import pyarrow as pa

    from actors.service.codec import decode_messages, encode_messages, encode_table
    from actors.service.transport import Message
    from experiments.synthetic import generate_events, generate_subscribers
    from policies import EventBatch

    rng = np.random.default_rng(seed)
    subs = generate_subscribers(max(1000, events // 20), rng)
    stream = generate_events(subs, rng, n_events=events)
    n = len(stream)
    max_bytes = 1 << 22                                     # let --batch decide the split
    step = batch * partitions                       # a publish call: ~batch per partition
    chunks = [stream[i:i + step] for i in range(0, n, step)]

    def encode() -> list[Any]:
        return [m for c in chunks for m in encode_messages(c, partitions, "arrow",
                                                           max_bytes=max_bytes)]

    enc_s, out = _best(encode, repeat)
    msgs = [Message(m.partition, i, i + 1, m.payload) for i, m in enumerate(out)]
    dec_s, decoded = _best(lambda: decode_messages(msgs), repeat)
    assert decoded.dead_letters == [] and len(decoded.events) == n
    wire_bytes = sum(len(m.payload) for m in msgs)

    # one bad row per message: the message is read row by row
    bad_msgs = []
    for i, m in enumerate(msgs[:max(1, len(msgs) // 10)]):
        table = pa.ipc.open_stream(m.payload).read_all()
        times = table.column("time").to_numpy().copy()
        times[0] = times[0] * 1000                          # milliseconds
        bad_msgs.append(Message(m.partition, i, i + 1, encode_table(
            table.set_column(1, "time", pa.array(times)))))
    bad_s, bad = _best(lambda: decode_messages(bad_msgs), repeat)
    bad_events = len(bad.events) + len(bad.dead_letters)

    pandas_n = min(n, 50_000)
    part = stream[:pandas_n]
    pd_enc_s, table = _best(part.to_arrow, repeat)
    pd_dec_s, _ = _best(lambda: EventBatch.from_arrow(table), repeat)

    js = stream[:min(n, json_events)]
    jenc_s, payloads = _best(lambda: encode_messages(js, partitions, "json"), repeat)
    jmsgs = [Message(m.partition, i, i + 1, m.payload) for i, m in enumerate(payloads)]
    jdec_s, jdecoded = _best(lambda: decode_messages(jmsgs), repeat)
    assert jdecoded.dead_letters == [] and len(jdecoded.events) == len(js)

    ns = 1e9
    return {
        "events": n,
        "arrow_events_per_message": n / len(msgs),
        "arrow_messages": len(msgs),
        "arrow_encode_ns_per_event": enc_s / n * ns,
        "arrow_decode_ns_per_event": dec_s / n * ns,
        "arrow_bytes_per_event": wire_bytes / n,
        "arrow_decode_events_per_s": n / dec_s,
        "arrow_decode_one_bad_row_per_message_ns_per_event": bad_s / bad_events * ns,
        "to_arrow_ns_per_event": pd_enc_s / pandas_n * ns,
        "from_arrow_ns_per_event": pd_dec_s / pandas_n * ns,
        "json_events": len(js),
        "json_encode_ns_per_event": jenc_s / len(js) * ns,
        "json_decode_ns_per_event": jdec_s / len(js) * ns,
        "json_bytes_per_event": sum(len(m.payload) for m in jmsgs) / len(js),
        "json_decode_events_per_s": len(js) / jdec_s,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench codec")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=5000,
                   help="events per Arrow message (a publish of batch x partitions events)")
    p.add_argument("--json-events", type=int, default=20_000,
                   help="events of the JSON measurement (one message each)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if min(args.events, args.batch, args.json_events, args.partitions, args.repeat) < 1:
        p.error("--events, --batch, --json-events, --partitions and --repeat must be >= 1")
    figures = measure(args.events, args.batch, args.json_events, args.partitions,
                      args.repeat, args.seed)
    emit("codec", argv, figures, as_json=args.json, record=args.record,
         title="codec (event wire formats, per event, one core)")
    return 0
