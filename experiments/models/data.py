"""A simulated history with known truth: the data segments and scores are checked on.

:func:`simulate_history` runs one simulated world (no trigger rules) for ``days`` days,
one step per day, and delivers a campaign email to every subscriber each ``every_days``
days at midnight UTC (campaign code = day number; an unsubscribed subscriber's email is
not delivered). At every cut day in ``cuts`` it records, before that day's email goes
out, the simulator's truth (:func:`sim.truth.outlook` with that email) and who is still
subscribed. After the run the observed outcomes of every cut are read from the log:

* ``opened`` -- an ``email_open`` of the cut's campaign;
* ``unsubscribed`` -- an ``unsubscribe`` from it;
* ``purchased`` -- a ``purchase_completed`` in ``(cut, cut + horizon_days]``;
* ``inactive`` -- no ``page_view`` in ``(cut, cut + inactive_days]``;
* ``churned`` -- ``inactive`` or ``unsubscribed``.

Features at a cut use only the events up to it, so a model trained at one cut and
tested at a later one is a time-based split.

With ``holdout > 0`` the cut days' emails are a randomized send: the subscribers with
``hash_unit(id, "history-holdout-<seed>") < holdout`` do not get them (``Cut.treated``
says who did) -- the data an uplift model is trained on. Other days' emails go to all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policies.ab import hash_unit
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from sim import DAY, EmailBatch, Population, World
from sim.truth import outlook

__all__ = ["LABELS", "Cut", "SimulatedHistory", "simulate_history"]

#: Observed outcome columns of a cut.
LABELS: tuple[str, ...] = ("opened", "unsubscribed", "purchased", "inactive", "churned")


@dataclass(frozen=True)
class Cut:
    """One cut time: ``now`` (s), the truth and the observed outcomes per subscriber
    (index ``subscriber``), who was subscribed at ``now`` and who was sent the cut's
    email (bool Series; all subscribed ones without a holdout), and the subscriber table
    at ``now`` (what the shop knows of each subscriber, ``Population.to_pandas``)."""

    now: int
    truth: pd.DataFrame
    labels: pd.DataFrame
    subscribed: pd.Series
    treated: pd.Series | None = None
    table: pd.DataFrame | None = None


@dataclass(frozen=True)
class SimulatedHistory:
    """The whole run's event log, its start (s) and the cuts (in time order)."""

    events: EventBatch
    start: int
    cuts: tuple[Cut, ...]


def simulate_history(n: int, seed: int, *, days: int = 56, cuts: tuple[int, ...] = (28, 42),
                     every_days: int = 7, horizon_days: int = 7,
                     inactive_days: int = 14, preset: Any = "retail",
                     holdout: float = 0.0, incentive: float = 0.0) -> SimulatedHistory:
    """Run the world and record truth and outcomes at the cut days (see the module);
    ``preset``: a :func:`sim.get_preset` name, a Preset or a mapping of its fields;
    ``holdout``: share in [0, 1) of subscribers not sent the cut days' emails;
    ``incentive``: the discount in [0, 1) of the cut days' emails (the others have none)."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout: expected a fraction in [0, 1), got {holdout!r}")
    if not 0.0 <= incentive < 1.0:
        raise ValueError(f"incentive: expected a fraction in [0, 1), got {incentive!r}")
    if any(not every_days <= c <= days - max(horizon_days, inactive_days) for c in cuts):
        raise ValueError(f"cuts: expected days in [{every_days}, "
                         f"{days - max(horizon_days, inactive_days)}], got {cuts}")
    if any(c % every_days for c in cuts):
        raise ValueError(f"cuts: expected multiples of every_days={every_days}, got {cuts}")
    world = World(Population.generate(n, seed=seed, preset=preset), seed=seed)
    start = t = world.now
    ids = world.population.ids
    held = hash_unit(ids, f"history-holdout-{seed}") < holdout
    logs: list[EventBatch] = []
    snaps: list[tuple[int, pd.DataFrame, pd.Series, pd.Series, pd.DataFrame]] = []
    for d in range(days):
        if d % every_days == 0:
            pop = world.population
            email = EmailBatch.make(ids, t, campaign=d, kind="campaign",
                                    incentive=incentive if d in cuts else 0.0)
            live = pop.subscribed
            if d in cuts:
                truth = outlook(pop, t, horizon_days=horizon_days,
                                inactive_days=inactive_days, email=email)
                live = live & ~held
                snaps.append((t, truth, pd.Series(pop.subscribed.copy(), index=truth.index),
                              pd.Series(live.copy(), index=truth.index), pop.to_pandas(t)))
            world.send(email.take(np.flatnonzero(live)))
        logs.append(world.step(t, t + DAY))
        t += DAY
    events = EventBatch.concat(logs)
    out = []
    for now, truth, subscribed, treated, table in snaps:
        labels = _outcomes(events, ids, now, (now - start) // DAY, horizon_days, inactive_days)
        out.append(Cut(now, truth, labels, subscribed, treated, table))
    return SimulatedHistory(events, start, tuple(out))


def _outcomes(ev: EventBatch, ids: np.ndarray, now: int, campaign: int, horizon_days: int,
              inactive_days: int) -> pd.DataFrame:
    n, lo = len(ids), int(ids[0])

    def who(mask: np.ndarray) -> np.ndarray:
        hit = np.zeros(n, bool)
        hit[ev.subscriber[mask] - lo] = True
        return hit

    after = ev.time > now
    camp = ev.column("campaign_id", like="int") == campaign
    code = EVENT_TYPES.code
    opened = who(after & camp & (ev.type == code("email_open")))
    unsub = who(after & camp & (ev.type == code("unsubscribe")))
    bought = who(after & (ev.time <= now + horizon_days * DAY)
                 & (ev.type == code("purchase_completed")))
    visited = who(after & (ev.time <= now + inactive_days * DAY)
                  & (ev.type == code("page_view")))
    return pd.DataFrame({"opened": opened, "unsubscribed": unsub, "purchased": bought,
                         "inactive": ~visited, "churned": ~visited | unsub},
                        index=pd.Index(ids, name="subscriber"))
