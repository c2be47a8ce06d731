"""Experiment specs: dataclasses, the YAML loader and validation with path-named errors.

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
    replications: 2

Every error is a :class:`~policies.errors.SpecError` naming the path of the field, what
was expected and what was received (``arms[2].policy.epsilon: expected a value in
[0, 1], got 1.5``). :func:`load_spec` accepts a path, YAML text or a mapping; an
:class:`ExperimentSpec` can also be built in Python and is validated the same way.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from policies.errors import PolicyError, RuleError, SpecError
from policies.triggers import format_duration, load_rules, parse_duration

__all__ = [
    "ARM_KEYS",
    "METRICS",
    "POLICY_DECIDES",
    "POLICY_SCOPES",
    "REWARDS",
    "SPEC_KEYS",
    "ArmSpec",
    "CampaignSpec",
    "ExperimentSpec",
    "MetricDef",
    "PolicySpec",
    "build_policy",
    "load_spec",
    "policy_names",
]

SPEC_KEYS = (
    "name", "description", "seed", "population", "duration", "rules", "campaign", "reward",
    "reward_window", "arms", "control", "metrics", "primary_metric", "sources",
    "replications", "common_random_numbers", "executor", "shards", "record", "analysis",
)
ARM_KEYS = ("name", "description", "rules", "disable", "settings", "policy", "holdout",
            "campaign")
_POPULATION_KEYS = ("subscribers", "preset", "overrides")
_DURATION_KEYS = ("days", "tick")
_CAMPAIGN_KEYS = ("every_days", "local_hour", "subject_style")
_RECORD_KEYS = ("decisions", "events")
_ANALYSIS_KEYS = ("alpha", "correction")
_RULE_OVERRIDE_KEYS = ("delay", "expire", "priority", "segment", "reentry", "content",
                       "exclude", "when")
_SETTINGS_KEYS = ("frequency_cap", "quiet_hours", "retry")
REWARDS = ("click", "order", "revenue")
EXECUTORS = ("inline", "ray")
CORRECTIONS = ("holm", "bh", "bonferroni")
POLICY_DECIDES = ("subject_style", "send_hour", "strategy")
POLICY_SCOPES = ("triggers", "campaign", "all")
_SUBJECT_STYLES = ("plain", "first_name", "dont_miss", "limited_time", "learn", "question")


@dataclass(frozen=True)
class MetricDef:
    """How an experiment metric is computed from the runtime's tidy counts.

    ``value = numerator / denominator`` summed over days (and replications when pooled).
    ``numerator``/``denominator`` name runtime metrics; ``scope`` says which rows:
    ``"email"`` sums the treatment group's email sources (rules and campaign, filtered by
    the spec's ``sources``), ``"site"`` the treatment group's organic totals (source
    ``site``), ``"holdout"`` compares treatment with the arm's holdout group.
    ``kind`` is ``"proportion"`` (at most one event per unit: tested with a two-proportion
    z-test and a Beta-Binomial posterior) or ``"rate"`` (counts or currency per unit;
    tested with a normal approximation across replications, see :mod:`experiments.report`).
    """

    name: str
    numerator: str
    denominator: str
    scope: str
    kind: str
    unit: str
    label: str


#: The metrics an experiment can report (``spec.metrics``).
METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("opens", "opens", "sends", "email", "proportion", "opens per email sent",
              "open rate"),
    MetricDef("clicks", "clicks", "sends", "email", "proportion", "clicks per email sent",
              "click rate"),
    MetricDef("attributed_orders", "orders", "sends", "email", "proportion",
              "attributed orders per email sent", "attributed order rate"),
    MetricDef("orders", "orders_all", "subscribers", "site", "proportion",
              "orders per subscriber (all orders, organic included)", "orders per subscriber"),
    MetricDef("revenue_per_recipient", "revenue_all", "subscribers", "site", "rate",
              "revenue per subscriber (currency units)", "revenue per recipient"),
    MetricDef("attributed_revenue", "revenue", "subscribers", "email", "rate",
              "email-attributed revenue per subscriber (currency units)",
              "attributed revenue per subscriber"),
    MetricDef("unsubscribes", "unsubscribes", "subscribers", "email", "proportion",
              "unsubscribes per subscriber", "unsubscribe rate"),
    MetricDef("incremental_orders", "orders_all", "subscribers", "holdout", "rate",
              "orders per subscriber, treatment minus the arm's holdout",
              "incremental orders per subscriber"),
)}

def policy_names() -> tuple[str, ...]:
    """Policy names a spec may use (``arms[i].policy.name``): the runtime's registry."""
    from actors.registry import POLICIES

    return tuple(POLICIES)


# ---------------------------------------------------------------------------
# small validators


def _fail(path: str, message: str) -> SpecError:
    return SpecError(f"{path}: {message}" if path else message)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping(path: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()
             ) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping, got {_show(value)}")
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(f"{where}: unknown key; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in value:
            raise SpecError(f"{path}.{key}: missing" if path else f"{key}: missing")
    return dict(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(
        float(value))


def _number(path: str, value: Any, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> float:
    ok = _is_number(value)
    if ok:
        v = float(value)
        ok = not ((low is not None and (v <= low if low_open else v < low))
                  or (high is not None and v > high))
    if not ok:
        if low is not None and high is not None:
            rng = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        elif low is not None:
            rng = f"{'>' if low_open else '>='} {low:g}"
        else:
            rng = "finite"
        raise _fail(path, f"expected a number {rng}, got {_show(value)}")
    return float(value)


def _integer(path: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _fail(path, f"expected an integer >= {low}, got {_show(value)}")
    return int(value)


def _string(path: str, value: Any, choices: Sequence[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, f"expected a non-empty string, got {_show(value)}")
    if choices is not None and value not in choices:
        raise _fail(path, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false, got {_show(value)}")
    return value


def _duration(path: str, value: Any) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(path, str(exc)) from None


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in ("none", "null", "off"))


# ---------------------------------------------------------------------------
# dataclasses


@dataclass(frozen=True)
class CampaignSpec:
    """A recurring campaign to every subscribed subscriber.

    Parameters
    ----------
    every_days : int
        Days between sends (>= 1); the first goes out on day 0.
    local_hour : int
        Delivery hour 0..23 in each subscriber's local time.
    subject_style : str
        Subject style when no policy decides it (one of the response model's styles).
    """

    every_days: int = 7
    local_hour: int = 10
    subject_style: str = "plain"

    def __post_init__(self) -> None:
        _integer("every_days", self.every_days, 1)
        if isinstance(self.local_hour, bool) or not isinstance(self.local_hour, numbers.Integral) \
                or not 0 <= self.local_hour <= 23:
            raise SpecError(f"local_hour: expected an integer in [0, 23], got "
                            f"{_show(self.local_hour)}")
        _string("subject_style", self.subject_style, _SUBJECT_STYLES)


@dataclass(frozen=True)
class PolicySpec:
    """The policy that picks an email feature in one arm.

    Parameters
    ----------
    name : str
        A name of the runtime's policy registry (:func:`policy_names`: ``thompson``,
        ``ab``, ``linucb``, ``rule_based``, ``send_time``, ...).
    decides : {"subject_style", "send_hour", "strategy"}
        The email feature the policy's arm sets.
    scope : {"triggers", "campaign", "all"}
        Which emails it decides.
    params : mapping
        Constructor parameters of the policy class (``arm_names``, ``epsilon``, ...).
    """

    name: str
    decides: str = "subject_style"
    scope: str = "all"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _string("name", self.name, policy_names())
        _string("decides", self.decides, POLICY_DECIDES)
        _string("scope", self.scope, POLICY_SCOPES)
        if not isinstance(self.params, Mapping):
            raise SpecError(f"params: expected a mapping, got {_show(self.params)}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "decides": self.decides, "scope": self.scope,
                **copy.deepcopy(dict(self.params))}


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
    policy : PolicySpec or None
        ``None``: fixed variants (the campaign's subject style, rules' content).
    holdout : float
        Fraction in [0, 1) of subscribers who get no triggered email in this arm.
    campaign : CampaignSpec, None or "inherit"
        The arm's campaign; ``"inherit"`` (default) keeps the experiment's.
    description : str
    """

    name: str
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    disable: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    policy: PolicySpec | None = None
    holdout: float = 0.0
    campaign: CampaignSpec | str | None = "inherit"
    description: str = ""

    def __post_init__(self) -> None:
        _string("name", self.name)
        if not isinstance(self.disable, tuple):
            raise SpecError(f"disable: expected a tuple of rule ids, got {_show(self.disable)}")
        _number("holdout", self.holdout, low=0.0, high=1.0)
        if self.holdout >= 1.0:
            raise SpecError(f"holdout: expected a number in [0, 1), got {_show(self.holdout)}")
        if self.policy is not None and not isinstance(self.policy, PolicySpec):
            raise SpecError(f"policy: expected a PolicySpec or None, got {_show(self.policy)}")
        if not (self.campaign is None or self.campaign == "inherit"
                or isinstance(self.campaign, CampaignSpec)):
            raise SpecError(f"campaign: expected a CampaignSpec, None or 'inherit', got "
                            f"{_show(self.campaign)}")


@dataclass(frozen=True)
class ExperimentSpec:
    """A complete experiment (see the module docstring for the YAML form).

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
    campaign : CampaignSpec or None
    reward : {"click", "order", "revenue"}
        What learning policies are fed.
    reward_window_seconds : int
    control : str
        Name of the control arm (default: the first).
    metrics : tuple of str
        Keys of :data:`METRICS`; ``primary_metric`` (default the first) drives the
        recommendation.
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
    description : str
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
    campaign: CampaignSpec | None = None
    reward: str = "click"
    reward_window_seconds: int = 3 * 86400
    control: str = ""
    metrics: tuple[str, ...] = ("orders", "revenue_per_recipient", "clicks", "unsubscribes")
    primary_metric: str = ""
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

    def __post_init__(self) -> None:
        _string("name", self.name)
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) \
                or self.seed < 0:
            raise SpecError(f"seed: expected an integer >= 0, got {_show(self.seed)}")
        _integer("population.subscribers", self.subscribers, 10)
        _number("duration.days", self.days, low=0, low_open=True)
        _integer("duration.tick", self.tick_seconds, 1)
        total = float(self.days) * 86400
        if total != round(total) or round(total) % int(self.tick_seconds):
            raise SpecError(f"duration.days: expected a whole number of ticks of "
                            f"{format_duration(int(self.tick_seconds))}, got {self.days!r}")
        _string("reward", self.reward, REWARDS)
        _integer("reward_window", self.reward_window_seconds, 1)
        _integer("replications", self.replications, 1)
        _string("executor", self.executor, EXECUTORS)
        _integer("shards", self.shards, 1)
        _bool("common_random_numbers", self.common_random_numbers)
        _bool("record.decisions", self.record_decisions)
        _bool("record.events", self.record_events)
        a = _number("analysis.alpha", self.alpha, low=0, high=0.5, low_open=True)
        if a >= 0.5:
            raise SpecError(f"analysis.alpha: expected a number in (0, 0.5), got {a!r}")
        _string("analysis.correction", self.correction, CORRECTIONS)
        if not isinstance(self.arms, tuple) or len(self.arms) < 2:
            raise SpecError(f"arms: expected at least 2 arms, got {_show(self.arms)}")
        names = [arm.name for arm in self.arms]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(f"arms[{i}].name: duplicate arm name {name!r}")
        if self.control and self.control not in names:
            raise SpecError(f"control: expected one of the arm names {names}, got "
                            f"{self.control!r}")
        if not isinstance(self.metrics, tuple) or not self.metrics:
            raise SpecError(f"metrics: expected a non-empty list, got {_show(self.metrics)}")
        for i, m in enumerate(self.metrics):
            _string(f"metrics[{i}]", m, tuple(METRICS))
        if self.primary_metric and self.primary_metric not in self.metrics:
            raise SpecError(f"primary_metric: expected one of metrics {list(self.metrics)}, "
                            f"got {self.primary_metric!r}")
        for i, arm in enumerate(self.arms):
            if arm.policy is not None:
                build_policy(arm.policy, f"arms[{i}].policy", reward=self.reward,
                             seed=int(self.seed))
        if "incremental_orders" in self.metrics:
            for i, arm in enumerate(self.arms):
                if arm.holdout <= 0:
                    raise SpecError(
                        f"arms[{i}].holdout: metric incremental_orders needs a holdout > 0 "
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
        def campaign(c: CampaignSpec | None) -> Any:
            if c is None:
                return "none"
            return {"every_days": c.every_days, "local_hour": c.local_hour,
                    "subject_style": c.subject_style}

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
                d["policy"] = a.policy.to_dict()
            if a.holdout:
                d["holdout"] = a.holdout
            if a.campaign != "inherit":
                d["campaign"] = campaign(a.campaign)  # type: ignore[arg-type]
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
            "campaign": campaign(self.campaign),
            "reward": self.reward,
            "reward_window": format_duration(int(self.reward_window_seconds)),
            "arms": arms,
            "control": self.control_arm,
            "metrics": list(self.metrics),
            "primary_metric": self.primary,
            "sources": list(self.sources),
            "replications": int(self.replications),
            "common_random_numbers": self.common_random_numbers,
            "executor": self.executor,
            "shards": int(self.shards),
            "record": {"decisions": self.record_decisions, "events": self.record_events},
            "analysis": {"alpha": self.alpha, "correction": self.correction},
        })
        return out

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML text (keys in a fixed order)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------------
# policies


def build_policy(policy: PolicySpec, path: str = "policy", *, reward: str = "click",
                 seed: int = 0) -> Any:
    """Construct the policies object of ``policy``, validating its parameters.

    Fills in what the runtime fills in (:func:`actors.registry.make_policy`):
    ``n_features`` for contextual policies, ``reward_type="real"`` for revenue rewards
    and the ``ab`` salt; then checks the arms against ``decides``.

    Raises
    ------
    SpecError
        ``{path}.{param}: ...`` for a bad parameter, ``{path}: ...`` otherwise.
    """
    import dataclasses

    from actors.registry import ArmVariants, policy_class
    from policies.features import FEATURE_NAMES

    try:
        cls = policy_class(policy.name, policy.decides)
    except SpecError as exc:
        raise SpecError(f"{path}.{exc}".replace(f"{path}.policy.", f"{path}.")) from None
    known = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in policy.params:
        if key not in known:
            raise SpecError(f"{path}.{key}: unknown parameter of {policy.name}; expected one "
                            f"of name, decides, scope, {', '.join(sorted(known))}")
    kw = dict(policy.params)
    if "n_features" in known and "n_features" not in kw:
        kw["n_features"] = len(FEATURE_NAMES)
    if "reward_type" in known and "reward_type" not in kw and reward == "revenue":
        kw["reward_type"] = "real"
    if "salt" in known and "salt" not in kw:
        kw["salt"] = f"triggerlab-{seed}"
    try:
        obj = cls(**kw)
    except PolicyError as exc:
        msg = str(exc)
        head = msg.split(":", 1)[0].split("[", 1)[0].split(".", 1)[0]
        raise SpecError(f"{path}.{msg}" if head in known else f"{path}: {msg}") from None
    except TypeError as exc:
        raise SpecError(f"{path}: {exc}") from None
    if reward == "revenue" and obj.reward_type == "binary":
        raise SpecError(f"{path}: {cls.__name__} learns binary rewards, but reward is "
                        "'revenue' (use click or order, or a real-valued policy)")
    try:
        ArmVariants(policy.decides, tuple(obj.arm_names))
    except SpecError as exc:
        raise SpecError(f"{path}.{str(exc).removeprefix('policy ')}") from None
    return obj


# ---------------------------------------------------------------------------
# loading


def _default_rules_data() -> dict[str, Any]:
    text = resources.files("policies.triggers").joinpath("reference_rules.yaml").read_text(
        encoding="utf-8")
    return yaml.safe_load(text)


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{what}: file not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError(f"{what}: malformed YAML in {path}{where}: {problem}") from None


def _resolve_rules(value: Any, base: Path | None) -> dict[str, Any] | None:
    if _is_none(value):
        return None
    if isinstance(value, str):
        if value == "default":
            data = _default_rules_data()
        else:
            p = Path(value)
            if not p.is_absolute() and base is not None:
                p = base / p
            data = _read_yaml(p, "rules")
    elif isinstance(value, Mapping):
        data = copy.deepcopy(dict(value))
    else:
        raise SpecError(f"rules: expected 'default', a rules file, a mapping or none, got "
                        f"{_show(value)}")
    try:
        load_rules(data)
    except RuleError as exc:
        raise SpecError(f"rules: {exc}") from None
    return data


def _campaign(path: str, value: Any) -> CampaignSpec | None:
    if _is_none(value):
        return None
    raw = _mapping(path, value, _CAMPAIGN_KEYS)
    every = _integer(f"{path}.every_days", raw.get("every_days", 7), 1)
    hour = raw.get("local_hour", 10)
    if isinstance(hour, bool) or not isinstance(hour, numbers.Integral) \
            or not 0 <= int(hour) <= 23:
        raise SpecError(f"{path}.local_hour: expected an integer in [0, 23], got {_show(hour)}")
    style = _string(f"{path}.subject_style", raw.get("subject_style", "plain"), _SUBJECT_STYLES)
    return CampaignSpec(every_days=every, local_hour=int(hour), subject_style=style)


def _policy(path: str, value: Any) -> PolicySpec | None:
    if _is_none(value):
        return None
    if not isinstance(value, Mapping):
        raise SpecError(f"{path}: expected a mapping with a name, got {_show(value)}")
    if "name" not in value:
        raise SpecError(f"{path}.name: missing")
    raw = dict(value)
    name = _string(f"{path}.name", raw.pop("name"), policy_names())
    decides = _string(f"{path}.decides", raw.pop("decides", "subject_style"), POLICY_DECIDES)
    scope = _string(f"{path}.scope", raw.pop("scope", "all"), POLICY_SCOPES)
    params = raw.pop("params", {}) if isinstance(raw.get("params"), Mapping) else {}
    params = {**dict(params), **raw}
    return PolicySpec(name=name, decides=decides, scope=scope, params=params)


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
            _integer(f"{path}.{rid}.priority", o["priority"], 0)
        out[rid] = o
    return out


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


def _arm(path: str, value: Any, rules: Mapping[str, Any] | None) -> ArmSpec:
    raw = _mapping(path, value, ARM_KEYS, ("name",))
    name = _string(f"{path}.name", raw["name"])
    rule_ids = [r.get("id") for r in (rules or {}).get("rules", [])]
    overrides = _rule_overrides(f"{path}.rules", raw.get("rules") or {}, rule_ids)
    disable_raw = raw.get("disable", [])
    if isinstance(disable_raw, str):
        disable_raw = [disable_raw]
    if not isinstance(disable_raw, list):
        raise SpecError(f"{path}.disable: expected a list of rule ids, got {_show(disable_raw)}")
    for j, rid in enumerate(disable_raw):
        if rid not in rule_ids:
            raise SpecError(f"{path}.disable[{j}]: expected one of the rule ids {rule_ids}, got "
                            f"{rid!r}")
    settings = _mapping(f"{path}.settings", raw.get("settings") or {}, _SETTINGS_KEYS)
    if settings and rules is None:
        raise SpecError(f"{path}.settings: the experiment has no rules to change")
    holdout = raw.get("holdout", 0.0)
    if not _is_number(holdout) or not 0 <= float(holdout) < 1:
        raise SpecError(f"{path}.holdout: expected a number in [0, 1), got {_show(holdout)}")
    campaign: CampaignSpec | str | None = "inherit"
    if "campaign" in raw:
        campaign = _campaign(f"{path}.campaign", raw["campaign"])
    arm = ArmSpec(name=name, rules=overrides, disable=tuple(disable_raw), settings=settings,
                  policy=_policy(f"{path}.policy", raw.get("policy")), holdout=float(holdout),
                  campaign=campaign, description=str(raw.get("description", "")))
    if rules is not None:
        try:
            load_rules(arm_rules(rules, arm))  # type: ignore[arg-type]
        except RuleError as exc:
            raise SpecError(f"{path}: after the arm's changes, {exc}") from None
    return arm


def _names(path: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise SpecError(f"{path}: expected a list of names, got {_show(value)}")
    return tuple(_string(f"{path}[{i}]", v) for i, v in enumerate(value))


def spec_from_dict(data: Any, base: Path | None = None) -> ExperimentSpec:
    """Validate parsed YAML ``data`` and build the :class:`ExperimentSpec`.

    ``base`` is the directory relative rules paths are resolved against.
    """
    raw = _mapping("", data, SPEC_KEYS, ("name", "seed", "arms"))
    name = _string("name", raw["name"])
    seed = raw["seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SpecError(f"seed: expected an integer >= 0, got {_show(seed)}")
    pop = _mapping("population", raw.get("population") or {}, _POPULATION_KEYS)
    subscribers = _integer("population.subscribers", pop.get("subscribers", 10_000), 10)
    preset = _string("population.preset", pop.get("preset", "retail"))
    overrides = _mapping("population.overrides", pop.get("overrides") or {},
                         _preset_fields())
    from sim import get_preset

    try:
        get_preset(preset, **overrides)
    except SpecError as exc:
        raise SpecError(f"population.overrides.{exc}".replace(
            "population.overrides.preset: ", "population.preset: ")) from None
    dur = _mapping("duration", raw.get("duration") or {}, _DURATION_KEYS)
    days = _number("duration.days", dur.get("days", 14.0), low=0, low_open=True)
    tick = _duration("duration.tick", dur.get("tick", "15m"))
    if tick <= 0 or 86400 % tick:
        raise SpecError(f"duration.tick: expected a positive duration dividing a day, got "
                        f"{dur.get('tick')!r}")
    rules = _resolve_rules(raw.get("rules", "default"), base)
    campaign = _campaign("campaign", raw.get("campaign", "none"))
    arms_raw = raw["arms"]
    if not isinstance(arms_raw, list) or len(arms_raw) < 2:
        raise SpecError(f"arms: expected a list of at least 2 arms, got {_show(arms_raw)}")
    arms = tuple(_arm(f"arms[{i}]", a, rules) for i, a in enumerate(arms_raw))
    record = _mapping("record", raw.get("record") or {}, _RECORD_KEYS)
    analysis = _mapping("analysis", raw.get("analysis") or {}, _ANALYSIS_KEYS)
    kwargs: dict[str, Any] = {
        "name": name,
        "seed": int(seed),
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
        "sources": _names("sources", raw.get("sources") or []),
        "replications": _integer("replications", raw.get("replications", 1), 1),
        "common_random_numbers": _bool("common_random_numbers",
                                       raw.get("common_random_numbers", True)),
        "executor": _string("executor", raw.get("executor", "inline"), EXECUTORS),
        "shards": _integer("shards", raw.get("shards", 1), 1),
        "record_decisions": _bool("record.decisions", record.get("decisions", False)),
        "record_events": _bool("record.events", record.get("events", False)),
        "alpha": _number("analysis.alpha", analysis.get("alpha", 0.05), low=0, high=0.5,
                         low_open=True),
        "correction": _string("analysis.correction", analysis.get("correction", "holm"),
                              CORRECTIONS),
        "description": str(raw.get("description", "")),
    }
    for i, m in enumerate(kwargs["metrics"]):
        if m not in METRICS:
            raise SpecError(f"metrics[{i}]: expected one of {', '.join(METRICS)}, got {m!r}")
    valid_sources = ["campaign", *(r.get("id") for r in (rules or {}).get("rules", []))]
    for i, s in enumerate(kwargs["sources"]):
        if s not in valid_sources:
            raise SpecError(f"sources[{i}]: expected one of {valid_sources}, got {s!r}")
    if not kwargs["primary_metric"]:
        kwargs["primary_metric"] = kwargs["metrics"][0]
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
        ``arms[2].policy.epsilon: expected a value in [0, 1], got 1.5``; missing files
        and malformed YAML are SpecErrors too.
    """
    if isinstance(source, ExperimentSpec):
        return source
    if isinstance(source, Mapping):
        return spec_from_dict(source)
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                    and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        data = _read_yaml(path, "spec")
        return spec_from_dict(data, path.parent)
    if not isinstance(source, str):
        raise SpecError(f"spec: expected a path, YAML text or a mapping, got {_show(source)}")
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"spec: malformed YAML{where}: "
                        f"{getattr(exc, 'problem', None) or 'invalid YAML'}") from None
    return spec_from_dict(data)
