"""The runtime: subscriber shards (world + trigger engine), the policy learner, the driver
that advances simulated time, checkpoints and recovery; executors ``inline`` (one
process) and ``ray`` (local Ray or a cluster). Also everything else that touches Ray,
so the layers above never import it: the engine-shard pool of the load test
(:class:`EnginePool`), the fan-out of independent runs (:func:`map_runs`) and starting
Ray (:func:`init_ray`).

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
from actors.engine_pool import EnginePool
from actors.errors import ActorLost, InternalError, ShardError
from actors.executors import EXECUTORS, Executor
from actors.fan_out import map_runs
from actors.learner import LearnerCore
from actors.messages import Arms, Choices, Rewards, ShardResult, TickOutput
from actors.metrics import EMAIL_METRICS, GROUPS, METRICS, RULE_METRICS, SITE_METRICS
from actors.ray_runtime import cluster_cpus, init_ray, ray_is_running
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
    "Arms",
    "CampaignConfig",
    "Choices",
    "Driver",
    "EnginePool",
    "Executor",
    "InternalError",
    "LearnerCore",
    "PolicyConfig",
    "Rewards",
    "RunResult",
    "ShardCore",
    "ShardError",
    "ShardResult",
    "SimulationConfig",
    "TickOutput",
    "cluster_cpus",
    "init_ray",
    "make_policy",
    "map_runs",
    "ray_is_running",
    "run_simulation",
    "split_ranges",
]
