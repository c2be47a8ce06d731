"""Both engines' journey decisions do not depend on how the input is cut into ``process``
calls nor on checkpoint/restore points (docs/journeys.md, contract); with failure
reports at fixed times, and the two engines decide identically
(``test_journey_fast.py`` compares them).

Hypothesis draws rule sets with journeys (``journey_strategies.rule_sets``: every entry
kind and step kind, policy splits, smart sending, cap, quiet hours), a stream of
subscriber events, catalog events and attribute updates, then runs it once cut only at
the updates and once cut at random extra points (with or without ``until``) and
restored from a pickled checkpoint at random points; the decisions, stats and pending
counts must be identical.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import EventBatch
from policies.bandits import EpsilonGreedy
from policies.triggers import CatalogBatch, Decisions, TriggerEngine, TriggerIdError, load_rules
from tests.policies.triggers.journey_strategies import rule_sets
from tests.policies.triggers.trigger_helpers import DAY, T0

SPAN = 12 * DAY
END = T0 + SPAN + 40 * DAY
SUBS = (1, 2, 3, 4)
#: (type, data columns drawn) of subscriber events.
EVENT_KINDS = (
    ("add_to_cart", ("cart_value", "product_id")),
    ("product_view", ("time_on_page", "product_id", "category")),
    ("purchase_completed", ("product_id", "revenue")),
    ("email_open", ()),
    ("email_click", ("link_type", "category")),
    ("page_view", ()),
    ("cart_cleared", ()),
    ("unsubscribe", ()),
    ("checkout_started", ()),
    ("price_check", ("price",)),
)
VALUES: dict[str, list[Any]] = {
    "cart_value": [10.0, 30.0, 120.0, None], "product_id": [1, 2, 3, 7],
    "time_on_page": [5.0, 40.0], "category": [1, 2, 7], "revenue": [5.0, 50.0],
    "link_type": ["product", "cart"], "price": [0.5, 30.0],
}


def _policy_names(node: Any) -> Any:
    """Name each policy split's policy after its number of paths (policy_2, policy_3)."""
    if isinstance(node, dict):
        out = {k: _policy_names(v) for k, v in node.items()}
        if "policy" in out and "paths" in out:
            out["policy"] = f"policy_{len(out['paths'])}"
        return out
    if isinstance(node, list):
        return [_policy_names(v) for v in node]
    return node


def _policies() -> dict[str, EpsilonGreedy]:
    p2 = EpsilonGreedy(arm_names=("a", "b"), epsilon=0.3)
    p2.update(["a", "b", "b"], [0.0, 1.0, 1.0])
    return {"policy_2": p2, "policy_3": EpsilonGreedy(arm_names=("a", "b", "c"), epsilon=0.5)}


def _table(stages: list[str], sensitivity: list[float], engaged: list[float],
           offsets: list[int]) -> pd.DataFrame:
    df = pd.DataFrame({
        "lifecycle_stage": stages, "price_sensitivity": sensitivity,
        "engagement_score": [0.2, 0.4, 0.6, 0.35], "educational_seeker": [True, False] * 2,
        "days_since_engagement": [3.0, 20.0, 10.0, 1.0], "last_engaged_at": engaged,
        "utc_offset_minutes": offsets,
    }, index=pd.Index(np.array(SUBS, np.int64), name="subscriber"))
    return df


@st.composite
def scenarios(draw: Any, max_events: int = 40, max_catalog: int = 3,
              **rule_kwargs: Any) -> dict[str, Any]:
    """A rule set with journeys (``rule_kwargs`` go to ``rule_sets``), a subscriber table,
    up to ``max_events`` events, ``max_catalog`` catalog events, attribute updates and
    failure reports."""
    rules = _policy_names(draw(rule_sets(max_journeys=3, **rule_kwargs)))
    stage = st.sampled_from(["prospect", "customer", "new_customer", "lapsed"])
    engaged = st.sampled_from([float("nan"), float(T0 - 5 * DAY), float(T0 + DAY)])
    subs = _table(draw(st.lists(stage, min_size=4, max_size=4)),
                  draw(st.lists(st.sampled_from([0.2, 0.7]), min_size=4, max_size=4)),
                  draw(st.lists(engaged, min_size=4, max_size=4)),
                  draw(st.lists(st.sampled_from([0, -300, 330]), min_size=4, max_size=4)))
    n = draw(st.integers(0, max_events))
    times = sorted(draw(st.lists(st.integers(0, SPAN).map(lambda x: x - x % 600),
                                 min_size=n, max_size=n)))
    records = []
    for t in times:
        etype, cols = draw(st.sampled_from(EVENT_KINDS))
        rec: dict[str, Any] = {"subscriber": draw(st.sampled_from(SUBS)), "time": T0 + t,
                               "type": etype}
        for c in cols:
            if draw(st.integers(0, 3)) > (0 if c == "product_id" else 1):  # ids mostly given
                rec[c] = draw(st.sampled_from(VALUES[c]))
        records.append(rec)
    catalog = [{"time": T0 + draw(st.integers(0, SPAN)) // 600 * 600,
                "type": draw(st.sampled_from(["price_drop", "back_in_stock"])),
                "product_id": draw(st.sampled_from([1, 2, 3])),
                "old_price": 100.0, "new_price": draw(st.sampled_from([50.0, 95.0]))}
               for _ in range(draw(st.integers(0, max_catalog)))]
    failures = [(T0 + t * 600, draw(st.sets(st.sampled_from(SUBS), min_size=1)))
                for t in sorted(draw(st.lists(st.integers(1, (SPAN + 5 * DAY) // 600),
                                              max_size=3, unique=True)))]
    updates = []
    for t in sorted(draw(st.lists(st.integers(1, SPAN // 600), max_size=2, unique=True))):
        new = subs.copy()
        new["lifecycle_stage"] = draw(st.lists(stage, min_size=4, max_size=4))
        new["price_sensitivity"] = draw(st.lists(st.sampled_from([0.2, 0.7]), min_size=4,
                                                 max_size=4))
        updates.append((T0 + t * 600, new))
    return {"rules": rules, "subs": subs, "records": records, "catalog": catalog,
            "updates": updates, "failures": failures}


def _report(engine: TriggerEngine, parts: list[Decisions], subs: set[int], since: int,
            now: int) -> None:
    """Report failed the latest send of each (rule, subscriber in ``subs``) fired in
    ``(since, now]``, one id at a time (an id that is no longer its rule's latest send
    is refused by both engines alike, changing nothing). Everything due by ``now`` is
    decided first, so what is reported does not depend on the cuts."""
    parts.append(engine.process(EventBatch.empty(), until=now))
    d = Decisions.concat(parts).sorted()
    df = d.to_pandas()
    fires = df[(df["kind"] == "fire") & (df["time"] > since) & (df["time"] <= now)
               & df["subscriber"].isin(sorted(subs))]
    for tid in sorted(set(fires["trigger_id"])):
        try:
            parts.append(engine.report_failures([tid], now=now))
        except TriggerIdError:
            pass


def _run(sc: dict[str, Any], cuts: list[tuple[int, bool]], checkpoints: set[int],
         engine_name: str = "reference") -> tuple[Decisions, pd.DataFrame, int]:
    """Run the scenario cut at the updates, the failure reports and at ``cuts`` ((time,
    with until)), restoring from a pickled checkpoint before the chunks whose index is in
    ``checkpoints``."""
    engine = TriggerEngine(load_rules(sc["rules"]), subscribers=sc["subs"],
                           engine=engine_name, policies=_policies(), seed=7)
    events = EventBatch.from_records(sc["records"]) if sc["records"] else EventBatch.empty()
    catalog = CatalogBatch.from_records(sc["catalog"])
    failures = sc.get("failures", [])
    bounds = sorted({(t, False) for t, _ in sc["updates"]} | {(t, False) for t, _ in failures}
                    | set(cuts) | {(END, True)}, key=lambda b: (b[0], not b[1]))
    update_at = dict(sc["updates"])
    fail_at = dict(failures)
    since = 0
    parts: list[Decisions] = []
    lo = None
    for i, (hi, with_until) in enumerate(bounds):
        if i in checkpoints:
            engine = TriggerEngine.from_state_dict(pickle.loads(pickle.dumps(engine.state_dict())))
        keep = events.time <= hi if lo is None else (events.time > lo) & (events.time <= hi)
        ckeep = catalog.time <= hi if lo is None else (catalog.time > lo) & (catalog.time <= hi)
        until = hi if with_until or ckeep.any() else None
        parts.append(engine.process(events[keep], until=until, catalog=catalog[ckeep]))
        if hi in update_at:
            parts.append(engine.update_subscribers(update_at.pop(hi), at=hi))
        if hi in fail_at:
            _report(engine, parts, fail_at.pop(hi), since, hi)
            since = hi
        lo = hi
    return Decisions.concat(parts).sorted(), engine.stats(), engine.n_pending()


def assert_fast_matches_reference_with_cuts(sc: dict[str, Any], data: Any) -> None:
    """The fast engine, cut at up to five 10-minute boundaries (some with a checkpoint
    round trip), decides scenario ``sc`` exactly as the uncut reference engine."""
    ref, ref_stats, _ = _run(sc, [], set(), "reference")
    cuts = data.draw(st.lists(st.tuples(st.integers(0, SPAN // 600).map(
        lambda x: T0 + 600 * x), st.booleans()), max_size=5))
    checkpoints = set(data.draw(st.lists(st.integers(0, 6), max_size=2)))
    fast, fast_stats, _ = _run(sc, cuts, checkpoints, "fast")
    assert fast.equals(ref), (ref.to_pandas().to_string(), fast.to_pandas().to_string())
    assert fast_stats.equals(ref_stats)


@pytest.mark.parametrize("engine_name", ["reference", "fast"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(), data=st.data())
def test_journey_decisions_do_not_depend_on_cuts_or_checkpoints(engine_name: str,
                                                               sc: dict[str, Any],
                                                               data: Any) -> None:
    whole, stats, pending = _run(sc, [], set(), engine_name)
    cuts = data.draw(st.lists(st.tuples(st.integers(0, SPAN).map(lambda x: T0 + x - x % 300),
                                        st.booleans()), max_size=6))
    checkpoints = set(data.draw(st.lists(st.integers(0, 8), max_size=3)))
    cut, cut_stats, cut_pending = _run(sc, cuts, checkpoints, engine_name)
    assert cut.equals(whole), (whole.to_pandas().to_string(), cut.to_pandas().to_string())
    assert cut_stats.equals(stats) and cut_pending == pending


def test_the_generated_scenarios_exercise_every_decision_kind() -> None:
    """The cut test above is only as good as what its scenarios decide: over a fixed
    sample of them, every kind of decision occurs."""
    seen: set[str] = set()

    # derandomized: the same 120 scenarios every run; the last kind first occurs at the
    # 60th (suppress; split at the 36th, skip at the 49th), so 120 keeps a factor 2
    @settings(max_examples=120, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(sc=scenarios())
    def collect(sc: dict[str, Any]) -> None:
        d, _, _ = _run(sc, [], set())
        seen.update(d.to_pandas()["kind"].tolist())

    collect()
    assert seen >= {"fire", "expire", "suppress", "exit", "skip", "branch", "split"}, seen
