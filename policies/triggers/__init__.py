"""Behavioral trigger rules (YAML schema, validation) and the trigger engine.

Will hold ``rules.py`` (``load_rules``, ``default_rules``), ``engine.py``
(``TriggerEngine`` with a reference and a fast implementation) and
``reference_rules.yaml`` (the three reference rules of DOMAIN.md).
"""
