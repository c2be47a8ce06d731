"""Starting and inspecting Ray for the layers above (which never import ``ray``).

Ray is started at most once per process and left running (the executors, the engine
pool and :func:`actors.fan_out.map_runs` reuse it); a process that already called
``ray.init`` itself (a notebook, the tests) keeps its own session.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cluster_cpus", "init_ray", "ray_is_running"]


def ray_is_running() -> bool:
    """Whether this process is connected to a Ray cluster."""
    import ray

    return bool(ray.is_initialized())


def init_ray(address: str | None = None, **options: Any) -> None:
    """Connect to Ray unless already connected.

    Parameters
    ----------
    address : str, optional
        Cluster address (``"auto"``, ``"ray://host:10001"``, ...); None starts a local
        cluster.
    **options
        Passed to ``ray.init`` (e.g. ``log_to_driver=False``, ``include_dashboard=False``,
        ``configure_logging=False``, ``logging_level="ERROR"``).
    """
    import ray

    if not ray.is_initialized():
        ray.init(address=address, **options)


def cluster_cpus(default: float = 1.0) -> float:
    """CPUs of the connected Ray cluster (``default`` if it reports none)."""
    import ray

    return float(ray.cluster_resources().get("CPU", default))
