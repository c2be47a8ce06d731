"""Load-testing trigger rules: ``triggerlab loadtest``.

* :mod:`~experiments.loadtest.generator` -- event pools (behavior model, a type mix, or a
  recorded log), the subscriber partition and the open-loop arrival plan;
* :mod:`~experiments.loadtest.config` -- :class:`LoadTestConfig`, :class:`LoadTestResult`;
* :mod:`~experiments.loadtest.runner` -- engine shards (an :class:`actors.EnginePool`)
  driven by the plan, measurement, checkpoints and the kill-a-shard fault;
* :mod:`~experiments.loadtest.checks` -- the reference-engine check, duplicate and
  counter checks, weighted latency percentiles;
* :mod:`~experiments.loadtest.report` -- summary table, ``loadtest.json``, PNG plots.
"""

from experiments.loadtest.checks import (
    compare_decisions,
    counter_mismatch_count,
    duplicate_instances,
    weighted_percentiles,
)
from experiments.loadtest.config import LoadTestConfig, LoadTestResult
from experiments.loadtest.generator import (
    SOURCES,
    Plan,
    Stream,
    behavior_stream,
    mix_stream,
    parse_mix,
    partition,
    plan,
    replay_stream,
    rule_columns,
    sample_mask,
)
from experiments.loadtest.runner import run_loadtest

__all__ = [
    "SOURCES",
    "LoadTestConfig",
    "LoadTestResult",
    "Plan",
    "Stream",
    "behavior_stream",
    "compare_decisions",
    "counter_mismatch_count",
    "duplicate_instances",
    "mix_stream",
    "parse_mix",
    "partition",
    "plan",
    "replay_stream",
    "rule_columns",
    "run_loadtest",
    "sample_mask",
    "weighted_percentiles",
]
