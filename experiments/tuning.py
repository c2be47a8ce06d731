"""``triggerlab tune SPEC``: Bayesian optimization of one arm's rule parameters on the
simulator (docs/tuning.md).

The spec's ``tune`` section (:mod:`experiments.tuning_spec`) names the arm, the metric,
an optional guardrail and the parameters with their ranges. Each batch of ``parallel``
trials is one experiment run: the arm as declared (``baseline``, the guardrail's
reference) and one arm per trial with the trial's values written into its rules. Every
arm of every run uses the spec's seeds (common random numbers), so trials differ only by
their parameters. A trial is judged by the section's ``objective``: ``truth`` (default),
the simulator's expected value of the metric for the emails the trial sent, free of
response noise; or ``observed``, the value the run measured (as a live test would, with
its noise). Optuna's TPE sampler (seeded with the spec's seed; the guardrail as a
constraint) proposes the values; the study is stored in ``study.db`` (SQLite) in the
output folder, so an interrupted or extended search resumes where it stopped. The best
trial is the feasible one with the best objective; both the observed and the true values
are reported for every trial.

Output folder: ``study.db``, ``trials.csv`` (one row per trial: values, observed metric,
its truth, guardrail difference and its truth, feasible), ``best.yaml`` (the best values
and their figures), ``best_rules.yaml`` (the tuned arm's rules with the best values: a
rules file ``triggerlab run`` and ``triggerlab serve`` load as it is), ``history.png`` and
``partial_dependence.png``.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.analysis import LOWER_IS_BETTER
from experiments.design import ExperimentSpec, arm_rules
from experiments.tuning_spec import TuneSpec, apply_values, current_values
from policies.errors import SpecError

__all__ = ["TuneResult", "evaluate", "grid_points", "grid_search", "tune"]

#: Columns of ``trials.csv`` besides one per parameter (after ``trial``).
TRIAL_COLUMNS = ("metric", "metric_truth", "guardrail_worse", "guardrail_true_worse",
                 "feasible")


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    trials : DataFrame
        One row per completed trial: ``trial``, each parameter (rules-file values), then
        :data:`TRIAL_COLUMNS` (``guardrail_worse``: how much worse than the baseline the
        guardrail metric is, in its units, > 0 worse).
    baseline : dict
        The arm as declared: ``metric``, ``metric_truth``, and its parameter values.
    best : dict
        The best feasible trial (``trial``, ``values``, ``metric``, ``metric_truth``,
        ``guardrail_worse``, ``guardrail_true_worse``); empty when none is feasible.
    out : Path or None
    """

    trials: pd.DataFrame
    baseline: dict[str, Any]
    best: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None


def _distributions(tune: TuneSpec) -> dict[str, Any]:
    import optuna

    out: dict[str, Any] = {}
    for p in tune.parameters:
        if p.kind == "duration":
            out[p.name] = optuna.distributions.IntDistribution(
                int(p.low) // 60, int(p.high) // 60, log=p.log)
        elif p.kind == "int":
            out[p.name] = optuna.distributions.IntDistribution(int(p.low), int(p.high),
                                                               log=p.log)
        else:
            out[p.name] = optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
    return out


def _rules_values(tune: TuneSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's values (minutes for durations) as rules-file values."""
    return {p.name: p.spec_value(params[p.name] * 60 if p.kind == "duration"
                                 else params[p.name]) for p in tune.parameters}


def _batch_spec(spec: ExperimentSpec, tune: TuneSpec, candidates: list[dict[str, Any]]
                ) -> tuple[dict[str, Any], list[str]]:
    """One run: the tuned arm as declared (``baseline``) and one arm per candidate."""
    data = spec.to_dict()
    data.pop("tune", None)
    arm = next(a for a in data["arms"] if a["name"] == tune.arm)
    effective = arm_rules(spec.rules, spec.arm(tune.arm)) or {}
    base = {**copy.deepcopy(arm), "name": "baseline"}
    base.pop("description", None)
    arms, names = [base], []
    for k, values in enumerate(candidates):
        _, over = apply_values(effective, tune, values)
        cand = {**copy.deepcopy(base), "name": f"trial_{k}"}
        if "rules" in over:
            rules = copy.deepcopy(dict(cand.get("rules") or {}))
            for rid, keys in over["rules"].items():
                rules[rid] = {**dict(rules.get(rid) or {}), **keys}
            cand["rules"] = rules
        if "settings" in over:
            cand["settings"] = {**dict(cand.get("settings") or {}), **over["settings"]}
        arms.append(cand)
        names.append(cand["name"])
    metrics = list(dict.fromkeys([tune.metric, *([tune.guardrail_metric]
                                                 if tune.guardrail_metric else [])]))
    data.update(arms=arms, control="baseline", metrics=metrics, primary_metric=tune.metric,
                record={"decisions": False, "events": False})
    data.pop("guardrails", None)
    analysis = dict(data.get("analysis") or {})
    for key in ("segments", "segment_bins", "segment_correction"):
        analysis.pop(key, None)
    data["analysis"] = analysis
    return data, names


def _worse(metric: str, diff: float) -> float:
    """How much worse (> 0) a difference vs the baseline is, in the metric's units."""
    return diff if metric in LOWER_IS_BETTER else -diff


def evaluate(spec: ExperimentSpec, tune: TuneSpec, candidates: list[dict[str, Any]],
              executor: str | None) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Run one batch of ``candidates`` (parameter name -> rules-file value) beside the
    baseline; per candidate ``metric``, ``metric_truth``, ``guardrail_worse``,
    ``guardrail_true_worse``, and the baseline's ``metric`` and ``metric_truth``."""
    from experiments.runner import run

    data, names = _batch_spec(spec, tune, candidates)
    summary = run(data, executor=executor, progress=False, plots=False).summary()
    s = summary.set_index(["metric", "arm"])
    out = []
    for name in names:
        row = s.loc[(tune.metric, name)]
        fig = {"metric": float(row["estimate"]), "metric_truth": float(row["true_value"]),
               "guardrail_worse": math.nan, "guardrail_true_worse": math.nan}
        if tune.guardrail_metric is not None:
            g = s.loc[(tune.guardrail_metric, name)]
            fig["guardrail_worse"] = _worse(tune.guardrail_metric, float(g["diff"]))
            fig["guardrail_true_worse"] = _worse(tune.guardrail_metric, float(g["true_diff"]))
        out.append(fig)
    b = s.loc[(tune.metric, "baseline")]
    return out, {"metric": float(b["estimate"]), "metric_truth": float(b["true_value"])}


def _score(tune: TuneSpec, fig: dict[str, float]) -> tuple[float, float]:
    """(the value judged, how much worse the guardrail is) by the section's objective."""
    return fig[tune.objective_column], fig[tune.guardrail_column]


def _feasible(tune: TuneSpec, fig: dict[str, float]) -> bool:
    if tune.guardrail_metric is None:
        return True
    worse = _score(tune, fig)[1]
    return bool(np.isfinite(worse) and worse <= tune.guardrail_max_worse)


def tune(spec: ExperimentSpec, *, trials: int | None = None, parallel: int | None = None,
         out: str | Path | None = None, executor: str | None = None,
         progress: Callable[[int, int, dict[str, Any]], None] | None = None) -> TuneResult:
    """Search the spec's ``tune`` parameters; see the module docstring.

    Parameters
    ----------
    spec : ExperimentSpec
        With a ``tune`` section.
    trials : int, optional
        Trials the study should have in all (default the section's ``trials``); a resumed
        study runs only the missing ones.
    parallel : int, optional
        Trials per run (default the section's ``parallel``); with ``executor="ray"`` the
        arms of a run go in parallel.
    out : path, optional
        Output folder (created); without it the study is kept in memory and nothing is
        written.
    executor : {"inline", "ray"}, optional
        Overrides the spec's executor.
    progress : callable, optional
        Called after each trial with (trials done, trials in all, its row).

    Raises
    ------
    SpecError
        The spec has no ``tune`` section, ``trials``/``parallel`` are below 1, or ``out``
        holds a study of another spec or tune section (only ``trials`` and ``parallel``
        may change to resume).

    Notes
    -----
    A trial whose objective is not a number (its rules sent no email) counts as failed:
    it uses up a trial and is left out of the table.
    """
    import optuna

    t = spec.tune
    if t is None:
        raise SpecError(f"spec {spec.name!r}: no 'tune' section (docs/tuning.md)")
    n_trials = t.trials if trials is None else int(trials)
    k = t.parallel if parallel is None else int(parallel)
    if n_trials < 1 or k < 1:
        raise SpecError(f"trials and parallel: expected integers >= 1, got {n_trials} and {k}")
    folder = Path(out) if out is not None else None
    storage = None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(folder / 'study.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=spec.seed,
                                         n_startup_trials=min(8, max(2, n_trials // 3)))
    lower = t.metric in LOWER_IS_BETTER
    direction = "minimize" if lower else "maximize"
    study = optuna.create_study(
        study_name=spec.name, storage=storage, sampler=sampler, load_if_exists=True,
        direction=(optuna.study.StudyDirection.MINIMIZE if lower
                   else optuna.study.StudyDirection.MAXIMIZE))
    section = {"spec": spec.to_dict()}
    section["spec"].pop("tune", None)
    section["spec"]["tune"] = {key: val for key, val in t.to_dict().items()
                               if key not in ("trials", "parallel")}
    if "searched" not in study.user_attrs:
        study.set_user_attr("searched", section)
    elif study.user_attrs["searched"] != section:
        raise SpecError(f"out: {folder} holds a study of another spec or tune section (it "
                        "must be the same but for trials and parallel to resume); choose "
                        "another --out")
    dists = _distributions(t)
    effective = arm_rules(spec.rules, spec.arm(t.arm)) or {}
    baseline: dict[str, Any] = {"values": current_values(effective, t)}
    baseline.update(study.user_attrs.get("baseline", {}))
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)

    def done() -> list[Any]:
        return [tr for tr in study.trials if tr.state == optuna.trial.TrialState.COMPLETE]

    def finished() -> int:
        return sum(tr.state in ended for tr in study.trials)

    while finished() < n_trials:
        batch = [study.ask(dists) for _ in range(min(k, n_trials - finished()))]
        values = [_rules_values(t, tr.params) for tr in batch]
        figures, base = evaluate(spec, t, values, executor)
        if "metric" not in baseline:
            baseline.update(base)
            study.set_user_attr("baseline", base)
        for tr, v, fig in zip(batch, values, figures, strict=True):
            feasible = _feasible(t, fig)
            for key, val in {**fig, "values": v, "feasible": feasible}.items():
                tr.set_user_attr(key, val)
            value, worse = _score(t, fig)
            if not np.isfinite(value):  # e.g. no email sent: nothing to judge
                study.tell(tr, state=optuna.trial.TrialState.FAIL)
                continue
            if t.guardrail_metric is not None:  # feasible when <= 0
                tr.set_constraint("guardrail", float(worse) - t.guardrail_max_worse
                                  if np.isfinite(worse) else 1.0)
            study.tell(tr, value)
            if progress is not None:
                progress(len(done()), n_trials, {"trial": tr.number, **v, **fig})
    table = _table(t, done())
    result = TuneResult(trials=table, baseline=baseline, best=_best(t, table, direction),
                        out=folder)
    if folder is not None:
        _write(result, spec, t, effective, folder)
    return result


def _table(t: TuneSpec, trials: list[Any]) -> pd.DataFrame:
    rows = []
    for tr in sorted(trials, key=lambda x: x.number):
        a = tr.user_attrs
        rows.append({"trial": tr.number, **a["values"],
                     **{c: a.get(c, math.nan) for c in TRIAL_COLUMNS}})
    cols = ["trial", *(p.name for p in t.parameters), *TRIAL_COLUMNS]
    return pd.DataFrame(rows, columns=cols)


def _best(t: TuneSpec, table: pd.DataFrame, direction: str) -> dict[str, Any]:
    ok = table[table["feasible"].astype(bool)]
    if not len(ok):
        return {}
    col = t.objective_column
    i = ok[col].idxmin() if direction == "minimize" else ok[col].idxmax()
    row = ok.loc[i]
    return {"trial": int(row["trial"]),
            "values": {p.name: _plain(row[p.name]) for p in t.parameters},
            **{c: _plain(row[c]) for c in TRIAL_COLUMNS}}


def _plain(v: Any) -> Any:
    """numpy scalars as Python ones (YAML)."""
    return v.item() if isinstance(v, np.generic) else v


def _write(result: TuneResult, spec: ExperimentSpec, t: TuneSpec,
           effective: dict[str, Any], folder: Path) -> None:
    import matplotlib.pyplot as plt
    import yaml

    from experiments.tuning_plots import history_plot, partial_dependence_plot

    result.trials.to_csv(folder / "trials.csv", index=False)
    best = {"spec": spec.name, "arm": t.arm, "metric": t.metric,
            "baseline": {k: _plain(v) for k, v in result.baseline.items()},
            "best": result.best, "trials": len(result.trials)}
    (folder / "best.yaml").write_text(yaml.safe_dump(best, sort_keys=False), encoding="utf-8")
    if result.best:
        rules, _ = apply_values(effective, t, result.best["values"])
        (folder / "best_rules.yaml").write_text(
            yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    for name, fig in (("history.png", history_plot(result, t)),
                      ("partial_dependence.png", partial_dependence_plot(result, t))):
        fig.savefig(folder / name)
        plt.close(fig)


def grid_points(t: TuneSpec, levels: int) -> list[dict[str, Any]]:
    """Every point of a grid of ``levels`` values per parameter (parameter name ->
    rules-file value): evenly spaced on each parameter's scale (log with ``log``),
    durations in whole minutes, integers rounded; repeated values are dropped."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise SpecError(f"levels: expected an integer >= 2, got {levels!r}")
    axes = []
    for p in t.parameters:
        x = (np.geomspace(p.low, p.high, levels) if p.log
             else np.linspace(p.low, p.high, levels))
        if p.kind == "duration":
            x = np.round(x / 60) * 60
        elif p.kind == "int":
            x = np.round(x)
        axes.append(list(dict.fromkeys(p.spec_value(v) for v in x.tolist())))
    names = [p.name for p in t.parameters]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]


def grid_search(spec: ExperimentSpec, levels: int, *, parallel: int | None = None,
                executor: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Evaluate the spec's ``tune`` parameters on a full grid (:func:`grid_points`), in
    runs of ``parallel`` points beside the baseline (default: the section's), with the
    same common random numbers as :func:`tune`: one row per point, its values and
    :data:`TRIAL_COLUMNS` (``feasible`` by the section's objective), in grid order.
    ``progress(done, total)`` is called after each run."""
    t = spec.tune
    if t is None:
        raise SpecError("tune: the spec has no tune section")
    step = int(parallel if parallel is not None else t.parallel)
    if step < 1:
        raise SpecError(f"parallel: expected an integer >= 1, got {parallel!r}")
    points = grid_points(t, levels)
    rows = []
    for k in range(0, len(points), step):
        batch = points[k:k + step]
        figs, _ = evaluate(spec, t, batch, executor)
        rows += [{**p, **f, "feasible": _feasible(t, f)} for p, f in zip(batch, figs,
                                                                         strict=True)]
        if progress is not None:
            progress(len(rows), len(points))
    return pd.DataFrame(rows, columns=[*(p.name for p in t.parameters), *TRIAL_COLUMNS])

