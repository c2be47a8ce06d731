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
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.ab import keyed_unit, salt_key
from policies.triggers import Decisions
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(max_events=120, max_catalog=6), data=st.data())
def test_fast_engine_decides_journeys_as_the_reference(sc: dict[str, Any], data: Any) -> None:
    _compare(sc, data)


@pytest.mark.parametrize("entry", ["event", "inactive", "attribute", "catalog"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
