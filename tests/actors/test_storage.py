"""Storage locations: one check, one URI form and one wording for logs and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.storage import as_uri, child_uri, location, open_location
from policies.errors import SpecError


@pytest.mark.parametrize(("uri", "message"), [
    (None, r"log_uri: expected a directory path or a pyarrow.fs URI, got None"),
    ("", r"log_uri: expected a directory path or a pyarrow.fs URI, got ''"),
    ("   ", r"log_uri: expected a directory path or a pyarrow.fs URI, got '   '"),
    (5, r"log_uri: expected a directory path or a pyarrow.fs URI, got 5"),
    (b"/tmp", r"log_uri: expected a directory path or a pyarrow.fs URI, got b'/tmp'"),
    ("nosuchfs://x", r"log_uri: cannot open 'nosuchfs://x' with "
                     r"pyarrow.fs.FileSystem.from_uri \(ArrowInvalid: "),
])
def test_bad_locations_are_refused_with_the_field(uri, message) -> None:
    with pytest.raises(SpecError, match=message):
        open_location(uri, "log_uri")


def test_paths_and_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert location(tmp_path, "x") == str(tmp_path)
    assert as_uri("rel/dir", "x") == (tmp_path / "rel" / "dir").as_uri()
    assert as_uri("s3://bucket/prefix/", "x") == "s3://bucket/prefix"
    assert as_uri("file:///", "x") == "file:///"
    assert child_uri("s3://b/p?region=eu", "run-1", "x.pkl") == "s3://b/p/run-1/x.pkl?region=eu"
    fs, path = open_location("rel/dir", "x")
    assert type(fs).__name__ == "LocalFileSystem" and path == "rel/dir"
    fs, path = open_location(tmp_path.as_uri(), "x")
    assert type(fs).__name__ == "LocalFileSystem" and path == str(tmp_path)
