"""Built-in experiment specs (YAML), run with ``triggerlab run experiments/specs/NAME.yaml``."""
