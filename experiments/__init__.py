"""Experiment specs, the runner, statistics, off-policy evaluation, attribution,
plots, reports, load tests, benchmarks and the ``triggerlab`` command line.
"""
