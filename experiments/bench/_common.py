"""Shared output for benchmarks: a readable table, a JSON last line, BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS_MD = Path(__file__).resolve().parents[2] / "BENCHMARKS.md"


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes (Linux: ru_maxrss is KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def command_line(name: str, argv: list[str]) -> str:
    """The command that reproduces this run, without --json/--record."""
    args = [a for a in argv if a not in ("--json", "--record")]
    return shlex.join(["python", "-m", "experiments.bench", name, *args])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def emit(
    name: str,
    argv: list[str],
    figures: Mapping[str, Any],
    *,
    as_json: bool,
    record: bool,
    title: str | None = None,
    table: str | None = None,
) -> None:
    """Print ``figures`` (and an optional pre-rendered ``table``); optionally record them.

    With ``as_json`` the final line is ``json.dumps(figures)``.
    """
    cmd = command_line(name, argv)
    width = max((len(k) for k in figures), default=10)
    print(f"# {title or name}: {cmd}")
    if table:
        print(table)
    for key, value in figures.items():
        print(f"{key:<{width}}  {_fmt(value)}")
    if record:
        append_record(title or name, cmd, figures, table)
        print(f"recorded in {BENCHMARKS_MD.name}")
    if as_json:
        print(json.dumps(dict(figures), default=float))
    sys.stdout.flush()


def append_record(
    title: str, cmd: str, figures: Mapping[str, Any], table: str | None = None
) -> None:
    """Append one section with the command and the figures to BENCHMARKS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    host = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"\n### {title} — {stamp}\n", f"`{cmd}`  ({host})\n"]
    if table:
        lines.append("```\n" + table.rstrip() + "\n```\n")
    lines.append("| figure | value |\n|---|---|\n")
    lines.extend(f"| {k} | {_fmt(v)} |\n" for k, v in figures.items())
    with BENCHMARKS_MD.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)
