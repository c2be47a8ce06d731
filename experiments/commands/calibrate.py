"""``triggerlab calibrate``: simulate the default population and compare with docs/calibration.md.

Two runs: the reference trigger rules with a weekly newsletter, then (unless
``--no-flows``) the shipped journeys (:mod:`experiments.flow_calibration`). Prints one row
per published range: the simulated rate, the published figure, the
range a default run must land in, a check mark and the row's source. Exits with
status 1 if any row is outside its range.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # numbers stay text here and are parsed in run(): a bad value is one error line
    parser.add_argument("--subscribers", default="30000",
                        help="population size (default 30000; 1 to 10 M)")
    parser.add_argument("--days", default="30",
                        help="simulated days (default 30; 8 to 365: carts are followed "
                             "for 7 days)")
    parser.add_argument("--seed", default="2024", help="random seed (default 2024)")
    parser.add_argument("--preset", default="retail", help="population preset (default retail)")
    parser.add_argument("--engine", default="fast", choices=("fast", "reference"),
                        help="trigger engine of the reference rules' run (default fast; the "
                             "journeys' run uses the fast engine)")
    parser.add_argument("--no-flows", action="store_true",
                        help="skip the flow rows (a second run of the shipped journeys: "
                             "cart series, win-back, price-drop alert)")


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def format_table(table: pd.DataFrame, color: bool = False) -> str:
    """Render the calibration table as aligned text with ✔/✘ marks (ANSI colors optional)."""
    rows = [("metric", "simulated", "published", "range", "", "source")]
    for r in table.itertuples():
        rows.append((r.metric, "no data" if r.simulated != r.simulated else _pct(r.simulated),
                     r.published,
                     f"{_pct(r.low)} - {_pct(r.high)}", "✔" if r.ok else "✘", r.source))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    green, red, reset = ("\033[32m", "\033[31m", "\033[0m") if color else ("", "", "")
    lines = []
    for k, row in enumerate(rows):
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        line = "  ".join(cells).rstrip()
        if k and row[4] == "✔":
            line = green + line + reset
        elif k:
            line = red + line + reset
        lines.append(line)
    return "\n".join(lines)


def _int(text: str, name: str) -> int:
    from policies.errors import SpecError

    try:
        return int(str(text).strip())
    except ValueError:
        raise SpecError(f"{name}: expected an integer, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    import sys

    from experiments.calibration import calibration_table, check_calibration, run_calibration

    subscribers, days = _int(args.subscribers, "subscribers"), _int(args.days, "days")
    seed = _int(args.seed, "seed")
    check_calibration(subscribers, days)  # up front: a short run only measures NaN
    out = sys.stdout
    result = run_calibration(subscribers, seed=seed, days=days, preset=args.preset,
                             engine=args.engine)
    if not args.no_flows:
        from experiments.flow_calibration import run_flows

        out.write("calibration: the reference rules' run done; now the shipped journeys' "
                  "run (--no-flows skips it)\n")
        out.flush()
        result.flows = run_flows(subscribers, seed=seed, days=days, preset=args.preset)
    table = calibration_table(result)
    out.write(f"calibration: {subscribers:,} subscribers, {days} days, preset "
              f"{args.preset!r}, weekly campaign + reference trigger rules"
              + ("" if args.no_flows else "; flow rows: weekly campaign + the shipped "
                 "journeys (example_journeys.yaml)") + f", seed {seed}\n")
    out.write(format_table(table, color=out.isatty()) + "\n")
    for r in table.itertuples():
        if r.no_data:
            out.write(f"no data: {r.metric}: {r.no_data}\n")
    n_ok = int(table.ok.sum())
    n_none = int((table.no_data != "").sum())
    out.write(f"{n_ok}/{len(table)} rows inside the published ranges"
              + (f" ({n_none} without data)" if n_none else "") + "\n")
    sys.stdout.flush()
    return 0 if n_ok == len(table) else 1
