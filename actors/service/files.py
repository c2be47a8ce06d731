"""Replaying an event log from Parquet files: :class:`ParquetSource`, and
:func:`write_event_log` to write one.

The log is one or more Parquet files read in the given order as one partition (0);
a message is a row group (or a slice of one, at most ``max_rows`` rows), sent as an
Arrow IPC payload, so the file's rows go through the same decoding and dead-lettering as
broker messages. The offset is the row index across the files (0-based): a message
starting at row ``r`` with ``k`` rows has ``offset = r`` and ``next_offset = r + k``.
Any table with the event columns works (e.g. ``EventBatch.to_arrow()`` written with
``pyarrow.parquet``); :func:`write_event_log` writes the wire schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from actors.service.codec import encode_table, events_table
from actors.service.transport import (
    Closing,
    Message,
    Positions,
    TransportError,
    check_positions,
)
from policies.checks import show
from policies.errors import TriggerLabValueError
from policies.events import EventBatch

__all__ = ["ParquetSource", "write_event_log"]

PathLike = str | os.PathLike[str]


def write_event_log(path: PathLike, batches: Iterable[EventBatch], *,
                    row_group_rows: int = 65_536) -> int:
    """Write ``batches`` to one Parquet file in the wire schema; return the row count.

    Batches may have different data columns (a column missing from a batch is written
    as missing).
    """
    parts = list(batches)
    batch = EventBatch.concat(parts) if parts else EventBatch.empty()
    pq.write_table(events_table(batch), str(path), row_group_size=row_group_rows)
    return len(batch)


class ParquetSource(Closing):
    """Row groups of Parquet files as messages (see the module docstring).

    Parameters
    ----------
    paths : path or sequence of paths
        The log's files, in order.
    max_rows : int, optional
        Split row groups into messages of at most this many rows.
    """

    def __init__(self, paths: PathLike | Sequence[PathLike], *,
                 max_rows: int | None = None) -> None:
        self.paths = paths
        self.max_rows = max_rows
        files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        if not files:
            raise TriggerLabValueError("paths: expected at least one Parquet file, got none")
        if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(
                max_rows, int) or max_rows < 1):
            raise TriggerLabValueError(f"max_rows: expected an int >= 1, got {show(max_rows)}")
        self._files: list[pq.ParquetFile] = []
        # (file, row group, first row in the log, rows, first row in the row group)
        chunks: list[tuple[int, int, int, int, int]] = []
        row = 0
        for i, f in enumerate(files):
            try:
                pf = pq.ParquetFile(str(f))
            except (OSError, pa.ArrowException) as exc:
                raise TransportError(f"parquet source: cannot read {str(f)!r}: {exc}") from None
            self._files.append(pf)
            for g in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(g).num_rows
                step = max_rows or max(n, 1)
                for lo in range(0, n, step):
                    chunks.append((i, g, row + lo, min(step, n - lo), lo))
                row += n
        self.rows = row
        self._chunks = chunks
        self._starts = np.array([c[2] for c in chunks], np.int64)
        self._next = 0
        self._committed = 0
        self._cached: tuple[tuple[int, int], pa.Table] | None = None

    def poll(self, max_messages: int = 1000, timeout: float = 1.0) -> list[Message]:
        """The next up to ``max_messages`` chunks; ``[]`` at the end of the log (at once:
        a file does not grow)."""
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) \
                or max_messages < 1:
            raise TriggerLabValueError(
                f"max_messages: expected an int >= 1, got {show(max_messages)}")
        out: list[Message] = []
        while len(out) < max_messages and self._next < self.rows:
            k = int(np.searchsorted(self._starts, self._next, side="right")) - 1
            f, g, start, n, in_group = self._chunks[k]
            lo = self._next - start                   # a seek may land inside a chunk
            table = self._row_group(f, g).slice(in_group + lo, n - lo)
            out.append(Message(0, self._next, self._next + (n - lo), encode_table(table)))
            self._next += n - lo
        return out

    def _row_group(self, f: int, g: int) -> pa.Table:
        if self._cached is None or self._cached[0] != (f, g):
            self._cached = ((f, g), self._files[f].read_row_group(g))
        return self._cached[1]

    def positions(self) -> Positions:
        return {0: self._next}

    def committed(self) -> Positions:
        """The last committed position (kept in memory only: a file has no broker)."""
        return {0: self._committed}

    def commit(self, positions: Mapping[int, int]) -> None:
        checked = self._check(positions)
        self._committed = max(self._committed, checked.get(0, self._committed))

    def seek(self, positions: Mapping[int, int]) -> None:
        self._next = self._check(positions).get(0, 0)

    def _check(self, positions: Mapping[int, int]) -> Positions:
        checked = check_positions(positions)
        for p, off in checked.items():
            if p != 0:
                raise TriggerLabValueError(
                    f"positions: a Parquet log has one partition (0), got {p}")
            if off > self.rows:
                raise TriggerLabValueError(
                    f"positions[0]: expected a row index in [0, {self.rows}], got {off}")
        return checked

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files = []

    def __repr__(self) -> str:
        return f"ParquetSource(paths={self.paths!r}, rows={self.rows}, max_rows={self.max_rows})"
