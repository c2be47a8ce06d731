"""Run configuration: what to simulate (:class:`SimulationConfig`), which policy chooses
email variants (:class:`PolicyConfig`) and the recurring campaign (:class:`CampaignConfig`).

The dataclasses store their arguments unchanged and validate them in ``__post_init__``
(raising :class:`~policies.errors.SpecError` naming the field, what was expected and
what was received). They are small and picklable: the driver ships one copy to every
shard through the object store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.base import SUBJECT_STYLES
from policies.checks import check_bool, check_choice, check_int, check_number, expected
from policies.errors import SpecError
from policies.triggers import RuleSet
from sim.clock import DAY
from sim.presets import PRESETS

__all__ = [
    "DECIDES",
    "DEFAULT_START",
    "DRAWS",
    "REWARDS",
    "SCOPES",
    "CampaignConfig",
    "PolicyConfig",
    "ScoringConfig",
    "SimulationConfig",
    "TargetConfig",
]

#: Default start of a run: Monday 2026-01-05 00:00 UTC (seconds since the epoch).
DEFAULT_START = 1_767_571_200
#: Email features a policy's arm may set.
DECIDES: tuple[str, ...] = ("subject_style", "send_hour", "strategy", "combination")
#: Which emails a policy decides.
SCOPES: tuple[str, ...] = ("triggers", "campaign", "all")
#: How a policy's random choices are drawn (:class:`PolicyConfig`'s ``draws``).
DRAWS: tuple[str, ...] = ("batch", "keyed")
#: What the learner is fed after an email's reward window closes.
REWARDS: tuple[str, ...] = ("click", "order", "revenue")


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
    incentive : float
        Discount fraction in [0, 1) every campaign email offers (default 0: none). The
        response model multiplies P(purchase | click) by ``1 + incentive_buy_slope
        incentive price_sensitivity`` and takes the discount off the order value, so a
        discount earns more only from price-sensitive subscribers (docs/domain.md).
    holdout : bool
        Whether the run's holdout group (``holdout_fraction``) gets the campaign too
        (default True: a holdout withholds triggered mail only, the newsletter is the
        background). False makes it a holdout of the campaign as well, so treatment minus
        holdout measures what the campaign causes.
    """

    every_days: int = 7
    local_hour: int = 10
    subject_style: str = "plain"
    incentive: float = 0.0
    holdout: bool = True

    def __post_init__(self) -> None:
        check_int("campaign.every_days", self.every_days, low=1, error=SpecError)
        check_int("campaign.local_hour", self.local_hour, low=0, high=23,
                  what="an hour 0..23", error=SpecError)
        check_choice("campaign.subject_style", self.subject_style, SUBJECT_STYLES,
                     error=SpecError)
        check_number("campaign.incentive", self.incentive, low=0, high=1, high_open=True,
                     what="a discount fraction in [0, 1)", error=SpecError)
        if not isinstance(self.holdout, bool):
            raise SpecError(f"campaign.holdout: expected true or false, got {self.holdout!r}")


@dataclass(frozen=True, eq=False)
class ScoringConfig:
    """Scores and clusters refreshed during a run (dynamic segments, docs/segments.md).

    ``first_day`` whole days after the run's start and every ``every_days`` days after
    that (at the tick boundary, before the next tick), each shard computes the history
    features of its subscribers from its own event log up to that moment, runs every
    scorer, and writes the columns ``columns`` into its subscriber table; the trigger
    engine gets the rows whose rule segments changed. Before the first refresh the
    columns are missing (NaN): no segment test on them passes.

    Parameters
    ----------
    scorers : tuple
        Fitted scorers (:class:`policies.segments.dynamic.Scorer`), picklable.
    columns : tuple of str
        The score columns they produce, distinct.
    first_day : int
        Days (>= 1) from the start to the first refresh.
    every_days : int
        Days between refreshes (>= 1).
    """

    scorers: tuple[Any, ...]
    columns: tuple[str, ...]
    first_day: int = 7
    every_days: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.scorers, tuple) or not self.scorers or not all(
                callable(getattr(s, "score", None)) for s in self.scorers):
            raise expected(SpecError, "scoring.scorers", "a non-empty tuple of objects with "
                           "score(features)", self.scorers)
        if (not isinstance(self.columns, tuple) or not self.columns
                or not all(isinstance(c, str) and c.isidentifier() for c in self.columns)
                or len(set(self.columns)) != len(self.columns)):
            raise expected(SpecError, "scoring.columns", "a non-empty tuple of distinct "
                           "column names", self.columns)
        check_int("scoring.first_day", self.first_day, low=1, error=SpecError)
        check_int("scoring.refresh", self.every_days, low=1,
                  what="a whole number of days >= 1", error=SpecError)

    def is_refresh(self, days: int) -> bool:
        """Whether the moment ``days`` whole days after the run's start is a refresh."""
        return days >= self.first_day and (days - self.first_day) % self.every_days == 0


@dataclass(frozen=True)
class TargetConfig:
    """Send only to the top ``top`` of subscribed subscribers by score column ``by``, as
    ranked at the last refresh (``ceil(top n)`` of the ``n`` subscribed ones with a
    score; ties by the lower id). Before the first refresh nobody is in the top: the
    arm sends nothing. Emails not sent are not counted (truth counts sent emails only).
    """

    by: str
    top: float

    def __post_init__(self) -> None:
        if not isinstance(self.by, str) or not self.by.isidentifier():
            raise expected(SpecError, "target.by", "a score column name", self.by)
        check_number("target.top", self.top, low=0, high=1, low_open=True,
                     what="a fraction in (0, 1]", error=SpecError)


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
    decides : {"subject_style", "send_hour", "strategy", "combination"}
        Which email feature the arm sets (``combination``: several at once, the arm
        names joining their levels with ``:``; :mod:`actors.variants`).
    scope : {"triggers", "campaign", "all"}
        Which emails the policy decides (the others get the fixed variant).
    draws : {"batch", "keyed"}
        ``batch`` (default): a tick's choices are drawn together from one generator
        keyed by (seed, tick). ``keyed``: each email's choice from its own generator
        keyed by (seed, its trigger id) (:mod:`policies.keyed`) -- what the trigger
        service draws, so a run and the service choose the same arm for the same
        trigger under the same policy state; each row is then one ``policy.select`` call
        (tens to hundreds of microseconds instead of about one).
    """

    name: str = "thompson"
    params: Mapping[str, Any] = field(default_factory=dict)
    decides: str = "subject_style"
    scope: str = "all"
    draws: str = "batch"

    def __post_init__(self) -> None:
        from actors.registry import POLICIES  # registry imports this module's types

        check_choice("policy.name", self.name, sorted(POLICIES), error=SpecError)
        if not isinstance(self.params, Mapping):
            raise expected(SpecError, "policy.params", "a mapping", self.params)
        check_choice("policy.decides", self.decides, DECIDES, error=SpecError)
        check_choice("policy.scope", self.scope, SCOPES, error=SpecError)
        check_choice("policy.draws", self.draws, DRAWS, error=SpecError)


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
    record_subscribers : bool
        Keep per-subscriber counts and ground truth, and the subscriber table at the start
        of the run, in the result (:mod:`actors.subscriber_books`; per-segment analysis).
    checkpoint_every : int
        Ticks between checkpoints (Ray executor; 0 disables them).
    scoring : ScoringConfig or None
        Scores and clusters refreshed during the run (None: none).
    target : TargetConfig or None
        Send triggered and campaign emails only to the top of a score (needs ``scoring``
        producing ``target.by``; whole days of ticks).
    log_uri : str or None
        Stream the recorded event and decision logs to Parquet files there (a directory
        or any ``pyarrow.fs`` URI every shard can reach) in bounded memory, instead of
        holding them until the end: the result's ``logs`` reads them back
        (:mod:`actors.logs`). None: the logs are kept in memory.
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
    record_subscribers: bool = False
    checkpoint_every: int = 96
    scoring: ScoringConfig | None = None
    target: TargetConfig | None = None
    log_uri: str | None = None

    def __post_init__(self) -> None:
        check_int("seed", self.seed, low=0, what="an integer >= 0 (required)", error=SpecError)
        check_int("subscribers", self.subscribers, low=1, error=SpecError)
        check_choice("preset", self.preset, sorted(PRESETS), error=SpecError)
        if not isinstance(self.preset_overrides, Mapping):
            raise expected(SpecError, "preset_overrides", "a mapping", self.preset_overrides)
        check_int("start", self.start, low=0, what="int seconds since the epoch",
                  error=SpecError)
        check_int("tick_seconds", self.tick_seconds, low=60, error=SpecError)
        check_int("decision_lag_ticks", self.decision_lag_ticks, low=1, high=96,
                  error=SpecError)
        check_number("days", self.days, low=0, low_open=True, error=SpecError)
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
        check_number("holdout_fraction", self.holdout_fraction, low=0, high=1, high_open=True,
                     what="a fraction in [0, 1)", error=SpecError)
        check_choice("reward", self.reward, REWARDS, error=SpecError)
        check_int("reward_window_seconds", self.reward_window_seconds, low=1, error=SpecError)
        for name in ("record_decisions", "record_events", "record_subscribers"):
            check_bool(name, getattr(self, name), what="True or False", error=SpecError)
        if self.log_uri is not None:
            from actors.logs import open_log_fs
            open_log_fs(self.log_uri)
        check_int("checkpoint_every", self.checkpoint_every, low=0,
                  what="an integer >= 0 (ticks)", error=SpecError)
        if self.scoring is not None and not isinstance(self.scoring, ScoringConfig):
            raise SpecError(f"scoring: expected a ScoringConfig or None, got "
                            f"{type(self.scoring).__name__}")
        if self.target is not None:
            if not isinstance(self.target, TargetConfig):
                raise SpecError(f"target: expected a TargetConfig or None, got "
                                f"{type(self.target).__name__}")
            cols = () if self.scoring is None else self.scoring.columns
            if self.target.by not in cols:
                raise SpecError(f"target.by: expected a score column of scoring "
                                f"({', '.join(cols) or 'none: no scoring'}), got "
                                f"{self.target.by!r}")
        if self.scoring is not None and DAY % self.tick_seconds:
            raise SpecError(f"scoring: refreshes at day boundaries need ticks dividing a "
                            f"day, got tick_seconds={self.tick_seconds}")
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
