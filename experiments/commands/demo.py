"""``triggerlab demo`` until the simulation demo lands: the reference trigger rules over a
generated week (same as ``triggerlab trigger-demo``)."""

from experiments.commands.trigger_demo import add_arguments, run

__all__ = ["add_arguments", "run"]
