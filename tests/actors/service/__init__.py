"""Tests of the trigger service transports (a package, so that its conftest does not
shadow tests/actors/conftest.py, which sibling modules import as ``conftest``)."""
