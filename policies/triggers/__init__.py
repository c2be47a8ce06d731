"""Behavioral trigger rules (YAML schema, validation) and the trigger engine.

* :func:`load_rules` / :func:`default_rules` -- rule sets from YAML or dicts
  (``reference_rules.yaml`` holds the three reference rules of docs/domain.md);
  :func:`dump_rules` writes them back;
* journeys (rules with ``steps``, docs/journeys.md): :class:`Journey` and its parts,
  :func:`compile_journey`; both engines run them (catalog events come in a
  :class:`CatalogBatch`); :func:`example_journeys` is the shipped set;
* :class:`TriggerEngine` -- decides fires, cancellations, expiries and suppressions
  from event batches, with a ``reference`` and a ``fast`` implementation;
* :class:`Decisions` -- the engine's columnar output.
"""

from policies.triggers.catalog import CatalogBatch
from policies.triggers.decisions import (
    ALL_KINDS,
    JOURNEY_KINDS,
    KINDS,
    Decisions,
    TriggerIdError,
    parse_journey_trigger_id,
    parse_trigger_id,
    trigger_id,
)
from policies.triggers.durations import format_duration, parse_clock, parse_duration
from policies.triggers.engine import ENGINES, STAT_NAMES, TriggerEngine
from policies.triggers.journeys import (
    AttributeEntry,
    Branch,
    BranchCase,
    CatalogEntry,
    Email,
    Exit,
    ExitCriterion,
    Goal,
    Inactivity,
    Journey,
    JourneyProgram,
    Send,
    Split,
    SplitPath,
    Wait,
    WaitUntil,
    compile_journey,
)
from policies.triggers.rules import default_rules, example_journeys, load_rules
from policies.triggers.rules_dump import dump_rules
from policies.triggers.ruleset import (
    CONTENT_KEYS,
    TRIGGER_TYPES,
    Condition,
    FrequencyCap,
    Predicate,
    QuietHours,
    Retry,
    Rule,
    RuleSet,
    Settings,
    segment_mask,
)

__all__ = [
    "ALL_KINDS",
    "CONTENT_KEYS",
    "ENGINES",
    "JOURNEY_KINDS",
    "KINDS",
    "STAT_NAMES",
    "TRIGGER_TYPES",
    "AttributeEntry",
    "Branch",
    "BranchCase",
    "CatalogBatch",
    "CatalogEntry",
    "Condition",
    "Decisions",
    "Email",
    "Exit",
    "ExitCriterion",
    "FrequencyCap",
    "Goal",
    "Inactivity",
    "Journey",
    "JourneyProgram",
    "Predicate",
    "QuietHours",
    "Retry",
    "Rule",
    "RuleSet",
    "Send",
    "Settings",
    "Split",
    "SplitPath",
    "TriggerEngine",
    "TriggerIdError",
    "Wait",
    "WaitUntil",
    "compile_journey",
    "default_rules",
    "dump_rules",
    "example_journeys",
    "format_duration",
    "load_rules",
    "parse_clock",
    "parse_duration",
    "parse_journey_trigger_id",
    "parse_trigger_id",
    "segment_mask",
    "trigger_id",
]
