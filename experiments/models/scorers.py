"""The scorers a spec can refresh during a run (``scoring.scorers``), and their fitting.

A registered scorer has a name, the columns it produces (with their domain, so that rule
checks judge segment tests on them) and a ``fit(training, seed)`` that returns a fitted
:class:`~policies.segments.dynamic.Scorer`. Scorers are fitted **on a prior run**: a
simulated history of ``train_subscribers`` other subscribers of the same preset (seed
derived from the spec's seed, :func:`training_seed`) over ``train_days`` days with a
campaign email every 7 days (:func:`experiments.models.data.simulate_history`; with
``train_holdout > 0`` the cut's email is a randomized send, as an uplift model needs); the
training cut is the last multiple of 7 days that leaves 14 days of outcomes after it
(``7 * floor((train_days - 14) / 7)``), features from the events up to the cut, outcomes
after it. So nothing of the run itself is used to fit, and the same fitted scorers
serve every arm and replication (fitted once per spec: :func:`fit_scorers` caches).

Built-in: ``propensity`` (``p_purchase_7d``, ``p_churn``, ``p_open``:
:func:`~experiments.models.propensity.fit_propensity` per target), ``clusters``
(``cluster``: :class:`~policies.segments.clusters.BehaviorClusters`, k by the BIC elbow)
and ``uplift`` (``uplift``: :class:`~policies.segments.uplift.UpliftModel`, the
X-learner, on the prior run's randomized send: the incremental chance of a purchase
within 7 days of the cut's email; needs ``train_holdout > 0``; reads
:data:`UPLIFT_ATTRIBUTES` of the subscriber table beside the history features).
Another scorer plugs in with one line, e.g.::

    register_scorer("uplift", {"uplift": SubscriberColumn("number")}, fit_uplift)

where ``fit_uplift(training, seed)`` returns an object whose ``score(features)`` gives a
Series named ``uplift``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from experiments.models.data import SimulatedHistory, simulate_history
from policies.errors import SpecError
from policies.segments.dynamic import ClusterScorer, Scorer
from policies.subscriber_schema import SubscriberColumn

__all__ = ["SCORERS", "ScorerEntry", "Training", "fit_scorers", "register_scorer",
           "score_columns", "training_run", "training_seed"]

#: Domain of a probability column.
PROBABILITY = SubscriberColumn("number", 0.0, 1.0)


@dataclass(frozen=True)
class Training:
    """The prior run scorers are fitted on: ``history`` (the whole simulated log),
    ``cut`` (s), ``features`` (history features at the cut of the subscribers still
    subscribed), ``labels`` (their observed outcomes after it,
    :data:`~experiments.models.data.LABELS`), ``truth`` (the simulator's truth at the
    cut), ``treated`` (bool Series: who was sent the cut's email; all of them without a
    holdout), ``model`` (``"hgb"`` or ``"logistic"``: the propensity models' kind) and
    ``table`` (the subscriber table at the cut, same rows as ``features``)."""

    history: SimulatedHistory
    cut: int
    features: pd.DataFrame
    labels: pd.DataFrame
    truth: pd.DataFrame
    treated: pd.Series
    model: str
    table: pd.DataFrame


@dataclass(frozen=True)
class ScorerEntry:
    """A registered scorer: its ``columns`` (name -> domain) and ``fit(training, seed)``."""

    columns: Mapping[str, SubscriberColumn]
    fit: Callable[[Training, int], Scorer]


SCORERS: dict[str, ScorerEntry] = {}


def register_scorer(name: str, columns: Mapping[str, SubscriberColumn],
                    fit: Callable[[Training, int], Scorer]) -> None:
    """Register (or replace) scorer ``name`` producing ``columns``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: expected an identifier, got {name!r}")
    if not columns or not all(isinstance(c, str) and c.isidentifier()
                              and isinstance(d, SubscriberColumn) for c, d in columns.items()):
        raise ValueError(f"columns: expected a mapping of column name to SubscriberColumn, "
                         f"got {columns!r}")
    taken = {c: n for n, e in SCORERS.items() if n != name for c in e.columns}
    clash = [c for c in columns if c in taken]
    if clash:
        raise ValueError(f"columns: {clash} already produced by scorer {taken[clash[0]]!r}")
    if not callable(fit):
        raise ValueError(f"fit: expected a callable (training, seed) -> scorer, got {fit!r}")
    SCORERS[name] = ScorerEntry(MappingProxyType(dict(columns)), fit)


def score_columns(names: tuple[str, ...] | None = None) -> dict[str, SubscriberColumn]:
    """Columns (name -> domain) of the scorers ``names`` (None: of every registered one)."""
    names = tuple(SCORERS) if names is None else names
    return {c: d for n in names for c, d in SCORERS[n].columns.items()}


def training_seed(seed: int) -> int:
    """Seed of the prior run for a spec seeded ``seed`` (its own keyed stream)."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(0x5C0E,)).generate_state(1)[0])


def training_run(subscribers: int, days: int, seed: int, preset: Any = "retail",
                 model: str = "hgb", holdout: float = 0.0,
                 incentive: float = 0.0) -> Training:
    """Simulate the prior run and cut it (see the module); ``days >= 21``; ``incentive``
    is the discount of the cut's email."""
    cut_day = 7 * ((days - 14) // 7)
    if cut_day < 7:
        raise SpecError(f"scoring.train.days: expected at least 21 days (a 7-day campaign "
                        f"cycle and 14 days of outcomes), got {days}")
    h = simulate_history(subscribers, seed, days=days, cuts=(cut_day,), preset=preset,
                         holdout=holdout, incentive=incentive)
    from policies.segments import history_features

    cut = h.cuts[0]
    rows = cut.subscribed.index[cut.subscribed.to_numpy()].to_numpy()
    feats = history_features(h.events, cut.now, rows)
    assert cut.treated is not None and cut.table is not None
    return Training(h, cut.now, feats, cut.labels.loc[rows], cut.truth.loc[rows],
                    cut.treated.loc[rows], model, cut.table.loc[rows])


def _fit_propensity(training: Training, seed: int) -> Scorer:
    from experiments.models.propensity import TARGETS, fit_propensity
    from policies.segments.scores import PropensityScores

    sent = training.features[training.treated.to_numpy()]
    # opening needs an email: p_open is fitted on those sent the cut's email
    models = {t: fit_propensity(sent if t == "open" else training.features,
                                training.labels[outcome], seed=seed, model=training.model)
              for t, (outcome, _) in TARGETS.items()}
    return PropensityScores(models)


def _fit_clusters(training: Training, seed: int) -> Scorer:
    from policies.segments.clusters import BehaviorClusters

    return ClusterScorer(BehaviorClusters(seed=seed).fit(training.features))


#: Subscriber-table columns the uplift scorer reads beside the history features (what the
#: shop knows of a subscriber: its engagement and readiness scores, price sensitivity).
UPLIFT_ATTRIBUTES: tuple[str, ...] = ("engagement_score", "conversion_readiness",
                                      "price_sensitivity")


def _fit_uplift(training: Training, seed: int) -> Scorer:
    from policies.segments.uplift import UpliftModel

    treated = training.treated.to_numpy()
    if treated.all() or not treated.any():
        raise SpecError("scoring.train.holdout: the 'uplift' scorer learns from a randomized "
                        "send: expected a share in (0, 1) of the prior run held out")
    feats = training.features.join(training.table[list(UPLIFT_ATTRIBUTES)])
    return UpliftModel(seed=seed, attributes=UPLIFT_ATTRIBUTES,
                       treated_share=float(treated.mean())).fit(
        feats, treated, training.labels["purchased"].to_numpy(np.float64))


register_scorer("propensity", {"p_purchase_7d": PROBABILITY, "p_churn": PROBABILITY,
                               "p_open": PROBABILITY}, _fit_propensity)
register_scorer("clusters", {"cluster": SubscriberColumn("integer", 0.0)}, _fit_clusters)
register_scorer("uplift", {"uplift": SubscriberColumn("number")}, _fit_uplift)


@functools.lru_cache(maxsize=8)
def fit_scorers(names: tuple[str, ...], *, subscribers: int, days: int, seed: int,
                preset: str = "retail", overrides: tuple[tuple[str, Any], ...] = (),
                model: str = "hgb", holdout: float = 0.0, incentive: float = 0.0
                ) -> tuple[tuple[Scorer, ...], tuple[str, ...]]:
    """Fitted scorers ``names`` on the prior run of a spec seeded ``seed`` (see the
    module) and the columns they produce, in order; cached per arguments."""
    from sim import get_preset

    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise SpecError(f"scoring.scorers: unknown {unknown}; registered: {sorted(SCORERS)}")
    training = training_run(subscribers, days, training_seed(seed),
                            get_preset(preset, **dict(overrides)), model, holdout, incentive)
    scorers = tuple(SCORERS[n].fit(training, seed) for n in names)
    return scorers, tuple(score_columns(names))
