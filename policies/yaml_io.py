"""The one YAML reader of TriggerLab: specs, rule files and policy files.

PyYAML's ``safe_load`` lets a repeated mapping key silently replace the earlier one
("the last one wins"), so a spec with two ``replications:`` lines runs with whichever
came last. :func:`parse_yaml` uses a :class:`yaml.SafeLoader` subclass that refuses
duplicate keys instead, naming the key and both lines::

    spec: duplicate key 'replications' at line 9 (first at line 3) in exp.yaml

Malformed YAML raises the caller's error class too, with the line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["parse_yaml", "read_yaml_file"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings refuse a key given twice."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:  # explicit keys only: a merge (<<) may be overridden
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # the base constructor reports unhashable keys
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _DuplicateKey(key, seen[key], line)
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(key, first, again)
        self.key, self.first, self.again = key, first, again


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, what: str, error: type[Exception], where: str = "",
               malformed: str = "malformed YAML") -> Any:
    """The parsed YAML ``text``; ``what`` starts every message (``"spec"``, ``"rules"``),
    ``where`` names the source (`` in exp.yaml``), ``error`` is the class raised."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise error(f"{what}: duplicate key {exc.key!r} at line {exc.again} (first at line "
                    f"{exc.first}){where}; a key may be given once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise error(f"{what}: {malformed}{where}{at}: {problem}") from None
    except RecursionError:
        raise error(f"{what}: YAML nested too deeply{where}") from None


def read_yaml_file(path: Path, what: str, error: type[Exception],
                   malformed: str = "malformed YAML") -> Any:
    """The parsed YAML of file ``path``; a missing, unreadable, non-UTF-8 or malformed file
    (or one with a duplicate key) raises ``error`` starting with ``what``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what}: file not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what}: expected a file, got the directory {path}") from None
    except UnicodeDecodeError:
        raise error(f"{what}: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise error(f"{what}: cannot read {path}: {exc.strerror}") from None
    return parse_yaml(text, what, error, f" in {path}", malformed)
