"""Small run configurations shared by the actors tests."""

from __future__ import annotations

import pytest

from actors import CampaignConfig, PolicyConfig, SimulationConfig
from policies.triggers import default_rules


def small_config(**overrides) -> SimulationConfig:
    """A few thousand subscribers for a day: rules, campaign, Thompson policy, holdout,
    decision and event logs — everything a run can produce, quickly."""
    kw = dict(
        seed=11, subscribers=2500, days=1.0, rules=default_rules(),
        campaign=CampaignConfig(every_days=1, local_hour=10, subject_style="plain"),
        policy=PolicyConfig(name="thompson",
                            params={"arm_names": ["plain", "question", "dont_miss"]}),
        holdout_fraction=0.2, reward="click", reward_window_seconds=6 * 3600,
        record_decisions=True, record_events=True, checkpoint_every=12,
    )
    kw.update(overrides)
    return SimulationConfig(**kw)


@pytest.fixture(scope="session")
def small_inline_result():
    """The reference (inline, one shard) result of :func:`small_config`."""
    from actors import run_simulation

    return run_simulation(small_config(), executor="inline", shards=1)
