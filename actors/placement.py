"""Where the Ray executor puts shards and the learner on a cluster of several nodes.

Shards (``placement``):

* ``"balanced"`` (default): each shard is pinned to a node chosen here, so that the
  number of shards per node follows the nodes' CPUs (a 16-core node gets twice the shards
  of an 8-core one; equal nodes get equal counts, the driver's node first). A shard lost
  with its node is recreated on the node that has the fewest shards per CPU among those
  alive. The pin is *soft* (Ray's ``NodeAffinitySchedulingStrategy(soft=True)``): a node
  that died between the choice and the creation does not block the run.
* ``"spread"``: Ray's ``SPREAD`` strategy (best effort: even counts whatever the nodes'
  sizes; what the executor did before the option existed).

The learner (``learner_node``):

* ``"driver"`` (default): on the driver's node. With ``decision_lag_ticks = 1`` the
  shards wait for the learner every tick and the learner waits for the shards, so they
  never compete for a core, and the learner's hop to the driver (its arms, fetched every
  tick, and its checkpoints) stays in one node's shared memory; only the shards' outputs,
  which must reach one process anyway, cross the network.
* ``"any"``: wherever Ray puts it.
* a Ray node id (hex, ``ray.nodes()[i]["NodeID"]``): that node, e.g. one with a free core
  when ``decision_lag_ticks >= 2`` makes the learner overlap the shards.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.errors import SpecError

__all__ = ["LEARNER_NODES", "PLACEMENTS", "assign_nodes", "check_placement"]

#: Accepted ``placement`` values.
PLACEMENTS: tuple[str, ...] = ("balanced", "spread")
#: Accepted ``learner_node`` values (or a node id).
LEARNER_NODES: tuple[str, ...] = ("driver", "any")


def check_placement(placement: str, learner_node: str) -> None:
    """Raise :class:`SpecError` for a bad ``placement`` or ``learner_node``."""
    if placement not in PLACEMENTS:
        raise SpecError(f"placement: expected one of {', '.join(PLACEMENTS)}, "
                        f"got {placement!r}")
    if not isinstance(learner_node, str) or not (
            learner_node in LEARNER_NODES or _is_node_id(learner_node)):
        raise SpecError(f"learner_node: expected 'driver', 'any' or a Ray node id "
                        f"(56 hex digits), got {learner_node!r}")


def _is_node_id(text: str) -> bool:
    return len(text) == 56 and all(c in "0123456789abcdef" for c in text.lower())


def assign_nodes(nodes: Sequence[tuple[str, float]], count: int,
                 current: Sequence[str | None] | None = None) -> list[str]:
    """A node for each of ``count`` shards, in proportion to the nodes' CPUs.

    Parameters
    ----------
    nodes : sequence of (node id, CPUs)
        The alive nodes, the driver's first (it wins ties).
    count : int
        Number of shards.
    current : sequence of node id or None, optional
        Shards already placed (kept where they are, if their node is in ``nodes``);
        None entries are assigned.

    Returns
    -------
    list of str
        Node id per shard: each unplaced shard goes, in order, to the node with the
        fewest shards per CPU after adding it.
    """
    usable = [(n, float(c)) for n, c in nodes if c > 0] or [(n, 1.0) for n, _ in nodes]
    if not usable:
        raise SpecError("placement: the Ray cluster has no alive node")
    alive = {n for n, _ in usable}
    out: list[str | None] = list(current) if current is not None else [None] * count
    if len(out) != count:
        raise SpecError(f"current: expected {count} entries, got {len(out)}")
    out = [n if n in alive else None for n in out]
    load = {n: sum(1 for x in out if x == n) for n, _ in usable}
    for i, n in enumerate(out):
        if n is None:
            best = min(usable, key=lambda nc: (load[nc[0]] + 1) / nc[1])[0]
            out[i] = best
            load[best] += 1
    return [str(n) for n in out]
