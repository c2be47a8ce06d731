"""The ``triggerlab`` command line.

Each subcommand lives in ``experiments/commands/NAME.py`` with
``add_arguments(parser)`` and ``run(args) -> int``; they are imported lazily so that
``triggerlab --help`` stays fast. Bad input -- a ``ValueError`` (every input error of
:mod:`policies.errors` is one) or an ``OSError`` -- prints one line and exits with
status 2; ``--debug`` shows the traceback instead. Any other exception is a bug and
keeps its traceback: a ``KeyError``, and the runtime's ``InternalError``/``ShardError``
(``TriggerLabError`` subclasses that are not input errors). TriggerLab's warnings
(``TriggerLabWarning``: a rule that cannot fire on its data) print one line each,
``triggerlab COMMAND: warning: ...``, and do not change the exit status.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import warnings
from typing import Any

#: subcommand -> (module, one-line help)
#: Modules must keep heavy imports (numpy, ray, ...) inside ``run``.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("experiments.commands.run",
            "run an experiment spec and write its run folder (report, plots, tables)"),
    "validate": ("experiments.commands.validate",
                 "check experiment spec files; errors name the field path"),
    "demo": ("experiments.commands.demo",
             "small real comparison: cart reminder timing, Thompson sampling vs A/B"),
    "ope": ("experiments.commands.ope",
            "off-policy estimate of a new policy from a run's decision log, vs ground truth"),
    "report": ("experiments.commands.report",
               "re-render a run folder's report, summary and plots"),
    "calibrate": ("experiments.commands.calibrate",
                  "30-day run of the default population vs published benchmarks "
                  "(docs/calibration.md)"),
    "trigger-demo": ("experiments.commands.trigger_demo",
                     "trigger rules over a generated stream (no simulator): counts per rule"),
    "loadtest": ("experiments.commands.loadtest",
                 "load-test trigger rules on Ray engine shards: throughput, latency, memory"),
    "serve": ("experiments.commands.serve",
              "run rules and a policy as a service on a NATS/Kafka stream or a Parquet log"),
    "tune": ("experiments.commands.tune",
             "search the parameters of a spec's tune section on the simulator (Optuna)"),
}


class _PrintVersion(argparse.Action):
    """``--version``: print the installed version (read only when asked: keeps --help fast)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from policies._version import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def _show_warning(command: str, default: Any, message: Warning | str, category: type[Warning],
                  *args: Any, **kwargs: Any) -> None:
    """TriggerLab's warnings (a rule that cannot fire, ...) as one line on stderr, like
    errors; other warnings as Python shows them."""
    from policies.errors import TriggerLabWarning

    if issubclass(category, TriggerLabWarning):
        print(f"triggerlab {command}: warning: {message}", file=sys.stderr)
    else:
        default(message, category, *args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triggerlab",
        description="Simulate, compare and load-test behavioral email triggers and policies.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action=_PrintVersion)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
        importlib.import_module(module_name).add_arguments(p)
        p.set_defaults(_module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, args.command,
                                                     warnings.showwarning)
            return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("triggerlab: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"triggerlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
