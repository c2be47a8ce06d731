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

Rules that are valid but cannot fire on some data get one ``warning`` line each on
standard error (:mod:`experiments.rule_checks`), and the exit status stays 0: for a spec,
a rule whose segment no subscriber of the simulated population passes; for a rules file,
what a simulation could never satisfy (an event type it never emits, an event column it
never fills, a segment column its subscriber table lacks) -- certain for a spec, where
those are errors, but a production table or stream may have them.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="FILE",
                        help="experiment spec or trigger rules files (YAML)")
    parser.add_argument("--diagrams", metavar="DIR", default=None,
                        help="also draw each journey of the files as DIR/journey_<rule>.png")


def _is_rules_file(data: object) -> bool:
    return (isinstance(data, dict) and "arms" not in data
            and isinstance(data.get("rules"), list))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"



def _diagrams(out: str | None, rules: object) -> None:
    """Draw the journeys of ``rules`` into ``out`` (when given) and say where."""
    if out is None:
        return
    from pathlib import Path

    from experiments.journey_diagram import write_journey_diagrams

    for path in write_journey_diagrams(rules, Path(out)):  # type: ignore[arg-type]
        print(f"  wrote {path}")


def _warn(name: str, lines: list[str]) -> str:
    for line in lines:
        print(f"triggerlab validate: warning: {name}: {line}", file=sys.stderr)
    return f"; {len(lines)} warning(s)" if lines else ""


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from experiments.budget import check_budget, format_bytes, format_seconds
    from experiments.rule_checks import rule_warnings, sim_rule_problems
    from experiments.spec import read_yaml, spec_from_dict
    from policies.errors import RuleError, SpecError
    from policies.triggers import compile_journey, load_rules

    if args.diagrams is not None and Path(args.diagrams).exists() \
            and not Path(args.diagrams).is_dir():
        raise OSError(f"--diagrams: {args.diagrams} exists and is not a directory")
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
                notes = _warn(name, [f"{where}: {reason} (a production table or stream may "
                                     "have it)" for where, reason in sim_rule_problems(rules)])
                print(f"ok: {name}: rules file, {len(ids)} rule(s) ({', '.join(ids)})"
                      + (f"; journeys: {', '.join(journeys)}" if journeys else "")
                      + notes)
                _diagrams(args.diagrams, rules)
                continue
            spec = spec_from_dict(data, path.parent)
            est = check_budget(spec)
            if spec.rules is not None:
                _diagrams(args.diagrams, load_rules(spec.rules))
        except SpecError as exc:
            if str(path) in str(exc):
                raise
            raise SpecError(f"{name}: {exc}") from exc
        notes = _warn(name, rule_warnings(spec))
        print(f"ok: {name}: {spec.name!r}, {len(spec.arms)} arms "
              f"({', '.join(a.name for a in spec.arms)}), control {spec.control_arm!r}, "
              f"{spec.subscribers:,} subscribers x {spec.days:g} days x "
              f"{spec.replications} replication(s), primary metric {spec.primary}; "
              f"estimate ~{format_bytes(est.bytes)} memory, ~{format_seconds(est.seconds)} "
              f"on one core{notes}")
    return 0
