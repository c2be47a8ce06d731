"""What a run derives from its config once: sources, arms, email kinds, metric layout.

:class:`RunPlan` is computed identically by the driver, every shard and the learner,
so they agree on codes without exchanging them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actors.config import SimulationConfig
from actors.metrics import MetricsLayout
from actors.registry import make_policy
from actors.variants import ArmVariants
from policies.base import Policy
from policies.triggers.journeys import (
    CATALOG_EVENT_TYPES,
    KIND_SEND,
    CatalogEntry,
    compile_journey,
)
from policies.triggers.ruleset import Rule
from sim.presets import EMAIL_KINDS

__all__ = ["REWARD_PROBABILITY", "RunPlan"]

#: Response-model probability column of the expected reward, per configured reward.
REWARD_PROBABILITY = {"click": "p_click", "order": "p_purchase", "revenue": "expected_revenue"}


@dataclass(frozen=True)
class RunPlan:
    """Codes and switches of a run (see the module docstring).

    Attributes
    ----------
    layout : MetricsLayout
    arm_names : tuple of str
        The policy's arms (empty without a policy).
    variants : ArmVariants or None
    rule_kind : int64 ndarray (R,)
        ``EMAIL_KINDS`` code of each rule's emails (unknown trigger types:
        ``other_trigger``).
    content_urgency : bool ndarray (R, E)
        ``apply_urgency`` of each rule's content: column 0 for a plain rule, column
        ``e`` for email ``e`` of a journey (E = most emails of a rule, >= 1).
    content_incentive : float64 ndarray (R, E)
        The ``incentive`` (discount fraction) of the same contents.
    journey_slot : int64 ndarray (R,)
        Index of each journey rule among the journey rules, -1 for plain rules.
    node_email : int64 ndarray (R, N)
        Email index of each send node of each journey (-1: not a send, a plain rule).
    alert_event : int64 ndarray (R,)
        For a journey entered by a catalog event, the event's ``CATALOG_EVENT_TYPES``
        code (its sends are alerts about the entry's product); -1 for other rules.
    policy_contexts : bool
        The policy reads the context matrix.
    store_contexts : bool
        Shards keep every email's context (policy or decision log needs them).
    decides_campaign, decides_triggers : bool
    campaign_incentive : float
        Discount fraction of campaign emails (``CampaignConfig.incentive``; 0 without a
        campaign).
    """

    layout: MetricsLayout
    arm_names: tuple[str, ...]
    variants: ArmVariants | None
    rule_kind: np.ndarray
    content_urgency: np.ndarray
    content_incentive: np.ndarray
    journey_slot: np.ndarray
    node_email: np.ndarray
    alert_event: np.ndarray
    policy_contexts: bool
    store_contexts: bool
    decides_campaign: bool
    decides_triggers: bool
    campaign_incentive: float = 0.0

    @property
    def catalog_entries(self) -> bool:
        """Some journey enters on catalog events: shards hand the world's catalog events
        (price drops, back in stock) to the engine."""
        return bool((self.alert_event >= 0).any())

    @classmethod
    def from_config(cls, config: SimulationConfig) -> RunPlan:
        rules = config.rules.rules if config.rules is not None else ()
        arm_names: tuple[str, ...] = ()
        variants = None
        policy_contexts = False
        scope = "all"
        if config.policy is not None:
            policy = cls.policy(config)
            arm_names = tuple(policy.arm_names)
            variants = ArmVariants(config.policy.decides, arm_names)
            policy_contexts = getattr(policy, "n_features", None) is not None
            scope = config.policy.scope
        kinds = np.array([EMAIL_KINDS.index(r.type) if r.type in EMAIL_KINDS
                          else EMAIL_KINDS.index("other_trigger") for r in rules], np.int64)
        contents = [[r.content] if r.journey is None else [e.content for e in r.journey.emails]
                    for r in rules]
        width = max([1, *(len(c) for c in contents)])
        urgency = np.zeros((len(rules), width), bool)
        incentive = np.zeros((len(rules), width))
        for i, cs in enumerate(contents):
            urgency[i, :len(cs)] = [bool(c.get("apply_urgency", False)) for c in cs]
            incentive[i, :len(cs)] = [float(c.get("incentive", 0.0)) for c in cs]
        is_journey = np.array([r.journey is not None for r in rules], bool)
        slot = np.where(is_journey, np.cumsum(is_journey) - 1, -1).astype(np.int64)
        journey_emails = tuple(() if r.journey is None else r.journey.email_names for r in rules)
        layout = MetricsLayout(tuple(r.id for r in rules), arm_names, config.n_days,
                               config.holdout_fraction > 0,
                               journey_emails if any(journey_emails) else ())
        has_policy = config.policy is not None
        return cls(
            layout=layout,
            arm_names=arm_names,
            variants=variants,
            rule_kind=kinds,
            content_urgency=urgency,
            content_incentive=incentive,
            journey_slot=slot,
            node_email=_node_emails(rules),
            alert_event=np.array([CATALOG_EVENT_TYPES.index(r.journey.entry.event)
                                  if r.journey is not None
                                  and isinstance(r.journey.entry, CatalogEntry) else -1
                                  for r in rules], np.int64),
            policy_contexts=policy_contexts,
            store_contexts=policy_contexts or config.record_decisions,
            decides_campaign=has_policy and scope in ("campaign", "all"),
            decides_triggers=has_policy and scope in ("triggers", "all"),
            campaign_incentive=(float(config.campaign.incentive)
                                if config.campaign is not None else 0.0),
        )

    @staticmethod
    def policy(config: SimulationConfig) -> Policy:
        """A fresh policy of the config (raises SpecError if it has none or it is invalid)."""
        assert config.policy is not None
        return make_policy(config.policy.name, config.policy.params,
                           decides=config.policy.decides, reward=config.reward,
                           seed=int(config.seed))  # type: ignore[arg-type]


def _node_emails(rules: tuple[Rule, ...]) -> np.ndarray:
    """Email index of each send node of each journey, int64 (R, N); -1 elsewhere."""
    programs = [None if r.journey is None else compile_journey(r) for r in rules]
    width = max([1, *(len(p) for p in programs if p is not None)])
    out = np.full((len(rules), width), -1, np.int64)
    for i, prog in enumerate(programs):
        if prog is not None:
            send = prog.kind == KIND_SEND
            out[i, :len(prog)] = np.where(send, prog.arg, -1)
    return out
