"""An experiment's design: its arms (:class:`ArmSpec`) and the whole :class:`ExperimentSpec`.

The dataclasses validate their fields in ``__post_init__`` (so a spec built in Python is
checked like a loaded one) and hold the runtime's own configuration objects: an arm's
policy is an :class:`actors.config.PolicyConfig`, a campaign an
:class:`actors.config.CampaignConfig`, and every allowed name (rewards, what a policy
decides, its scope, executors, subject styles, corrections) comes from the module that
owns it. :mod:`experiments.spec` reads them from YAML (see its docstring for the file
format); :meth:`ExperimentSpec.to_dict` writes them back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from actors import EXECUTORS
from actors.config import REWARDS, CampaignConfig, PolicyConfig, TargetConfig
from experiments.metrics import METRICS
from policies.checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_string,
    did_you_mean,
    expected,
)
from policies.errors import SpecError
from policies.triggers import format_duration

__all__ = ["ArmSpec", "ExperimentSpec", "ScoringSpec", "arm_rules", "build_policy",
           "check_segments", "corrections", "policy_dict", "policy_names"]

#: Kinds of propensity model a spec's scoring may fit (``scoring.train.model``).
SCORING_MODELS: tuple[str, ...] = ("hgb", "logistic")


@dataclass(frozen=True)
class ScoringSpec:
    """Scores and clusters refreshed during every arm's run (docs/segments.md).

    Parameters
    ----------
    scorers : tuple of str
        Registered scorers (:data:`experiments.models.scorers.SCORERS`), distinct.
    first_day : int
        Days from the run's start to the first refresh (>= 1).
    refresh : int
        Days between refreshes (>= 1).
    train_subscribers : int
        Subscribers of the prior run the scorers are fitted on (>= 100).
    train_days : int
        Days of the prior run (>= 21).
    model : {"hgb", "logistic"}
        Propensity model kind.
    train_holdout : float
        Share in [0, 1) of the prior run's subscribers not sent its cut's email (a
        randomized send: uplift models need one; default 0).
    train_incentive : float
        Discount in [0, 1) of the prior run's cut email (the email an uplift model learns
        the effect of; default 0).
    """

    scorers: tuple[str, ...]
    first_day: int = 7
    refresh: int = 7
    train_subscribers: int = 5000
    train_days: int = 35
    model: str = "hgb"
    train_holdout: float = 0.0
    train_incentive: float = 0.0

    def __post_init__(self) -> None:
        from experiments.models.scorers import SCORERS

        if not isinstance(self.scorers, tuple) or not self.scorers:
            raise expected(SpecError, "scoring.scorers", "a non-empty list of scorer names",
                           self.scorers)
        for i, n in enumerate(self.scorers):
            check_choice(f"scoring.scorers[{i}]", n, sorted(SCORERS), error=SpecError)
            if n in self.scorers[:i]:
                raise SpecError(f"scoring.scorers[{i}]: duplicate scorer {n!r}; list each "
                                "scorer once")
        check_int("scoring.first_day", self.first_day, low=1, what="a whole number of "
                  "days >= 1", error=SpecError)
        check_int("scoring.refresh", self.refresh, low=1, what="a whole number of days >= 1",
                  error=SpecError)
        check_int("scoring.train.subscribers", self.train_subscribers, low=100,
                  error=SpecError)
        check_int("scoring.train.days", self.train_days, low=21, error=SpecError)
        check_choice("scoring.train.model", self.model, SCORING_MODELS, error=SpecError)
        check_number("scoring.train.holdout", self.train_holdout, low=0, high=1,
                     high_open=True, what="a fraction in [0, 1)", error=SpecError)
        check_number("scoring.train.incentive", self.train_incentive, low=0, high=1,
                     high_open=True, what="a fraction in [0, 1)", error=SpecError)
        if "uplift" in self.scorers and self.train_holdout <= 0:
            raise SpecError("scoring.train.holdout: the 'uplift' scorer learns from a "
                            "randomized send: expected a share in (0, 1) held out, got "
                            f"{self.train_holdout!r}")

    @property
    def columns(self) -> dict[str, Any]:
        """The score columns the scorers produce (name -> domain), in order."""
        from experiments.models.scorers import score_columns

        return score_columns(self.scorers)

    def to_dict(self) -> dict[str, Any]:
        return {"scorers": list(self.scorers), "first_day": self.first_day,
                "refresh": self.refresh,
                "train": {"subscribers": self.train_subscribers, "days": self.train_days,
                          "model": self.model, "holdout": self.train_holdout,
                          "incentive": self.train_incentive}}


def policy_names() -> tuple[str, ...]:
    """Policy names a spec may use (``arms[i].policy.name``): the runtime's registry."""
    from actors.registry import POLICIES

    return tuple(POLICIES)


def check_segments(path: str, value: Any, scores: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Segment columns (``analysis.segments``): a tuple of distinct columns of the
    simulated subscriber table (:data:`~policies.subscriber_schema.SUBSCRIBER_COLUMNS`)
    or score columns ``scores`` the spec's scoring produces; SpecError naming the entry
    otherwise."""
    from policies.subscriber_schema import SUBSCRIBER_COLUMNS

    if not isinstance(value, tuple):
        raise expected(SpecError, path, "a list of subscriber-table columns", value)
    cols = [*SUBSCRIBER_COLUMNS, *scores]
    for i, c in enumerate(value):
        check_string(f"{path}[{i}]", c, error=SpecError)
        if c not in cols and c not in scores:
            from experiments.models.scorers import SCORERS

            owner = next((n for n, e in SCORERS.items() if c in e.columns), None)
            if owner is not None:
                raise SpecError(f"{path}[{i}]: {c!r} is a score column of scorer {owner!r}, "
                                "which scoring.scorers does not list")
            raise SpecError(f"{path}[{i}]: {c!r} is not a column of the simulated subscriber "
                            f"table{did_you_mean(c, cols)} (its columns: {', '.join(cols)})")
        if c in value[:i]:
            raise SpecError(f"{path}[{i}]: duplicate column {c!r}; list each column once")
    return value


def corrections() -> tuple[str, ...]:
    """Multiple-testing corrections (``analysis.correction``): the statistics module's."""
    from experiments.stats.frequentist import ADJUST_METHODS

    return ADJUST_METHODS


def policy_dict(policy: PolicyConfig) -> dict[str, Any]:
    """A policy as a spec writes it: ``name``, ``decides``, ``scope`` (``draws`` when
    keyed), then its parameters."""
    keyed = {"draws": policy.draws} if policy.draws != "batch" else {}
    return {"name": policy.name, "decides": policy.decides, "scope": policy.scope,
            **keyed, **copy.deepcopy(dict(policy.params))}


#: Longest run name, in UTF-8 bytes: the run folder and its temporary siblings
#: (``.NAME.tmp-XXXXXXXX``) must fit a file name (255 bytes on common file systems).
MAX_NAME_BYTES = 200


def check_run_name(path: str, value: Any) -> str:
    """``value`` if it can name a run folder (the default ``runs/<name>``), else SpecError.

    A run name is one path component: not empty, not ``.`` or ``..``, without ``/``,
    ``\\``, NUL or other control characters, without leading or trailing spaces, and at
    most :data:`MAX_NAME_BYTES` bytes of UTF-8. Other unicode is fine. So a run folder
    never lands outside the output directory (``name: ../../escape`` is refused).
    """
    check_string(path, value, error=SpecError)
    what = ("a run name usable as a folder name (not empty, '.' or '..'; no '/', '\\' or "
            "control characters; no leading/trailing spaces; at most "
            f"{MAX_NAME_BYTES} bytes)")
    if (value.strip() in ("", ".", "..") or value != value.strip()
            or any(c in "/\\" or not c.isprintable() for c in value)
            or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES):
        raise expected(SpecError, path, what, value)
    return value


def _choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    check_string(path, value, error=SpecError)
    return str(check_choice(path, value, choices, error=SpecError))


@dataclass(frozen=True)
class ArmSpec:
    """One arm: the experiment's world changed by these settings.

    Parameters
    ----------
    name : str
    rules : mapping
        Per-rule overrides ``{rule_id: {delay: 1h, ...}}`` (keys of a rule in a rules file).
    disable : tuple of str
        Rule ids switched off in this arm.
    settings : mapping
        Overrides of the rules' engine settings (``frequency_cap``, ``quiet_hours``,
        ``retry``); ``None`` as a value removes the setting.
    policy : PolicyConfig or None
        The policy choosing each email's variant; ``None``: fixed variants (the
        campaign's subject style, rules' content).
    holdout : float
        Fraction in [0, 1) of subscribers who get no triggered email in this arm.
    campaign : CampaignConfig, None or "inherit"
        The arm's campaign; ``"inherit"`` (default) keeps the experiment's.
    description : str
    target : TargetConfig or None
        Send (triggered and campaign emails) only to the top of a score column at each
        refresh (the spec's ``scoring`` must produce ``target.by``); None: everyone.
    factorial : mapping or None
        The factorial design an ``ab`` policy deciding ``combination`` splits over, as
        the spec writes it under ``policy.factorial`` (``elements`` and optionally
        ``generators``, :func:`experiments.factorial.design_from_mapping`); the policy's
        ``arms`` are its cells.
    """

    name: str
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    disable: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    policy: PolicyConfig | None = None
    holdout: float = 0.0
    campaign: CampaignConfig | str | None = "inherit"
    description: str = ""
    target: TargetConfig | None = None
    factorial: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        check_string("name", self.name, error=SpecError)
        if not self.name.strip() or any(not c.isprintable() for c in self.name):
            raise expected(SpecError, "name", "a non-empty name without control characters",
                           self.name)
        if not isinstance(self.disable, tuple):
            raise expected(SpecError, "disable", "a tuple of rule ids", self.disable)
        check_number("holdout", self.holdout, low=0.0, high=1.0, error=SpecError)
        if self.holdout >= 1.0:
            raise expected(SpecError, "holdout", "a number in [0, 1)", self.holdout)
        if self.policy is not None and not isinstance(self.policy, PolicyConfig):
            raise expected(SpecError, "policy", "a PolicyConfig or None", self.policy)
        if not (self.campaign is None or self.campaign == "inherit"
                or isinstance(self.campaign, CampaignConfig)):
            raise expected(SpecError, "campaign", "a CampaignConfig, None or 'inherit'",
                           self.campaign)
        if self.target is not None and not isinstance(self.target, TargetConfig):
            raise expected(SpecError, "target", "a TargetConfig or None", self.target)


@dataclass(frozen=True)
class ExperimentSpec:
    """A complete experiment (:mod:`experiments.spec` documents the YAML form).

    Parameters
    ----------
    name : str
    seed : int
        Replication ``r`` runs with seed ``seed + r``; every arm of a replication uses it.
    arms : tuple of ArmSpec
        At least two, distinct names.
    subscribers : int
        Population size.
    preset : str
        Simulator preset (``retail``, ``low_engagement``); ``preset_overrides`` change fields.
    days : float
        Simulated duration in days.
    tick_seconds : int
        Simulated seconds per step.
    rules : mapping or None
        The rules file's content (``{"rules": [...], "settings": {...}}``), or None.
    campaign : CampaignConfig or None
    reward : {"click", "order", "revenue"}
        What learning policies are fed.
    reward_window_seconds : int
    control : str
        Name of the control arm (default: the first).
    metrics : tuple of str
        Keys of :data:`METRICS`; ``primary_metric`` (default the first) drives the
        recommendation.
    guardrails : tuple of str
        Metrics (in ``metrics``) that must not get significantly worse: the report's
        "Guardrails" table flags every arm that worsens one, and the recommendation
        cautions against a chosen arm that does. Empty: only ``unsubscribes`` (when
        listed) cautions the recommendation, with no table.
    sources : tuple of str
        Email sources (rule ids, ``campaign``) counted by email metrics; empty = all.
    replications : int
    common_random_numbers : bool
        True (default): every arm of replication ``r`` uses seed ``seed + r`` (same
        population, same random numbers: paired comparisons). False: each arm gets its
        own seed (independent worlds), for checking what pairing buys.
    executor : {"inline", "ray"}
    shards : int
    record_decisions, record_events : bool
        Write ``decisions.parquet`` / ``events.parquet`` (replication 0 only... all).
    alpha : float
        Two-sided level of tests and intervals.
    correction : {"holm", "bh", "bonferroni"}
        Multiple-testing correction across all (arm, metric) comparisons with control.
    segments : tuple of str
        Subscriber-table columns to break the primary metric's effect down by
        (:mod:`experiments.segments`; empty: no per-segment analysis). Setting them
        records per-subscriber counts and the subscriber table at the run's start.
    segment_bins : int
        Quantile bins of a numeric segment column (2..50).
    segment_correction : {"holm", "bh", "bonferroni"}
        Multiple-testing correction across the segments x arms of one segment column.
    description : str
    scoring : ScoringSpec or None
        Scores and clusters refreshed during each run (dynamic segments); None: none.
    tune : TuneSpec or None
        What ``triggerlab tune`` searches (:mod:`experiments.tuning_spec`); ignored by
        ``run``.
    """

    name: str
    seed: int
    arms: tuple[ArmSpec, ...]
    subscribers: int = 10_000
    preset: str = "retail"
    preset_overrides: Mapping[str, Any] = field(default_factory=dict)
    days: float = 14.0
    tick_seconds: int = 900
    rules: Mapping[str, Any] | None = None
    campaign: CampaignConfig | None = None
    reward: str = "click"
    reward_window_seconds: int = 3 * 86400
    control: str = ""
    metrics: tuple[str, ...] = ("orders", "revenue_per_recipient", "clicks", "unsubscribes")
    primary_metric: str = ""
    guardrails: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    replications: int = 1
    common_random_numbers: bool = True
    executor: str = "inline"
    shards: int = 1
    record_decisions: bool = False
    record_events: bool = False
    alpha: float = 0.05
    correction: str = "holm"
    description: str = ""
    segments: tuple[str, ...] = ()
    segment_bins: int = 10
    segment_correction: str = "bh"
    scoring: ScoringSpec | None = None
    tune: Any = None  # experiments.tuning_spec.TuneSpec: what ``triggerlab tune`` searches

    def __post_init__(self) -> None:
        check_run_name("name", self.name)
        check_int("seed", self.seed, low=0, error=SpecError)
        check_int("population.subscribers", self.subscribers, low=10, error=SpecError)
        check_number("duration.days", self.days, low=0, low_open=True, error=SpecError)
        check_int("duration.tick", self.tick_seconds, low=1, error=SpecError)
        total = float(self.days) * 86400
        if total != round(total) or round(total) % int(self.tick_seconds):
            raise SpecError(f"duration.days: expected a whole number of ticks of "
                            f"{format_duration(int(self.tick_seconds))}, got {self.days!r}")
        _choice("reward", self.reward, REWARDS)
        check_int("reward_window", self.reward_window_seconds, low=1, error=SpecError)
        check_int("replications", self.replications, low=1, error=SpecError)
        _choice("executor", self.executor, EXECUTORS)
        check_int("shards", self.shards, low=1, error=SpecError)
        check_bool("common_random_numbers", self.common_random_numbers, error=SpecError)
        check_bool("record.decisions", self.record_decisions, error=SpecError)
        check_bool("record.events", self.record_events, error=SpecError)
        a = check_number("analysis.alpha", self.alpha, low=0, high=0.5, low_open=True,
                         error=SpecError)
        if a >= 0.5:
            raise SpecError(f"analysis.alpha: expected a number in (0, 0.5), got {a!r}")
        _choice("analysis.correction", self.correction, corrections())
        if self.scoring is not None and not isinstance(self.scoring, ScoringSpec):
            raise expected(SpecError, "scoring", "a ScoringSpec or None", self.scoring)
        score_cols = tuple(self.scoring.columns) if self.scoring is not None else ()
        if self.scoring is not None and self.scoring.first_day >= float(self.days):
            raise SpecError(f"scoring.first_day: expected fewer days than the run's "
                            f"duration.days ({self.days:g}: no refresh would happen), got "
                            f"{self.scoring.first_day}")
        check_segments("analysis.segments", self.segments, score_cols)
        check_int("analysis.segment_bins", self.segment_bins, low=2, high=50, error=SpecError)
        _choice("analysis.segment_correction", self.segment_correction, corrections())
        if not isinstance(self.arms, tuple) or len(self.arms) < 2:
            raise expected(SpecError, "arms", "at least 2 arms", self.arms)
        names = [arm.name for arm in self.arms]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(f"arms[{i}].name: duplicate arm name {name!r}")
        if self.control and self.control not in names:
            raise SpecError(f"control: expected one of the arm names {names}, got "
                            f"{self.control!r}")
        if not isinstance(self.metrics, tuple) or not self.metrics:
            raise expected(SpecError, "metrics", "a non-empty list", self.metrics)
        for i, m in enumerate(self.metrics):
            _choice(f"metrics[{i}]", m, tuple(METRICS))
            if m in self.metrics[:i]:
                raise SpecError(f"metrics[{i}]: duplicate metric {m!r}; list each metric once")
        if self.primary_metric and self.primary_metric not in self.metrics:
            raise SpecError(f"primary_metric: expected one of metrics {list(self.metrics)}, "
                            f"got {self.primary_metric!r}")
        for i, arm in enumerate(self.arms):
            if arm.policy is not None:
                build_policy(arm.policy, f"arms[{i}].policy", reward=self.reward,
                             seed=int(self.seed))
        for i, arm in enumerate(self.arms):
            if arm.target is not None and arm.target.by not in score_cols:
                raise SpecError(
                    f"arms[{i}].target.by: expected a score column the spec's scoring "
                    f"produces ({', '.join(score_cols) or 'none: the spec has no scoring'}), "
                    f"got {arm.target.by!r}")
        for metric in self.metrics:
            if METRICS[metric].scope != "holdout":
                continue
            for i, arm in enumerate(self.arms):
                if arm.holdout <= 0:
                    raise SpecError(
                        f"arms[{i}].holdout: metric {metric} needs a holdout > 0 "
                        f"in every arm, got {arm.holdout!r}")

    @property
    def control_arm(self) -> str:
        """The control arm's name (``control`` or the first arm)."""
        return self.control or self.arms[0].name

    @property
    def primary(self) -> str:
        """The primary metric (``primary_metric`` or the first metric)."""
        return self.primary_metric or self.metrics[0]

    def arm(self, name: str) -> ArmSpec:
        """The arm called ``name``."""
        for a in self.arms:
            if a.name == name:
                return a
        raise SpecError(f"arm: expected one of {[a.name for a in self.arms]}, got {name!r}")

    def replication_seed(self, replication: int, arm: int = 0) -> int:
        """Seed of (replication, arm index): ``seed + replication`` for every arm with
        common random numbers, else an independent seed per arm (arm 0 keeps
        ``seed + replication``)."""
        base = int(self.seed) + int(replication)
        if self.common_random_numbers or arm == 0:
            return base
        import numpy as np

        return int(np.random.SeedSequence([base, int(arm)]).generate_state(1)[0] >> 1)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain YAML-able data (rules inline); ``load_spec`` reads it back."""
        def campaign(c: CampaignConfig | None) -> Any:
            if c is None:
                return "none"
            d = {"every_days": c.every_days, "local_hour": c.local_hour,
                 "subject_style": c.subject_style}
            if c.incentive:
                d["incentive"] = c.incentive
            if not c.holdout:
                d["holdout"] = False
            return d

        arms = []
        for a in self.arms:
            d: dict[str, Any] = {"name": a.name}
            if a.description:
                d["description"] = a.description
            if a.rules:
                d["rules"] = copy.deepcopy({k: dict(v) for k, v in a.rules.items()})
            if a.disable:
                d["disable"] = list(a.disable)
            if a.settings:
                d["settings"] = copy.deepcopy(dict(a.settings))
            if a.policy is not None:
                d["policy"] = policy_dict(a.policy)
                if a.factorial is not None:     # written as the design, not its cells
                    d["policy"].pop("arms", None)
                    d["policy"]["factorial"] = copy.deepcopy(dict(a.factorial))
            if a.holdout:
                d["holdout"] = a.holdout
            if a.campaign != "inherit":
                d["campaign"] = campaign(a.campaign)  # type: ignore[arg-type]
            if a.target is not None:
                d["target"] = {"by": a.target.by, "top": a.target.top}
            arms.append(d)
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out.update({
            "seed": int(self.seed),
            "population": {"subscribers": int(self.subscribers), "preset": self.preset,
                           "overrides": copy.deepcopy(dict(self.preset_overrides))},
            "duration": {"days": self.days, "tick": format_duration(int(self.tick_seconds))},
            "rules": copy.deepcopy(dict(self.rules)) if self.rules is not None else "none",
            **({"scoring": self.scoring.to_dict()} if self.scoring is not None else {}),
            "campaign": campaign(self.campaign),
            "reward": self.reward,
            "reward_window": format_duration(int(self.reward_window_seconds)),
            "arms": arms,
            "control": self.control_arm,
            "metrics": list(self.metrics),
            "primary_metric": self.primary,
            **({"guardrails": list(self.guardrails)} if self.guardrails else {}),
            "sources": list(self.sources),
            "replications": int(self.replications),
            "common_random_numbers": self.common_random_numbers,
            "executor": self.executor,
            "shards": int(self.shards),
            "record": {"decisions": self.record_decisions, "events": self.record_events},
            "analysis": {"alpha": self.alpha, "correction": self.correction},
        })
        if self.segments:
            out["analysis"].update(segments=list(self.segments),
                                   segment_bins=int(self.segment_bins),
                                   segment_correction=self.segment_correction)
        if self.tune is not None:
            out["tune"] = self.tune.to_dict()
        return out

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML text (keys in a fixed order)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


def arm_rules(rules: Mapping[str, Any] | None, arm: ArmSpec) -> dict[str, Any] | None:
    """The rules data of one arm: the experiment's rules with the arm's changes applied.

    Returns the raw mapping (``load_rules`` turns it into a RuleSet), or None when the
    experiment has no rules.
    """
    if rules is None:
        return None
    data = copy.deepcopy(dict(rules))
    new_rules = []
    for rule in data.get("rules", []):
        rid = rule.get("id")
        if rid in arm.disable:
            continue
        if rid in arm.rules:
            rule = {**rule, **copy.deepcopy(dict(arm.rules[rid]))}
        new_rules.append(rule)
    data["rules"] = new_rules
    if arm.settings:
        settings = dict(data.get("settings") or {})
        for key, val in arm.settings.items():
            if val is None:
                settings.pop(key, None)
            else:
                settings[key] = copy.deepcopy(val)
        data["settings"] = settings
    return data


def build_policy(policy: PolicyConfig, path: str = "policy", *, reward: str = "click",
                 seed: int = 0) -> Any:
    """Construct the policy object of ``policy`` with the runtime's factory
    (:func:`actors.registry.make_policy`, which fills in ``n_features`` for contextual
    policies, ``reward_type="real"`` for revenue rewards and the ``ab`` salt, and checks
    its arms against ``decides``); errors name the field under ``path``.

    Raises
    ------
    SpecError
        ``{path}.{param}: ...`` for a bad parameter, ``{path}: ...`` otherwise.
    """
    from actors.registry import make_policy
    from actors.variants import arm_columns

    obj = make_policy(policy.name, policy.params, decides=policy.decides, reward=reward,
                      seed=seed, path=path)
    arm_columns(policy.decides, tuple(obj.arm_names), path)
    return obj
