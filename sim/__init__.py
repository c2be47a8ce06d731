"""The simulated world (pure numpy, no Ray): clock, subscriber population, organic
behavior and the email-response model with known ground truth.

Drive one shard tick by tick with :class:`World` (see :mod:`sim.world`)::

    from sim import EmailBatch, Population, SimClock, World

    world = World(Population.generate(10_000, seed=7), seed=7)
    clock = SimClock(start=world.now, step=900)
    world.send(EmailBatch.make([1, 2], clock.now, kind="campaign", subject_style="question"))
    t0, t1 = clock.advance()
    events = world.step(t0, t1)
    catalog = world.catalog_events(t0, t1)   # price drops, back in stock (all shards alike)
"""

from policies._version import __version__ as __version__
from sim._events import SIMULATED_EVENT_COLUMNS
from sim.behavior import SessionSchedule, daily_update, realize_sessions, schedule_day
from sim.catalog import Catalog
from sim.clock import DAY, HOUR, MINUTE, SimClock
from sim.population import DEFAULT_START_TIME, NEVER, Population
from sim.presets import (
    CALLS_TO_ACTION,
    CONTENT_STRATEGIES,
    EMAIL_KINDS,
    LIFECYCLE_STAGES,
    PRESETS,
    SEGMENTS,
    SUBJECT_STYLES,
    Preset,
    get_preset,
    parameter_table,
)
from sim.response import EmailBatch, probabilities, sample
from sim.rng import PURPOSES, KeyedRandom, philox4x32, philox4x32_reference
from sim.truth import OUTLOOK_COLUMNS, outlook
from sim.world import World

__all__ = [
    "CALLS_TO_ACTION",
    "CONTENT_STRATEGIES",
    "DAY",
    "DEFAULT_START_TIME",
    "EMAIL_KINDS",
    "HOUR",
    "LIFECYCLE_STAGES",
    "MINUTE",
    "NEVER",
    "OUTLOOK_COLUMNS",
    "PRESETS",
    "PURPOSES",
    "SEGMENTS",
    "SIMULATED_EVENT_COLUMNS",
    "SUBJECT_STYLES",
    "Catalog",
    "EmailBatch",
    "KeyedRandom",
    "Population",
    "Preset",
    "SessionSchedule",
    "SimClock",
    "World",
    "daily_update",
    "get_preset",
    "outlook",
    "parameter_table",
    "philox4x32",
    "philox4x32_reference",
    "probabilities",
    "realize_sessions",
    "sample",
    "schedule_day",
]
