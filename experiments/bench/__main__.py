"""Dispatch ``python -m experiments.bench NAME ...`` to ``experiments.bench.NAME``."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import experiments.bench as _pkg


def _available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(_pkg.__path__) if not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = _available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m experiments.bench NAME [options] [--json] [--record]")
        print("benchmarks: " + ", ".join(names))
        return 0 if argv else 2
    name = argv[0]
    if name not in names:
        print(f"error: unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"experiments.bench.{name}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
