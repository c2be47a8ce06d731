"""What a run derives from its config once: sources, arms, email kinds, metric layout.

:class:`RunPlan` is computed identically by the driver, every shard and the learner,
so they agree on codes without exchanging them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actors.config import SimulationConfig
from actors.metrics import MetricsLayout
from actors.registry import ArmVariants, make_policy
from policies.base import Policy
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
    rule_urgency : bool ndarray (R,)
        The rule's ``content.apply_urgency``.
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
    rule_urgency: np.ndarray
    policy_contexts: bool
    store_contexts: bool
    decides_campaign: bool
    decides_triggers: bool
    campaign_incentive: float = 0.0

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
        urgency = np.array([bool(r.content.get("apply_urgency", False)) for r in rules], bool)
        layout = MetricsLayout(tuple(r.id for r in rules), arm_names, config.n_days,
                               config.holdout_fraction > 0)
        has_policy = config.policy is not None
        return cls(
            layout=layout,
            arm_names=arm_names,
            variants=variants,
            rule_kind=kinds,
            rule_urgency=urgency,
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
