"""The service's decisions as a table, and the Parquet decision log that off-policy
evaluation reads as it is.

One row per engine decision (:class:`~policies.triggers.Decisions`), columns
(:func:`decision_table`):

* ``trigger_id`` (str), ``rule`` (str), ``subscriber`` (int64), ``kind`` (``fire``,
  ``cancel``, ``expire``, ``suppress``; journeys also ``exit``, ``skip``, ``branch``,
  ``split``), ``time`` (int64 s: when it takes effect; a fire's send time),
  ``entered_at`` (int64 s), ``attempt`` (int64);
* with journeys, the columns ``Decisions.to_pandas`` adds: ``step``, ``step_label``,
  ``path``, ``path_name``, and the split's probability as ``split_propensity``;
* ``arm`` (str, null when the policy did not choose: not a fire, or no policy),
  ``arm_index`` (int64, -1 then), ``propensity`` (float64 in (0, 1], null then; the
  probability with which the policy chose ``arm``), ``policy`` (registry name, ``""``
  without one), ``policy_version`` (int64: which learned state chose), ``decides``
  (the email feature the arm sets);
* ``x_<feature>`` (float64) for each of :data:`policies.features.FEATURE_NAMES`: the
  subscriber's context at the decision, when the subscriber table has the columns
  :func:`policies.features.subscriber_features` reads;
* ``shard`` (int64).

The log is a directory: ``shard-NNN/part-NNNNNNNNN.parquet``, each part written
atomically (:mod:`actors.service.storage`) by one shard, parts numbered from 0 in the
order they were written. :func:`read_decision_log` reads a directory (or one file) into
one frame sorted by time, subscriber, rule, kind. The identity of a row for
effectively-once output is ``(trigger_id, kind, attempt)`` (:func:`decision_keys`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from actors.service.storage import Location
from policies.errors import TriggerLabValueError
from policies.features import FEATURE_NAMES
from policies.triggers import Decisions

__all__ = ["CORE_COLUMNS", "DecisionLog", "decision_keys", "decision_table",
           "read_decision_log"]

#: Columns every decision row has (then the Decisions' extra columns, the policy's).
CORE_COLUMNS = ("trigger_id", "rule", "subscriber", "kind", "time", "entered_at", "attempt")
_SORT = ["time", "subscriber", "rule", "entered_at", "kind", "attempt"]


def decision_table(decisions: Decisions, *, arm: np.ndarray, propensity: np.ndarray,
                   arm_names: Sequence[str], policy: str, policy_version: int,
                   decides: str, contexts: np.ndarray | None, shard: int) -> pd.DataFrame:
    """The rows of ``decisions`` with their arms (see the module docstring).

    Parameters
    ----------
    decisions : Decisions
    arm : int64 ndarray (n,)
        Chosen arm index, -1 where the policy did not choose.
    propensity : float64 ndarray (n,)
        NaN where the policy did not choose.
    arm_names : sequence of str
    policy, decides : str
    policy_version : int
    contexts : float64 ndarray (n, len(FEATURE_NAMES)) or None
    shard : int
    """
    df = decisions.to_pandas()      # with journeys also step, step_label, path, path_name
    if "propensity" in df.columns:  # a journey split's: the policy's column is below
        df = df.rename(columns={"propensity": "split_propensity"})
    names = np.array([*arm_names, ""], dtype=object)
    chosen = arm >= 0
    df["arm"] = pd.array(np.where(chosen, names[arm], None), dtype="string")
    df["arm_index"] = arm.astype(np.int64)
    df["propensity"] = np.where(chosen, propensity, np.nan)
    df["policy"] = policy
    df["policy_version"] = np.int64(policy_version)
    df["decides"] = decides
    if contexts is not None:
        for j, name in enumerate(FEATURE_NAMES):
            df[f"x_{name}"] = contexts[:, j]
    df["shard"] = np.int64(shard)
    return df


def decision_keys(df: pd.DataFrame) -> list[tuple[str, str, int]]:
    """``(trigger_id, kind, attempt)`` of each row: a decision's identity."""
    return list(zip(df["trigger_id"].astype(str), df["kind"].astype(str),
                    df["attempt"].astype(np.int64).tolist(), strict=True))


class DecisionLog:
    """The parts of one shard in a decision-log directory.

    Parameters
    ----------
    where : path or URI
        The log directory (a ``pyarrow.fs`` URI or a local path).
    shard : int
    """

    def __init__(self, where: str | os.PathLike[str], shard: int) -> None:
        self.where = where
        self.shard = shard
        self._dir = Location.of(where).child(f"shard-{shard:03d}")

    def part_numbers(self) -> list[int]:
        """Numbers of the parts written so far, ascending."""
        return [int(n[5:-8]) for n in self._dir.names(".parquet") if n.startswith("part-")]

    def write(self, number: int, table: pd.DataFrame) -> None:
        """Write part ``number`` atomically."""
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), buf)
        self._dir.write_atomic(f"part-{number:09d}.parquet", buf.getvalue())

    def read(self, numbers: Sequence[int]) -> pd.DataFrame:
        """Parts ``numbers`` concatenated (in that order)."""
        frames = []
        for k in numbers:
            data = self._dir.read(f"part-{k:09d}.parquet")
            if data is not None:
                frames.append(pq.read_table(pa.py_buffer(data)).to_pandas())
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_decision_log(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Every row of a decision log (a directory of shards' parts, or one Parquet file),
    sorted by time, subscriber, rule, entered_at, kind, attempt.

    Raises
    ------
    TriggerLabValueError
        Nothing readable there, or the files lack the decision columns.
    """
    text = os.fspath(path)
    if not os.path.exists(text) and "://" not in text:
        raise TriggerLabValueError(f"--logs: {text!r} does not exist")
    if os.path.isdir(text):
        files = sorted(str(p) for p in Path(text).rglob("part-*.parquet"))
        if not files:
            raise TriggerLabValueError(f"--logs: {text!r} holds no decision-log parts "
                                       "(shard-NNN/part-NNNNNNNNN.parquet)")
        df = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    else:
        try:
            df = pq.read_table(text).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise TriggerLabValueError(f"--logs: cannot read {text!r}: {exc}") from None
    missing = [c for c in (*CORE_COLUMNS, "arm", "propensity") if c not in df.columns]
    if missing:
        raise TriggerLabValueError(f"--logs: {text!r} is not a decision log (missing "
                                   f"columns {missing})")
    return df.sort_values(_SORT, kind="stable").reset_index(drop=True)
