"""Subcommands of the ``triggerlab`` command line, one module each."""
