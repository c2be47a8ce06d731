"""Expected regret of the policy arms: computed once from the decision logs, then
aggregated for the run folder, the report, the plots and the notebooks.

The regret of one email is the simulator's expected reward of the best variant for that
email minus the expected reward of the variant the policy chose (reward units: clicks,
orders or currency, as the spec's ``reward``).

* :func:`email_regret` -- per email, from a decision log (the one computation);
* :func:`regret_rows` -- summed per day, source and variant as ``expected_regret`` rows
  of the metrics table (the runner adds them for every policy arm);
* :func:`daily_regret` -- those rows per replication x arm x day;
* :func:`cumulative_regret` -- accumulated to each day, mean and range over
  replications (notebooks);
* :func:`regret_curves` -- accumulated to each day, summed over replications / their
  number (the run folder's ``regret.png``);
* :func:`policy_table` -- per policy arm from the truth table: the true best variant,
  the share of emails sent to it and the expected regret (the report).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.tables import RunTables

__all__ = ["cumulative_regret", "daily_regret", "email_regret", "policy_table",
           "regret_curves", "regret_rows"]

#: Columns of the tidy metrics table (metrics.parquet).
_METRIC_COLUMNS = ["replication", "arm", "day", "source", "variant", "group", "metric",
                   "value"]


def email_regret(decisions: pd.DataFrame) -> np.ndarray:
    """Expected regret of every email of a decision log.

    Parameters
    ----------
    decisions : DataFrame, shape (n_emails, ...)
        One policy's decision log: ``expected_reward`` (of the chosen variant) and one
        ``expected_reward__<variant>`` column per variant.

    Returns
    -------
    numpy.ndarray, shape (n_emails,)
        ``max over variants of expected_reward__<variant> - expected_reward`` (reward
        units, >= 0 up to rounding).
    """
    per_arm = [c for c in decisions.columns if c.startswith("expected_reward__")]
    if not per_arm:
        raise ValueError("decisions: expected expected_reward__<variant> columns, got "
                         f"{list(decisions.columns)[:8]}")
    best = decisions[per_arm].to_numpy(float).max(axis=1)
    return best - decisions["expected_reward"].to_numpy(float)


def regret_rows(decisions: pd.DataFrame | None, replication: int, arm: str,
                start: int) -> pd.DataFrame:
    """Daily expected regret of one run as rows of the metrics table.

    Parameters
    ----------
    decisions : DataFrame or None
        The run's decision log (``time`` in seconds, ``source``, ``arm`` = the chosen
        variant, expected rewards as in :func:`email_regret`).
    replication : int
    arm : str
        The experiment arm.
    start : int
        Simulation start time (seconds); day ``k`` is ``[start + k d, start + (k+1) d)``.

    Returns
    -------
    DataFrame
        Columns ``replication, arm, day, source, variant, group, metric, value``: the
        email regret summed per day, source and variant, ``metric = "expected_regret"``,
        ``group = "treatment"``. Empty without decisions.
    """
    if decisions is None or not len(decisions):
        return pd.DataFrame(columns=_METRIC_COLUMNS)
    loss = email_regret(decisions)
    df = pd.DataFrame({
        "day": (decisions["time"].to_numpy("int64") - start) // 86400,
        "source": decisions["source"].astype(str).to_numpy(),
        "variant": decisions["arm"].astype(str).to_numpy(),
        "value": loss,
    })
    g = df.groupby(["day", "source", "variant"], sort=True)["value"].sum().reset_index()
    g.insert(0, "arm", arm)
    g.insert(0, "replication", replication)
    g["group"] = "treatment"
    g["metric"] = "expected_regret"
    return g[_METRIC_COLUMNS]


def daily_regret(res: RunTables) -> pd.DataFrame | None:
    """Expected regret per replication x arm x day (arms with a policy).

    Parameters
    ----------
    res : experiments.Results

    Returns
    -------
    DataFrame or None
        Columns ``replication, arm, day, regret`` (reward units), from the
        ``expected_regret`` rows of the metrics table (see :func:`regret_rows`). None
        when no arm has a policy or there are no such rows.
    """
    mt = res.metrics
    pol = [a.name for a in res.spec.arms if a.policy is not None]
    if not pol:
        return None
    r = mt[(mt["metric"] == "expected_regret") & mt["arm"].isin(pol)]
    if len(r):
        return (r.groupby(["replication", "arm", "day"])["value"].sum().rename("regret")
                .reset_index())
    return None


def cumulative_regret(res: RunTables) -> pd.DataFrame:
    """Cumulative expected regret per arm and day, over replications.

    Parameters
    ----------
    res : experiments.Results
        A run whose policy arms logged decisions (the runner does that for every arm
        with a policy).

    Returns
    -------
    DataFrame
        Columns ``arm, day, mean, low, high``: the mean, minimum and maximum over
        replications of the regret accumulated up to the end of ``day`` (0-based), in
        reward units (clicks, orders or currency, as the spec's ``reward``). Empty when
        no arm has a policy.
    """
    dr = daily_regret(res)
    if dr is None or not len(dr):
        return pd.DataFrame(columns=["arm", "day", "mean", "low", "high"])
    days = np.arange(int(dr["day"].max()) + 1)
    reps = range(res.spec.replications)
    rows = []
    for arm, a in dr.groupby("arm", sort=False):
        table = (a.pivot_table(index="day", columns="replication", values="regret",
                               aggfunc="sum")
                 .reindex(index=days, columns=list(reps)).fillna(0.0).cumsum())
        rows.append(pd.DataFrame({"arm": arm, "day": days, "mean": table.mean(axis=1).to_numpy(),
                                  "low": table.min(axis=1).to_numpy(),
                                  "high": table.max(axis=1).to_numpy()}))
    out = pd.concat(rows, ignore_index=True)
    order = {name: i for i, name in enumerate(res.arms)}
    out["_o"] = out["arm"].map(order)
    return out.sort_values(["_o", "day"]).drop(columns="_o").reset_index(drop=True)


def regret_curves(res: RunTables) -> dict[str, pd.Series]:
    """Cumulative expected regret per policy arm, per replication on average.

    Parameters
    ----------
    res : experiments.Results

    Returns
    -------
    dict of str -> Series
        Per arm (in the order of :func:`daily_regret`): indexed by day ``0 .. last day
        with regret``, the regret accumulated to the end of that day, summed over
        replications and divided by their number (reward units). Empty when there is no
        regret to show.
    """
    dr = daily_regret(res)
    if dr is None or not len(dr):
        return {}
    reps = res.spec.replications
    out = {}
    for arm, a in dr.groupby("arm", sort=False):
        per_day = a.groupby("day")["regret"].sum().sort_index() / reps
        days = np.arange(int(per_day.index.max()) + 1)
        out[str(arm)] = per_day.reindex(days, fill_value=0.0).cumsum()
    return out


def policy_table(res: RunTables) -> pd.DataFrame:
    """Per arm with a policy: its true best variant, the share of emails sent to it and
    the expected regret, from the truth and metrics tables.

    Parameters
    ----------
    res : experiments.Results

    Returns
    -------
    DataFrame
        One row per policy arm (spec order): ``arm, policy, decides``, ``best_variant``
        (the variant that was truly best for most of the arm's emails; ``""`` without
        emails), ``best_share`` (share of the arm's treatment emails sent with it, NaN
        without emails), ``regret`` and ``sends`` (expected regret in reward units and
        emails decided by the policy, both per replication).
    """
    spec = res.spec
    truth = res.truth[(res.truth["group"] == "treatment") & (res.truth["source"] != "site")]
    rows = []
    for a in spec.arms:
        if a.policy is None:
            continue
        t = truth[(truth["arm"] == a.name) & (truth["variant"] != "")]
        regret = float(t["expected_regret"].sum()) / spec.replications \
            if "expected_regret" in t else math.nan
        sends = float(t["sends"].sum()) / spec.replications if "sends" in t else math.nan
        best = (t.groupby("best_arm")["sends"].sum().idxmax()
                if "best_arm" in t and len(t) else "")
        rows.append({"arm": a.name, "policy": a.policy.name, "decides": a.policy.decides,
                     "best_variant": best, "best_share": _best_share(res, a.name, best),
                     "regret": regret, "sends": sends})
    return pd.DataFrame(rows, columns=["arm", "policy", "decides", "best_variant",
                                       "best_share", "regret", "sends"])


def _best_share(res: RunTables, arm: str, best: str) -> float:
    mt = res.metrics
    e = mt[(mt["arm"] == arm) & (mt["metric"] == "sends") & (mt["source"] != "site")
           & (mt["group"] == "treatment")]
    total = float(e["value"].sum())
    return float(e.loc[e["variant"] == best, "value"].sum()) / total if total else math.nan
