"""The campaign schedule of a shard: which subscribers get the campaign email in a tick.

The campaign (:class:`~actors.config.CampaignConfig`) goes out every ``every_days`` days
from the run's first day, at ``local_hour`` in each subscriber's time zone. A
subscriber's send time on UTC day ``d`` is ``d * DAY + offset`` with ``offset =
local_hour * 3600 - utc_offset_minutes * 60`` seconds.
"""

from __future__ import annotations

import numpy as np

from actors.config import CampaignConfig
from sim.clock import DAY

__all__ = ["CampaignSchedule"]


class CampaignSchedule:
    """Send times of the campaign for one shard's subscribers.

    Parameters
    ----------
    campaign : CampaignConfig
    start : int
        The run's start, seconds since the epoch (no send before it).
    utc_offset_minutes : ndarray, shape (n,)
        The shard's subscribers' UTC offsets, minutes.
    """

    def __init__(self, campaign: CampaignConfig, start: int,
                 utc_offset_minutes: np.ndarray) -> None:
        self.every_days = int(campaign.every_days)
        self.start = int(start)
        #: Seconds from UTC midnight to each subscriber's send time, int64 (n,).
        self.offset = campaign.local_hour * 3600 - utc_offset_minutes.astype(np.int64) * 60
        self._range = (int(self.offset.min()), int(self.offset.max()))

    def due(self, t0: int, t1: int, subscribed: np.ndarray
            ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Campaign sends due in ``(t0, t1]`` (seconds since the epoch).

        Parameters
        ----------
        t0, t1 : int
            The tick's bounds.
        subscribed : ndarray of bool, shape (n,)
            Which subscribers may receive email.

        Returns
        -------
        list of (rows, times)
            Per campaign day touching the tick: the shard-local rows (int64) and their
            send times (int64, s), in increasing day order.
        """
        out = []
        first_day = self.start // DAY
        lo_off, hi_off = self._range
        for d in range((t0 - hi_off) // DAY, (t1 - lo_off) // DAY + 1):
            if d < first_day or (d - first_day) % self.every_days:
                continue
            if d * DAY + hi_off <= t0 or d * DAY + lo_off > t1:
                continue
            times = d * DAY + self.offset
            due = (times > t0) & (times <= t1) & (times >= self.start)
            due &= subscribed
            if due.any():
                rows = np.flatnonzero(due)
                out.append((rows, times[rows]))
        return out
