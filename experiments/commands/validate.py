"""``triggerlab validate FILE [FILE ...]``: check experiment specs and rules files without
running them.

A file whose top level has ``rules:`` as a list and no ``arms:`` is a rules file (checked
as :func:`~policies.triggers.load_rules` would load it); anything else is an experiment
spec, checked as ``triggerlab run`` would load it, including the up-front memory check
(:mod:`experiments.budget`). Prints one ``ok`` line per valid file (a spec's line ends
with its estimated memory and single-core time; a rules file's names each journey with its
number of steps and the most emails it sends per entry). The first invalid one stops with one
line naming the field path (``arms[2].policy.epsilon: expected a number in [0, 1], got
1.5``) and exit status 2.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="FILE",
                        help="experiment spec or trigger rules files (YAML)")


def _is_rules_file(data: object) -> bool:
    return (isinstance(data, dict) and "arms" not in data
            and isinstance(data.get("rules"), list))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from experiments.budget import check_budget, format_bytes, format_seconds
    from experiments.spec import read_yaml, spec_from_dict
    from policies.errors import RuleError, SpecError
    from policies.triggers import compile_journey, load_rules

    for name in args.specs:
        path = Path(name)
        try:
            data = read_yaml(path, "spec")
            if _is_rules_file(data):
                try:
                    rules = load_rules(data)
                except RuleError as exc:
                    raise SpecError(f"rules: {exc}") from None
                ids = [r.id for r in rules.rules]
                journeys = [f"{r.id} ({_count(len(p), 'step')}, at most "
                            f"{_count(p.max_sends, 'send')} per entry)"
                            for r in rules.rules if r.journey is not None
                            for p in [compile_journey(r)]]
                print(f"ok: {name}: rules file, {len(ids)} rule(s) ({', '.join(ids)})"
                      + (f"; journeys: {', '.join(journeys)} (engine='reference' runs "
                         "journeys; the fast engine and specs not yet)" if journeys else ""))
                continue
            spec = spec_from_dict(data, path.parent)
            est = check_budget(spec)
        except SpecError as exc:
            if str(path) in str(exc):
                raise
            raise SpecError(f"{name}: {exc}") from exc
        print(f"ok: {name}: {spec.name!r}, {len(spec.arms)} arms "
              f"({', '.join(a.name for a in spec.arms)}), control {spec.control_arm!r}, "
              f"{spec.subscribers:,} subscribers x {spec.days:g} days x "
              f"{spec.replications} replication(s), primary metric {spec.primary}; "
              f"estimate ~{format_bytes(est.bytes)} memory, ~{format_seconds(est.seconds)} "
              "on one core")
    return 0
