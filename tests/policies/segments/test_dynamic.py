"""Dynamic segments' pieces: scorer outputs, changed rows, the exact top-q selection."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.errors import TriggerLabValueError
from policies.segments.dynamic import (
    ClusterScorer,
    Cutoff,
    Scorer,
    changed_rows,
    in_top,
    n_top,
    score_frame,
    top_cutoff,
)
from policies.triggers import TriggerEngine, load_rules

IDX = pd.Index([3, 1, 2], name="subscriber")
FEATS = pd.DataFrame({"x": [0.5, 0.1, 0.9]}, index=IDX)


class _Fixed:
    def __init__(self, out):
        self.out = out

    def score(self, features):
        return self.out


@pytest.mark.parametrize(("q", "n", "k"), [
    (0.3, 10, 3), (0.3, 11, 4), (0.3, 9, 3), (1.0, 7, 7), (0.5, 1, 1), (0.01, 5, 1),
    (0.7, 10, 7), (0.1, 30, 3), (0.2, 0, 0), (1 / 3, 3, 1), (2 / 3, 3, 2),
])
def test_n_top_is_the_ceiling_of_q_n(q, n, k):
    assert n_top(q, n) == k


@pytest.mark.parametrize("q", [0, -0.1, 1.01, float("nan"), "0.3", None])
def test_n_top_rejects_q_outside_0_1(q):
    with pytest.raises(TriggerLabValueError, match=r"^q: expected"):
        n_top(q, 10)


@given(st.lists(st.integers(0, 5), min_size=0, max_size=60), st.floats(0.01, 1.0),
       st.integers(1, 4), st.randoms(use_true_random=False))
def test_top_cutoff_selects_exactly_ceil_q_n_whatever_the_split(values, q, parts, rnd):
    """Scores with many ties (and NaNs), split over any number of shards in any order:
    one cutoff, exactly ceil(q n) of the eligible subscribers in, the right ones."""
    n = len(values)
    ids = np.array(rnd.sample(range(1000), n), np.int64)
    sc = np.array([np.nan if v == 5 else float(v) for v in values])
    cuts = sorted(rnd.randint(0, n) for _ in range(parts - 1))
    chunks = [(ids[a:b], sc[a:b]) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    cut = top_cutoff(chunks[::-1], q)
    assert cut == top_cutoff([(ids, sc)], q)
    inside = in_top(ids, sc, cut)
    eligible = ~np.isnan(sc)
    k = math.ceil(round(q * eligible.sum(), 9))
    assert inside.sum() == cut.count == k
    assert not (inside & ~eligible).any()
    # everyone in ranks above everyone out (score, then the lower id)
    key = sorted(((-s, i) for s, i in zip(sc[eligible], ids[eligible], strict=True)))
    want = {i for _, i in key[:k]}
    assert set(ids[inside].tolist()) == want


def test_top_cutoff_of_nobody():
    cut = top_cutoff([(np.array([1, 2]), np.array([np.nan, np.nan]))], 0.5)
    assert cut == Cutoff(math.inf, -1, 0)
    assert not in_top(np.array([1, 2]), np.array([5.0, 3.0]), cut).any()


def test_score_frame_joins_frames_and_named_series_in_column_order():
    a = _Fixed(pd.DataFrame({"p_a": [0.1, 0.2, 0.3], "p_b": [1, 0, 1]}, index=IDX))
    b = _Fixed(pd.Series([2, 0, 1], index=IDX, name="cluster"))
    out = score_frame([a, b], FEATS, ("cluster", "p_a"))
    assert list(out.columns) == ["cluster", "p_a"]
    assert out.index.equals(IDX)
    assert out.dtypes.eq(np.float64).all()
    assert out["cluster"].tolist() == [2.0, 0.0, 1.0]
    assert isinstance(a, Scorer)


@pytest.mark.parametrize(("out", "columns", "match"), [
    (pd.Series([1.0, 2, 3], index=IDX), ("p",), r"scorers\[0\]: returned a Series without"),
    ([1, 2, 3], ("p",), r"scorers\[0\]: expected a DataFrame or named Series"),
    (pd.Series([1.0, 2, 3], index=[1, 2, 3], name="p"), ("p",),
     r"scorers\[0\]: returned rows other than the features'"),
    (pd.Series([1.0, 2, 3], index=IDX, name="p"), ("p", "uplift"),
     r"scorers: no scorer produced \['uplift'\]"),
])
def test_score_frame_bad_scorer_outputs(out, columns, match):
    with pytest.raises(TriggerLabValueError, match=match):
        score_frame([_Fixed(out)], FEATS, columns)


def test_score_frame_column_produced_twice():
    s = _Fixed(pd.Series([1.0, 2, 3], index=IDX, name="p"))
    with pytest.raises(TriggerLabValueError, match=r"columns \['p'\] produced twice"):
        score_frame([s, s], FEATS, ("p",))


def test_changed_rows_is_any_rule_outcome_moving():
    old = [np.array([1, 0, 0, 1], bool), np.array([0, 0, 1, 1], bool)]
    new = [np.array([1, 1, 0, 1], bool), np.array([0, 0, 1, 0], bool)]
    assert changed_rows(old, new).tolist() == [False, True, False, True]
    assert changed_rows(old, old).sum() == 0
    with pytest.raises(TriggerLabValueError, match="expected 2 rules, got 1"):
        changed_rows(old, new[:1])


def test_cluster_scorer_gives_a_float_cluster_column():
    class _Clusters:
        def predict(self, f):
            return pd.Series(np.arange(len(f)) % 2, index=f.index, name="cluster")

    out = ClusterScorer(_Clusters()).score(FEATS)
    assert out.name == "cluster" and out.tolist() == [0.0, 1.0, 0.0]
    assert len(ClusterScorer(_Clusters()).score(FEATS.iloc[:0])) == 0


RULES = {"rules": [{
    "id": "by_cluster", "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "1h", "count": 1}],
    "delay": "1h", "expire": "1d", "priority": 5, "reentry": "always",
    "segment": {"cluster": {"in": [2, 5]}, "p_churn": {"min": 0.7}},
}]}


def _fires(engine: str) -> list[int]:
    from policies.event_schema import EVENT_TYPES
    from policies.events import EventBatch

    ids = np.arange(6, dtype=np.int64)
    table = pd.DataFrame({"cluster": [2.0, 5.0, 1.0, np.nan, 2.0, 5.0],
                          "p_churn": [0.8, 0.9, 0.95, 0.9, 0.2, np.nan],
                          "utc_offset_minutes": 0}, index=pd.Index(ids, name="subscriber"))
    eng = TriggerEngine(load_rules(RULES), subscribers=table, engine=engine)
    t0 = 1_767_571_200
    # a refresh writes the changed rows: 0 leaves the clusters, 4 becomes churn-risky
    eng.update_subscribers(pd.DataFrame({"cluster": [7.0, 2.0], "p_churn": [0.8, 0.75],
                                         "utc_offset_minutes": 0},
                                        index=pd.Index([0, 4], name="subscriber")), at=t0)
    ev = EventBatch(ids, np.full(6, t0 + 10), np.full(6, EVENT_TYPES.code("add_to_cart")))
    dec = eng.process(ev, until=t0 + 86400)
    return sorted(dec.subscriber[dec.kind == 0].tolist())


def test_rules_read_score_and_cluster_columns_as_attributes():
    """A float cluster column (as refreshes write it) passes ``in: [2, 5]``, NaN (before
    the first refresh) passes nothing, an update of changed rows moves subscribers in
    and out; the reference and the fast engine agree."""
    assert _fires("reference") == _fires("fast") == [1, 4]
