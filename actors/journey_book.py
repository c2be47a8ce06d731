"""Counts of what journeys did in a run: the rows of a per-path funnel.

A shard counts every decision of a journey step by (rule, node, kind, path, group): how
many instances fired, skipped, were suppressed or expired at each send, took each path
of each wait-until, branch and split, and exited at each node. With the engine's
``entered`` counter per rule (all groups) these are the funnels of the run report: where
subscribers enter, which path they take, what they are sent, where they leave.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from actors.metrics import GROUPS
from policies.triggers import ALL_KINDS, Rule
from policies.triggers.journeys import compile_journey

__all__ = ["JOURNEY_COLUMNS", "JourneyBook", "journey_frame"]

#: Columns of :func:`journey_frame` (and of a run folder's ``journeys.parquet`` after the
#: run keys).
JOURNEY_COLUMNS: tuple[str, ...] = ("rule", "step", "step_label", "kind", "path", "path_name",
                                    "group", "count")


class JourneyBook:
    """Decision counts of the journeys of ``rules`` (see the module docstring).

    Attributes
    ----------
    counts : ndarray of int64, shape (R, N, K, P + 1, 2)
        Rule x node x decision kind (:data:`~policies.triggers.ALL_KINDS`) x path (slot
        0: none, ``p + 1``: path ``p`` of the node) x group.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        programs = [None if r.journey is None else compile_journey(r) for r in rules]
        nodes = max([1, *(len(p) for p in programs if p is not None)])
        paths = max([1, *(int(p.n_paths.max()) for p in programs if p is not None)])
        self.counts = np.zeros((len(rules), nodes, len(ALL_KINDS), paths + 1, len(GROUPS)),
                               np.int64)

    def count(self, rule: np.ndarray, step: np.ndarray, kind: np.ndarray, path: np.ndarray,
              group: np.ndarray) -> None:
        """Count decisions (int64 arrays of one length); rows with ``step < 0`` (plain
        rules) are skipped."""
        keep = step >= 0
        if keep.any():
            np.add.at(self.counts, (rule[keep], step[keep], kind[keep], path[keep] + 1,
                                    group[keep]), 1)


def journey_frame(rules: Sequence[Rule], counts: np.ndarray,
                  entered: np.ndarray | None) -> pd.DataFrame:
    """The non-zero counts of a :class:`JourneyBook` as a table (:data:`JOURNEY_COLUMNS`),
    in rule, node, kind, path, group order, after one ``enter`` row per journey rule
    (``step`` -1, ``group`` "all": the engine's ``entered`` counter, when given)."""
    rows = []
    for r, rule in enumerate(rules):
        if rule.journey is None:
            continue
        prog = compile_journey(rule)
        if entered is not None:
            rows.append((rule.id, -1, "entry", "enter", -1, "", "all", int(entered[r])))
        for node, kind, slot, group in zip(*np.nonzero(counts[r]), strict=True):
            path = int(slot) - 1
            name = (prog.path_names[int(prog.first_path[node]) + path] if path >= 0 else "")
            rows.append((rule.id, int(node), prog.labels[node], ALL_KINDS[kind], path, name,
                         GROUPS[group], int(counts[r, node, kind, slot, group])))
    return pd.DataFrame(rows, columns=list(JOURNEY_COLUMNS))
