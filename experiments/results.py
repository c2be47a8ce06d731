"""Results of an experiment as pandas DataFrames, in memory or reopened from a run folder.

>>> res = Results.load("runs/cart-reminder-timing")        # doctest: +SKIP
>>> res.metrics.head()        # replication, arm, day, source, variant, group, metric, value
>>> res.counts()              # per replication x arm x experiment metric: numerator, denominator
>>> res.summary()             # per arm x metric: estimate, CI, lift, p-values, ground truth

Column meanings: ``arm`` is the experiment arm; ``variant`` the policy's arm inside it
(the subject line, send hour or strategy an email got; ``""`` when no policy decided);
``group`` ``treatment`` or ``holdout``; ``source`` a rule id, ``campaign`` or ``site``
(organic totals and group sizes).

:func:`metric_counts` lives in :mod:`experiments.tables` and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from actors.journey_book import JOURNEY_COLUMNS
from actors.metrics import TRUTH_COLUMNS
from actors.subscriber_books import SUBSCRIBER_EMAIL_COLUMNS, SUBSCRIBER_SITE_COLUMNS
from experiments.analysis import summarize
from experiments.auto_winner import COMMIT_COLUMNS
from experiments.spec import ExperimentSpec, load_spec
from experiments.tables import metric_counts
from policies.errors import SpecError
from policies.features import FEATURE_NAMES

__all__ = ["RUN_TABLE_COLUMNS", "Results", "metric_counts"]

#: Columns every table of a run folder has (the runner writes them; more may follow).
RUN_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "metrics.parquet": ("replication", "arm", "day", "source", "variant", "group", "metric",
                        "value"),
    "truth.parquet": ("replication", "arm", "source", "variant", "group", *TRUTH_COLUMNS,
                      "best_arm"),
    "decisions.parquet": ("replication", "arm", "email_id", "subscriber", "time", "source",
                          "variant", "arm_index", "propensity", "reward", "expected_reward",
                          *[f"x_{n}" for n in FEATURE_NAMES]),
    "events.parquet": ("replication", "arm", "subscriber", "time", "type"),
    "subscribers.parquet": ("replication", "arm", "subscriber"),
    "subscriber_metrics.parquet": ("replication", "arm", "subscriber", "group", "source",
                                   *SUBSCRIBER_EMAIL_COLUMNS, *SUBSCRIBER_SITE_COLUMNS),
    "commits.parquet": COMMIT_COLUMNS,
    "journeys.parquet": ("replication", "arm", *JOURNEY_COLUMNS),
}


def _read_table(d: Path, name: str) -> pd.DataFrame:
    """``d / name`` as a DataFrame; SpecError naming the file when a column is missing."""
    df = pd.read_parquet(d / name)
    missing = [c for c in RUN_TABLE_COLUMNS[name] if c not in df.columns]
    if missing:
        raise SpecError(f"run_dir: {d / name} lacks the columns {missing}; expected a table "
                        "written by triggerlab run")
    return df


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
        expected_incremental_orders, expected_regret, best_arm``, on the observed
        metrics' basis (responses within the reward window and the run; incremental
        orders before the run's end; see :class:`actors.RunResult`).
    decisions, events : DataFrame or None
        Per-email decision log (with propensities) and event log, when recorded.
    timing : DataFrame or None
        Wall-clock seconds per run (not part of the reproducible files).
    run_dir : Path or None
        The run folder, when written or loaded.
    subscribers : DataFrame or None
        The subscriber table at the start of each run, before any email:
        ``replication, arm, subscriber`` and the table's columns (docs/domain.md); the
        segments of :mod:`experiments.segments` (``analysis.segments``).
    subscriber_metrics : DataFrame or None
        Per-subscriber counts and truth (``replication, arm, subscriber, group, source``,
        counts, ``expected_*``; see :class:`actors.RunResult` ``subscribers``), with
        ``analysis.segments``.
    journeys : DataFrame or None
        With journeys in the rules, per replication and arm: entries per journey and
        decisions per node, kind, path and group
        (:data:`~actors.journey_book.JOURNEY_COLUMNS`).
    commits : DataFrame or None
        Per replication and arm with an automatic-winner policy (``auto_winner``,
        ``winning_path``) or any policy when one arm has such a rule: what the policy
        committed to and when, and the truly best variant
        (:data:`~experiments.auto_winner.COMMIT_COLUMNS`).
    """

    spec: ExperimentSpec
    metrics: pd.DataFrame
    truth: pd.DataFrame
    decisions: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    timing: pd.DataFrame | None = None
    run_dir: Path | None = None
    subscribers: pd.DataFrame | None = None
    subscriber_metrics: pd.DataFrame | None = None
    commits: pd.DataFrame | None = None
    journeys: pd.DataFrame | None = None

    @classmethod
    def load(cls, run_dir: str | Path) -> Results:
        """Reopen a run folder written by :func:`experiments.run` (``out=``).

        Raises
        ------
        SpecError
            When ``run_dir`` is not a run folder (the message names the missing file), or
            one of its tables lacks a column of :data:`RUN_TABLE_COLUMNS`.
        """
        d = Path(run_dir)
        if not d.is_dir():
            raise SpecError(f"run_dir: expected a run folder, got {str(d)!r} (not a directory)")
        for name in ("spec.yaml", "metrics.parquet", "truth.parquet"):
            if not (d / name).exists():
                raise SpecError(f"run_dir: {d} is not a run folder: {name} is missing")
        from policies.yaml_io import read_yaml_file

        data = read_yaml_file(d / "spec.yaml", "run_dir", SpecError)
        if isinstance(data, dict):
            data.pop("run", None)
        spec = load_spec(data)

        def opt(name: str) -> pd.DataFrame | None:
            return _read_table(d, name) if (d / name).exists() else None

        timing = None
        if (d / "timing.json").exists():
            import json

            runs = json.loads((d / "timing.json").read_text())
            if not isinstance(runs, dict) or not isinstance(runs.get("runs"), list):
                raise SpecError(f"run_dir: {d / 'timing.json'}: expected a mapping with a "
                                "'runs' list, as triggerlab run writes it")
            timing = pd.DataFrame(runs["runs"])
        return cls(spec=spec, metrics=_read_table(d, "metrics.parquet"),
                   truth=_read_table(d, "truth.parquet"), decisions=opt("decisions.parquet"),
                   events=opt("events.parquet"), timing=timing, run_dir=d,
                   subscribers=opt("subscribers.parquet"),
                   subscriber_metrics=opt("subscriber_metrics.parquet"),
                   commits=opt("commits.parquet"), journeys=opt("journeys.parquet"))

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
        """Per arm x metric: estimate, CI, lift vs control, p-values, P(beat), truth.

        See :func:`experiments.analysis.summarize`.
        """
        return summarize(self)

    def __repr__(self) -> str:
        where = f", run_dir={str(self.run_dir)!r}" if self.run_dir else ""
        return (f"Results(spec={self.spec.name!r}, arms={self.arms}, "
                f"replications={self.spec.replications}, metrics={len(self.metrics)} rows"
                f"{where})")
