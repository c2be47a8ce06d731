"""Run independent jobs (whole simulation runs, say) inline or as parallel Ray tasks.

:func:`map_runs` applies a function to every item and returns the results in item
order. ``inline`` runs them one after the other in this process; ``ray`` submits every
item at once as its own Ray task (one CPU each, so a cluster runs as many in parallel
as it has CPUs) and collects them as they finish. A task lost with its worker is
retried, so the function must be deterministic (simulation runs are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from policies.errors import SpecError

__all__ = ["FAN_OUT_EXECUTORS", "map_runs"]

#: Names accepted by :func:`map_runs`.
FAN_OUT_EXECUTORS: tuple[str, ...] = ("inline", "ray")

T = TypeVar("T")
R = TypeVar("R")


def map_runs(fn: Callable[[T], R], items: Sequence[T], executor: str = "inline", *,
             address: str | None = None,
             on_start: Callable[[int], None] | None = None,
             on_done: Callable[[int], None] | None = None,
             max_retries: int = 3) -> list[R]:
    """``[fn(item) for item in items]``, inline or as Ray tasks.

    Parameters
    ----------
    fn : callable
        A module-level function (Ray ships it to workers by reference).
    items : sequence
        Its arguments, one job each.
    executor : {"inline", "ray"}
    address : str, optional
        Ray cluster address (``ray`` only); default a local cluster (started once per
        process, left running).
    on_start : callable, optional
        ``on_start(i)`` before job ``i`` starts (inline only: Ray jobs start together).
    on_done : callable, optional
        ``on_done(i)`` when job ``i`` has finished, in finishing order.
    max_retries : int
        Ray retries of a job whose worker died.

    Returns
    -------
    list
        The results, in the order of ``items``.
    """
    if executor == "inline":
        out = []
        for i, item in enumerate(items):
            if on_start is not None:
                on_start(i)
            out.append(fn(item))
            if on_done is not None:
                on_done(i)
        return out
    if executor != "ray":
        raise SpecError(f"executor: expected one of {', '.join(FAN_OUT_EXECUTORS)}, "
                        f"got {executor!r}")
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    task = ray.remote(num_cpus=1, max_retries=max_retries)(fn)
    refs = [task.remote(item) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        if on_done is not None:
            on_done(index[done[0]])
    results: list[Any] = ray.get(refs)
    return results
