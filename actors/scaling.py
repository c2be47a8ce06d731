"""A model of a Ray run's wall time on ``N`` nodes of ``C`` cores, from measured constants.

With ``decision_lag_ticks = 1`` (the default) every tick is a barrier: all shards step
(in parallel), then the learner decides every email of the tick (one process), then the
driver submits the next tick. So, for ``S`` subscribers, ``T`` ticks, ``n`` shards of
``s = S / n`` subscribers, ``k = ceil(n / N)`` shards on the busiest node and
``q = max(1, k / C)`` (shards sharing a node's cores)::

    wall = R(k, C)                               Ray start-up, finish and shut-down
         + (i0 + i1 * s) * q                     building the shards (population)
         + T * (a + b * s) * q                   the shards' ticks
         + T * (h0 + h1 * n) + h2 * E            the driver's hop (Ray calls, messages)
         + T * l0 + l1 * E                       the learner: per tick, per email
         + K * kappa * s * q                     K checkpoints (state serialization)

with ``E = eps * S * T`` emails the learner decides and ``R(k, C) = r0 + r1 * k / C``
(the ``k`` shard processes of a node start on its ``C`` cores). The
constants are measured by ``python -m experiments.bench scaling`` (inline runs of one
shard and the learner at two sizes, Ray's stub-actor loop at several shard counts, tiny
Ray runs); the model is checked there against measured 1-, 2- and 4-shard Ray runs.
On a machine shared with other work, ``cores`` is what the shards actually get (the
benchmark measures it); on dedicated nodes it is the node's core count.

Two terms do not shrink with more nodes: ``T * (h0 + h1 * n)`` (one driver submits and
collects every shard's call every tick: it grows with ``n``) and ``T * l0 + l1 * E``
(one learner decides every email; ``E`` grows with ``S``). They bound the wall time of
any cluster from below; docs/cluster.md gives the figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from policies.errors import SpecError

__all__ = ["ScalingConstants", "fit_line", "predict_wall"]


@dataclass(frozen=True)
class ScalingConstants:
    """The model's measured constants (seconds, per subscriber, tick, shard or email).

    Attributes
    ----------
    shard_tick_s, subscriber_tick_s : float
        ``a``, ``b``: CPU seconds of one shard per tick, and per subscriber and tick
        (its own work; Ray's per-call cost is in ``h``).
    shard_init_s, subscriber_init_s : float
        ``i0``, ``i1``: seconds to build a shard, and per subscriber.
    hop_s, hop_shard_s : float
        ``h0``, ``h1``: the per-tick coordination, ``h(n) = h0 + h1 * n`` seconds per
        tick: the stub-actor loop's wall per tick (Ray calls, serialization and
        scheduling in the driver, the shards and the learner; no work) at one shard, and
        the serial CPU (driver and learner) that each more shard adds per tick.
    hop_email_s : float
        ``h2``: what each email adds to the hop (its choice and reward shipped from a
        shard to the learner, its arm back), seconds.
    learner_tick_s, learner_email_s : float
        ``l0``, ``l1``: the learner's seconds per tick and per email decided.
    emails_per_subscriber_tick : float
        ``eps``: emails the learner decides per subscriber and tick (of the measured
        configuration: the bench's weekly campaign, three rules, every email decided).
    startup_s, startup_shard_s : float
        ``r0``, ``r1``: a Ray run's fixed cost (actor start-up, finish, shut-down), and
        the core-seconds each shard's start-up takes on its node (process, imports).
    checkpoint_subscriber_s : float
        ``kappa``: seconds to serialize one subscriber's state for a checkpoint.
    """

    shard_tick_s: float
    subscriber_tick_s: float
    shard_init_s: float
    subscriber_init_s: float
    hop_s: float
    hop_shard_s: float
    hop_email_s: float
    learner_tick_s: float
    learner_email_s: float
    emails_per_subscriber_tick: float
    startup_s: float
    startup_shard_s: float
    checkpoint_subscriber_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fit_line(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares ``(intercept, slope)`` of ``y = intercept + slope * x`` (two or more
    distinct ``x``)."""
    import numpy as np

    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if len(xa) != len(ya) or len(np.unique(xa)) < 2:
        raise SpecError(f"fit_line: expected two or more distinct x, got {list(xa)}")
    slope, intercept = np.polyfit(xa, ya, 1)
    return float(intercept), float(slope)


def predict_wall(c: ScalingConstants, subscribers: int, ticks: int, nodes: int = 1,
                 cores: float = 1.0, shards: int | None = None,
                 checkpoints: int = 0, hop_tick_s: float | None = None,
                 startup_s: float | None = None) -> dict[str, float]:
    """The model's wall time (s) of a run, and its terms.

    Parameters
    ----------
    c : ScalingConstants
    subscribers, ticks : int
        ``S`` and ``T``.
    nodes : int
        ``N``.
    cores : float
        ``C``: cores each node gives the shards (on a shared machine: measured).
    shards : int, optional
        ``n`` (default: one per core, ``N * C``).
    checkpoints : int
        ``K``: checkpoints taken in the run.
    hop_tick_s, startup_s : float, optional
        The hop per tick and ``R(k)`` measured for this very run's shards and emails
        per tick (instead of the lines).

    Returns
    -------
    dict
        ``wall_s`` and its terms ``startup_s``, ``init_s``, ``shards_s``, ``hop_s``,
        ``learner_s``, ``checkpoint_s``; ``shards``, ``subscribers_per_shard``,
        ``shards_per_node``, ``oversubscription`` (``q``).
    """
    if nodes < 1 or cores <= 0 or subscribers < 1 or ticks < 1:
        raise SpecError(f"predict_wall: expected nodes >= 1, cores > 0, subscribers and "
                        f"ticks >= 1, got {nodes}, {cores}, {subscribers}, {ticks}")
    n = shards if shards is not None else max(1, int(nodes * cores))
    k = math.ceil(n / nodes)
    s = subscribers / n
    q = max(1.0, k / cores)
    emails = c.emails_per_subscriber_tick * subscribers * ticks
    terms = {
        "startup_s": (c.startup_s + c.startup_shard_s * k / cores) if startup_s is None
        else startup_s,
        "init_s": (c.shard_init_s + c.subscriber_init_s * s) * q,
        "shards_s": ticks * (c.shard_tick_s + c.subscriber_tick_s * s) * q,
        "hop_s": (ticks * (c.hop_s + c.hop_shard_s * n) + c.hop_email_s * emails
                  if hop_tick_s is None else ticks * hop_tick_s),
        "learner_s": ticks * c.learner_tick_s + c.learner_email_s * emails,
        "checkpoint_s": checkpoints * c.checkpoint_subscriber_s * s * q,
    }
    return {"wall_s": sum(terms.values()), **terms, "shards": float(n),
            "subscribers_per_shard": s, "shards_per_node": float(k),
            "oversubscription": q}
