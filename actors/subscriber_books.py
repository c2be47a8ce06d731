"""Per-subscriber books: each subscriber's email counts, ground truth and organic totals.

The :class:`~actors.truth.Ledger` sums everything per (day, source, arm, group); a
per-segment analysis needs the same numbers per subscriber, so that any subscriber
attribute (or a label added to the subscriber table later) can group them after the run.
:class:`SubscriberBooks` keeps them when ``SimulationConfig.record_subscribers`` is set:

* per (subscriber, email source): ``sends`` and the responses attributed to those emails
  within the reward window (``opens, clicks, orders, revenue, unsubscribes``), and the
  ground truth of the delivered emails on the same basis as the run's truth table
  (``expected_opens, expected_clicks, expected_orders, expected_revenue`` within the
  reward window and the run, ``expected_incremental_orders`` before the run's end);
* per subscriber: every order and all revenue (``orders_all, revenue_all``, organic
  included).

Everything is an integer (money in cents, truth in the fixed point of
:func:`actors.metrics.to_fixed`), so sums over subscribers equal the run's counters
exactly, whatever the sharding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from actors.metrics import FIXED_SCALE, GROUPS, to_fixed

__all__ = ["SUBSCRIBER_EMAIL_COLUMNS", "SUBSCRIBER_SITE_COLUMNS", "SubscriberBooks"]

#: Counted per (subscriber, email source): responses, then truth sums.
SUBSCRIBER_EMAIL_COLUMNS: tuple[str, ...] = (
    "sends", "opens", "clicks", "orders", "revenue", "unsubscribes",
    "expected_opens", "expected_clicks", "expected_orders", "expected_revenue",
    "expected_incremental_orders")
#: Counted per subscriber (every order, organic included).
SUBSCRIBER_SITE_COLUMNS: tuple[str, ...] = ("orders_all", "revenue_all")
_E = {c: i for i, c in enumerate(SUBSCRIBER_EMAIL_COLUMNS)}
_TRUTH = {"expected_opens": "p_open", "expected_clicks": "p_click",
          "expected_orders": "p_purchase", "expected_revenue": "expected_revenue",
          "expected_incremental_orders": "p_incremental_purchase"}
_CENTS = ("revenue", "revenue_all")


class SubscriberBooks:
    """Per-subscriber counters of subscribers ``[start, start + n)``.

    Parameters
    ----------
    n : int
        Subscribers of the shard.
    n_sources : int
        Email sources (campaign and rules: ``MetricsLayout.site``).
    """

    def __init__(self, n: int, n_sources: int) -> None:
        self.email = np.zeros((n, n_sources, len(SUBSCRIBER_EMAIL_COLUMNS)), np.int64)
        self.site = np.zeros((n, len(SUBSCRIBER_SITE_COLUMNS)), np.int64)

    def deliver(self, row: np.ndarray, source: np.ndarray,
                pr: dict[str, np.ndarray]) -> None:
        """Book delivered emails: one send each and their true probabilities ``pr``
        (:func:`actors.truth.true_probabilities`; revenue in currency units)."""
        if len(row) == 0:
            return
        np.add.at(self.email[:, :, _E["sends"]], (row, source), 1)
        for col, key in _TRUTH.items():
            np.add.at(self.email[:, :, _E[col]], (row, source), to_fixed(pr[key]))

    def respond(self, row: np.ndarray, source: np.ndarray, column: str,
                values: np.ndarray | int = 1) -> None:
        """Add attributed responses (``column`` of :data:`SUBSCRIBER_EMAIL_COLUMNS`;
        revenue in cents)."""
        if len(row):
            np.add.at(self.email[:, :, _E[column]], (row, source), values)

    def purchase(self, row: np.ndarray, revenue_cents: np.ndarray) -> None:
        """Add orders (any, organic included) and their revenue in cents."""
        if len(row):
            np.add.at(self.site[:, 0], row, 1)
            np.add.at(self.site[:, 1], row, revenue_cents)

    def frame(self, start: int, group: np.ndarray, sources: tuple[str, ...]) -> pd.DataFrame:
        """The books as a long table.

        Parameters
        ----------
        start : int
            First subscriber id.
        group : ndarray of int64, shape (n,)
            Group code of each subscriber (0 treatment, 1 holdout).
        sources : tuple of str
            Source labels (``MetricsLayout.sources``; the last one is ``site``).

        Returns
        -------
        DataFrame
            Columns ``subscriber, group, source`` and every column of
            :data:`SUBSCRIBER_EMAIL_COLUMNS` and :data:`SUBSCRIBER_SITE_COLUMNS` (float;
            revenue in currency units, truth as probabilities / expectations). One row
            per subscriber with source ``site`` (its organic totals, email columns 0),
            and one per (subscriber, email source) that got an email (site columns 0).
        """
        n, k, _ = self.email.shape
        sub = np.arange(n)
        r, s = np.nonzero(self.email[:, :, _E["sends"]] > 0)
        rows = np.concatenate([sub, r])
        src = np.concatenate([np.full(n, k), s])
        out = {"subscriber": rows.astype(np.int64) + int(start),
               "group": np.array(GROUPS, dtype=object)[group[rows]],
               "source": np.array(sources, dtype=object)[src]}
        for j, col in enumerate(SUBSCRIBER_EMAIL_COLUMNS):
            v = np.concatenate([np.zeros(n, np.int64), self.email[r, s, j]]).astype(np.float64)
            out[col] = v / FIXED_SCALE if col.startswith("expected_") else (
                v / 100.0 if col in _CENTS else v)
        for j, col in enumerate(SUBSCRIBER_SITE_COLUMNS):
            v = np.concatenate([self.site[:, j], np.zeros(len(r), np.int64)]).astype(np.float64)
            out[col] = v / 100.0 if col in _CENTS else v
        return pd.DataFrame(out)
