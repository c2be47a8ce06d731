"""``triggerlab validate SPEC [SPEC ...]``: check experiment specs without running them.

Prints one ``ok`` line per valid spec. The first invalid one stops with one line naming
the field path (``arms[2].policy.epsilon: expected a number in [0, 1], got 1.5``) and
exit status 2.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="experiment spec files")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from experiments.spec import load_spec
    from policies.errors import SpecError

    for name in args.specs:
        try:
            spec = load_spec(Path(name))
        except SpecError as exc:
            if str(Path(name)) in str(exc):
                raise
            raise SpecError(f"{name}: {exc}") from exc
        print(f"ok: {name}: {spec.name!r}, {len(spec.arms)} arms "
              f"({', '.join(a.name for a in spec.arms)}), control {spec.control_arm!r}, "
              f"{spec.subscribers:,} subscribers x {spec.days:g} days x "
              f"{spec.replications} replication(s), primary metric {spec.primary}")
    return 0
