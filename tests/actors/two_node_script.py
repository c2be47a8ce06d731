"""Run by test_actors_ray.py in a subprocess: two Ray nodes on this machine, shards placed
on both, the worker node removed mid-run; prints a JSON report line per run.

``python two_node_script.py [CHECKPOINT_URI ...]``: with a URI, checkpoints go to that
shared storage (the lost node's shard is restored from a file there) instead of the
driver's object store; ``-`` stands for no URI. With several arguments, one run per
argument, one report line each, on the same cluster (a new worker node for each run) and
against the same inline reference."""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas.testing as pdt
import ray
from ray.cluster_utils import Cluster

from actors import (
    DEFAULT_START,
    CampaignConfig,
    Driver,
    PolicyConfig,
    SimulationConfig,
    run_simulation,
)
from policies.triggers import RuleSet, default_rules, example_journeys, load_rules
from policies.triggers.rules_dump import dump_rules


def _rules() -> RuleSet:
    """The reference rules and the shipped journeys (but the price-drop alert) together."""
    rules = dump_rules(default_rules())
    journeys = dump_rules(example_journeys())
    rules["rules"] += [r for r in journeys["rules"] if r["id"] != "price_drop_alert"]
    return load_rules(rules)


def main(checkpoint_uris: list[str | None]) -> None:
    cfg = SimulationConfig(
        seed=5, subscribers=1500, days=0.5, start=DEFAULT_START + 12 * 3600, rules=_rules(),
        campaign=CampaignConfig(every_days=1, local_hour=10),
        policy=PolicyConfig(name="thompson", params={"arm_names": ["plain", "question"]}),
        reward_window_seconds=3 * 3600, record_decisions=True, checkpoint_every=8)
    reference = run_simulation(cfg, executor="inline", shards=1)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for k, checkpoint_uri in enumerate(checkpoint_uris):
            worker = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            if k == 0:
                ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            print(json.dumps(_run(cfg, reference, cluster, worker, checkpoint_uri)), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()


def _run(cfg: SimulationConfig, reference: Any, cluster: Cluster, worker: Any,
         checkpoint_uri: str | None) -> dict[str, Any]:
    """One run on ray whose worker node is removed at tick 14, judged against ``reference``."""
    state: dict = {"nodes": set(), "removed": -1, "kept": []}

    def fault(driver: Driver, tick: int) -> None:
        if tick == 0:
            state["nodes"] = {driver.executor.node_of(i) for i in range(2)}
        if tick == 14 and state["removed"] < 0:
            # checkpoints: a reference for the shard on the driver's node, the value
            # (fetched to the driver's node) for the shard on the node about to go
            state["kept"] = sorted(type(c).__name__ for c in driver._ckpt.shards)
            cluster.remove_node(worker)
            state["removed"] = tick

    result = Driver(cfg, "ray", 2, on_tick=fault, checkpoint_uri=checkpoint_uri).run()
    same = True
    try:
        pdt.assert_frame_equal(reference.metrics, result.metrics)
        pdt.assert_frame_equal(reference.truth, result.truth)
        pdt.assert_frame_equal(reference.decisions, result.decisions)
        pdt.assert_frame_equal(reference.journeys, result.journeys)
    except AssertionError:
        same = False
    return {"nodes_used": len(state["nodes"]), "removed_at_tick": state["removed"],
            "recoveries": result.info["recoveries"], "identical": same,
            "checkpoints_kept": state["kept"],
            "learner_on_driver_node": (result.info["learner_node"]
                                       == result.info["driver_node"]),
            "checkpoints_written": result.info["checkpoints_written"],
            "checkpoint_uri": result.info["checkpoint_uri"],
            "journey_fires": int(result.journeys.query("kind == 'fire'")["count"].sum()),
            "sends": float(result.metrics.query("metric == 'sends'")["value"].sum())}


if __name__ == "__main__":
    main([None if a == "-" else a for a in sys.argv[1:]] or [None])
