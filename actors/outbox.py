"""The send queue of a shard, and the email batch a delivery hands to the world.

An email enters the :class:`Outbox` when it becomes due (a trigger fire or a campaign
send) and gets its id there (``email_id = subscriber << 24 | seq`` from the
per-subscriber counter, :mod:`actors.emails`). Emails the policy decides wait for the
learner's arm (``awaiting``); :meth:`Outbox.apply_arms` sets it ``decision_lag_ticks``
ticks later, with the delivery time (the tick boundary, or the ``send_hour`` arm's
local hour). Emails the policy does not decide are delivered once the same lag has
passed, so every email of a tick leaves the outbox at the same boundary whatever the
policy. :meth:`Outbox.take_ready` removes the emails due for delivery;
:func:`email_batch` turns them into the response model's :class:`~sim.response.EmailBatch`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from actors.emails import campaign_code, email_id
from actors.errors import InternalError
from actors.messages import Arms, Choices
from actors.plan import RunPlan
from sim.clock import DAY
from sim.response import EmailBatch

__all__ = ["Outbox", "email_batch"]

#: Columns of the outbox, int64 (n,) unless noted.
_COLS = ("email_id", "subscriber", "due", "source", "arm", "propensity", "deliver_at",
         "due_tick", "email", "series", "alert_product", "drop_fraction", "entered_at",
         "step")


class Outbox:
    """Emails of subscribers ``[start, stop)`` that are due but not yet delivered.

    Parameters
    ----------
    start, stop : int
        The shard's subscriber ids.
    context_dim : int or None
        Length ``d`` of the stored context rows (None: no contexts stored).

    Attributes
    ----------
    cols : dict of str -> ndarray, each of length n
        ``email_id``, ``subscriber``, ``source`` and ``arm`` (-1: not decided yet or
        not by the policy); ``due`` and ``deliver_at`` (-1: not set), seconds since the
        epoch; ``due_tick`` (the tick the email became due in); ``propensity``
        (float64, 1 for emails not decided by the policy); ``email`` (the email of a
        journey send, an index into the journey's emails; -1 otherwise) and ``series``
        (its place in the journey instance's series, :mod:`actors.series`; -1
        otherwise); ``alert_product`` (the product a catalog journey's send is an alert
        about, -1 otherwise) and ``drop_fraction`` (float64, its price drop as a fraction
        of the price before, 0 for none); ``entered_at`` and ``step`` (the trigger id's
        parts of a rule's send: when its instance entered, s, and its journey node, -1 for
        a rule without steps; for a campaign email its due time and -1); ``context``
        (float64, ``(n, d)``, when stored).
    awaiting : ndarray of bool, shape (n,)
        Rows waiting for the learner's arm.
    seq : ndarray of int64, shape (stop - start,)
        Emails made so far per subscriber.
    """

    def __init__(self, start: int, stop: int, context_dim: int | None) -> None:
        self.start, self.stop = int(start), int(stop)
        z = np.zeros(0, np.int64)
        self.cols: dict[str, np.ndarray] = {k: z for k in _COLS}
        self.cols["propensity"] = np.zeros(0)
        self.cols["drop_fraction"] = np.zeros(0)
        if context_dim is not None:
            self.cols["context"] = np.zeros((0, context_dim))
        self.awaiting = np.zeros(0, bool)
        self.seq = np.zeros(stop - start, np.int64)

    def __len__(self) -> int:
        return len(self.cols["email_id"])

    def enqueue(self, subscriber: np.ndarray, due: np.ndarray, source: np.ndarray,
                decided: bool, tick: int,
                contexts: Callable[[np.ndarray], np.ndarray] | None = None,
                email: np.ndarray | None = None, series: np.ndarray | None = None,
                alert_product: np.ndarray | None = None,
                drop_fraction: np.ndarray | None = None,
                entered_at: np.ndarray | None = None,
                step: np.ndarray | None = None) -> None:
        """Add emails that became due in ``tick``.

        Parameters
        ----------
        subscriber, due, source : ndarray of int64, shape (m,)
            Recipient, due time (s) and source code of each email.
        decided : bool
            The policy chooses their arm (they await the learner).
        tick : int
            The current tick.
        contexts : callable, optional
            ``contexts(rows)``: float64 ``(m, d)`` feature rows of the shard-local
            subscriber rows ``rows`` (needed when contexts are stored).
        email, series : ndarray of int64, shape (m,), optional
            Journey email and series index of each email (None: all -1).
        alert_product : ndarray of int64, shape (m,), optional
            Product of each alert (-1: not an alert; None: all -1).
        drop_fraction : ndarray of float64, shape (m,), optional
            Price drop of each alert's product (None: all 0).
        entered_at, step : ndarray of int64, shape (m,), optional
            Of each rule send: its instance's entry time (s) and journey node (-1: a
            rule without steps). None: ``due`` and -1 (campaign emails).
        """
        m = len(subscriber)
        if m == 0:
            return
        email = np.full(m, -1, np.int64) if email is None else email
        series = np.full(m, -1, np.int64) if series is None else series
        alert = np.full(m, -1, np.int64) if alert_product is None else alert_product
        drop = np.zeros(m) if drop_fraction is None else drop_fraction
        entered = due if entered_at is None else entered_at
        node = np.full(m, -1, np.int64) if step is None else step
        order = np.lexsort((email, source, subscriber, due))
        subscriber, due, source = subscriber[order], due[order], source[order]
        email, series = email[order], series[order]
        alert, drop = alert[order], drop[order]
        entered, node = entered[order], node[order]
        row = subscriber - self.start
        # per-subscriber rank of each email among this batch
        seq = self.seq[row].copy()
        if len(np.unique(row)) != m:
            first = np.zeros(m, np.int64)
            srt = np.argsort(row, kind="stable")
            rs = row[srt]
            starts = np.r_[0, np.flatnonzero(rs[1:] != rs[:-1]) + 1]
            run = np.arange(m) - np.repeat(starts, np.diff(np.r_[starts, m]))
            first[srt] = run
            seq = seq + first
        np.add.at(self.seq, row, 1)
        new = {"email_id": email_id(subscriber, seq), "subscriber": subscriber, "due": due,
               "source": source, "arm": np.full(m, -1, np.int64),
               "propensity": np.ones(m), "deliver_at": np.full(m, -1, np.int64),
               "due_tick": np.full(m, tick, np.int64), "email": email, "series": series,
               "alert_product": alert, "drop_fraction": drop, "entered_at": entered,
               "step": node}
        if "context" in self.cols:
            assert contexts is not None
            new["context"] = contexts(row)
        self.cols = {k: np.concatenate([self.cols[k], new[k]]) for k in self.cols}
        self.awaiting = np.concatenate([self.awaiting, np.full(m, decided, bool)])

    def choices(self, tick: int, with_context: bool) -> Choices:
        """The emails of ``tick`` that await the learner's arm."""
        sel = self.awaiting & (self.cols["due_tick"] == tick)
        c = self.cols
        return Choices(c["email_id"][sel], c["subscriber"][sel], c["due"][sel],
                       c["source"][sel], c["context"][sel] if with_context else None,
                       c["entered_at"][sel], c["step"][sel])

    def apply_arms(self, arms: Arms | None, due_tick: int, t0: int,
                   send_hours: Callable[[], np.ndarray] | None,
                   utc_offset_minutes: np.ndarray) -> None:
        """Set the learner's arms of the emails offered in ``due_tick`` and their delivery
        time.

        Parameters
        ----------
        arms : Arms or None
            The learner's answer for ``due_tick`` (all shards' emails; None: none).
        due_tick : int
        t0 : int
            The current tick boundary, seconds since the epoch: the delivery time.
        send_hours : callable or None
            When the policy decides ``send_hour``: ``send_hours()`` is the local send
            hour of each arm, int64 (k,); delivery is then deferred to the first
            boundary at or after that local hour.
        utc_offset_minutes : ndarray, shape (stop - start,)
            The shard's subscribers' UTC offsets, minutes.
        """
        box = self.cols
        need = np.flatnonzero(self.awaiting & (box["due_tick"] == due_tick))
        if len(need) == 0:
            return
        if arms is None:
            raise InternalError(f"arms: shard [{self.start}, {self.stop}) awaits arms for "
                                f"{len(need)} emails, got none")
        ids = arms.email_id
        mine = (ids >> 24 >= self.start) & (ids >> 24 < self.stop)
        ids, arm, prop = ids[mine], arms.arm[mine], arms.propensity[mine]
        order = np.argsort(ids)
        pos = np.searchsorted(ids[order], box["email_id"][need])
        pos = np.minimum(pos, len(ids) - 1) if len(ids) else pos
        if len(ids) == 0 or not np.array_equal(ids[order][pos], box["email_id"][need]):
            raise InternalError(f"arms: missing arms for emails of shard [{self.start}, "
                                f"{self.stop})")
        box["arm"][need] = arm[order][pos]
        box["propensity"][need] = prop[order][pos]
        deliver = np.full(len(need), t0, np.int64)
        if send_hours is not None:
            hours = send_hours()[box["arm"][need]]
            off = utc_offset_minutes[box["subscriber"][need] - self.start].astype(np.int64) * 60
            local = (t0 + off) % DAY
            deliver = t0 + (hours * 3600 - local) % DAY
        box["deliver_at"][need] = deliver
        self.awaiting[need] = False

    def take_ready(self, now: int, fixed_before: int) -> dict[str, np.ndarray] | None:
        """Remove and return the emails to deliver at ``now`` (s).

        Emails not decided by the policy that became due in a tick ``<= fixed_before``
        are delivered now; decided ones at their ``deliver_at``. Returns their columns
        (see :attr:`cols`) or None when there are none.
        """
        box = self.cols
        if len(box["email_id"]) == 0:
            return None
        fixed = (box["deliver_at"] < 0) & ~self.awaiting & (box["due_tick"] <= fixed_before)
        box["deliver_at"][fixed] = now
        ready = (box["deliver_at"] >= 0) & (box["deliver_at"] <= now)
        if not ready.any():
            return None
        go = {k: v[ready] for k, v in box.items()}
        self.cols = {k: v[~ready] for k, v in box.items()}
        self.awaiting = self.awaiting[~ready]
        return go


def email_batch(plan: RunPlan, campaign_style: int, engagement: np.ndarray,
                go: dict[str, np.ndarray], row: np.ndarray, arm: np.ndarray,
                now: int) -> EmailBatch:
    """The emails of ``go`` as the response model sees them, with the variant of ``arm``.

    Parameters
    ----------
    plan : RunPlan
        The run's rules and variants.
    campaign_style : int
        Subject style code of campaign emails not decided by the policy.
    engagement : ndarray of float64, shape (stop - start,)
        The shard's subscribers' engagement scores (personalization level of rule-based
        strategies).
    go : dict of str -> ndarray, shape (m,)
        At least ``subscriber``, ``email_id``, ``source`` and ``email`` of each email;
        ``series`` (a journey send's place in its series, -1 otherwise) sets the
        response model's ``series_index``, ``alert_product`` and ``drop_fraction`` (when
        present) its alert fields.
    row : ndarray of int64, shape (m,)
        Shard-local row of each recipient.
    arm : ndarray of int64, shape (m,)
        Arm of each email (-1: the fixed variant).
    now : int
        Delivery time, seconds since the epoch.
    """
    source = go["source"]
    m = len(source)
    trig = source > 0
    kind = np.zeros(m, np.int64)
    urgency = np.zeros(m, bool)
    incentive = np.full(m, plan.campaign_incentive)
    if len(plan.rule_kind):
        r = np.where(trig, source - 1, 0)
        e = np.maximum(go["email"], 0)
        kind = np.where(trig, plan.rule_kind[r], 0)
        urgency = np.where(trig, plan.content_urgency[r, e], False)
        incentive = np.where(trig, plan.content_incentive[r, e], incentive)
    fields = {"subject_style": np.where(trig, 0, campaign_style).astype(np.int64),
              "strategy": np.full(m, -1, np.int64), "personalization": np.zeros(m, np.int64),
              "send_hour": np.full(m, -1, np.int64), "cta": np.full(m, -1, np.int64),
              "urgency": urgency, "incentive": incentive}
    decided = arm >= 0
    variants = plan.variants
    if variants is not None and decided.any():
        a = np.where(decided, arm, 0)
        cols = variants.columns()
        for name, value in cols.items():
            fields[name] = np.where(decided, value[a], fields[name])
        if "strategy" in cols:
            # a strategy arm that does not fix the personalization level (-1, or no such
            # element) gets the rule-based one: high when engagement > 0.6
            rule_level = (engagement[row] > 0.6).astype(np.int64)
            level = cols.get("personalization", np.full(len(variants.arm_names), -1))[a]
            fields["personalization"] = np.where(decided & (level < 0), rule_level,
                                                 fields["personalization"])
    return EmailBatch(
        subscriber=go["subscriber"], time=np.full(m, now, np.int64),
        campaign=campaign_code(go["email_id"], source), kind=kind, **fields,
        series_index=np.maximum(go["series"], 0) if "series" in go else np.zeros(m, np.int64),
        alert_product=go.get("alert_product", np.full(m, -1, np.int64)),
        drop_fraction=go.get("drop_fraction", np.zeros(m)))
