"""Results of an experiment as pandas DataFrames, in memory or reopened from a run folder.

>>> res = Results.load("runs/cart-reminder-timing")        # doctest: +SKIP
>>> res.metrics.head()        # replication, arm, day, source, variant, group, metric, value
>>> res.counts()              # per replication x arm x experiment metric: numerator, denominator
>>> res.summary()             # per arm x metric: estimate, CI, lift, p-values, ground truth

Column meanings: ``arm`` is the experiment arm; ``variant`` the policy's arm inside it
(the subject line, send hour or strategy an email got; ``""`` when no policy decided);
``group`` ``treatment`` or ``holdout``; ``source`` a rule id, ``campaign`` or ``site``
(organic totals and group sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.spec import METRICS, ExperimentSpec, load_spec
from policies.errors import SpecError

__all__ = ["Results", "metric_counts"]


@dataclass
class Results:
    """The tables of one experiment run.

    Attributes
    ----------
    spec : ExperimentSpec
    metrics : DataFrame
        Tidy: ``replication, arm, day, source, variant, group, metric, value``.
    truth : DataFrame
        Simulator ground truth per ``replication, arm, source, variant, group``:
        ``sends, expected_opens, expected_clicks, expected_orders, expected_revenue,
        expected_incremental_orders, expected_regret, best_arm``.
    decisions, events : DataFrame or None
        Per-email decision log (with propensities) and event log, when recorded.
    timing : DataFrame or None
        Wall-clock seconds per run (not part of the reproducible files).
    run_dir : Path or None
        The run folder, when written or loaded.
    """

    spec: ExperimentSpec
    metrics: pd.DataFrame
    truth: pd.DataFrame
    decisions: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    timing: pd.DataFrame | None = None
    run_dir: Path | None = None

    @classmethod
    def load(cls, run_dir: str | Path) -> Results:
        """Reopen a run folder written by :func:`experiments.run` (``out=``).

        Raises
        ------
        SpecError
            When ``run_dir`` is not a run folder (the message names the missing file).
        """
        d = Path(run_dir)
        if not d.is_dir():
            raise SpecError(f"run_dir: expected a run folder, got {str(d)!r} (not a directory)")
        for name in ("spec.yaml", "metrics.parquet", "truth.parquet"):
            if not (d / name).exists():
                raise SpecError(f"run_dir: {d} is not a run folder: {name} is missing")
        import yaml

        data = yaml.safe_load((d / "spec.yaml").read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data.pop("run", None)
        spec = load_spec(data)

        def opt(name: str) -> pd.DataFrame | None:
            p = d / name
            return pd.read_parquet(p) if p.exists() else None

        timing = None
        if (d / "timing.json").exists():
            import json

            timing = pd.DataFrame(json.loads((d / "timing.json").read_text())["runs"])
        return cls(spec=spec, metrics=pd.read_parquet(d / "metrics.parquet"),
                   truth=pd.read_parquet(d / "truth.parquet"), decisions=opt("decisions.parquet"),
                   events=opt("events.parquet"), timing=timing, run_dir=d)

    @property
    def arms(self) -> list[str]:
        """Arm names in spec order."""
        return [a.name for a in self.spec.arms]

    def counts(self, metric: str | None = None, *, by_day: bool = False) -> pd.DataFrame:
        """Numerator and denominator of experiment metrics per replication x arm (x day).

        See :func:`metric_counts`.
        """
        return metric_counts(self.metrics, self.spec, metric, by_day=by_day)

    def summary(self) -> pd.DataFrame:
        """Per arm x metric: estimate, CI, lift vs control, p-values, P(beat), truth."""
        from experiments.report import summarize

        return summarize(self)

    def __repr__(self) -> str:
        where = f", run_dir={str(self.run_dir)!r}" if self.run_dir else ""
        return (f"Results(spec={self.spec.name!r}, arms={self.arms}, "
                f"replications={self.spec.replications}, metrics={len(self.metrics)} rows"
                f"{where})")


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
        for ``incremental_orders``, ``holdout_numerator, holdout_denominator``.
        ``value = numerator / denominator`` (``- holdout_numerator / holdout_denominator``
        for incremental orders); NaN when the denominator is 0.
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
