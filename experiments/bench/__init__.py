"""Benchmarks: ``python -m experiments.bench NAME [options] [--json]``.

Each benchmark is a module ``experiments/bench/NAME.py`` with ``main(argv) -> int``.
Figures are printed as a table; with ``--json`` the last line printed is one JSON
object whose keys are snake_case figures with units (``events_per_s``, ``wall_s``).
``--record`` appends the figures and the command that produced them to BENCHMARKS.md.
"""
