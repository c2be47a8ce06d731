"""Sums of a run's tidy tables that the analysis, the plots and the notebooks share.

* :func:`metric_counts` -- numerator and denominator of each experiment metric per
  replication x arm (x day), the input of :func:`experiments.analysis.summarize`;
* :func:`rate_over_time` -- a metric per arm and day, and to date;
* :func:`allocation_shares` -- share of each day's emails per policy variant;
* :func:`funnel_table` -- sends, opens, clicks and orders per subscriber, per arm;
* :func:`segment_summary` -- observed and true reward per segment of a decision log.

Functions take a run as :class:`experiments.Results` or anything with the same tables
(:class:`RunTables`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from experiments.metrics import PER_EMAIL_HOLDOUT
from experiments.spec import METRICS, ExperimentSpec

__all__ = ["FUNNEL_STAGES", "RunTables", "allocation_shares", "funnel_table",
           "metric_counts", "rate_over_time", "segment_summary"]


class RunTables(Protocol):
    """The tables of a run the analysis reads (:class:`experiments.Results` has them)."""

    spec: ExperimentSpec
    metrics: pd.DataFrame
    truth: pd.DataFrame

    @property
    def arms(self) -> list[str]: ...


def _email_sources(spec: ExperimentSpec, sources: Any) -> Any:
    mask = sources != "site"
    if spec.sources:
        mask &= sources.isin(list(spec.sources))
    return mask


def metric_counts(metrics: pd.DataFrame, spec: ExperimentSpec, metric: str | None = None, *,
                  by_day: bool = False) -> pd.DataFrame:
    """Sum a tidy metrics table into the numerator/denominator of experiment metrics.

    Parameters
    ----------
    metrics : DataFrame
        ``replication, arm, day, source, variant, group, metric, value`` (metrics.parquet).
    spec : ExperimentSpec
        Gives the metric list and the email ``sources`` filter.
    metric : str, optional
        One experiment metric (a key of :data:`~experiments.spec.METRICS`); default all of
        ``spec.metrics``.
    by_day : bool
        Keep the ``day`` column (daily counts) instead of summing over the run.

    Returns
    -------
    DataFrame
        Columns ``metric, replication, arm, [day,] numerator, denominator, value`` and,
        for the holdout metrics, ``holdout_numerator, holdout_denominator`` (and, per email,
        ``sends``: emails of the spec's sources sent to the treatment group).
        ``value = numerator / denominator`` (``- holdout_numerator / holdout_denominator``
        for incremental orders, and that times ``denominator / sends`` per email); NaN when
        a denominator is 0.
    """
    names = [metric] if metric is not None else list(spec.metrics)
    keys = ["replication", "arm", *(["day"] if by_day else [])]
    email = metrics[_email_sources(spec, metrics["source"])]
    site = metrics[metrics["source"] == "site"]
    arms = [a.name for a in spec.arms]
    grid = metrics[keys].drop_duplicates()
    out = []
    for name in names:
        m = METRICS[name]
        rows = email if m.scope == "email" else site
        num_rows = rows[rows["metric"] == m.numerator]
        site_den = m.denominator == "subscribers"
        den_rows = (site if site_den else rows)
        den_rows = den_rows[den_rows["metric"] == m.denominator]

        def total(df: pd.DataFrame, group: str, col: str) -> pd.DataFrame:
            part = df[df["group"] == group]
            s = part.groupby(keys, sort=True)["value"].sum().rename(col)
            return s.reset_index()

        t = grid.copy()
        t = t.merge(total(num_rows, "treatment", "numerator"), on=keys, how="left")
        if site_den:
            # group sizes are a stock, not a flow: the size of the group (its largest daily
            # value), whatever the day
            d = _group_size(den_rows, "treatment")
            t = t.merge(d, on=_SIZE_KEYS, how="left")
        else:
            t = t.merge(total(den_rows, "treatment", "denominator"), on=keys, how="left")
        t[["numerator", "denominator"]] = t[["numerator", "denominator"]].fillna(0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(t["denominator"] > 0, t["numerator"] / t["denominator"], np.nan)
        if m.scope == "holdout":
            t = t.merge(total(num_rows, "holdout", "holdout_numerator"), on=keys, how="left")
            t = t.merge(_group_size(den_rows, "holdout", "holdout_denominator"),
                        on=_SIZE_KEYS, how="left")
            t[["holdout_numerator", "holdout_denominator"]] = t[
                ["holdout_numerator", "holdout_denominator"]].fillna(0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                hv = np.where(t["holdout_denominator"] > 0,
                              t["holdout_numerator"] / t["holdout_denominator"], np.nan)
            value = value - hv
            if name in PER_EMAIL_HOLDOUT:
                sends = email[email["metric"] == "sends"]
                t = t.merge(total(sends, "treatment", "sends"), on=keys, how="left")
                t["sends"] = t["sends"].fillna(0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    value = np.where(t["sends"] > 0, value * t["denominator"] / t["sends"],
                                     np.nan)
        t["value"] = value
        t.insert(0, "metric", name)
        out.append(t)
    res = pd.concat(out, ignore_index=True)
    res["arm"] = pd.Categorical(res["arm"], categories=arms, ordered=True)
    res = res.sort_values(["metric", *keys], kind="stable").reset_index(drop=True)
    res["arm"] = res["arm"].astype(str)
    return res


_SIZE_KEYS = ["replication", "arm"]


def _group_size(df: pd.DataFrame, group: str, col: str = "denominator") -> pd.DataFrame:
    """Subscribers in ``group`` per replication x arm: the largest daily total."""
    part = df[df["group"] == group]
    if part.empty:
        return pd.DataFrame({"replication": pd.Series(dtype="int64"),
                             "arm": pd.Series(dtype=str), col: pd.Series(dtype=float)})
    daily = part.groupby([*_SIZE_KEYS, "day"], sort=True)["value"].sum()
    return daily.groupby(level=[0, 1]).max().rename(col).reset_index()


def email_rows(res: RunTables) -> pd.DataFrame:
    """The metrics rows of the treatment group's emails (the spec's ``sources`` only)."""
    mt = res.metrics
    e = mt[(mt["source"] != "site") & (mt["group"] == "treatment")]
    if res.spec.sources:
        e = e[e["source"].isin(list(res.spec.sources))]
    return e


def rate_over_time(res: RunTables, metric: str) -> pd.DataFrame:
    """An experiment metric per arm and day (replications pooled), and to date.

    Parameters
    ----------
    res : Results
    metric : str
        A key of :data:`~experiments.spec.METRICS`.

    Returns
    -------
    DataFrame
        Columns ``arm`` (spec order; arms without rows left out), ``day`` (0-based),
        ``daily`` (the day's numerator / denominator, metric units; inf or NaN on a day
        without a denominator) and ``to_date`` (numerator summed to that day over the
        denominator: summed to that day for per-email metrics, the day's group size for
        per-subscriber metrics).
    """
    c = metric_counts(res.metrics, res.spec, metric, by_day=True)
    g = c.groupby(["arm", "day"], sort=True)[["numerator", "denominator"]].sum()
    per_subscriber = METRICS[metric].denominator == "subscribers"
    parts = []
    for arm in res.arms:
        if arm not in g.index.get_level_values(0):
            continue
        a = g.loc[arm]
        with np.errstate(divide="ignore", invalid="ignore"):
            daily = a["numerator"] / a["denominator"]
            cum_den = a["denominator"] if per_subscriber else a["denominator"].cumsum()
            to_date = a["numerator"].cumsum() / cum_den
        parts.append(pd.DataFrame({"arm": arm, "day": a.index.to_numpy(),
                                   "daily": daily.to_numpy(), "to_date": to_date.to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=["arm", "day", "daily", "to_date"])
    return pd.concat(parts, ignore_index=True)


def allocation_shares(res: RunTables, arm: str) -> pd.DataFrame:
    """Share of each day's emails per policy variant in one arm.

    Parameters
    ----------
    res : Results
    arm : str
        An arm with a policy.

    Returns
    -------
    DataFrame, shape (days with sends, variants with sends)
        Indexed by day, one column per variant; each row sums to 1 (fractions of the
        day's treatment emails).
    """
    e = email_rows(res)
    e = e[e["metric"] == "sends"]
    a = e[(e["arm"] == arm) & (e["variant"] != "")]
    tab = a.pivot_table(index="day", columns="variant", values="value", aggfunc="sum",
                        fill_value=0.0)
    tab = tab[tab.sum(axis=1) > 0]
    tab = tab.loc[:, tab.sum(axis=0) > 0]
    return tab.div(tab.sum(axis=1), axis=0)


#: The email funnel's stages (runtime metric names), in order.
FUNNEL_STAGES = ("sends", "opens", "clicks", "orders")


def funnel_table(res: RunTables) -> pd.DataFrame:
    """Sends, opens, clicks and attributed orders per subscriber, per arm.

    Parameters
    ----------
    res : Results

    Returns
    -------
    DataFrame
        Indexed by arm (spec order): one column per stage of :data:`FUNNEL_STAGES` (the
        stage's total over the run and replications divided by the arm's subscribers,
        summed over replications; NaN without subscribers) and ``any_emails`` (whether
        any stage has a positive total).
    """
    e = email_rows(res)
    stages = list(FUNNEL_STAGES)
    tot = e[e["metric"].isin(stages)].groupby(["arm", "metric"])["value"].sum()
    subs = metric_counts(res.metrics, res.spec, "orders").groupby("arm")["denominator"].sum()
    out = pd.DataFrame(index=pd.Index(res.arms, name="arm"))
    for stage in stages:
        out[stage] = [float(tot.get((arm, stage), 0.0)) / subs.get(arm, np.nan)
                      if subs.get(arm, 0) else np.nan for arm in res.arms]
    out["any_emails"] = [any(float(tot.get((arm, stage), 0.0)) > 0 for stage in stages)
                         for arm in res.arms]
    return out


def segment_summary(decisions: pd.DataFrame, segment: Sequence[Any] | np.ndarray | pd.Series,
                    *, by: str = "arm", order: Sequence[str] | None = None) -> pd.DataFrame:
    """Per segment and arm: emails, observed reward rate and true expected reward rate.

    Parameters
    ----------
    decisions : DataFrame
        A decision log (``Results.decisions``): columns ``reward`` (observed, per email)
        and ``expected_reward`` (the simulator's expected reward of the chosen variant).
    segment : array_like, shape (len(decisions),)
        The segment of each row.
        A pandas Categorical keeps its category order in the result.
    by : str
        Column of ``decisions`` to compare within segments (default ``arm``).
    order : sequence of str, optional
        Order of the ``by`` values in the result (e.g. ``Results.arms``).

    Returns
    -------
    DataFrame
        Indexed by ``segment, <by>``: ``emails``, ``observed`` (mean reward),
        ``truth`` (mean expected reward), ``se`` (binomial standard error of
        ``observed``).
    """
    if isinstance(segment, pd.Series):
        segment = segment.to_numpy() if not isinstance(segment.dtype, pd.CategoricalDtype) \
            else pd.Categorical(segment)
    seg = segment if isinstance(segment, pd.Categorical) else np.asarray(segment)
    if len(seg) != len(decisions):
        raise ValueError(f"segment: expected {len(decisions)} values, got {len(seg)}")
    key = decisions[by].to_numpy()
    d = pd.DataFrame({"segment": seg,
                      by: pd.Categorical(key, categories=list(order)) if order else key,
                      "reward": decisions["reward"].to_numpy(float),
                      "expected_reward": decisions["expected_reward"].to_numpy(float)})
    g = d.groupby(["segment", by], sort=True, observed=True)
    out = pd.DataFrame({"emails": g.size(), "observed": g["reward"].mean(),
                        "truth": g["expected_reward"].mean()})
    p = out["observed"].clip(0, 1)
    out["se"] = np.sqrt(p * (1 - p) / out["emails"])
    return out
