"""Checkpoints of a Ray run on shared storage: any ``pyarrow.fs`` URI.

With ``run_simulation(..., executor="ray", checkpoint_uri=URI)`` every shard and the
learner write their own checkpoint to storage (in parallel, from their own node); the
driver keeps only the small :class:`StoredCheckpoint` records, and a shard recreated on
any node (after its actor or its node was lost) reads its state back from there. URIs are
those of :meth:`pyarrow.fs.FileSystem.from_uri`: ``file:///shared/ckpt`` (an NFS mount
seen at the same path on every node), ``s3://bucket/prefix``, ``gs://bucket/prefix``,
``hdfs://...``; a plain absolute or relative path means a local directory.

Layout, one directory per run (a run never overwrites another's)::

    URI/run-YYYYmmddTHHMMSS-XXXXXXXX/
        ckpt-00000096/shard-0000.pkl ... shard-NNNN.pkl, learner.pkl, manifest.json
        ...

A checkpoint directory is complete once its ``manifest.json`` exists (the driver writes
it after every file was written); the previous one is then deleted, so the run keeps one
complete checkpoint (the last, also after the run ends). Files are pickles (protocol 5)
of :meth:`ShardCore.state` and :meth:`LearnerCore.checkpoint`: read them only from
storage you trust.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import uuid
from dataclasses import dataclass
from typing import Any

from actors.storage import as_uri, child_uri, first_line, open_location
from policies.errors import SpecError

__all__ = ["CheckpointStore", "StoredCheckpoint", "read_checkpoint", "write_checkpoint"]


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint file on storage.

    Attributes
    ----------
    uri : str
        The file's full URI.
    position : int
        Tick at which the saved actor continues.
    nbytes : int
        Size of the file (bytes).
    write_s : float
        Wall seconds the actor spent serializing and writing it.
    """

    uri: str
    position: int
    nbytes: int
    write_s: float = 0.0


def write_checkpoint(uri: str, value: Any, position: int) -> StoredCheckpoint:
    """Pickle ``value`` to the file ``uri`` (its directory is created) and return its
    record. Runs in the actor that owns the state, on its node."""
    t0 = time.perf_counter()
    fs, path = open_location(uri, "checkpoint_uri")
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as out:
        pickle.dump(value, out, protocol=5)
    size = int(fs.get_file_info(path).size)
    return StoredCheckpoint(uri, int(position), size, time.perf_counter() - t0)


def read_checkpoint(ck: StoredCheckpoint) -> Any:
    """The value written by :func:`write_checkpoint` (clear errors for a missing or
    truncated file, e.g. a ``file://`` URI that is not shared between nodes)."""
    import pyarrow.fs as pafs

    fs, path = open_location(ck.uri, "checkpoint_uri")
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise SpecError(f"checkpoint: {ck.uri} not found on this node (is the storage "
                        f"shared by every node of the cluster?)")
    if info.size != ck.nbytes:
        raise SpecError(f"checkpoint: {ck.uri} has {info.size} bytes, expected {ck.nbytes} "
                        f"(truncated or overwritten)")
    with fs.open_input_stream(path) as src:
        return pickle.load(src)


class CheckpointStore:
    """This run's checkpoint directory under ``uri`` (opened, created and probed here, so
    a bad URI fails before the run starts).

    Parameters
    ----------
    uri : str or path
        A ``pyarrow.fs`` URI (``file:///...``, ``s3://bucket/prefix``, ...) or a local path.
    """

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        base = as_uri(uri, "checkpoint_uri")
        fs, _ = open_location(base, "checkpoint_uri")
        self.base_uri = base
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        #: The URI of this run's directory.
        self.run_uri = child_uri(base, f"run-{stamp}-{uuid.uuid4().hex[:8]}")
        self._fs = fs
        self._root = open_location(self.run_uri, "checkpoint_uri")[1]
        try:
            fs.create_dir(self._root, recursive=True)
            with fs.open_output_stream(f"{self._root}/probe") as out:
                out.write(b"ok")
            fs.delete_file(f"{self._root}/probe")
        except Exception as exc:
            raise SpecError(f"checkpoint_uri: cannot write under {base!r} "
                            f"({first_line(exc)})") from None
        self._committed: int | None = None
        #: Checkpoints committed, and bytes of the last one.
        self.n_committed = 0
        self.last_nbytes = 0
        self.write_s = 0.0

    def file_uri(self, position: int, name: str) -> str:
        """URI of file ``name`` of the checkpoint taken at tick ``position``."""
        return child_uri(self.run_uri, f"ckpt-{position:08d}", name)

    def shard_uri(self, position: int, i: int) -> str:
        return self.file_uri(position, f"shard-{i:04d}.pkl")

    def learner_uri(self, position: int) -> str:
        return self.file_uri(position, "learner.pkl")

    def commit(self, position: int, files: list[StoredCheckpoint], arms: dict[int, Any],
               ranges: list[tuple[int, int]]) -> None:
        """Mark the checkpoint at tick ``position`` complete (``manifest.json``, with the
        learner's outputs that the shards still await in ``arms.pkl``) and delete the
        previous one."""
        d = f"{self._root}/ckpt-{position:08d}"
        with self._fs.open_output_stream(f"{d}/arms.pkl") as out:
            pickle.dump(arms, out, protocol=5)
        manifest = {"position": position, "ranges": ranges,
                    "files": [{"uri": f.uri, "position": f.position, "nbytes": f.nbytes}
                              for f in files]}
        with self._fs.open_output_stream(f"{d}/manifest.json") as out:
            out.write(json.dumps(manifest, indent=1).encode())
        if self._committed is not None and self._committed != position:
            self._fs.delete_dir(f"{self._root}/ckpt-{self._committed:08d}")
        self._committed = position
        self.n_committed += 1
        self.last_nbytes = sum(f.nbytes for f in files)
        self.write_s = max((f.write_s for f in files), default=0.0)

    def checkpoint_dirs(self) -> list[str]:
        """Names of the checkpoint directories present (complete or not)."""
        import pyarrow.fs as pafs

        infos = self._fs.get_file_info(pafs.FileSelector(self._root))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)
