"""The metrics an experiment can report (``spec.metrics``) and how each is computed.

Each :class:`MetricDef` names a ratio of the runtime's tidy counts
(:data:`actors.metrics.METRICS`); :mod:`experiments.analysis` tests them and
:mod:`experiments.plots` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRICS", "PER_EMAIL_HOLDOUT", "MetricDef"]


@dataclass(frozen=True)
class MetricDef:
    """How an experiment metric is computed from the runtime's tidy counts.

    ``value = numerator / denominator`` summed over days (and replications when pooled).
    ``numerator``/``denominator`` name runtime metrics; ``scope`` says which rows:
    ``"email"`` sums the treatment group's email sources (rules and campaign, filtered by
    the spec's ``sources``), ``"site"`` the treatment group's organic totals (source
    ``site``), ``"holdout"`` compares treatment with the arm's holdout group.
    ``kind`` is ``"proportion"`` (at most one event per unit: tested with a two-proportion
    z-test and a Beta-Binomial posterior) or ``"rate"`` (counts or currency per unit;
    tested with a normal approximation across replications, see :mod:`experiments.analysis`).
    ``money``: the numerator is currency (revenue, margin), not a count.
    """

    name: str
    numerator: str
    denominator: str
    scope: str
    kind: str
    unit: str
    label: str
    money: bool = False


#: The metrics an experiment can report (``spec.metrics``).
METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("opens", "opens", "sends", "email", "proportion", "opens per email sent",
              "open rate"),
    MetricDef("clicks", "clicks", "sends", "email", "proportion", "clicks per email sent",
              "click rate"),
    MetricDef("attributed_orders", "orders", "sends", "email", "proportion",
              "attributed orders per email sent", "attributed order rate"),
    MetricDef("orders", "orders_all", "subscribers", "site", "proportion",
              "orders per subscriber (all orders, organic included)", "orders per subscriber"),
    MetricDef("revenue_per_recipient", "revenue_all", "subscribers", "site", "rate",
              "revenue per subscriber (currency units)", "revenue per recipient", money=True),
    MetricDef("attributed_revenue", "revenue", "subscribers", "email", "rate",
              "email-attributed revenue per subscriber (currency units)",
              "attributed revenue per subscriber", money=True),
    MetricDef("attributed_margin", "margin", "subscribers", "email", "rate",
              "email-attributed margin per subscriber: revenue net of discounts less unit "
              "costs (currency units)", "attributed margin per subscriber", money=True),
    MetricDef("unsubscribes", "unsubscribes", "subscribers", "email", "proportion",
              "unsubscribes per subscriber", "unsubscribe rate"),
    MetricDef("incremental_orders", "orders_all", "subscribers", "holdout", "rate",
              "orders per subscriber, treatment minus the arm's holdout",
              "incremental orders per subscriber"),
    MetricDef("incremental_orders_per_email", "orders_all", "subscribers", "holdout", "rate",
              "orders per email sent, treatment minus the arm's holdout",
              "incremental orders per email"),
)}

#: Holdout metrics counted per email sent to the treatment group (not per subscriber).
PER_EMAIL_HOLDOUT: frozenset[str] = frozenset({"incremental_orders_per_email"})
