"""Logs that grow with a run, streamed to Parquet in bounded memory.

With ``SimulationConfig.log_uri`` set, a shard does not keep its event log and decision
log until the end: it appends them to a :class:`LogSink` per log, which holds at most
``rows_per_group`` rows and writes them as a row group of a Parquet file on any
``pyarrow.fs`` file system (a local directory, ``file:///...``, ``s3://...``: every shard
of a cluster must reach it). Files::

    <log_uri>/<log>/shard-<start>-part-<k>.parquet      log: "events" or "decisions"

A part is closed at every checkpoint of the shard (:meth:`LogSink.roll`); a shard restored
from a checkpoint taken after part ``k - 1`` was closed rewrites part ``k`` and deletes the
later parts the lost shard had started (:meth:`LogSink.resume`), so a recovered run logs
every row exactly once. The rows are the shard's raw columns (codes, 2-D columns
flattened to ``<name>__<j>``); :class:`RunLogs` reads them back into exactly the frames an
in-memory run returns (:attr:`actors.RunResult.decisions`, :attr:`~actors.RunResult.events`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from actors.errors import InternalError
from actors.log_frames import decisions_frame, events_frame
from actors.storage import open_location
from policies.errors import SpecError
from policies.events import EventBatch

__all__ = ["LOGS", "ROWS_PER_GROUP", "LogSink", "RunLogs", "check_empty", "open_log_fs"]

#: The logs a run can stream.
LOGS: tuple[str, ...] = ("events", "decisions")
#: Rows a sink buffers before writing a row group (bounds its memory).
ROWS_PER_GROUP = 1 << 16
_PART = re.compile(r"shard-(\d+)-part-(\d+)\.parquet$")


def open_log_fs(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system and base path of a log location: a local path or any URI
    ``pyarrow.fs.FileSystem.from_uri`` accepts (:func:`actors.storage.open_location`)."""
    return open_location(uri, "log_uri")


def _flatten(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """1-D columns; a 2-D column ``x`` becomes ``x__0``, ``x__1``, ..."""
    out: dict[str, np.ndarray] = {}
    for name, col in columns.items():
        arr = np.asarray(col)
        if arr.ndim == 1:
            out[name] = arr
        else:
            for j in range(arr.shape[1]):
                out[f"{name}__{j}"] = np.ascontiguousarray(arr[:, j])
    return out


def _unflatten(table: pa.Table) -> dict[str, np.ndarray]:
    """The inverse of :func:`_flatten` on a table read back."""
    flat = {name: table.column(name).to_numpy() for name in table.column_names}
    out: dict[str, np.ndarray] = {}
    wide: dict[str, list[tuple[int, np.ndarray]]] = {}
    for name, col in flat.items():
        base, sep, j = name.rpartition("__")
        if sep and j.isdigit():
            wide.setdefault(base, []).append((int(j), col))
        else:
            out[name] = col
    for base, cols in wide.items():
        out[base] = np.column_stack([c for _, c in sorted(cols, key=lambda x: x[0])])
    return out


class LogSink:
    """One shard's stream of one log, in parts of row groups (see the module docstring).

    Parameters
    ----------
    uri : str
        The run's ``log_uri``.
    log : str
        One of :data:`LOGS`.
    start : int
        The shard's first subscriber id (names its files).
    rows_per_group : int, optional
        Rows buffered before a row group is written (default :data:`ROWS_PER_GROUP`).
    """

    def __init__(self, uri: str, log: str, start: int,
                 rows_per_group: int | None = None) -> None:
        if log not in LOGS:
            raise InternalError(f"log: expected one of {LOGS}, got {log!r}")
        self.uri, self.log, self.start = uri, log, int(start)
        self.rows_per_group = int(ROWS_PER_GROUP if rows_per_group is None else rows_per_group)
        self.part = 0
        self.rows = 0          # rows written or buffered so far
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._stream: Any = None
        self._fs, base = open_log_fs(uri)
        self._dir = f"{base.rstrip('/')}/{log}"
        self._fs.create_dir(self._dir, recursive=True)

    def path(self, part: int) -> str:
        """The file of part ``part``."""
        return f"{self._dir}/shard-{self.start:012d}-part-{part:05d}.parquet"

    def append(self, columns: Mapping[str, np.ndarray]) -> None:
        """Add rows (equally long columns; 2-D ones are flattened)."""
        flat = _flatten(columns)
        n = len(next(iter(flat.values()))) if flat else 0
        if n == 0:
            return
        self._buffer.append(flat)
        self._buffered += n
        self.rows += n
        if self._buffered >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        cols = {k: np.concatenate([b[k] for b in self._buffer]) for k in self._buffer[0]}
        table = pa.table(cols)
        if self._writer is None:
            self._stream = self._fs.open_output_stream(self.path(self.part))
            self._writer = pq.ParquetWriter(self._stream, table.schema)
        self._writer.write_table(table, row_group_size=self.rows_per_group)
        self._buffer, self._buffered = [], 0

    def roll(self) -> None:
        """Write what is buffered and close the current part (a checkpoint follows)."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._stream.close()
            self._writer = self._stream = None
            self.part += 1

    def close(self) -> None:
        """Write and close everything (the run's end)."""
        self.roll()

    def resume(self) -> None:
        """After a restore: delete the parts from ``part`` on (a lost shard's)."""
        for info in self._fs.get_file_info(pafs.FileSelector(self._dir, allow_not_found=True)):
            m = _PART.search(info.path)
            if m and int(m.group(1)) == self.start and int(m.group(2)) >= self.part:
                self._fs.delete_file(info.path)

    def __getstate__(self) -> dict[str, Any]:
        if self._buffered or self._writer is not None:
            raise InternalError(f"{self.log} log of shard {self.start}: roll() before a "
                                f"checkpoint")
        return {"uri": self.uri, "log": self.log, "start": self.start,
                "rows_per_group": self.rows_per_group, "part": self.part, "rows": self.rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["uri"], state["log"], state["start"],  # type: ignore[misc]
                      state["rows_per_group"])
        self.part, self.rows = state["part"], state["rows"]


def check_empty(uri: str) -> None:
    """Refuse a log location that already holds logs (a run never mixes its files with
    another's: choose a new location or delete the old logs)."""
    fs, base = open_log_fs(uri)
    for log in LOGS:
        sel = pafs.FileSelector(f"{base.rstrip('/')}/{log}", allow_not_found=True)
        if any(_PART.search(i.path) for i in fs.get_file_info(sel)):
            raise SpecError(f"log_uri: {uri!r} already holds {log} logs of a run; choose an "
                            f"empty location")


@dataclass(frozen=True)
class RunLogs:
    """The streamed logs of a run (``log_uri``), read back on demand.

    Attributes
    ----------
    uri : str
    layout : MetricsLayout
        The run's layout (labels of sources and arms for :meth:`decisions`).
    record_events, record_decisions : bool
        Which logs the run streamed.
    """

    uri: str
    layout: Any
    record_events: bool
    record_decisions: bool

    def files(self, log: str) -> list[str]:
        """The Parquet files of ``log`` (sorted by shard, then part)."""
        fs, base = open_log_fs(self.uri)
        sel = pafs.FileSelector(f"{base.rstrip('/')}/{log}", allow_not_found=True)
        found = [i.path for i in fs.get_file_info(sel) if _PART.search(i.path)]
        return sorted(found)

    def batches(self, log: str) -> Iterator[dict[str, np.ndarray]]:
        """The raw rows of ``log`` one row group at a time (bounded memory), each shard's
        in its own order: events by time, decisions as their reward windows closed."""
        fs, _ = open_log_fs(self.uri)
        for path in self.files(log):
            with fs.open_input_file(path) as f:
                pf = pq.ParquetFile(f)
                for g in range(pf.num_row_groups):
                    yield _unflatten(pf.read_row_group(g))

    def _read(self, log: str) -> dict[str, np.ndarray] | None:
        parts = list(self.batches(log))
        if not parts:
            return None
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def decisions(self) -> pd.DataFrame:
        """The decision log as :attr:`actors.RunResult.decisions` (whole, in memory)."""
        if not self.record_decisions:
            raise SpecError("decisions: the run did not record them (record_decisions)")
        return decisions_frame(self.layout, [self._read("decisions")])

    def events(self) -> pd.DataFrame:
        """The event log as :attr:`actors.RunResult.events` (whole, in memory)."""
        if not self.record_events:
            raise SpecError("events: the run did not record them (record_events)")
        raw = self._read("events")
        return events_frame([] if raw is None else [EventBatch(
            raw.pop("subscriber"), raw.pop("time"), raw.pop("type"), raw)])
