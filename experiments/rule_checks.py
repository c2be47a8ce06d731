"""What an experiment's trigger rules can do in the simulator.

For production rules, whether a valid rule can fire depends on data: the subscriber
table may have extra columns, events may carry extra data. An experiment's data are the
simulator's, and they are known: its subscriber table has exactly the documented columns
(:data:`~policies.subscriber_schema.SUBSCRIBER_COLUMNS`), its events of each type carry
the columns of :data:`sim.SIMULATED_EVENT_COLUMNS`, and types missing there are never
emitted. So:

* :func:`sim_rule_problems` -- what can certainly never fire in a simulation: a ``when``
  event type the simulator never emits, a ``where`` column its events of that type never
  carry, a ``segment`` column its table lacks. The spec loader refuses them
  (:class:`~policies.errors.SpecError`); ``triggerlab validate`` of a rules file prints
  them as warnings (the file may be meant for production data).
* :func:`rule_warnings` -- what depends on the drawn population: a rule whose segment no
  subscriber of the simulated population passes at the start of replication 0 (the
  engine's :meth:`~policies.triggers.TriggerEngine.diagnostics`, run on that table).
  ``triggerlab validate`` and ``triggerlab run`` print them, and the report lists them
  under "Rule warnings" (only when there are any).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors.config import DEFAULT_START
from experiments.design import ExperimentSpec, arm_rules
from policies.checks import did_you_mean
from policies.subscriber_schema import SUBSCRIBER_COLUMNS, SubscriberColumn
from policies.triggers import Predicate, Rule, RuleSet, load_rules, segment_mask
from policies.triggers.diagnostics import SegmentWatch, diagnose
from policies.triggers.journeys import AttributeEntry, Inactivity, compile_journey
from sim import SIMULATED_EVENT_COLUMNS, Population, get_preset

__all__ = ["rule_warnings", "sim_rule_problems"]


def sim_rule_problems(rules: RuleSet, scores: Mapping[str, SubscriberColumn] | None = None
                      ) -> list[tuple[str, str]]:
    """``(path, reason)`` for each part of ``rules`` that no simulation can satisfy.

    Paths are those of a rules file (``rules[0].when[1].where.cart_value``). ``scores``:
    the score columns the run refreshes (``scoring``, docs/segments.md) and their domain;
    a segment may test them too (a ``min`` above or ``max`` below the domain never
    passes), and a score column of a registered scorer that ``scoring`` does not run is
    named as such.
    """
    scores = scores or {}
    out: list[tuple[str, str]] = []
    for i, rule in enumerate(rules.rules):
        for j, cond in enumerate(rule.when):
            path = f"rules[{i}].when[{j}]"
            carried = SIMULATED_EVENT_COLUMNS.get(cond.event)
            if carried is None:
                out.append((f"{path}.event", (
                    f"the simulator never emits {cond.event!r} events (it emits "
                    f"{', '.join(SIMULATED_EVENT_COLUMNS)}), so the rule cannot fire in a "
                    "simulation")))
                continue
            for p in cond.where:
                if p.column not in carried:
                    out.append((f"{path}.where.{p.column}", (
                        f"the simulator's {cond.event} events never carry {p.column!r} "
                        f"(they carry {', '.join(carried)}), so no event passes this test "
                        "in a simulation")))
        for path, p in _attribute_tests(i, rule):
            out.extend(_segment_problem(path, p, scores))
        entry = rule.journey.entry if rule.journey is not None else None
        if isinstance(entry, Inactivity) and entry.since_attribute is not None \
                and entry.since_attribute not in SUBSCRIBER_COLUMNS:
            out.append((f"rules[{i}].when[0].inactive.since_attribute", (
                f"{entry.since_attribute!r} is not a column of the simulated subscriber "
                f"table{did_you_mean(entry.since_attribute, list(SUBSCRIBER_COLUMNS))}, so "
                "every subscriber's inactivity clock would start when the run starts")))
        if rule.journey is not None:
            prog = compile_journey(rule)
            for label, policy in zip(prog.labels, prog.policy, strict=True):
                if policy is not None:
                    out.append((f"rules[{i}].{label}.split.policy", (
                        f"a split by policy ({policy!r}) runs in TriggerEngine and the "
                        "service (serve --split-policy), not in a simulation: give the split "
                        "ab weights, or let the spec's policy decide the journey's sends")))
    return list(dict.fromkeys(out))


def _attribute_tests(i: int, rule: Rule) -> list[tuple[str, Predicate]]:
    """Each test of rule ``i`` on subscriber attributes with its path: ``segment``, and a
    journey's branch cases and attribute entry."""
    out = [(f"rules[{i}].segment.{p.column}", p) for p in rule.segment]
    if rule.journey is None:
        return out
    prog = compile_journey(rule)
    for label, case in zip(prog.path_labels, prog.path_segment, strict=True):
        out.extend((f"rules[{i}].{label.rsplit('.', 1)[0]}.if.segment.{p.column}", p)
                   for p in case)
    if isinstance(rule.journey.entry, AttributeEntry):
        out.extend((f"rules[{i}].when[0].attribute.{p.column}", p)
                   for p in rule.journey.entry.segment)
    return out


def _segment_problem(path: str, p: Predicate, scores: Mapping[str, SubscriberColumn]
                     ) -> list[tuple[str, str]]:
    """Why the test ``p`` at ``path`` can never pass in a simulation (empty: it can)."""
    if p.column in scores:
        why = _score_problem(p.op, p.value, scores[p.column])
        return [] if why is None else [(f"{path}.{p.op}", why)]
    owner = _score_owner(p.column)
    if owner is not None:
        return [(path, (
            f"{p.column!r} is a score column of scorer {owner!r}, which "
            "scoring.scorers does not list (docs/segments.md), so the subscriber "
            "table never has it"))]
    if p.column not in SUBSCRIBER_COLUMNS:
        return [(path, (
            f"{p.column!r} is not a column of the simulated subscriber table"
            f"{did_you_mean(p.column, list(SUBSCRIBER_COLUMNS))} (its columns: "
            f"{', '.join(SUBSCRIBER_COLUMNS)}), so the rule cannot fire in a "
            "simulation"))]
    return []


def _score_owner(column: str) -> str | None:
    from experiments.models.scorers import SCORERS

    return next((n for n, e in SCORERS.items() if column in e.columns), None)


def _score_problem(op: str, value: Any, domain: SubscriberColumn) -> str | None:
    """Why a segment test on a score column never passes, or None."""
    if op == "min" and domain.high is not None and value > domain.high:
        return f"expected at most {domain.high:g} ({domain.domain()}), got {value!r}"
    if op == "max" and domain.low is not None and value < domain.low:
        return f"expected at least {domain.low:g} ({domain.domain()}), got {value!r}"
    return None


def rule_warnings(spec: ExperimentSpec) -> list[str]:
    """Why some rule of some arm of ``spec`` cannot fire on the simulated population
    drawn for replication 0 (at the run's start), one line per (rule, reason) naming the
    arms; empty when every rule can fire. Costs one population draw per distinct seed
    (one with common random numbers), about 1.2 s per million subscribers."""
    if spec.rules is None:
        return []
    preset = get_preset(spec.preset, **dict(spec.preset_overrides))
    tables: dict[int, Any] = {}
    found: dict[str, list[str]] = {}
    for a, arm in enumerate(spec.arms):
        data = arm_rules(spec.rules, arm)
        if not data or not data.get("rules"):
            continue
        ruleset = load_rules(data)
        if spec.scoring is not None:   # score columns exist from the first refresh on
            scored = set(spec.scoring.columns)
            kept = tuple(r for r in ruleset.rules
                         if not any(p.column in scored for p in r.segment))
            if not kept:
                continue
            ruleset = RuleSet(kept, ruleset.settings)
        if not any(r.segment for r in ruleset.rules):
            continue
        seed = spec.replication_seed(0, a)
        if seed not in tables:
            tables[seed] = Population.generate(spec.subscribers, seed=seed, preset=preset,
                                               time=DEFAULT_START).to_pandas()
        table = tables[seed]
        watch = SegmentWatch()
        watch.observe(ruleset, table)
        counts = [int(segment_mask(table, r.segment).sum()) for r in ruleset.rules]
        diag = diagnose(ruleset, watch, counts, len(table))
        for text in diag["warning"]:
            if text:
                found.setdefault(str(text), []).append(arm.name)
    n_arms = len(spec.arms)
    return [f"{text} (simulated population of replication 0; "
            f"{'every arm' if len(arms) == n_arms else 'arms ' + ', '.join(arms)})"
            for text, arms in found.items()]
