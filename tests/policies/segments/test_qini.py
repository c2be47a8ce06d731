"""Qini and uplift curves, Qini area and uplift by decile: equal to a plain-Python loop
over the sorted rows (hypothesis), independent of the order of tied rows, right on
hand-computed cases, and strict about inputs."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.errors import TriggerLabValueError
from policies.segments import qini_area, qini_curve, uplift_by_decile


def reference_curve(score: list[float], treated: list[bool], outcome: list[float]
                    ) -> list[tuple[int, float, float]]:
    """(k, qini, uplift) at k = 0 and at the end of each run of equal scores, walking the
    rows from the highest score down one at a time."""
    rows = sorted(zip(score, treated, outcome, strict=True), key=lambda r: -r[0])
    points = [(0, 0.0, 0.0)]
    nt = nc = 0
    yt = yc = 0.0
    for i, (s, t, y) in enumerate(rows):
        if t:
            nt += 1
            yt += y
        else:
            nc += 1
            yc += y
        if i + 1 < len(rows) and rows[i + 1][0] == s:
            continue                                   # a tie continues: no point yet
        qini = yt - (yc * nt / nc if nc else 0.0)
        mean_t = yt / nt if nt else 0.0
        mean_c = yc / nc if nc else 0.0
        points.append((i + 1, qini, (mean_t - mean_c) * (i + 1)))
    return points


def reference_area(points: list[tuple[int, float, float]]) -> float:
    n = points[-1][0]
    end = points[-1][1] / n
    area = 0.0
    for (k0, q0, _), (k1, q1, _) in itertools.pairwise(points):
        x0, x1 = k0 / n, k1 / n
        area += ((q0 / n - x0 * end) + (q1 / n - x1 * end)) / 2 * (x1 - x0)
    return area


rows_strategy = st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 5).map(float), min_size=n, max_size=n),    # many ties
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.floats(-5, 20, allow_nan=False).map(lambda v: round(v, 3)), min_size=n,
             max_size=n)))


@settings(max_examples=80, deadline=None)
@given(rows_strategy)
def test_curve_and_area_equal_the_reference_loop(rows: tuple[list, list, list]) -> None:
    score, treated, outcome = rows
    c = qini_curve(score, treated, outcome)
    ref = reference_curve(score, treated, outcome)
    assert c["n"].tolist() == [k for k, _, _ in ref]
    np.testing.assert_allclose(c["qini"], [q for _, q, _ in ref], atol=1e-9)
    np.testing.assert_allclose(c["uplift"], [u for _, _, u in ref], atol=1e-9)
    assert c["n_treated"].iloc[-1] == sum(treated)
    np.testing.assert_allclose(c["share"], c["n"] / len(score))
    assert qini_area(c) == pytest.approx(reference_area(ref), abs=1e-9)
    # the order of the rows (and so of tied rows) does not matter
    perm = np.random.default_rng(len(score)).permutation(len(score))
    c2 = qini_curve(np.array(score)[perm], np.array(treated)[perm], np.array(outcome)[perm])
    np.testing.assert_allclose(c2.to_numpy(), c.to_numpy(), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(rows_strategy, st.integers(1, 10))
def test_uplift_by_decile_equals_the_reference_loop(rows: tuple[list, list, list],
                                                   bins: int) -> None:
    score, treated, outcome = rows
    bins = min(bins, len(score))
    got = uplift_by_decile(score, treated, outcome, bins=bins, truth=outcome)
    order = sorted(range(len(score)), key=lambda i: -score[i])   # stable: ties by row
    groups: dict[int, list[int]] = {}
    for rank, i in enumerate(order):
        groups.setdefault(rank * bins // len(score), []).append(i)
    assert got.index.tolist() == sorted(groups)
    for b, members in groups.items():
        yt = [outcome[i] for i in members if treated[i]]
        yc = [outcome[i] for i in members if not treated[i]]
        row = got.loc[b]
        assert row["n"] == len(members) and row["n_treated"] == len(yt)
        if yt and yc:
            assert row["uplift"] == pytest.approx(sum(yt) / len(yt) - sum(yc) / len(yc))
        else:
            assert np.isnan(row["uplift"])
        assert row["truth"] == pytest.approx(sum(outcome[i] for i in members) / len(members))


def test_hand_computed_case() -> None:
    # scores 3, 2, 2, 1: the top row is sent and bought 1; the tie holds a sent row (0)
    # and a held-out one (1); the last is held out (0)
    c = qini_curve([3, 2, 2, 1], [True, True, False, False], [1.0, 0.0, 1.0, 0.0])
    assert c["n"].tolist() == [0, 1, 3, 4]
    assert c["qini"].tolist() == [0.0, 1.0, 1 - 1 * 2 / 1, 1 - 1 * 2 / 2]
    assert c["uplift"].tolist() == [0.0, 1.0, (0.5 - 1.0) * 3, (0.5 - 0.5) * 4]
    # a perfect ranking of a constant effect lies on the random line: area 0
    flat = qini_curve([1.0] * 4, [True, False, True, False], [1.0, 0.0, 1.0, 0.0])
    assert qini_area(flat) == 0.0
    # ranking the responders first beats random; the reverse order loses as much
    s = np.array([4.0, 3.0, 2.0, 1.0, 0.5, 0.4])
    t = np.array([True, False, True, False, True, False])
    y = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert qini_area(qini_curve(s, t, y)) > 0 > qini_area(qini_curve(-s, t, y))
    assert qini_area(qini_curve(s, t, y)) == pytest.approx(-qini_area(qini_curve(-s, t, y)))


BAD: list[tuple[Any, dict[str, Any], str]] = [
    (qini_curve, {"score": []}, "score: expected at least one row, got none"),
    (qini_curve, {"score": [1.0, np.nan, 2.0]}, "score[1]: expected a finite number, got nan"),
    (qini_curve, {"treated": [True, False]},
     "treated: expected 3 values (one per score), got 2"),
    (qini_curve, {"treated": [True, 0.5, False]},
     "treated[1]: expected true or false (or 0/1), got 0.5"),
    (qini_curve, {"outcome": [1.0, 2.0, np.inf]},
     "outcome[2]: expected a finite number, got inf"),
    (qini_curve, {"outcome": None}, "outcome: expected an array of values, got None"),
    (uplift_by_decile, {"bins": 0}, "bins: expected an integer in [1, 3], got 0"),
    (uplift_by_decile, {"bins": 4}, "bins: expected an integer in [1, 3], got 4"),
    (uplift_by_decile, {"truth": [1.0], "bins": 3},
     "truth: expected 3 values (one per score), got 1"),
]


@pytest.mark.parametrize(("fn", "args", "message"), BAD)
def test_bad_inputs(fn: Any, args: dict[str, Any], message: str) -> None:
    call = {"score": [1.0, 2.0, 3.0], "treated": [True, False, True],
            "outcome": [0.0, 1.0, 0.0], **args}
    with pytest.raises(TriggerLabValueError, match="^" + re.escape(message) + "$"):
        fn(**call)


@pytest.mark.parametrize("curve", [pd.DataFrame({"n": [0, 1]}), [1, 2],
                                   qini_curve([1.0], [True], [1.0]).iloc[:1]])
def test_area_needs_a_curve(curve: Any) -> None:
    with pytest.raises(TriggerLabValueError, match=r"^curve: expected"):
        qini_area(curve)
