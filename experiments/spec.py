"""Experiment specs: the YAML loader and validation with path-named errors.

An experiment compares *arms*. Every arm is one simulated world built from the
experiment's population, rules and campaign, changed by the arm's own settings (trigger
delays, frequency cap, quiet hours, disabled rules, a holdout) and/or a policy that picks
each email's variant. All arms of a replication share the seed, hence the same
population and the same random numbers (common random numbers), so the comparison is
paired. A spec file::

    name: cart-reminder-timing
    seed: 7
    population: {subscribers: 20000, preset: retail, overrides: {}}
    duration: {days: 14, tick: 15m}
    rules: default                      # default | a rules file | inline | none
    campaign: {every_days: 7, local_hour: 10, subject_style: plain}   # or none
    reward: click                       # what learning policies are fed
    arms:
      - name: reminder_1h
        rules: {cart_abandonment_24h: {delay: 1h}}
      - name: reminder_24h
      - name: no_reminder
        disable: [cart_abandonment_24h]
    control: reminder_24h
    metrics: [orders, revenue_per_recipient, clicks, unsubscribes]
    primary_metric: orders
    guardrails: [unsubscribes]          # optional: flagged when significantly worse
    replications: 2
    analysis: {alpha: 0.05, correction: holm,          # optional
               segments: [lifecycle_stage, price_sensitivity]}   # docs/analysis.md
    scoring:                            # optional: dynamic segments, docs/segments.md
      scorers: [propensity, clusters]   # columns p_purchase_7d, p_churn, p_open, cluster
      first_day: 7                      # first refresh 7 days after the start
      refresh: 7                        # then every 7 days
      train: {subscribers: 5000, days: 35, model: hgb, holdout: 0, incentive: 0}   # the prior run
    # an arm may then say  target: {by: p_purchase_7d, top: 0.3}
    tune:                               # optional: triggerlab tune, docs/tuning.md
      arm: series
      metric: attributed_margin
      parameters: {first_wait: {path: "cart_series.steps[0].wait", low: 30m, high: 6h}}

The rules must be able to fire in a simulation: a ``when`` event the simulator never
emits, a ``where`` column its events of that type never carry or a ``segment`` column
its subscriber table lacks is an error (:mod:`experiments.rule_checks`).

Every error is a :class:`~policies.errors.SpecError` naming the path of the field, what
was expected and what was received (``arms[2].policy.epsilon: expected a number in
[0, 1], got 1.5``). :func:`load_spec` accepts a path, YAML text or a mapping; an
:class:`ExperimentSpec` (:mod:`experiments.design`, re-exported here with the other
public names) can also be built in Python and is validated the same way; its arms hold
the runtime's :class:`~actors.config.PolicyConfig` and
:class:`~actors.config.CampaignConfig`, so a loaded spec runs without translation.
"""


from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors import EXECUTORS
from actors.config import (
    DECIDES,
    DRAWS,
    REWARDS,
    SCOPES,
    CampaignConfig,
    PolicyConfig,
    TargetConfig,
)
from experiments.design import (
    ArmSpec,
    ExperimentSpec,
    ScoringSpec,
    arm_rules,
    build_policy,
    check_run_name,
    check_segments,
    corrections,
    policy_dict,
    policy_names,
)
from experiments.factorial import cell_names, design_from_mapping
from experiments.metrics import METRICS, MetricDef
from experiments.rule_checks import sim_rule_problems
from policies.base import SUBJECT_STYLES
from policies.checks import (
    check_bool,
    check_choice,
    check_duration,
    check_int,
    check_mapping,
    check_number,
    check_string,
    expected,
)
from policies.errors import RuleError, SpecError, TriggerLabValueError
from policies.triggers import load_rules
from policies.triggers.rules import default_rules_data
from policies.yaml_io import parse_yaml, read_yaml_file

__all__ = [
    "ARM_KEYS",
    "METRICS",
    "POLICY_DECIDES",
    "POLICY_SCOPES",
    "REWARDS",
    "SPEC_KEYS",
    "ArmSpec",
    "ExperimentSpec",
    "MetricDef",
    "arm_rules",
    "build_policy",
    "load_spec",
    "parse_policy",
    "policy_dict",
    "policy_names",
    "read_yaml",
    "spec_from_dict",
]

SPEC_KEYS = (
    "name", "description", "seed", "population", "duration", "rules", "campaign", "reward",
    "reward_window", "arms", "control", "metrics", "primary_metric", "guardrails", "sources",
    "replications", "common_random_numbers", "executor", "shards", "record", "analysis",
    "scoring", "tune",
)
ARM_KEYS = ("name", "description", "rules", "disable", "settings", "policy", "holdout",
            "campaign", "target")
_SCORING_KEYS = ("scorers", "first_day", "refresh", "train")
_TRAIN_KEYS = ("subscribers", "days", "model", "holdout", "incentive")
_TARGET_KEYS = ("by", "top")
_POPULATION_KEYS = ("subscribers", "preset", "overrides")
_DURATION_KEYS = ("days", "tick")
_CAMPAIGN_KEYS = ("every_days", "local_hour", "subject_style", "incentive", "holdout")
_RECORD_KEYS = ("decisions", "events")
_ANALYSIS_KEYS = ("alpha", "correction", "segments", "segment_bins", "segment_correction")
_RULE_OVERRIDE_KEYS = ("delay", "expire", "priority", "segment", "reentry", "content",
                       "exclude", "when", "steps", "emails", "exit", "goal")
_SETTINGS_KEYS = ("frequency_cap", "quiet_hours", "retry", "smart_sending")
#: What a policy's arm sets / which emails it decides: the runtime's lists.
POLICY_DECIDES = DECIDES
POLICY_SCOPES = SCOPES


# ---------------------------------------------------------------------------
# small validators (policies.checks raising SpecError)


def _mapping(path: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()
             ) -> dict[str, Any]:
    return check_mapping(path, value, allowed, required, error=SpecError)


def _string(path: str, value: Any, choices: Sequence[str] | None = None) -> str:
    check_string(path, value, error=SpecError)
    if choices is not None:
        check_choice(path, value, choices, error=SpecError)
    return str(value)


def _duration(path: str, value: Any) -> int:
    return check_duration(path, value, error=SpecError)


def _given(value: Any) -> Any:
    """``value``, or an empty mapping for a key left empty (``population:``); a wrong
    type such as ``[]`` stays, for the check to report it."""
    return {} if value is None else value


def _description(path: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise expected(SpecError, path, "a string", value)
    return value


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in ("none", "null", "off"))


# ---------------------------------------------------------------------------
# loading


def read_yaml(path: Path, what: str) -> Any:
    """The parsed YAML of file ``path``; a missing, unreadable or malformed file raises
    :class:`SpecError` starting with ``what`` (``"spec"``, ``"rules"``, ``"policy"``)."""
    return read_yaml_file(path, what, SpecError)


def _resolve_rules(value: Any, base: Path | None,
                   scoring: ScoringSpec | None = None) -> dict[str, Any] | None:
    if _is_none(value):
        return None
    if isinstance(value, str):
        if value == "default":
            data = default_rules_data()
        else:
            p = Path(value)
            if not p.is_absolute() and base is not None:
                p = base / p
            data = read_yaml(p, "rules")
    elif isinstance(value, Mapping):
        data = copy.deepcopy(dict(value))
    else:
        raise expected(SpecError, "rules", "'default', a rules file, a mapping or none", value)
    try:
        ruleset = load_rules(data)
    except (RuleError, TriggerLabValueError) as exc:
        raise SpecError(f"rules: {exc}") from None
    problems = sim_rule_problems(ruleset, scoring.columns if scoring else None)
    if problems:
        raise SpecError(f"rules: {problems[0][0]}: {problems[0][1]}")
    return data


def _campaign(path: str, value: Any) -> CampaignConfig | None:
    if _is_none(value):
        return None
    raw = _mapping(path, value, _CAMPAIGN_KEYS)
    every = check_int(f"{path}.every_days", raw.get("every_days", 7), low=1, error=SpecError)
    hour = check_int(f"{path}.local_hour", raw.get("local_hour", 10), low=0, high=23,
                     error=SpecError)
    style = _string(f"{path}.subject_style", raw.get("subject_style", "plain"), SUBJECT_STYLES)
    incentive = check_number(f"{path}.incentive", raw.get("incentive", 0.0), low=0, high=1,
                             high_open=True, what="a discount fraction in [0, 1)",
                             error=SpecError)
    holdout = raw.get("holdout", True)
    if not isinstance(holdout, bool):
        raise expected(SpecError, f"{path}.holdout", "true or false (does the arms' holdout "
                       "get the campaign too?)", holdout)
    return CampaignConfig(every_days=every, local_hour=hour, subject_style=style,
                          incentive=incentive, holdout=holdout)


def parse_policy(value: Any, path: str = "policy") -> PolicyConfig | None:
    """The :class:`~actors.config.PolicyConfig` of a spec's policy mapping (as in
    ``arms[i].policy``: ``name``, ``decides``, ``scope``, ``draws`` and the policy's
    parameters, flat or under ``params``), or None for ``none``; errors are named under
    ``path``.

    Only the names are checked here; :func:`build_policy` checks the parameters.
    """
    if _is_none(value):
        return None
    if not isinstance(value, Mapping):
        raise expected(SpecError, path, "a mapping with a name", value)
    if "name" not in value:
        raise SpecError(f"{path}.name: missing")
    raw = dict(value)
    name = _string(f"{path}.name", raw.pop("name"), policy_names())
    decides = _string(f"{path}.decides", raw.pop("decides", "subject_style"), DECIDES)
    scope = _string(f"{path}.scope", raw.pop("scope", "all"), SCOPES)
    draws = _string(f"{path}.draws", raw.pop("draws", "batch"), DRAWS)
    params = raw.pop("params", {}) if isinstance(raw.get("params"), Mapping) else {}
    params = {**dict(params), **raw}
    return PolicyConfig(name=name, params=params, decides=decides, scope=scope, draws=draws)


def _rule_overrides(path: str, value: Any, rule_ids: Sequence[str]) -> dict[str, dict]:
    raw = _mapping(path, value, tuple(rule_ids)) if rule_ids else None
    if raw is None:
        if value:
            raise SpecError(f"{path}: the experiment has no rules to override")
        return {}
    out: dict[str, dict] = {}
    for rid, over in raw.items():
        o = _mapping(f"{path}.{rid}", over, _RULE_OVERRIDE_KEYS)
        for key in ("delay", "expire"):
            if key in o:
                _duration(f"{path}.{rid}.{key}", o[key])
        if "priority" in o:
            check_int(f"{path}.{rid}.priority", o["priority"], low=0, error=SpecError)
        out[rid] = o
    return out


def _scoring(value: Any) -> ScoringSpec | None:
    if _is_none(value):
        return None
    raw = _mapping("scoring", value, _SCORING_KEYS, ("scorers",))
    train = _mapping("scoring.train", _given(raw.get("train")), _TRAIN_KEYS)
    return ScoringSpec(scorers=_names("scoring.scorers", raw["scorers"]),
                       first_day=raw.get("first_day", 7), refresh=raw.get("refresh", 7),
                       train_subscribers=train.get("subscribers", 5000),
                       train_days=train.get("days", 35), model=train.get("model", "hgb"),
                       train_holdout=train.get("holdout", 0.0),
                       train_incentive=train.get("incentive", 0.0))


def _target(path: str, value: Any, scoring: ScoringSpec | None) -> TargetConfig | None:
    if _is_none(value):
        return None
    raw = _mapping(path, value, _TARGET_KEYS, ("by", "top"))
    cols = tuple(scoring.columns) if scoring is not None else ()
    by = _string(f"{path}.by", raw["by"])
    if by not in cols:
        raise SpecError(f"{path}.by: expected a score column the spec's scoring produces "
                        f"({', '.join(cols) or 'none: the spec has no scoring key'}), got "
                        f"{by!r}")
    top = check_number(f"{path}.top", raw["top"], low=0, high=1, low_open=True,
                       what="a fraction in (0, 1]", error=SpecError)
    return TargetConfig(by, top)


def _factorial_policy(path: str, value: Any) -> tuple[Any, dict[str, Any] | None]:
    """A policy mapping with ``factorial:`` (an ``ab`` split over a design's cells) as
    the mapping with the design's cells as ``arms``, and the design's mapping."""
    if not isinstance(value, Mapping) or "factorial" not in value:
        return value, None
    raw = dict(value)
    factorial = raw.pop("factorial")
    if raw.get("name") != "ab" or raw.get("decides") != "combination":
        raise SpecError(f"{path}.factorial: a factorial design is split by 'ab' deciding "
                        f"'combination', got name {raw.get('name')!r}, decides "
                        f"{raw.get('decides')!r}")
    if "arms" in raw or "arm_names" in raw:
        raise SpecError(f"{path}.factorial: the design's cells are the arms; remove "
                        "arms/arm_names")
    design = design_from_mapping(factorial, f"{path}.factorial")
    raw["arms"] = cell_names(design)
    return raw, copy.deepcopy(dict(factorial))


def _arm(path: str, value: Any, rules: Mapping[str, Any] | None,
         scoring: ScoringSpec | None = None) -> ArmSpec:
    raw = _mapping(path, value, ARM_KEYS, ("name",))
    name = _string(f"{path}.name", raw["name"])
    if not name.strip() or any(not c.isprintable() for c in name):
        raise expected(SpecError, f"{path}.name",
                       "a non-empty name without control characters", name)
    rule_ids = [r.get("id") for r in (rules or {}).get("rules", [])]
    overrides = _rule_overrides(f"{path}.rules", _given(raw.get("rules")), rule_ids)
    disable_raw = raw.get("disable", [])
    if isinstance(disable_raw, str):
        disable_raw = [disable_raw]
    if not isinstance(disable_raw, list):
        raise expected(SpecError, f"{path}.disable", "a list of rule ids", disable_raw)
    for j, rid in enumerate(disable_raw):
        if rid not in rule_ids:
            raise SpecError(f"{path}.disable[{j}]: expected one of the rule ids {rule_ids}, got "
                            f"{rid!r}")
    settings = _mapping(f"{path}.settings", _given(raw.get("settings")), _SETTINGS_KEYS)
    if settings and rules is None:
        raise SpecError(f"{path}.settings: the experiment has no rules to change")
    holdout = check_number(f"{path}.holdout", raw.get("holdout", 0.0), low=0, high=1,
                           high_open=True, error=SpecError)
    campaign: CampaignConfig | str | None = "inherit"
    if "campaign" in raw:
        campaign = _campaign(f"{path}.campaign", raw["campaign"])
    policy_raw, factorial = _factorial_policy(f"{path}.policy", raw.get("policy"))
    arm = ArmSpec(name=name, rules=overrides, disable=tuple(disable_raw), settings=settings,
                  policy=parse_policy(policy_raw, f"{path}.policy"), holdout=holdout,
                  factorial=factorial,
                  campaign=campaign,
                  description=_description(f"{path}.description", raw.get("description")),
                  target=_target(f"{path}.target", raw.get("target"), scoring))
    if rules is not None:
        try:
            ruleset = load_rules(arm_rules(rules, arm))  # type: ignore[arg-type]
        except (RuleError, TriggerLabValueError) as exc:
            raise SpecError(f"{path}: after the arm's changes, {exc}") from None
        problems = sim_rule_problems(ruleset, scoring.columns if scoring else None)
        if problems:
            raise SpecError(f"{path}: after the arm's changes, {problems[0][0]}: "
                            f"{problems[0][1]}")
    return arm


def _names(path: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise expected(SpecError, path, "a list of names", value)
    return tuple(_string(f"{path}[{i}]", v) for i, v in enumerate(value))


def spec_from_dict(data: Any, base: Path | None = None) -> ExperimentSpec:
    """Validate parsed YAML ``data`` and build the :class:`ExperimentSpec`.

    ``base`` is the directory relative rules paths are resolved against.
    """
    raw = _mapping("", data, SPEC_KEYS, ("name", "seed", "arms"))
    name = check_run_name("name", raw["name"])
    seed = check_int("seed", raw["seed"], low=0, error=SpecError)
    pop = _mapping("population", _given(raw.get("population")), _POPULATION_KEYS)
    subscribers = check_int("population.subscribers", pop.get("subscribers", 10_000), low=10,
                            error=SpecError)
    preset = _string("population.preset", pop.get("preset", "retail"))
    overrides = _mapping("population.overrides", _given(pop.get("overrides")),
                         _preset_fields())
    from sim import get_preset

    try:
        get_preset(preset, **overrides)
    except SpecError as exc:
        raise SpecError(f"population.overrides.{exc}".replace(
            "population.overrides.preset: ", "population.preset: ")) from None
    dur = _mapping("duration", _given(raw.get("duration")), _DURATION_KEYS)
    days = check_number("duration.days", dur.get("days", 14.0), low=0, low_open=True,
                        error=SpecError)
    tick = _duration("duration.tick", dur.get("tick", "15m"))
    if tick <= 0 or 86400 % tick:
        raise SpecError(f"duration.tick: expected a positive duration dividing a day, got "
                        f"{dur.get('tick')!r}")
    scoring = _scoring(raw.get("scoring"))
    rules = _resolve_rules(raw.get("rules", "default"), base, scoring)
    campaign = _campaign("campaign", raw.get("campaign", "none"))
    arms_raw = raw["arms"]
    if not isinstance(arms_raw, list) or len(arms_raw) < 2:
        raise expected(SpecError, "arms", "a list of at least 2 arms", arms_raw)
    arms = tuple(_arm(f"arms[{i}]", a, rules, scoring) for i, a in enumerate(arms_raw))
    record = _mapping("record", _given(raw.get("record")), _RECORD_KEYS)
    analysis = _mapping("analysis", _given(raw.get("analysis")), _ANALYSIS_KEYS)
    kwargs: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "arms": arms,
        "subscribers": subscribers,
        "preset": preset,
        "preset_overrides": overrides,
        "days": days,
        "tick_seconds": tick,
        "rules": rules,
        "campaign": campaign,
        "reward": _string("reward", raw.get("reward", "click"), REWARDS),
        "reward_window_seconds": _duration("reward_window", raw.get("reward_window", "3d")),
        "control": _string("control", raw["control"]) if "control" in raw else arms[0].name,
        "metrics": _names("metrics", raw.get("metrics", list(ExperimentSpec.metrics))),
        "primary_metric": (_string("primary_metric", raw["primary_metric"])
                           if "primary_metric" in raw else ""),  # resolved below
        "guardrails": _names("guardrails", [] if raw.get("guardrails") is None
                             else raw["guardrails"]),
        "sources": _names("sources", [] if raw.get("sources") is None else raw["sources"]),
        "replications": check_int("replications", raw.get("replications", 1), low=1,
                                  error=SpecError),
        "common_random_numbers": check_bool("common_random_numbers",
                                            raw.get("common_random_numbers", True),
                                            error=SpecError),
        "executor": _string("executor", raw.get("executor", "inline"), EXECUTORS),
        "shards": check_int("shards", raw.get("shards", 1), low=1, error=SpecError),
        "record_decisions": check_bool("record.decisions", record.get("decisions", False),
                                       error=SpecError),
        "record_events": check_bool("record.events", record.get("events", False),
                                    error=SpecError),
        "alpha": check_number("analysis.alpha", analysis.get("alpha", 0.05), low=0, high=0.5,
                              low_open=True, error=SpecError),
        "correction": _string("analysis.correction", analysis.get("correction", "holm"),
                              corrections()),
        "description": _description("description", raw.get("description")),
        "segments": check_segments("analysis.segments", _names(
            "analysis.segments", [] if analysis.get("segments") is None
            else analysis["segments"]), tuple(scoring.columns) if scoring else ()),
        "scoring": scoring,
        "segment_bins": check_int("analysis.segment_bins", analysis.get("segment_bins", 10),
                                  low=2, high=50, error=SpecError),
        "segment_correction": _string("analysis.segment_correction",
                                      analysis.get("segment_correction", "bh"),
                                      corrections()),
    }
    if not kwargs["metrics"]:
        raise expected(SpecError, "metrics", "a non-empty list of metric names", [])
    for i, m in enumerate(kwargs["metrics"]):
        if m in kwargs["metrics"][:i]:
            raise SpecError(f"metrics[{i}]: duplicate metric {m!r}; list each metric once")
        if m not in METRICS:
            raise SpecError(f"metrics[{i}]: expected one of {', '.join(METRICS)}, got {m!r}")
    for i, m in enumerate(kwargs["guardrails"]):
        if m in kwargs["guardrails"][:i]:
            raise SpecError(f"guardrails[{i}]: duplicate metric {m!r}; list each metric once")
        if m not in kwargs["metrics"]:
            raise SpecError(f"guardrails[{i}]: {m!r} is not in metrics ("
                            f"{', '.join(kwargs['metrics'])}); a guardrail is a metric the "
                            "spec reports")
    valid_sources = ["campaign", *(r.get("id") for r in (rules or {}).get("rules", []))]
    for i, s in enumerate(kwargs["sources"]):
        if s not in valid_sources:
            raise SpecError(f"sources[{i}]: expected one of {valid_sources}, got {s!r}")
    if not kwargs["primary_metric"]:
        kwargs["primary_metric"] = kwargs["metrics"][0]
    if raw.get("tune") is not None:
        from experiments.tuning_spec import current_values, parse_tune

        tune = parse_tune(raw["tune"], [a.name for a in arms], list(kwargs["metrics"]))
        assert tune is not None
        tuned = next(a for a in arms if a.name == tune.arm)
        current_values(arm_rules(rules, tuned) or {}, tune)  # every path exists
        kwargs["tune"] = tune
    return ExperimentSpec(**kwargs)


def _preset_fields() -> tuple[str, ...]:
    from dataclasses import fields as dc_fields

    from sim import Preset

    return tuple(f.name for f in dc_fields(Preset))


def load_spec(source: ExperimentSpec | str | Path | Mapping[str, Any]) -> ExperimentSpec:
    """Load and validate an experiment spec from a YAML file, YAML text or a mapping.

    Parameters
    ----------
    source : str, Path or mapping
        A path to a ``.yaml``/``.yml`` file (relative rules files are resolved from its
        directory), YAML text, or parsed data.

    Returns
    -------
    ExperimentSpec

    Raises
    ------
    SpecError
        With the path of the offending field, e.g.
        ``arms[2].policy.epsilon: expected a number in [0, 1], got 1.5``; missing files
        and malformed YAML are SpecErrors too.
    """
    if isinstance(source, ExperimentSpec):
        return source
    if isinstance(source, Mapping):
        return spec_from_dict(source)
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                    and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        data = read_yaml(path, "spec")
        return spec_from_dict(data, path.parent)
    if not isinstance(source, str):
        raise expected(SpecError, "spec", "a path, YAML text or a mapping", source)
    data = parse_yaml(source, "spec", SpecError)
    return spec_from_dict(data)
