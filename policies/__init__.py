"""TriggerLab's production core: events, trigger rules and engine, policies.

Nothing here imports Ray, the simulator or the experiment layer, reads the wall clock
or does I/O beyond reading a rules file it is handed: this package is what ships to
production, and the same code runs under simulated time.
"""

from policies._version import __version__ as __version__
from policies.ab import ABTest
from policies.base import CALLS_TO_ACTION, CONTENT_STRATEGIES, SUBJECT_STYLES, Policy
from policies.errors import (
    InvalidEventError,
    LateEventError,
    PolicyError,
    RuleError,
    RuleWarning,
    SpecError,
    TriggerLabError,
    TriggerLabWarning,
)
from policies.event_schema import (
    EVENT_TYPES,
    EventTypeRegistry,
    register_categories,
    register_event_column,
    register_event_type,
)
from policies.events import EventBatch
from policies.features import FEATURE_NAMES, subscriber_features
from policies.testing import check_policy

__all__ = [
    "CALLS_TO_ACTION",
    "CONTENT_STRATEGIES",
    "EVENT_TYPES",
    "FEATURE_NAMES",
    "SUBJECT_STYLES",
    "ABTest",
    "EventBatch",
    "EventTypeRegistry",
    "InvalidEventError",
    "LateEventError",
    "Policy",
    "PolicyError",
    "RuleError",
    "RuleWarning",
    "SpecError",
    "TriggerLabError",
    "TriggerLabWarning",
    "check_policy",
    "register_categories",
    "register_event_column",
    "register_event_type",
    "subscriber_features",
]
