"""The runtime: subscriber shards (world + trigger engine), the policy learner, the driver
that advances simulated time, checkpoints and recovery; executors ``inline`` (one
process) and ``ray`` (local Ray or a cluster).

>>> from actors import SimulationConfig, run_simulation
>>> result = run_simulation(SimulationConfig(seed=1, subscribers=500, days=1.0))
>>> sorted(result.metrics.columns)
['arm', 'day', 'group', 'metric', 'source', 'value']
"""

from actors.config import (
    DECIDES,
    DEFAULT_START,
    REWARDS,
    SCOPES,
    CampaignConfig,
    PolicyConfig,
    SimulationConfig,
)
from actors.driver import Driver, run_simulation, split_ranges
from actors.executors import EXECUTORS, ActorLost, ShardError
from actors.learner import LearnerCore
from actors.metrics import EMAIL_METRICS, GROUPS, METRICS, RULE_METRICS, SITE_METRICS
from actors.registry import POLICIES, make_policy
from actors.result import RunResult
from actors.shard import ShardCore
from policies._version import __version__ as __version__

__all__ = [
    "DECIDES",
    "DEFAULT_START",
    "EMAIL_METRICS",
    "EXECUTORS",
    "GROUPS",
    "METRICS",
    "POLICIES",
    "REWARDS",
    "RULE_METRICS",
    "SCOPES",
    "SITE_METRICS",
    "ActorLost",
    "CampaignConfig",
    "Driver",
    "LearnerCore",
    "PolicyConfig",
    "RunResult",
    "ShardCore",
    "ShardError",
    "SimulationConfig",
    "make_policy",
    "run_simulation",
    "split_ranges",
]
