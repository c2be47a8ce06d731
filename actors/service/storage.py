"""Files of the service (checkpoints, the decision log) on any filesystem ``pyarrow.fs``
opens: a local path, or a URI such as ``s3://bucket/prefix`` or ``file:///tmp/x``.

A file is written **atomically**: to ``NAME.tmp-<random>`` in the same directory, then
moved onto ``NAME``; a reader sees the old file or the new one, never a part. (On a
local disk the move is ``rename(2)``; object stores make a copy then delete the
temporary object, which is also all-or-nothing for a reader of ``NAME``.)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from policies.checks import show
from policies.errors import TriggerLabValueError

__all__ = ["Location"]


@dataclass(frozen=True)
class Location:
    """A directory on a ``pyarrow.fs`` filesystem.

    Parameters
    ----------
    fs : pyarrow.fs.FileSystem
    path : str
        The directory, in the filesystem's own path syntax.
    """

    fs: pafs.FileSystem
    path: str

    @classmethod
    def of(cls, where: str | os.PathLike[str]) -> Location:
        """A local path (made absolute) or a URI ``pyarrow.fs.FileSystem.from_uri`` reads."""
        text = os.fspath(where) if isinstance(where, os.PathLike) else where
        if not isinstance(text, str) or not text:
            raise TriggerLabValueError(f"directory: expected a path or URI, got {show(where)}")
        if "://" not in text:
            return cls(pafs.LocalFileSystem(), os.path.abspath(text))
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowException, ValueError) as exc:
            raise TriggerLabValueError(f"directory: cannot open {text!r}: {exc}") from None
        return cls(fs, path.rstrip("/"))

    def child(self, *names: str) -> Location:
        """A directory under this one."""
        return Location(self.fs, "/".join([self.path, *names]))

    def file(self, name: str) -> str:
        """The path of file ``name`` in this directory."""
        return f"{self.path}/{name}"

    def write_atomic(self, name: str, data: bytes) -> None:
        """Write file ``name`` atomically (see the module docstring)."""
        self.fs.create_dir(self.path, recursive=True)
        tmp = self.file(f"{name}.tmp-{secrets.token_hex(6)}")
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        self.fs.move(tmp, self.file(name))

    def read(self, name: str) -> bytes | None:
        """The bytes of file ``name``, or None if it does not exist."""
        path = self.file(name)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return bytes(f.read())

    def names(self, suffix: str = "") -> list[str]:
        """Sorted names of the files in this directory ending in ``suffix`` (temporary
        files of unfinished writes excluded); ``[]`` if it does not exist."""
        info = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted(i.base_name for i in info if i.type == pafs.FileType.File
                      and i.base_name.endswith(suffix) and ".tmp-" not in i.base_name)
