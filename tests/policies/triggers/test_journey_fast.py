"""The fast engine runs journeys with the reference's decisions (docs/journeys.md,
"Semantics: the engine contract"): hypothesis draws rule sets with journeys (every entry
and step kind, nested branches, A/B and policy splits, exits with and without a matched
key, smart sending, cap, quiet hours), streams with catalog events, attribute updates and
failure reports; both engines, whole and cut with checkpoints, must give the same rows
(ids, kinds, times, step, path, propensity, attempts), counters and pending counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import EventBatch
from policies.ab import keyed_unit, salt_key
from policies.triggers import Decisions, TriggerEngine, load_rules
from policies.triggers._fast_journeys import keyed_unit_fast
from tests.policies.triggers.test_journey_cuts import SPAN, _run, scenarios
from tests.policies.triggers.trigger_helpers import T0


def _same(a: Decisions, b: Decisions) -> None:
    assert a.equals(b), (a.to_pandas().to_string(), b.to_pandas().to_string())
    assert np.array_equal(a.propensity, b.propensity)


def _compare(sc: dict[str, Any], data: Any) -> None:
    ref, ref_stats, ref_pending = _run(sc, [], set(), "reference")
    fast, fast_stats, fast_pending = _run(sc, [], set(), "fast")
    _same(ref, fast)
    assert fast_stats.equals(ref_stats) and fast_pending == ref_pending
    cuts = data.draw(st.lists(st.tuples(st.integers(0, SPAN).map(lambda x: T0 + x - x % 300),
                                        st.booleans()), max_size=6))
    checkpoints = set(data.draw(st.lists(st.integers(0, 8), max_size=3)))
    cut, cut_stats, cut_pending = _run(sc, cuts, checkpoints, "fast")
    _same(ref, cut)
    assert cut_stats.equals(ref_stats) and cut_pending == ref_pending


# 100 examples here and 40 per entry kind below (was 300 and 100: 140 s of the suite's
# budget); the entry-kind tests draw only scenarios of their kind, so the kinds are not
# left to chance, and test_journey_cuts.py runs the same comparison on its own draws
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(max_events=120, max_catalog=6), data=st.data())
def test_fast_engine_decides_journeys_as_the_reference(sc: dict[str, Any], data: Any) -> None:
    _compare(sc, data)


@pytest.mark.parametrize("entry", ["event", "inactive", "attribute", "catalog"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_engine_decides_each_entry_kind_as_the_reference(entry: str, data: Any) -> None:
    sc = data.draw(scenarios(max_events=120, max_catalog=8, entry_kinds=(entry,)))
    _compare(sc, data)


@pytest.mark.parametrize("sub", [0, 1, 7, -3, 2**62, -(2**63)])
@pytest.mark.parametrize("counter", [0, 1_700_000_000, 4_102_444_799, -1])
def test_the_compiled_split_unit_is_keyed_unit(sub: int, counter: int) -> None:
    for salt in ("j:0", "cart_series:12", ""):
        assert keyed_unit_fast(np.int64(sub), np.uint64(salt_key(salt)),
                               np.int64(counter)) == keyed_unit(sub, salt, counter)


def _long_journey() -> dict[str, Any]:
    """64 nodes: sends, waits and nested branches / wait-untils to depth 8."""
    steps: list[Any] = [{"send": "a"}]
    inner: list[Any] = [{"send": "b"}]
    for _ in range(7):  # 7 nested wait-untils: depth 8
        inner = [{"wait_until": {"events": ["email_open"], "within": "1h",
                                 "happened": inner, "timed_out": [{"send": "a"}]}}]
    steps += inner
    steps += [{"wait": "30m"}, {"send": "b", "smart_sending": "1h"}] * 24  # 16 + 48 nodes
    return {"rules": [{"id": "long", "type": "cart_abandonment",
                       "when": [{"event": "add_to_cart", "within": "1h"}],
                       "emails": {"a": {}, "b": {}}, "steps": steps}],
            "settings": {"frequency_cap": {"max": 3, "per": "1d"}}}


@pytest.mark.parametrize(("name", "subs", "t0", "rules"), [
    ("huge and negative subscriber ids", (2**62, -(2**40), 0), T0, _long_journey()),
    ("events at the end of the time range (waits beyond it never end)",
     (1, 2, 3), 4_102_444_800 - 3 * 3600, _long_journey()),
    ("A/B split on huge ids", (2**62, -(2**40), 5),
     T0, {"rules": [{"id": "ab", "type": "cart_abandonment",
                     "when": [{"event": "add_to_cart", "within": "1h"}],
                     "emails": {"a": {}, "b": {}},
                     "steps": [{"split": {"ab": {"x": 0.3, "y": 0.7},
                                          "paths": {"x": [{"send": "a"}],
                                                    "y": [{"send": "b"}]}}}]}]}),
])
def test_fast_engine_matches_the_reference_at_extremes(name: str, subs: tuple[int, ...], t0: int,
                                                       rules: dict[str, Any]) -> None:
    table = pd.DataFrame({"lifecycle_stage": ["prospect"] * len(subs)},
                         index=pd.Index(np.array(subs, np.int64), name="subscriber"))
    rng = np.random.default_rng(3)
    records = [{"subscriber": int(rng.choice(subs)), "time": t0 + int(k) * 60,
                "type": str(rng.choice(["add_to_cart", "email_open", "page_view"]))}
               for k in sorted(rng.integers(0, 150, 60))]
    events = EventBatch.from_records(records)
    until = min(t0 + 2 * 86400, 4_102_444_799)
    out = {}
    for engine in ("reference", "fast"):
        e = TriggerEngine(load_rules(rules), subscribers=table, engine=engine)
        out[engine] = (e.process(events, until=until), e.stats())
    _same(out["reference"][0], out["fast"][0])
    assert out["fast"][1].equals(out["reference"][1])
    assert len(out["fast"][0]) > 0
