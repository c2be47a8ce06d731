"""The experiment runner: replications x arms over the executor, into a run folder.

``experiments.run(spec)`` builds one :class:`actors.SimulationConfig` per (replication,
arm) -- every arm of replication ``r`` gets the seed ``spec.seed + r``, so arms share
the population and the random numbers (common random numbers) -- runs them with
:func:`actors.run_simulation` on the spec's executor, and gathers the tidy tables into
:class:`~experiments.results.Results`. With ``out=`` it writes the run folder::

    spec.yaml          the spec as run (rules inline, seeds, package versions)
    metrics.parquet    replication x arm x day x source x variant x group x metric
    truth.parquet      the simulator's ground truth per replication x arm x source x variant
    decisions.parquet  per-email log with propensities (record.decisions)
    events.parquet     event log (record.events)
    subscribers.parquet         the subscriber table at the start of each run, and
    subscriber_metrics.parquet  per-subscriber counts and truth (both with
                                analysis.segments)
    commits.parquet    what each automatic-winner rule committed to, and the true best
                       variant (specs with an auto_winner or winning_path arm)
    journeys.parquet   what the journeys did: entries, and decisions per node, kind, path
                       and group (specs whose rules have journeys)
    segments.csv, segment_tests.csv   per-segment effects of the primary metric and the
                                heterogeneity tests (analysis.segments)
    summary.csv        per arm x metric: estimate, CI, lift, p-values, truth
    report.md, report.html, *.png
    timing.json        wall-clock seconds per run (the only non-reproducible file)

The folder is written into a temporary sibling directory and renamed into place at the
end, so a failure never leaves a half-written ``out``. Re-running an identical spec
gives byte-identical files except ``timing.json``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from actors.plan import RunPlan
from experiments.auto_winner import COMMIT_COLUMNS, COMMIT_POLICIES, commit_row
from experiments.budget import check_budget
from experiments.regret import regret_rows
from experiments.results import Results
from experiments.rule_checks import rule_warnings
from experiments.spec import ArmSpec, ExperimentSpec, arm_rules, load_spec
from policies.errors import RuleWarning, SpecError

__all__ = ["Progress", "run", "simulate", "simulation_config", "write_run"]

#: Run-folder file names in the order they are written.
DATA_FILES = ("spec.yaml", "metrics.parquet", "truth.parquet", "decisions.parquet",
              "events.parquet", "subscribers.parquet", "subscriber_metrics.parquet",
              "commits.parquet", "journeys.parquet", "summary.csv", "segments.csv",
              "segment_tests.csv")


def simulation_config(spec: ExperimentSpec, arm: ArmSpec | str, replication: int,
                      *, record_decisions: bool | None = None) -> Any:
    """The :class:`actors.SimulationConfig` of one (arm, replication).

    Parameters
    ----------
    spec : ExperimentSpec
    arm : ArmSpec or str
        The arm (or its name).
    replication : int
        0-based; the seed is ``spec.seed + replication`` for every arm (common random
        numbers) unless the spec turns them off.
    record_decisions : bool, optional
        Override the spec's ``record.decisions``.
    """
    from actors.config import SimulationConfig
    from policies.triggers import load_rules

    if isinstance(arm, str):
        arm = spec.arm(arm)
    rules_data = arm_rules(spec.rules, arm)
    campaign = spec.campaign if isinstance(arm.campaign, str) else arm.campaign  # "inherit"
    return SimulationConfig(
        seed=spec.replication_seed(replication, [a.name for a in spec.arms].index(arm.name)),
        subscribers=spec.subscribers,
        preset=spec.preset,
        preset_overrides=dict(spec.preset_overrides),
        days=float(spec.days),
        tick_seconds=int(spec.tick_seconds),
        rules=load_rules(rules_data) if rules_data is not None else None,
        campaign=campaign,
        policy=arm.policy,
        holdout_fraction=float(arm.holdout),
        reward=spec.reward,
        reward_window_seconds=int(spec.reward_window_seconds),
        record_decisions=spec.record_decisions if record_decisions is None else record_decisions,
        record_events=spec.record_events,
        record_subscribers=bool(spec.segments),
        scoring=scoring_config(spec),
        target=arm.target,
    )


def scoring_config(spec: ExperimentSpec) -> Any:
    """The runtime's ScoringConfig of ``spec`` (scorers fitted on the prior run, cached;
    :mod:`experiments.models.scorers`), or None."""
    sc = spec.scoring
    if sc is None:
        return None
    from actors.config import ScoringConfig
    from experiments.models.scorers import fit_scorers

    scorers, columns = fit_scorers(
        sc.scorers, subscribers=sc.train_subscribers, days=sc.train_days, seed=spec.seed,
        preset=spec.preset, overrides=tuple(sorted(dict(spec.preset_overrides).items())),
        model=sc.model, holdout=sc.train_holdout, incentive=sc.train_incentive)
    return ScoringConfig(scorers, columns, first_day=sc.first_day, every_days=sc.refresh)


class Progress:
    """A one-line text progress bar on a stream (stderr by default).

    ``enabled=None`` shows it only when the stream is a terminal.
    """

    def __init__(self, total: int, *, enabled: bool | None = None, stream: Any = None,
                 width: int = 28) -> None:
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = bool(isatty()) if enabled is None else bool(enabled)
        self.width = width
        self.done = 0

    def update(self, label: str) -> None:
        """Mark one more unit done and redraw with ``label``."""
        self.done += 1
        if not self.enabled:
            return
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        end = "\n" if self.done >= self.total else ""
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {label:<40.40}{end}")
        self.stream.flush()

    def start(self, label: str) -> None:
        """Redraw with ``label`` without advancing (work on the next unit began)."""
        if not self.enabled:
            return
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {label:<40.40}")
        self.stream.flush()


def _simulate() -> Callable[..., Any]:
    from actors import run_simulation

    return run_simulation


def simulate(config: Any, *, executor: str = "inline", shards: int = 1,
             address: str | None = None) -> Any:
    """One whole simulation run of ``config``, without a progress bar.

    Parameters
    ----------
    config : actors.SimulationConfig
        From :func:`simulation_config`.
    executor : {"inline", "ray"}
    shards : int
    address : str, optional
        Ray cluster address (``executor="ray"``).

    Returns
    -------
    actors.RunResult
    """
    return _simulate()(config, executor=executor, shards=shards, address=address,
                       progress=False)


def _with_keys(df: pd.DataFrame, replication: int, arm: str) -> pd.DataFrame:
    """Prefix the experiment keys; the runtime's ``arm`` (policy arm) becomes ``variant``."""
    out = df.rename(columns={"arm": "variant"}).copy()
    out.insert(0, "arm", arm)
    out.insert(0, "replication", replication)
    return out


def _run_timed(config: Any, executor: str = "inline", shards: int = 1,
               address: str | None = None) -> tuple[Any, float]:
    """One whole run and its wall time, seconds (rounded to ms)."""
    t0 = time.perf_counter()
    res = simulate(config, executor=executor, shards=shards, address=address)
    return res, round(time.perf_counter() - t0, 3)


def _run_inline(config: Any) -> tuple[Any, float]:
    """One whole run on the inline executor and its wall time (the body of a Ray task)."""
    return _run_timed(config)


def _run_all(spec: ExperimentSpec, configs: list[Any], runs: list[tuple[int, ArmSpec]],
             bar: Progress, address: str | None) -> list[tuple[Any, float]]:
    """Every (replication, arm) run with its wall time, in ``runs`` order.

    With ``executor="ray"`` and one shard each run is its own Ray task (inline executor
    inside, one CPU each; :func:`actors.fan_out.map_runs`), so a cluster runs them in
    parallel; a task lost with its worker is retried, which is safe because runs are
    deterministic. Otherwise the runs go one after the other on the spec's executor.
    """
    from actors.fan_out import map_runs

    labels = [f"replication {r} arm {arm.name}" for r, arm in runs]
    if spec.executor == "ray" and spec.shards == 1:
        return map_runs(_run_inline, configs, "ray", address=address,
                        on_done=lambda i: bar.update(labels[i]))
    run_one = functools.partial(_run_timed, executor=spec.executor, shards=spec.shards,
                                address=address)
    return map_runs(run_one, configs, "inline", on_start=lambda i: bar.start(labels[i]),
                    on_done=lambda i: bar.update(labels[i]))


def run(spec: ExperimentSpec | str | Path | Mapping[str, Any], *, out: str | Path | None = None,
        executor: str | None = None, shards: int | None = None, address: str | None = None,
        progress: bool | None = None, overwrite: bool = True, plots: bool = True) -> Results:
    """Run every (replication, arm) of an experiment and return its :class:`Results`.

    Parameters
    ----------
    spec : ExperimentSpec, path, YAML text or mapping
        Loaded with :func:`~experiments.spec.load_spec`.
    out : path, optional
        Write the run folder there (see the module docstring).
    executor : {"inline", "ray"}, optional
        Overrides the spec's executor. With ``ray`` and one shard, every (replication,
        arm) runs as its own Ray task in parallel; with more shards the runs go one after
        the other, each spread over ``shards`` Ray actors.
    shards : int, optional
        Overrides the spec's shard count.
    address : str, optional
        Ray cluster address (``executor="ray"``); default a local cluster.
    progress : bool, optional
        Show a progress bar over runs; default only on a terminal.
    overwrite : bool
        Replace an existing run folder at ``out`` (only one holding a ``spec.yaml``; any
        other non-empty directory is refused).
    plots : bool
        Write the PNG plots (with ``out``).

    Returns
    -------
    Results
        In-memory tables (and ``run_dir`` when ``out`` was given).

    Warns
    -----
    RuleWarning
        For each rule that cannot fire on the simulated population
        (:func:`experiments.rule_checks.rule_warnings`; the report lists them too).
    """
    spec = load_spec(spec)
    if executor is not None or shards is not None:
        import dataclasses

        spec = dataclasses.replace(
            spec,
            executor=executor if executor is not None else spec.executor,
            shards=shards if shards is not None else spec.shards,
        )
    check_budget(spec)
    if out is not None:
        _check_out(Path(out), overwrite)
    for text in rule_warnings(spec):  # the report lists them too
        warnings.warn(text, RuleWarning, stacklevel=2)
    runs = [(r, arm) for r in range(spec.replications) for arm in spec.arms]
    bar = Progress(len(runs), enabled=progress)
    # arms with a policy always log decisions: the daily regret curve comes from them
    configs = [simulation_config(spec, arm, r,
                                 record_decisions=spec.record_decisions or arm.policy is not None)
               for r, arm in runs]
    outputs = _run_all(spec, configs, runs, bar, address)
    metrics, truth, decisions, events, timing = [], [], [], [], []
    books, tables, commits, journeys = [], [], [], []
    # automatic-winner rules are judged against the truth, beside every policy arm
    judge = any(a.policy is not None and a.policy.name in COMMIT_POLICIES for a in spec.arms)
    for (r, arm), config, (res, wall) in zip(runs, configs, outputs, strict=True):
        timing.append({"replication": r, "arm": arm.name, "wall_s": wall})
        m = _with_keys(res.metrics, r, arm.name)
        if arm.policy is not None and "expected_regret" not in set(res.metrics["metric"]):
            m = pd.concat([m, regret_rows(res.decisions, r, arm.name, config.start)],
                          ignore_index=True)
        metrics.append(m)
        truth.append(_with_keys(res.truth, r, arm.name))
        if res.decisions is not None and spec.record_decisions:
            decisions.append(_with_keys(res.decisions, r, arm.name))
        if res.events is not None:
            events.append(_with_keys(res.events, r, arm.name))
        if res.journeys is not None:
            journeys.append(_with_keys(res.journeys, r, arm.name))
        if judge and arm.policy is not None:
            names = tuple(RunPlan.policy(config).arm_names)
            commits.append({"replication": r, "arm": arm.name, "policy": arm.policy.name,
                            **commit_row(res.policy_state, res.decisions, names)})
        if res.subscribers is not None:
            books.append(_with_keys(res.subscribers, r, arm.name))
            tables.append(_with_keys(res.subscriber_table.reset_index(), r, arm.name))
    if tables and spec.scoring is not None:
        tables = _control_scores(tables, spec)
    results = Results(
        spec=spec,
        metrics=_tidy_metrics(pd.concat(metrics, ignore_index=True)),
        truth=_tidy_truth(pd.concat(truth, ignore_index=True)),
        decisions=pd.concat(decisions, ignore_index=True) if decisions else None,
        events=pd.concat(events, ignore_index=True) if events else None,
        timing=pd.DataFrame(timing),
        subscribers=pd.concat(tables, ignore_index=True) if tables else None,
        subscriber_metrics=pd.concat(books, ignore_index=True) if books else None,
        journeys=pd.concat(journeys, ignore_index=True) if journeys else None,
        commits=(pd.DataFrame(commits, columns=list(COMMIT_COLUMNS)).sort_values(
            ["replication", "arm"], kind="stable").reset_index(drop=True) if commits else None),
    )
    if out is not None:
        results = write_run(results, Path(out), plots=plots, overwrite=overwrite)
    return results


def _control_scores(tables: list[pd.DataFrame], spec: ExperimentSpec) -> list[pd.DataFrame]:
    """Score columns of every arm's start table replaced by the control arm's (its first
    refresh) of the same replication, so a subscriber is in one segment in every arm."""
    assert spec.scoring is not None
    cols = list(spec.scoring.columns)
    ctrl = {int(t["replication"].iloc[0]): t.set_index("subscriber")[cols]
            for t in tables if len(t) and t["arm"].iloc[0] == spec.control_arm}
    out = []
    for t in tables:
        t = t.copy()
        if len(t):
            c = ctrl[int(t["replication"].iloc[0])].reindex(t["subscriber"].to_numpy())
            t[cols] = c.to_numpy()
            for col, domain in spec.scoring.columns.items():
                if domain.kind == "integer":   # a cluster: a category, not binned
                    t[col] = t[col].map(lambda v: None if pd.isna(v) else str(int(v)))
        out.append(t)
    return out


def _tidy_metrics(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["replication", "arm", "day", "source", "variant", "group", "metric"]
    df = df[[*keys, "value"]].copy()
    df["replication"] = df["replication"].astype("int64")
    df["day"] = df["day"].astype("int64")
    df["value"] = df["value"].astype("float64")
    for c in ("arm", "source", "variant", "group", "metric"):
        df[c] = df[c].astype(str)
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _tidy_truth(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["replication", "arm", "source", "variant", "group"]
    df = df.copy()
    for c in ("arm", "source", "variant", "group"):
        df[c] = df[c].astype(str)
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` the run folder cannot be written to: a file, a
    non-empty directory that is not a run folder, a run folder without ``overwrite``, or
    a place whose nearest existing parent is not a writable directory. Messages name
    ``out`` as given, never a temporary path."""
    check_out_dir(out, "--out")
    if out.exists() and any(out.iterdir()):
        if not (out / "spec.yaml").exists():
            raise SpecError(f"--out: {out} is a non-empty directory that is not a run "
                            "folder; choose another path")
        if not overwrite:
            raise SpecError(f"--out: {out} already holds a run; pass overwrite")


def check_out_dir(out: Path, what: str = "--out") -> None:
    """SpecError unless directory ``out`` exists and can be replaced, or can be created:
    ``out`` must not be a file, and its nearest existing ancestor must be a writable
    directory (the folder is written as a temporary sibling, then renamed)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpecError(f"{what}: expected a directory, got the file {out}")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise SpecError(f"{what}: cannot write to {out}: permission denied")
    parent = Path(os.path.abspath(out)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise SpecError(f"{what}: cannot create {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SpecError(f"{what}: cannot create {out}: {parent} is not writable")


def _versions() -> dict[str, str]:
    import platform

    import numpy
    import pyarrow

    from policies._version import __version__

    return {"triggerlab": __version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__}


def _spec_as_run(spec: ExperimentSpec) -> str:
    import yaml

    data = spec.to_dict()
    data["run"] = {
        "seeds": {a.name: [spec.replication_seed(r, i) for r in range(spec.replications)]
                  for i, a in enumerate(spec.arms)},
        "versions": _versions(),
    }
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False, compression="zstd")


def write_run(results: Results, out: Path, *, plots: bool = True,
              overwrite: bool = True) -> Results:
    """Write ``results`` as a run folder at ``out`` (atomically: temp dir, then rename).

    Returns the same results with ``run_dir`` set.
    """
    from experiments import report as report_mod
    from experiments.analysis import summarize

    out = Path(out)
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / "spec.yaml").write_text(_spec_as_run(results.spec), encoding="utf-8")
        _write_parquet(results.metrics, tmp / "metrics.parquet")
        _write_parquet(results.truth, tmp / "truth.parquet")
        if results.decisions is not None:
            _write_parquet(results.decisions, tmp / "decisions.parquet")
        if results.events is not None:
            _write_parquet(results.events, tmp / "events.parquet")
        if results.subscribers is not None:
            _write_parquet(results.subscribers, tmp / "subscribers.parquet")
        if results.subscriber_metrics is not None:
            _write_parquet(results.subscriber_metrics, tmp / "subscriber_metrics.parquet")
        if results.commits is not None:
            _write_parquet(results.commits, tmp / "commits.parquet")
        if results.journeys is not None:
            _write_parquet(results.journeys, tmp / "journeys.parquet")
        summary = summarize(results)
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        segments = None
        if results.spec.segments:
            from experiments.segment_report import write_segment_plots
            from experiments.segments import segment_analyses, write_segment_tables

            segments = segment_analyses(results)
            write_segment_tables(segments, tmp)
            if plots:
                write_segment_plots(segments, tmp)
        if plots:
            from experiments import plots as plots_mod

            plots_mod.write_plots(results, tmp, summary)
        report_mod.write_report(results, tmp, summary=summary, segments=segments)
        if results.timing is not None:
            (tmp / "timing.json").write_text(
                json.dumps({"runs": results.timing.to_dict(orient="records"),
                            "total_wall_s": round(float(results.timing["wall_s"].sum()), 3)},
                           indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    results.run_dir = out
    return results
