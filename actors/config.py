"""Run configuration: what to simulate (:class:`SimulationConfig`), which policy chooses
email variants (:class:`PolicyConfig`) and the recurring campaign (:class:`CampaignConfig`).

The dataclasses store their arguments unchanged and validate them in ``__post_init__``
(raising :class:`~policies.errors.SpecError` naming the field, what was expected and
what was received). They are small and picklable: the driver ships one copy to every
shard through the object store.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.errors import SpecError
from policies.triggers import RuleSet
from sim.clock import DAY
from sim.presets import PRESETS, SUBJECT_STYLES

__all__ = [
    "DECIDES",
    "DEFAULT_START",
    "REWARDS",
    "SCOPES",
    "CampaignConfig",
    "PolicyConfig",
    "SimulationConfig",
]

#: Default start of a run: Monday 2026-01-05 00:00 UTC (seconds since the epoch).
DEFAULT_START = 1_767_571_200
#: Email features a policy's arm may set.
DECIDES: tuple[str, ...] = ("subject_style", "send_hour", "strategy")
#: Which emails a policy decides.
SCOPES: tuple[str, ...] = ("triggers", "campaign", "all")
#: What the learner is fed after an email's reward window closes.
REWARDS: tuple[str, ...] = ("click", "order", "revenue")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class CampaignConfig:
    """A recurring newsletter sent to every subscribed subscriber.

    Parameters
    ----------
    every_days : int
        Days between two sends (>= 1); the first goes out on day 0 of the run.
    local_hour : int
        Delivery hour 0..23 in each subscriber's local time.
    subject_style : str
        Subject style when no policy decides campaigns (one of ``SUBJECT_STYLES``).
    """

    every_days: int = 7
    local_hour: int = 10
    subject_style: str = "plain"

    def __post_init__(self) -> None:
        if not _is_int(self.every_days) or self.every_days < 1:
            raise SpecError(f"campaign.every_days: expected an integer >= 1, "
                            f"got {self.every_days!r}")
        if not _is_int(self.local_hour) or not 0 <= self.local_hour <= 23:
            raise SpecError(f"campaign.local_hour: expected an hour 0..23, "
                            f"got {self.local_hour!r}")
        _check_choice("campaign.subject_style", self.subject_style, SUBJECT_STYLES)


@dataclass(frozen=True)
class PolicyConfig:
    """The policy that chooses a variant (arm) for emails.

    Parameters
    ----------
    name : str
        Registry name (:data:`actors.registry.POLICIES`), e.g. ``"thompson"``.
    params : mapping
        Constructor parameters (``arm_names`` etc.); see :func:`actors.registry.make_policy`
        for the defaults it fills in.
    decides : {"subject_style", "send_hour", "strategy"}
        Which email feature the arm sets.
    scope : {"triggers", "campaign", "all"}
        Which emails the policy decides (the others get the fixed variant).
    """

    name: str = "thompson"
    params: Mapping[str, Any] = field(default_factory=dict)
    decides: str = "subject_style"
    scope: str = "all"

    def __post_init__(self) -> None:
        from actors.registry import POLICIES  # registry imports this module's types

        if self.name not in POLICIES:
            raise SpecError(f"policy.name: expected one of {', '.join(sorted(POLICIES))}, "
                            f"got {self.name!r}")
        if not isinstance(self.params, Mapping):
            raise SpecError(f"policy.params: expected a mapping, got {self.params!r}")
        _check_choice("policy.decides", self.decides, DECIDES)
        _check_choice("policy.scope", self.scope, SCOPES)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a run (same config and seed => same results).

    Parameters
    ----------
    seed : int
        Required; keys every random number of the world and the policy.
    subscribers : int
        Population size (ids ``0 .. subscribers-1``).
    preset : str
        Simulation preset (:data:`sim.presets.PRESETS`); ``preset_overrides`` changes
        single parameters.
    start : int
        Start of the run, seconds since the epoch (UTC).
    days : float
        Simulated duration in days; ``days * 86400`` must be a multiple of ``tick_seconds``.
    tick_seconds : int
        Length of one tick (s); the policy learns at tick boundaries.
    decision_lag_ticks : int
        Ticks between the tick in which an email becomes due and the tick boundary at
        which it is delivered (>= 1; changes results). With 1 (the default), emails due in
        tick ``k`` are delivered at the end of ``k``, so every shard's tick ``k + 1`` waits
        for the learner's choices of tick ``k``. With 2 (with 15-minute ticks: a 15-30
        minute send queue, as in an ESP), those choices are needed only at the end of
        ``k + 1``, so on Ray the learner works while the shards run their next tick
        (faster). Every email, decided by the policy or not, waits the same number of
        ticks.
    rules : RuleSet or None
        Trigger rules (None: no triggered emails).
    campaign : CampaignConfig or None
        The recurring newsletter (None: none).
    policy : PolicyConfig or None
        Chooses variants (None: fixed variants).
    holdout_fraction : float
        Share of subscribers (salted hash of the id) that receive no triggered mail.
    reward : {"click", "order", "revenue"}
        What the learner is fed for each email once its reward window has closed.
    reward_window_seconds : int
        How long after delivery responses count toward an email (s).
    record_decisions, record_events : bool
        Keep the per-email decision log / the full event log in the result.
    checkpoint_every : int
        Ticks between checkpoints (Ray executor; 0 disables them).
    """

    seed: int | None = None
    subscribers: int = 10_000
    preset: str = "retail"
    preset_overrides: Mapping[str, Any] = field(default_factory=dict)
    start: int = DEFAULT_START
    days: float = 14.0
    tick_seconds: int = 900
    decision_lag_ticks: int = 1
    rules: RuleSet | None = None
    campaign: CampaignConfig | None = field(default_factory=CampaignConfig)
    policy: PolicyConfig | None = None
    holdout_fraction: float = 0.0
    reward: str = "click"
    reward_window_seconds: int = 3 * 86400
    record_decisions: bool = False
    record_events: bool = False
    checkpoint_every: int = 96

    def __post_init__(self) -> None:
        if not _is_int(self.seed) or self.seed < 0:
            raise SpecError(f"seed: expected an integer >= 0 (required), got {self.seed!r}")
        if not _is_int(self.subscribers) or self.subscribers < 1:
            raise SpecError(f"subscribers: expected an integer >= 1, got {self.subscribers!r}")
        if self.preset not in PRESETS:
            raise SpecError(f"preset: expected one of {', '.join(sorted(PRESETS))}, "
                            f"got {self.preset!r}")
        if not isinstance(self.preset_overrides, Mapping):
            raise SpecError(f"preset_overrides: expected a mapping, got "
                            f"{self.preset_overrides!r}")
        if not _is_int(self.start) or self.start < 0:
            raise SpecError(f"start: expected int seconds since the epoch, got {self.start!r}")
        if not _is_int(self.tick_seconds) or self.tick_seconds < 60:
            raise SpecError(f"tick_seconds: expected an integer >= 60, got "
                            f"{self.tick_seconds!r}")
        if not _is_int(self.decision_lag_ticks) or not 1 <= self.decision_lag_ticks <= 96:
            raise SpecError(f"decision_lag_ticks: expected an integer in [1, 96], got "
                            f"{self.decision_lag_ticks!r}")
        if not _is_real(self.days) or self.days <= 0:
            raise SpecError(f"days: expected a number > 0, got {self.days!r}")
        total = float(self.days) * DAY
        if total != round(total) or round(total) % self.tick_seconds:
            raise SpecError(f"days: expected a whole number of ticks of {self.tick_seconds} s, "
                            f"got {self.days!r} days")
        if self.rules is not None and not isinstance(self.rules, RuleSet):
            raise SpecError(f"rules: expected a policies.triggers.RuleSet or None, got "
                            f"{type(self.rules).__name__}")
        if self.campaign is not None and not isinstance(self.campaign, CampaignConfig):
            raise SpecError(f"campaign: expected a CampaignConfig or None, got "
                            f"{type(self.campaign).__name__}")
        if self.policy is not None and not isinstance(self.policy, PolicyConfig):
            raise SpecError(f"policy: expected a PolicyConfig or None, got "
                            f"{type(self.policy).__name__}")
        if not _is_real(self.holdout_fraction) or not 0 <= self.holdout_fraction < 1:
            raise SpecError(f"holdout_fraction: expected a fraction in [0, 1), got "
                            f"{self.holdout_fraction!r}")
        _check_choice("reward", self.reward, REWARDS)
        if not _is_int(self.reward_window_seconds) or self.reward_window_seconds < 1:
            raise SpecError(f"reward_window_seconds: expected an integer >= 1, got "
                            f"{self.reward_window_seconds!r}")
        for name in ("record_decisions", "record_events"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        if not _is_int(self.checkpoint_every) or self.checkpoint_every < 0:
            raise SpecError(f"checkpoint_every: expected an integer >= 0 (ticks), got "
                            f"{self.checkpoint_every!r}")
        if self.rules is not None and len(self.rules) > 250:
            raise SpecError(f"rules: at most 250 rules, got {len(self.rules)}")

    @property
    def n_ticks(self) -> int:
        """Number of ticks of the run."""
        return round(float(self.days) * DAY) // self.tick_seconds

    @property
    def n_days(self) -> int:
        """Number of (possibly partial) days of the run."""
        return math.ceil(float(self.days))

    @property
    def end(self) -> int:
        """End of the run, seconds since the epoch."""
        return self.start + self.n_ticks * self.tick_seconds

    def tick_bounds(self, tick: int) -> tuple[int, int]:
        """``(t0, t1)`` of ``tick``: the interval ``(t0, t1]`` in seconds."""
        t0 = self.start + tick * self.tick_seconds
        return t0, t0 + self.tick_seconds
