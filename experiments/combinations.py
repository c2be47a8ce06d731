"""How the arms of a run that decide combinations of email elements (``decides:
combination``) did against the simulator's truth, from their decision logs.

* :func:`combination_table` -- per replication and policy arm: the true best combination
  (the highest mean expected reward over the arm's own emails, every combination
  evaluated on every email: common random numbers), the arm's pick at the end, whether
  it is the true best, the sends until its pick became the true best for good, and the
  expected regret;
* :func:`factorial_analysis` -- an arm that splits its emails over the cells of its
  declared design (``factorial:``) or of a full factorial (policy ``ab``): main effects,
  two-way interactions and the best cell with their true values
  (:func:`experiments.stats.analyze_factorial` on the observed rewards, the truth from
  the same emails; a fraction: with its aliases, without truth);
* :func:`combination_blocks`, :func:`combination_figures` -- the report's section and
  the run folder's plots.

An arm's *pick* at the end of a day is, for a fixed split (``ab``), the combination with
the highest observed mean reward among its emails so far once it beats every other
combination significantly (one-sided Welch z-test at ``alpha``, Bonferroni over the other
combinations: what the test can declare a winner), and for an adaptive policy the
combination it sent to at least :data:`ACTS_ON_SHARE` (three quarters) of the day's
emails (what it acts on); otherwise none yet. Days are UTC days from the run's start.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from actors.config import DEFAULT_START
from actors.variants import element_of
from experiments.factorial import Factor, design_from_mapping, full_factorial
from experiments.spec import ExperimentSpec
from experiments.stats.factorial import FactorialAnalysis, analyze_factorial
from policies.errors import StatsInputError
from sim.clock import DAY

if TYPE_CHECKING:
    from experiments.results import Results

__all__ = ["ACTS_ON_SHARE", "COMBINATION_COLUMNS", "combination_arms", "combination_blocks",
           "combination_figures", "combination_plot_files", "combination_table",
           "factorial_analysis", "split_arms"]

#: Columns of :func:`combination_table`.
COMBINATION_COLUMNS: tuple[str, ...] = (
    "replication", "arm", "policy", "sends", "true_best", "true_best_value", "pick",
    "pick_value", "found", "sends_to_find", "expected_regret")
#: Share of a day's emails a policy must send one combination for it to be its pick (a
#: 50/50 test split never reaches it, whatever the noise).
ACTS_ON_SHARE = 0.75
#: Policies whose emails are a fixed split over the combinations (a factorial test).
_FIXED_SPLIT = frozenset({"ab"})


def combination_arms(spec: ExperimentSpec) -> list[str]:
    """Names of the spec's arms whose policy decides ``combination``."""
    return [a.name for a in spec.arms
            if a.policy is not None and a.policy.decides == "combination"]


def split_arms(spec: ExperimentSpec) -> list[str]:
    """The combination arms that split their emails over fixed cells (a factorial test):
    the arms the factorial analysis, its report block and its plots are about."""
    return [a.name for a in spec.arms if a.name in combination_arms(spec)
            and a.policy is not None and a.policy.name in _FIXED_SPLIT]


def _variants(decisions: pd.DataFrame) -> list[str]:
    return [c.removeprefix("expected_reward__") for c in decisions.columns
            if c.startswith("expected_reward__")]


def _decided(decisions: pd.DataFrame, replication: int, arm: str) -> pd.DataFrame:
    d = decisions[(decisions["replication"] == replication) & (decisions["arm"] == arm)
                  & (decisions["arm_index"] >= 0)]
    variants = [v for v in _variants(d) if d[f"expected_reward__{v}"].notna().any()]
    return d[["time", "variant", "reward", "expected_reward",
              *[f"expected_reward__{v}" for v in variants]]]


def _picks(d: pd.DataFrame, variants: list[str], fixed_split: bool, start: int,
           alpha: float) -> np.ndarray:
    """The arm's pick at the end of each day with emails (index into ``variants``, -1:
    none yet)."""
    day = (d["time"].to_numpy(np.int64) - start) // DAY
    code = pd.Categorical(d["variant"], categories=variants).codes.astype(np.int64)
    k = len(variants)
    days = np.unique(day)
    pos = np.searchsorted(days, day)
    reward = d["reward"].to_numpy(np.float64)
    sends, sums, squares = (np.zeros((len(days), k)) for _ in range(3))
    np.add.at(sends, (pos, code), 1.0)
    np.add.at(sums, (pos, code), reward)
    np.add.at(squares, (pos, code), reward**2)
    if not fixed_split:                  # what the policy acts on: most of the day's sends
        share = sends / sends.sum(axis=1, keepdims=True)
        top = np.argmax(sends, axis=1)
        return np.where(share[np.arange(len(days)), top] >= ACTS_ON_SHARE, top, -1)
    n, s, q = (np.cumsum(a, axis=0) for a in (sends, sums, squares))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = np.maximum(q / n - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    z_needed = stats.norm.isf(alpha / max(k - 1, 1))
    out = np.full(len(days), -1, np.int64)
    for t in range(len(days)):
        if (n[t] < 2).any():
            continue
        top = int(np.argmax(mean[t]))
        se = np.sqrt(var[t, top] / n[t, top] + var[t] / n[t])
        others = np.arange(k) != top
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (mean[t, top] - mean[t, others]) / se[others]
        if (z > z_needed).all():
            out[t] = top
    return out


def combination_table(res: Results, alpha: float = 0.05) -> pd.DataFrame | None:
    """:data:`COMBINATION_COLUMNS` per replication and combination arm, or None when the
    run has no such arm or no decision log (``res``: :class:`experiments.Results`;
    ``alpha``: the fixed split's significance level, Bonferroni over the other cells)."""
    spec, decisions = res.spec, res.decisions
    arms = combination_arms(spec)
    if not arms or decisions is None:
        return None
    policy = {a.name: a.policy.name for a in spec.arms if a.policy is not None}
    start = DEFAULT_START
    rows = []
    for r, arm in itertools.product(range(spec.replications), arms):
        d = _decided(decisions, r, arm)
        if d.empty:
            continue
        variants = _variants(d)
        er = d[[f"expected_reward__{v}" for v in variants]].to_numpy(np.float64)
        truth = er.mean(axis=0)
        best = int(np.argmax(truth))
        picks = _picks(d, variants, policy[arm] in _FIXED_SPLIT, start, alpha)
        wrong = np.flatnonzero(picks != best)
        found = bool(picks[-1] == best)
        sends_to_find = None
        if found:
            day = (d["time"].to_numpy(np.int64) - start) // DAY
            days = np.unique(day)
            first_good = 0 if len(wrong) == 0 else int(wrong[-1]) + 1
            sends_to_find = int((day <= days[first_good]).sum())
        rows.append({
            "replication": r, "arm": arm, "policy": policy[arm], "sends": len(d),
            "true_best": variants[best], "true_best_value": float(truth[best]),
            "pick": variants[int(picks[-1])] if picks[-1] >= 0 else None,
            "pick_value": float(truth[int(picks[-1])]) if picks[-1] >= 0 else None,
            "found": found, "sends_to_find": sends_to_find,
            "expected_regret": float((er.max(axis=1) - d["expected_reward"]).sum()),
        })
    if not rows:
        return None
    return pd.DataFrame(rows, columns=list(COMBINATION_COLUMNS))


def _factors(variants: list[str]) -> list[Factor] | None:
    """The factors of combination names that form a full factorial, else None."""
    parts = [v.split(":") for v in variants]
    width = len(parts[0])
    if any(len(p) != width for p in parts):
        return None
    factors = []
    for j in range(width):
        levels = list(dict.fromkeys(p[j] for p in parts))
        factors.append(Factor(element_of(levels[0])[0], tuple(levels)))
    if len(variants) != int(np.prod([len(f.levels) for f in factors])):
        return None
    return factors


def factorial_analysis(res: Results, arm: str, replication: int = 0, *,
                       alpha: float = 0.05, correction: str = "holm"
                       ) -> FactorialAnalysis | None:
    """The factorial analysis of ``arm``'s emails (observed rewards) with the truth of
    every cell; None when the arm's combinations are neither its declared design
    (``factorial:``) nor a full factorial, or it has no decision log. A fraction's
    analysis has no truth: the run evaluates only the cells the arm sends, and the truth
    of an effect needs every cell.

    A cell's truth is the mean expected reward of the emails the test sent with it (the
    observed rewards without the response noise). The A/B split assigns each subscriber
    to one cell for the whole test, so a cell's truth, like its estimate, includes what
    its earlier emails did to its subscribers (fatigue): the sustained effect of sending
    that combination, which can differ from one email's effect
    (:func:`combination_table`'s truth).
    """
    decisions = res.decisions
    if decisions is None:
        return None
    d = _decided(decisions, replication, arm)
    variants = _variants(d)
    if d.empty or not variants:
        return None
    declared = {a.name: a.factorial for a in res.spec.arms}.get(arm)
    if declared is not None:
        design = design_from_mapping(declared)
    else:
        factors = _factors(variants)
        if factors is None:
            return None
        design = full_factorial(factors)
    names = design.names
    levels = pd.DataFrame(d["variant"].str.split(":").tolist(), columns=names,
                          index=d.index)
    data = levels.assign(reward=d["reward"].to_numpy(np.float64))
    full = full_factorial(list(design.factors)).frame()
    cells = [":".join(row) for row in full.itertuples(index=False)]
    truth = full.assign(truth=[_cell_truth(d, c, variants) for c in cells])
    known = bool(truth["truth"].notna().all())
    return analyze_factorial(data, design, "reward", alpha=alpha, correction=correction,
                             truth=truth if known else None)


def _cell_truth(d: pd.DataFrame, cell: str, variants: list[str]) -> float:
    """A cell's truth: the mean expected reward of the emails sent with it; NaN for a cell
    the arm does not send (outside a fraction: the run evaluates only the arm's cells)."""
    sent = d["variant"] == cell
    if cell not in variants or not sent.any():
        return float("nan")
    return float(d.loc[sent, "expected_reward"].mean())


def _cell(value: object) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def combination_blocks(res: Results) -> list[tuple]:
    """The report's "Combinations of email elements" section as report blocks (``h2``,
    ``p``, ``table``; :mod:`experiments.report`); empty without combination arms or a
    decision log."""
    table = combination_table(res)
    if table is None:
        return []
    reward = res.spec.reward
    rows = [[r.arm, r.policy, f"{r.sends:,}", r.true_best, _cell(r.pick),
             "yes" if r.found else "no",
             "-" if pd.isna(r.sends_to_find) else f"{int(r.sends_to_find):,}",
             f"{r.expected_regret:.4g}"]
            for r in table.itertuples()]
    blocks: list[tuple] = [
        ("h2", "Combinations of email elements"),
        ("p", "Per arm that chooses combinations: the true best combination (the most "
              f"expected {reward}s per email over the arm's own emails, every combination "
              "evaluated on every email), the arm's pick at the end (a fixed split: the "
              "best observed combination once it beats every other significantly, 5 % "
              "one-sided, Bonferroni; a policy: the combination it sent to at least three "
              "quarters of the last day's emails), whether that is the true best, the sends until "
              f"its pick became the true best for good, and the expected {reward}s lost "
              "against always sending each email's true best combination."),
        ("table", ["arm", "policy", "sends", "true best", "pick", "found",
                   "sends to find", "regret"], rows),
    ]
    for arm in split_arms(res.spec):
        try:
            fa = factorial_analysis(res, arm)
        except StatsInputError as exc:
            blocks.append(("p", f"Factorial analysis of {arm}: not possible ({exc})."))
            continue
        if fa is None:
            continue
        eff = fa.effects
        has_truth = "truth" in eff.columns
        blocks.append(("p", f"Factorial analysis of {arm} (replication 0; linear model, "
                            f"{fa.correction} over {len(eff)} contrasts, "
                            f"{1 - fa.alpha:.0%} intervals"
                            + ("; the truth: each cell's expected "
                               f"{reward}s per email over the emails the test sent with it"
                               if has_truth else
                               "; a fraction: each estimate also measures its aliases, and "
                               "there is no truth of effects (the run evaluates only the "
                               "cells it sends)")
                            + "). Main effects: the level against the first level, averaged "
                            "over the other elements; interactions: differences of "
                            "differences."))
        blocks.append(("table", ["effect", "level", "aliased with", "estimate [CI]",
                                 "adjusted p", "significant", "truth"],
                       [[e.effect, e.level, e.aliased_with or "-",
                         f"{e.estimate:.4g} [{e.ci_low:.4g}, {e.ci_high:.4g}]",
                         f"{e.p_adjusted:.2g}", "yes" if e.significant else "no",
                         f"{e.truth:.4g}" if has_truth else "-"]
                        for e in eff.itertuples()]))
        best = fa.best
        if "true_best" not in best:
            blocks.append(("p", f"Best cell by the analysis: {':'.join(best['levels'].values())}"
                                f", fitted {best['fitted']:.4g} [{best['ci_low']:.4g}, "
                                f"{best['ci_high']:.4g}]."))
            continue
        levels = ":".join(best["levels"].values())
        true_best = ":".join(best["true_best"].values())
        blocks.append(("p", f"Best cell by the analysis: {levels}, fitted "
                            f"{best['fitted']:.4g} [{best['ci_low']:.4g}, "
                            f"{best['ci_high']:.4g}]; in truth "
                            + ("it is the best cell" if levels == true_best else
                               f"the best cell is {true_best} ({best['true_best_value']:.4g})")
                            + f" (its truth {best['truth']:.4g})."))
    return blocks


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def combination_plot_files(res: Results) -> list[str]:
    """The factorial plots a run folder of ``res`` may have, per fixed-split combination
    arm: ``factorial_effects_<arm>.png`` and ``factorial_interaction_<arm>.png``."""
    return [f"factorial_{kind}_{_file_part(a)}.png" for a in split_arms(res.spec)
            for kind in ("effects", "interaction")]


def combination_figures(res: Results) -> dict[str, Any]:
    """File name -> figure of each :func:`split_arms` arm's factorial analysis
    (replication 0): the effects with their intervals and truth, and the interaction
    plot of its most significant two-way interaction (none when the design estimates no
    interaction). Arms without an analysis give none."""
    from experiments.factorial_plots import effects_plot, interaction_plot

    out: dict[str, Any] = {}
    if res.decisions is None:
        return out
    for arm in split_arms(res.spec):
        try:
            fa = factorial_analysis(res, arm)
        except StatsInputError:
            continue
        if fa is None:
            continue
        out[f"factorial_effects_{_file_part(arm)}.png"] = effects_plot(fa)
        inter = fa.effects[fa.effects["kind"] == "interaction"]
        if len(inter):
            top = inter.loc[inter["p_value"].idxmin(), "effect"]
            factor, across = top.split(":")
            out[f"factorial_interaction_{_file_part(arm)}.png"] = interaction_plot(
                fa, factor, across)
    return out
