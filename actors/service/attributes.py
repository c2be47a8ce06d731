"""Subscriber-attribute updates on the wire: what an attributes stream carries to the
engine shards (:meth:`actors.service.shard.ShardCore.update`).

A message is one JSON object, ``{"subscriber": 7, "time": 1767600000,
"lifecycle_stage": "new_customer"}`` (a CRM's change event), or an Arrow IPC table with
those columns (a Parquet log of changes replays as such tables). ``subscriber`` is an
int id, ``time`` int seconds since the epoch (when the change happened, in
``[2000, 2100)``), every other field an attribute (docs/domain.md). Decoding never
raises: a message that is not one of the two or lacks the id or the time column, and a
row with a bad id or time, is a dead letter with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from actors.service.codec import DeadLetter, read_payload
from actors.service.transport import Message
from policies.event_schema import MAX_TIME, MIN_TIME

__all__ = ["attribute_groups", "decode_attributes"]


def _whole(msg: Message, reason: str) -> DeadLetter:
    return DeadLetter(msg.partition, msg.offset, None, "message", reason, msg.payload)


def _frame(msg: Message) -> pd.DataFrame | str:
    """The message's rows, or the reason it has none."""
    body = read_payload(msg.payload)
    if isinstance(body, str):
        return body
    return pd.DataFrame([body]) if isinstance(body, dict) else body.to_pandas()


def _ints(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``col`` as int64 and a mask of the rows holding a whole number (bools, text,
    NaN and out-of-range values refused)."""
    n = len(col)
    values = col.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64), np.ones(n, bool)
    num = pd.to_numeric(col.where(~col.map(lambda v: isinstance(v, bool))), errors="coerce")
    f = num.to_numpy(np.float64)
    ok = np.isfinite(f) & (np.abs(f) < 2**63)
    ok &= np.where(ok, f % 1 == 0, False)
    return np.where(ok, f, 0).astype(np.int64), ok


def decode_attributes(messages: Sequence[Message]) -> tuple[pd.DataFrame, list[DeadLetter]]:
    """``(rows, dead letters)``: the updates of ``messages`` in message order (columns
    ``subscriber``, ``time`` and the attributes they name; a field a message lacks is
    missing in its rows), and a dead letter per message that cannot be read and per
    row with a bad id or time."""
    frames, dead = [], []
    for msg in messages:
        df = _frame(msg)
        if isinstance(df, str):
            dead.append(_whole(msg, df))
            continue
        missing = [c for c in ("subscriber", "time") if c not in df.columns]
        if missing:
            dead.append(_whole(msg, f"wrong schema: missing column {missing[0]!r} (have "
                                    f"{list(df.columns)})"))
            continue
        sub, sub_ok = _ints(df["subscriber"])
        t, t_ok = _ints(df["time"])
        t_ok &= (t >= MIN_TIME) & (t < MAX_TIME)
        for i in np.flatnonzero(~(sub_ok & t_ok)).tolist():
            field, why = (("subscriber", "expected an integer id") if not sub_ok[i] else
                          ("time", f"expected whole seconds since the epoch in "
                                   f"[{MIN_TIME}, {MAX_TIME})"))
            dead.append(DeadLetter(msg.partition, msg.offset, i, field,
                                   f"{why}, got {df[field].iloc[i]!r}",
                                   {k: (None if pd.isna(v) else v) if np.isscalar(v) else v
                                    for k, v in df.iloc[i].to_dict().items()}))
        good = sub_ok & t_ok
        frames.append(df[good].assign(subscriber=sub[good], time=t[good]))
    rows = (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({"subscriber": np.zeros(0, np.int64),
                               "time": np.zeros(0, np.int64)}))
    return rows, dead


def attribute_groups(rows: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    """``rows`` (``subscriber``, ``time``, attributes) as ``(time, frame)`` pairs in the
    order they apply: by time, then by first appearance; a frame (indexed by subscriber)
    holds the rows of one time that name the same attributes, with those columns only
    (a field a row leaves out or null keeps its value)."""
    attrs = [c for c in rows.columns if c not in ("subscriber", "time")]
    named = rows[attrs].notna().to_numpy()
    keys = [(int(t), tuple(r)) for t, r in zip(rows["time"].to_numpy(np.int64),
                                               named.tolist(), strict=True)]
    order: dict[tuple[int, tuple[bool, ...]], list[int]] = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    out = []
    for (at, on), idx in order.items():
        cols = [c for c, keep in zip(attrs, on, strict=True) if keep]
        frame = rows.iloc[idx].set_index("subscriber")[cols]
        frame.index = frame.index.astype(np.int64)
        out.append((at, frame))
    out.sort(key=lambda x: x[0])          # stable: first appearance within a time
    return out
