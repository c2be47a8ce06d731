"""Which email of its journey each journey send is: the series index of a fire.

The response model answers the k-th email of a series differently from the first, so a
shard numbers the fires of every journey instance: 0 for the first email an entry
sends, 1 for the second, and so on. Only first attempts count (a retry resends the same
email). A subscriber runs at most one instance of a journey at a time (the engine's
contract, docs/journeys.md), so one slot per (journey rule, subscriber) holds the
instance's entry time and its count: a fire with another entry time starts a new
series. The memory is 9 bytes per subscriber per journey rule, whatever the run length.
"""

from __future__ import annotations

import numpy as np

from actors.plan import RunPlan

__all__ = ["SeriesCounter"]


class SeriesCounter:
    """Series indices of the journey fires of subscribers ``[start, stop)``.

    Parameters
    ----------
    plan : RunPlan
        The run's journey rules (``plan.journey_slot``).
    start, stop : int
        The shard's subscriber ids.
    """

    def __init__(self, plan: RunPlan, start: int, stop: int) -> None:
        self.start = int(start)
        self.slot = plan.journey_slot
        n_journeys = int((self.slot >= 0).sum())
        self.entered = np.full((n_journeys, stop - start), -1, np.int64)
        self.count = np.zeros((n_journeys, stop - start), np.uint8)

    def index(self, rule: np.ndarray, subscriber: np.ndarray, entered_at: np.ndarray,
              attempt: np.ndarray) -> np.ndarray:
        """The series index of each fire, int64 (m,): -1 for plain rules' fires and
        retries (attempt > 1), else the number of earlier first-attempt fires of the same
        instance (rule, subscriber, entered_at). The fires must come in decision order
        (by time) and those of earlier calls must have been passed before."""
        m = len(rule)
        out = np.full(m, -1, np.int64)
        slot = self.slot[rule] if m else np.zeros(0, np.int64)
        sel = np.flatnonzero((slot >= 0) & (attempt == 1))
        if len(sel) == 0:
            return out
        s, row, ent = slot[sel], subscriber[sel] - self.start, entered_at[sel]
        # group the fires by instance, keeping their order within each instance
        order = np.lexsort((np.arange(len(sel)), ent, row, s))
        s, row, ent = s[order], row[order], ent[order]
        new_group = np.r_[True, (s[1:] != s[:-1]) | (row[1:] != row[:-1])
                          | (ent[1:] != ent[:-1])]
        starts = np.flatnonzero(new_group)
        rank = np.arange(len(s)) - np.repeat(starts, np.diff(np.r_[starts, len(s)]))
        same = self.entered[s, row] == ent   # the instance already sent in earlier calls
        base = np.where(same, self.count[s, row].astype(np.int64), 0)
        k = base[starts].repeat(np.diff(np.r_[starts, len(s)])) + rank
        out[sel[order]] = k
        # the slot keeps the latest instance of each (rule, subscriber): the last row of
        # its run here (instances of one subscriber come in entry order)
        last = np.flatnonzero(np.r_[(s[1:] != s[:-1]) | (row[1:] != row[:-1]), True])
        self.entered[s[last], row[last]] = ent[last]
        self.count[s[last], row[last]] = np.minimum(k[last] + 1, 255).astype(np.uint8)
        return out
