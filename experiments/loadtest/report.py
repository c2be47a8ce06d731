"""Load-test output: the summary table, ``loadtest.json`` and PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments.loadtest.config import LoadTestResult

__all__ = ["summary_table", "to_json", "write_outputs", "write_plots"]


def _num(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:,.1f}{unit}"


def summary_table(result: LoadTestResult, *, p99_target_ms: float | None = None) -> str:
    """A fixed-width, human-readable summary of ``result`` (one line per figure)."""
    s, c, r = result.summary, result.check, result.recovery
    target = s["target_rate"]
    lines = [
        f"load test: {s['mode']} ({s['source']} stream), {s['subscribers']:,} subscribers, "
        f"{s['shards']} shards ({s['partition']})",
        f"  offered            {s['events_offered']:,} events in {s['duration_s']:.1f} s"
        + (f" (target {target:,.0f}/s)" if target else " (as fast as possible)"),
        f"  processed          {s['events_processed']:,} events, "
        f"{s['throughput_eps']:,.0f} events/s over {s['elapsed_s']:.2f} s"
        + ("" if target is None else f", backlog drained {s['drain_s']:.2f} s after the end"),
        f"  sustained          {'yes' if s['sustained'] else 'NO'}"
        f" (max backlog {s['max_backlog_events']:,} events)",
        f"  latency            p50 {_num(s['latency_p50_ms'], ' ms')}  "
        f"p95 {_num(s['latency_p95_ms'], ' ms')}  p99 {_num(s['latency_p99_ms'], ' ms')}  "
        f"max {_num(s['latency_max_ms'], ' ms')}"
        + ("" if p99_target_ms is None else f"  (p99 target {p99_target_ms:g} ms)"),
        "  decisions          " + ", ".join(
            f"{s[key]:,} {key.removeprefix('decisions_')}" for key in s
            if key.startswith("decisions_")),
        f"  engine memory      {s['engine_bytes'] / 2**20:,.1f} MiB, "
        f"{s['bytes_per_subscriber']:.0f} bytes/subscriber; shard RSS "
        + ", ".join(f"{v / 2**20:,.0f}" for v in result.shards["rss_bytes"]) + " MiB",
        f"  check              {'PASSED' if c['passed'] else 'FAILED'}: "
        f"{c['sample_subscribers']:,} subscribers ({100 * c['sample_fraction']:.3g} %), "
        f"{c['sample_events']:,} events, {c['reference_decisions']:,} reference decisions; "
        f"missing {c['missing']}, extra {c['extra']}, duplicate ids "
        f"{c['duplicate_trigger_ids']}, counter mismatches {c['counter_mismatch']}",
    ]
    if r is not None:
        lines.append(
            f"  kill shard {r['shard']}       at {r['killed_at_s']:.1f} s: {r['restart']} restored "
            f"from checkpoint (batch {r['checkpoint_seq']}) in {r['restore_s']:.2f} s, replayed "
            f"{r['replayed_batches']} batches ({r['replayed_events']:,} events), caught up "
            f"after {r['recovery_s']:.2f} s; "
            + ("nothing lost" if r["nothing_lost"] else "DECISIONS LOST OR CHANGED")
        )
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def to_json(result: LoadTestResult, **extra: Any) -> dict[str, Any]:
    """``result`` as plain JSON types (NaN -> null)."""
    cfg = result.config
    return _clean({
        **extra,
        "passed": result.passed,
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "summary": result.summary,
        "check": result.check,
        "recovery": result.recovery,
        "shards": result.shards.reset_index().to_dict(orient="records"),
        "rules": result.stats.reset_index().to_dict(orient="records"),
        "per_second": result.per_second.reset_index().to_dict(orient="records"),
    })


def write_plots(result: LoadTestResult, out: Path) -> list[Path]:
    """``throughput.png`` (offered / processed per second and backlog) and
    ``latency.png`` (p50 / p95 / p99 / max per second, log scale) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = result.per_second
    x = df.index.to_numpy() + 0.5
    kill = None if result.recovery is None else result.recovery["killed_at_s"]
    title = (
        f"{result.summary['subscribers']:,} subscribers, {result.summary['shards']} shards, "
        + (f"target {result.summary['target_rate']:,.0f} events/s"
           if result.summary["target_rate"] else "as fast as possible")
    )
    paths = []
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot(x, df["offered"] / 1e6, label="offered", drawstyle="steps-mid")
    ax1.plot(x, df["processed"] / 1e6, label="processed", drawstyle="steps-mid")
    ax1.set_ylabel("million events / s")
    ax1.set_title(f"Throughput — {title}", fontsize=10)
    ax2.fill_between(x, df["backlog"] / 1e3, step="mid", alpha=0.4, color="tab:red")
    ax2.plot(x, df["backlog"] / 1e3, drawstyle="steps-mid", color="tab:red")
    ax2.set_ylabel("backlog, thousand events")
    ax2.set_xlabel("seconds since start")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if kill is not None:
            ax.axvline(kill, color="k", ls="--", lw=1, label="shard killed")
    ax1.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    paths.append(out / "throughput.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    for col, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"),
                       ("max_ms", "max")):
        ax.plot(x, df[col], marker=".", label=label)
    ax.set_yscale("log")
    ax.set_ylabel("decision latency, ms")
    ax.set_xlabel("seconds since start")
    ax.set_title(f"Latency (arrival at generator → decisions available) — {title}",
                 fontsize=9)
    if kill is not None:
        ax.axvline(kill, color="k", ls="--", lw=1, label="shard killed")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "latency.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def write_outputs(result: LoadTestResult, out: str | Path, **extra: Any) -> list[Path]:
    """Write ``loadtest.json``, ``per_second.csv`` and the plots to ``out``; return paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "loadtest.json"
    path.write_text(json.dumps(to_json(result, **extra), indent=1) + "\n", encoding="utf-8")
    csv = out / "per_second.csv"
    result.per_second.to_csv(csv)
    return [path, csv, *write_plots(result, out)]
