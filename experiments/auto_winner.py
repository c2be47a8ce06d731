"""How often an automatic-winner rule names the wrong winner: the ESP auto-winner study.

An ESP's A/B test with automatic winner selection (Klaviyo's rule,
:class:`~policies.explore_commit.AutoWinner`; Braze's Winning Path,
:class:`~policies.explore_commit.WinningPath`) ends by committing every later send to one
variant. Over the replications of a spec, the simulator knows which variant was truly
best, so each commitment can be judged:

* :func:`commit_row` -- one run's outcome: the policy's final state (committed or not, to
  which variant, when) and the truly best variant over the run's policy-decided sends
  (their expected rewards under every variant, from the decision log), or none when the
  best two are equal;
* :func:`auto_winner_table` -- per experiment arm: the share of runs that committed, the
  **false-winner rate** (runs that committed to a variant that is not strictly the true
  best, truly worse or truly equal, over all runs; Wilson interval), the median time to
  commit, and the expected regret per run (t interval). Policies that never commit
  (Thompson sampling, a fixed split) get their regret only;
* :func:`auto_winner_blocks` / :func:`auto_winner_figure` -- the report's table and plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from experiments.stats.intervals import wilson_interval

__all__ = ["COMMIT_COLUMNS", "COMMIT_POLICIES", "TIE_TOLERANCE", "auto_winner_blocks",
           "auto_winner_figure", "auto_winner_table", "commit_row"]

#: Columns of ``commits.parquet`` (one row per replication and arm with a policy).
COMMIT_COLUMNS: tuple[str, ...] = (
    "replication", "arm", "policy", "phase", "winner", "significant", "started_at",
    "decided_at", "true_best", "true_gap", "decided_sends")
#: Registry names of the automatic-winner rules (a spec with one of them gets
#: ``commits.parquet`` for every arm with a policy).
COMMIT_POLICIES: tuple[str, ...] = ("auto_winner", "winning_path")
#: Relative difference in total expected reward below which the two best variants count
#: as equal (no variant is truly best: any winner is a false winner).
TIE_TOLERANCE = 1e-9


def commit_row(policy_state: dict[str, Any] | None, decisions: pd.DataFrame | None,
               arm_names: tuple[str, ...]) -> dict[str, Any]:
    """One run's commitment and truth (the :data:`COMMIT_COLUMNS` after ``policy``).

    Parameters
    ----------
    policy_state : dict or None
        The learner's final policy state (``Policy.state_dict()``: its ``state``); an
        explore-then-commit policy's has ``phase`` (``testing``, ``winner``, ``mix``),
        ``winner`` (arm index, -1), ``significant``, ``started_at`` and ``decided_at`` (s
        or None). Other policies: ``phase`` is "".
    decisions : DataFrame or None
        The run's decision log: ``arm_index`` (-1 for emails no policy decided) and
        ``expected_reward__<variant>`` per variant.
    arm_names : tuple of str
        The policy's variants.
    """
    state = (policy_state or {}).get("state", {})
    phase = str(state.get("phase", ""))
    winner = int(state.get("winner", -1)) if phase else -1
    row: dict[str, Any] = {
        "phase": phase, "winner": arm_names[winner] if winner >= 0 else "",
        "significant": bool(state.get("significant", False)),
        "started_at": _time(state.get("started_at")), "decided_at": _time(state.get("decided_at")),
        "true_best": "", "true_gap": 0.0, "decided_sends": 0,
    }
    if decisions is None or not len(decisions) or len(arm_names) < 2:
        return row
    decided = decisions[decisions["arm_index"].to_numpy() >= 0]
    totals = np.array([decided[f"expected_reward__{a}"].to_numpy(np.float64).sum()
                       for a in arm_names])
    order = np.argsort(-totals, kind="stable")
    best, second = totals[order[0]], totals[order[1]]
    row["decided_sends"] = len(decided)
    row["true_gap"] = float((best - second) / max(len(decided), 1))
    if best - second > TIE_TOLERANCE * max(abs(best), 1e-300):
        row["true_best"] = arm_names[int(order[0])]
    return row


def _time(value: Any) -> int:
    return -1 if value is None else int(value)


def auto_winner_table(commits: pd.DataFrame, metrics: pd.DataFrame,
                      arms: list[str] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Per experiment arm with a policy (in the order of ``arms``, default that of
    ``commits``): runs, commit rate,
    false winners and their rate with its Wilson interval, median and quartiles of the
    time to commit (days, committed runs), mean expected regret per run with its t
    interval, and the mean true gap per decided send between the best two variants.

    ``metrics``: the tidy metrics table (``expected_regret`` rows per replication).
    """
    regret = (metrics[metrics["metric"] == "expected_regret"]
              .groupby(["arm", "replication"])["value"].sum())
    rows = []
    order = list(dict.fromkeys(commits["arm"])) if arms is None else arms
    for arm in order:
        runs = commits[commits["arm"] == arm]
        n = len(runs)
        if n == 0:
            continue
        etc = bool((runs["phase"] != "").any())
        committed = runs["phase"] == "winner"
        false = committed & (runs["winner"] != runs["true_best"])
        lo, hi = wilson_interval(int(false.sum()), n, alpha)
        days = ((runs.loc[committed, "decided_at"] - runs.loc[committed, "started_at"])
                / 86400.0).to_numpy()
        r = np.array([regret.get((arm, rep), 0.0) for rep in runs["replication"]])
        half = (stats.t.ppf(1 - alpha / 2, n - 1) * r.std(ddof=1) / np.sqrt(n)
                if n > 1 else np.nan)
        rows.append({
            "arm": arm, "policy": runs["policy"].iloc[0], "runs": n,
            "commits": int(committed.sum()) if etc else np.nan,
            "false_winners": int(false.sum()) if etc else np.nan,
            "false_winner_rate": float(false.mean()) if etc else np.nan,
            "false_winner_low": float(lo) if etc else np.nan,
            "false_winner_high": float(hi) if etc else np.nan,
            "significant_commits": int((committed & runs["significant"]).sum()) if etc
            else np.nan,
            "days_to_commit_median": float(np.median(days)) if len(days) else np.nan,
            "days_to_commit_q1": float(np.percentile(days, 25)) if len(days) else np.nan,
            "days_to_commit_q3": float(np.percentile(days, 75)) if len(days) else np.nan,
            "regret_mean": float(r.mean()), "regret_low": float(r.mean() - half),
            "regret_high": float(r.mean() + half),
            "equal_runs": int((runs["true_best"] == "").sum()),
            "true_gap_per_send": float(runs["true_gap"].mean()),
        })
    return pd.DataFrame(rows)


def auto_winner_blocks(table: pd.DataFrame, reward: str) -> list[tuple]:
    """The report's "Automatic winners" section as report blocks (``h2``, ``p``,
    ``table``; :mod:`experiments.report`)."""
    equal = int(table["equal_runs"].max())
    runs = int(table["runs"].max())
    if equal == runs:
        truth = "the variants are truly equal in every run, so any winner is a false winner"
    else:
        truth = (f"the true best variant is ahead by {table['true_gap_per_send'].mean():.3g} "
                 f"expected {reward}s per decided send on average"
                 + (f" (equal in {equal} of {runs} runs)" if equal else ""))
    rows = []
    for r in table.itertuples():
        if np.isnan(r.false_winner_rate):
            committed, false, days = "never commits", "-", "-"
        else:
            committed = f"{int(r.commits)} of {r.runs} ({int(r.significant_commits)} significant)"
            false = (f"{r.false_winner_rate:.0%} [{r.false_winner_low:.0%}, "
                     f"{r.false_winner_high:.0%}] ({int(r.false_winners)} runs)")
            days = ("-" if np.isnan(r.days_to_commit_median) else
                    f"{r.days_to_commit_median:.1f} [{r.days_to_commit_q1:.1f}, "
                    f"{r.days_to_commit_q3:.1f}]")
        regret = (f"{r.regret_mean:.3g}" if np.isnan(r.regret_low) else
                  f"{r.regret_mean:.3g} [{r.regret_low:.3g}, {r.regret_high:.3g}]")
        rows.append([r.arm, r.policy, committed, false, days, regret])
    return [
        ("h2", "Automatic winners"),
        ("p", f"Each arm's rule over {runs} replications; in the simulator {truth}. A false "
              "winner is a commitment to a variant that is not strictly the best (truly "
              "worse or truly equal), counted over all runs, with a 95 % Wilson interval; "
              "\"significant\" commitments met the rule's own test (a commitment at the end "
              "of a window or deadline need not). Days to commit: from the rule's first "
              "decision to its commitment, median [quartiles] over the runs that committed. "
              f"Regret: expected {reward}s lost against always sending the true best variant, "
              "mean per run [95 % t interval]."),
        ("table", ["arm", "policy", "committed", "false-winner rate [95 % CI]",
                   "days to commit", "regret per run"], rows),
    ]


def auto_winner_figure(table: pd.DataFrame, reward: str, plt: Any) -> Any:
    """Two panels: the false-winner rate of each arm with its interval, and its regret
    per run with its interval (a matplotlib figure; ``plt``: ``matplotlib.pyplot``)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    y = np.arange(len(table))
    etc = ~table["false_winner_rate"].isna().to_numpy()
    rate = table["false_winner_rate"].to_numpy(np.float64)
    err = np.vstack([rate - table["false_winner_low"].to_numpy(np.float64),
                     table["false_winner_high"].to_numpy(np.float64) - rate])
    ax1.errorbar(rate[etc], y[etc], xerr=err[:, etc], fmt="o", capsize=4, color="C3")
    for i in np.flatnonzero(~etc):
        ax1.text(0.02, i, "never commits", va="center", fontsize=8, color="0.4")
    ax1.set_xlim(0, 1)
    ax1.set_xlabel("false-winner rate (95 % Wilson interval)")
    ax1.set_title("Committed to a variant that is not truly best", fontsize=10)
    reg = table["regret_mean"].to_numpy(np.float64)
    rerr = np.nan_to_num(np.vstack([reg - table["regret_low"].to_numpy(np.float64),
                                    table["regret_high"].to_numpy(np.float64) - reg]))
    ax2.errorbar(reg, y, xerr=rerr, fmt="o", capsize=4, color="C0")
    ax2.set_xlabel(f"expected {reward}s lost per run (95 % t interval)")
    ax2.set_title("Regret against the true best variant", fontsize=10)
    for ax in (ax1, ax2):
        ax.set_yticks(y)
        ax.set_yticklabels(table["arm"] if ax is ax1 else [""] * len(y))
        ax.set_ylim(len(y) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
