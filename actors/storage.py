"""Storage locations of a run (streamed logs, checkpoints on shared storage): a local
path or any ``pyarrow.fs`` URI (``file:///...``, ``s3://bucket/prefix``, ...), checked,
turned into URIs and opened in one place, with one wording for what is refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from policies.errors import SpecError

__all__ = ["as_uri", "child_uri", "first_line", "location", "open_location"]


def first_line(exc: BaseException) -> str:
    """``"ErrorClass: first line of its message"``, for one-line error messages."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def location(uri: Any, field: str) -> str:
    """``uri`` (a path or URI; a ``PathLike`` is accepted) as a string; refused with a
    :class:`SpecError` naming ``field`` when it is not a non-empty string."""
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise SpecError(f"{field}: expected a directory path or a pyarrow.fs URI, "
                        f"got {uri!r}")
    return uri


def as_uri(uri: Any, field: str) -> str:
    """``uri`` as a URI that other processes and nodes can open: a plain path becomes
    ``file://`` + its absolute path; a trailing ``/`` is dropped."""
    uri = location(uri, field)
    if "://" not in uri:
        return Path(uri).expanduser().resolve().as_uri()
    return uri.rstrip("/") if not uri.endswith(":///") else uri


def child_uri(uri: str, *names: str) -> str:
    """``uri`` with ``names`` appended to its path (a query such as ``?region=`` kept)."""
    parts = urlsplit(uri)
    path = "/".join([parts.path.rstrip("/"), *names])
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def open_location(uri: Any, field: str) -> tuple[Any, str]:
    """The ``pyarrow.fs`` file system and path of ``uri`` (a plain path: the local file
    system and the path as given); refused with a :class:`SpecError` naming ``field``
    when ``pyarrow.fs.FileSystem.from_uri`` cannot open it."""
    import pyarrow.fs as pafs

    uri = location(uri, field)
    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:   # ArrowInvalid, OSError, ValueError, ... : one message
        raise SpecError(f"{field}: cannot open {uri!r} with "
                        f"pyarrow.fs.FileSystem.from_uri ({first_line(exc)})") from None
