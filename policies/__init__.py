"""TriggerLab's production core: events, trigger rules and engine, policies.

Nothing here imports Ray, the simulator or the experiment layer, reads the wall clock
or does I/O beyond reading a rules file it is handed: this package is what ships to
production, and the same code runs under simulated time.
"""

from policies.errors import (
    InvalidEventError,
    LateEventError,
    PolicyError,
    RuleError,
    SpecError,
    TriggerLabError,
)
from policies.events import (
    EVENT_TYPES,
    EventBatch,
    EventTypeRegistry,
    register_categories,
    register_event_type,
)

__all__ = [
    "EVENT_TYPES",
    "EventBatch",
    "EventTypeRegistry",
    "InvalidEventError",
    "LateEventError",
    "PolicyError",
    "RuleError",
    "SpecError",
    "TriggerLabError",
    "register_categories",
    "register_event_type",
]
