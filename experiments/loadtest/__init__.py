"""Load-testing trigger rules: ``triggerlab loadtest``.

* :mod:`~experiments.loadtest.generator` -- event pools (behavior model, a type mix, or a
  recorded log), the subscriber partition and the open-loop arrival plan;
* :mod:`~experiments.loadtest.runner` -- engine shards on Ray driven by the plan,
  measurement, checkpoints and the kill-a-shard fault, the reference-engine check;
* :mod:`~experiments.loadtest.report` -- summary table, ``loadtest.json``, PNG plots.
"""

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
from experiments.loadtest.runner import (
    LoadTestConfig,
    LoadTestResult,
    compare_decisions,
    counter_mismatch_count,
    duplicate_instances,
    run_loadtest,
    weighted_percentiles,
)

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
