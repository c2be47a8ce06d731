"""Attribution models on hand-computed journeys, a loop reference and brute-force Shapley."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.attribution import (
    ATTRIBUTION_MODELS,
    _journey_arrays,
    _shapley_fast,
    _shapley_reference,
    attribute,
    eligible_touches,
    journeys,
    markov_removal_effects,
)
from policies.errors import StatsInputError

D = 86_400

# Subscriber 1: A (day 0, opened), B (day 1, not opened), C (day 2, clicked), buys 100 on day 3.
# Subscriber 2: A (day 0, opened), B (day 1, opened), buys 50 on day 2.
# Subscriber 3: B (day 0), never buys.
TOUCHES = pd.DataFrame({
    "subscriber": [1, 1, 1, 2, 2, 3],
    "time": [0, D, 2 * D, 0, D, 0],
    "channel": ["A", "B", "C", "A", "B", "B"],
    "opened": [True, False, True, True, True, False],
    "clicked": [False, False, True, False, False, False],
})
CONVERSIONS = pd.DataFrame({"subscriber": [1, 2], "time": [3 * D, 2 * D], "value": [100.0, 50.0]})


def credits(model, **kw):
    return attribute(TOUCHES, CONVERSIONS, model, **kw).credits["conversions"].to_dict()


def values(model, **kw):
    return attribute(TOUCHES, CONVERSIONS, model, **kw).credits["value"].to_dict()


@pytest.mark.parametrize(
    ("model", "kw", "expected_conversions", "expected_value"),
    [
        ("first_touch", {}, {"A": 2, "B": 0, "C": 0}, {"A": 150, "B": 0, "C": 0}),
        ("last_touch", {}, {"A": 0, "B": 1, "C": 1}, {"A": 0, "B": 50, "C": 100}),
        # conv 1: 1/3 each; conv 2: 1/2 each
        ("linear", {}, {"A": 1 / 3 + 1 / 2, "B": 1 / 3 + 1 / 2, "C": 1 / 3},
         {"A": 100 / 3 + 25, "B": 100 / 3 + 25, "C": 100 / 3}),
        # half-life 1 day. conv 1 ages 3,2,1 days -> 1/8,1/4,1/2 -> 1/7,2/7,4/7; conv 2: 1/3,2/3
        ("time_decay", {"half_life": D}, {"A": 1 / 7 + 1 / 3, "B": 2 / 7 + 2 / 3, "C": 4 / 7},
         {"A": 100 / 7 + 50 / 3, "B": 200 / 7 + 100 / 3, "C": 400 / 7}),
        # half-life 2 days: conv 1 weights 2^-1.5, 2^-1, 2^-0.5
        ("time_decay", {"half_life": 2 * D},
         {"A": 2**-1.5 / (2**-1.5 + 2**-1 + 2**-0.5) + 2**-1 / (2**-1 + 2**-0.5),
          "B": 2**-1 / (2**-1.5 + 2**-1 + 2**-0.5) + 2**-0.5 / (2**-1 + 2**-0.5),
          "C": 2**-0.5 / (2**-1.5 + 2**-1 + 2**-0.5)}, None),
        # U-shaped 40/20/40: conv 1 -> .4/.2/.4; conv 2 (two touches) -> .5/.5
        ("position_based", {}, {"A": 0.9, "B": 0.7, "C": 0.4}, {"A": 65, "B": 45, "C": 40}),
        # 30/40/30 -> conv 1 .3/.4/.3; conv 2 .5/.5
        ("position_based", {"position_weights": (0.3, 0.4, 0.3)}, {"A": 0.8, "B": 0.9, "C": 0.3},
         None),
        # 60/0/40 -> two touches split .6/.4
        ("position_based", {"position_weights": (0.6, 0.0, 0.4)}, {"A": 1.2, "B": 0.4, "C": 0.4},
         None),
        # Shapley on conversions: {A,B,C} x1, {A,B} x1 -> A = B = 1/3 + 1/2, C = 1/3
        ("shapley", {}, {"A": 5 / 6, "B": 5 / 6, "C": 1 / 3}, {"A": 175 / 3, "B": 175 / 3,
                                                               "C": 100 / 3}),
    ],
)
def test_hand_computed(model, kw, expected_conversions, expected_value) -> None:
    got = credits(model, **kw)
    assert got == pytest.approx(expected_conversions, abs=1e-12)
    assert sum(got.values()) == pytest.approx(2.0)
    if expected_value is not None:
        assert values(model, **kw) == pytest.approx(expected_value, abs=1e-9)


def test_markov_hand_computed() -> None:
    # Journeys: A>B>C>conv, A>B>conv, B>null. Transitions: start->A 2/3, start->B 1/3,
    # A->B 1, B->C 1/3, B->conv 1/3, B->null 1/3, C->conv 1.
    # P(conv) = P_B = 1/3 + 1/3 = 2/3. Without A: 1/3 * 2/3 = 2/9 -> RE_A = 2/3.
    # Without B: 0 -> RE_B = 1. Without C: P_B = 1/3 -> RE_C = 1/2. Shares 4/13, 6/13, 3/13.
    r = attribute(TOUCHES, CONVERSIONS, "markov")
    assert r.credits["removal_effect"].to_dict() == pytest.approx(
        {"A": 2 / 3, "B": 1.0, "C": 0.5}, abs=1e-12)
    assert r.credits["conversions"].to_dict() == pytest.approx(
        {"A": 8 / 13, "B": 12 / 13, "C": 6 / 13}, abs=1e-12)
    assert r.credits["value"].to_dict() == pytest.approx(
        {"A": 600 / 13, "B": 900 / 13, "C": 450 / 13}, abs=1e-9)


def test_markov_second_hand_example_with_self_loops() -> None:
    # A>conv, A>B>conv, B>null  (from the design notes): RE_A = 3/4, RE_B = 1/2 -> 3/5, 2/5.
    re = markov_removal_effects([("A",), ("A", "B"), ("B",)], [True, True, False])
    assert re.to_dict() == pytest.approx({"A": 0.75, "B": 0.5}, abs=1e-12)
    # Self-loops (A, A) do not change absorption probabilities.
    re2 = markov_removal_effects([("A", "A"), ("A", "A", "B"), ("B", "B")], [True, True, False])
    assert re2.to_dict() == pytest.approx(re.to_dict(), abs=1e-12)


def _absorb_by_iteration(paths, converted, removed=None):
    """Independent check: push probability mass through the empirical chain 2000 steps."""
    states = sorted({c for p in paths for c in p})
    idx = {c: i + 1 for i, c in enumerate(states)}
    n = len(states) + 3
    conv, null = n - 2, n - 1
    counts = np.zeros((n, n))
    for p, ok in zip(paths, converted, strict=True):
        seq = [0] + [idx[c] for c in p] + [conv if ok else null]
        for s, t in itertools.pairwise(seq):
            counts[s, t] += 1
    mat = np.zeros((n, n))
    for s in range(n - 2):
        mat[s] = counts[s] / counts[s].sum()
    mat[conv, conv] = mat[null, null] = 1.0
    if removed is not None:
        k = idx[removed]
        mat[:, null] += mat[:, k]
        mat[:, k] = 0.0
        mat[k] = 0.0
        mat[k, null] = 1.0
    mass = np.zeros(n)
    mass[0] = 1.0
    for _ in range(2000):
        mass = mass @ mat
    return mass[conv]


@given(st.lists(st.tuples(st.lists(st.sampled_from("ABCD"), min_size=1, max_size=5),
                          st.booleans()), min_size=1, max_size=12))
def test_markov_removal_effect_matches_mass_iteration(data) -> None:
    paths = [tuple(p) for p, _ in data]
    conv = [c for _, c in data]
    if not any(conv):
        conv[0] = True
    re = markov_removal_effects(paths, conv)
    base = _absorb_by_iteration(paths, conv)
    for ch, eff in re.items():
        assert eff == pytest.approx(1 - _absorb_by_iteration(paths, conv, ch) / base, abs=1e-9)


def _brute_force_shapley(set_values: dict[frozenset, float]) -> dict[str, float]:
    """Shapley value by its permutation definition with v(S) = sum_{T subset S} R(T)."""
    players = sorted(set().union(*set_values))

    def v(coalition: frozenset) -> float:
        return sum(r for t, r in set_values.items() if t <= coalition)

    phi = dict.fromkeys(players, 0.0)
    perms = list(itertools.permutations(players))
    for order in perms:
        before: frozenset = frozenset()
        for p in order:
            phi[p] += v(before | {p}) - v(before)
            before = before | {p}
    return {p: x / len(perms) for p, x in phi.items()}


@given(st.lists(st.tuples(st.integers(0, 5), st.lists(st.sampled_from("ABCDE"), min_size=1,
                                                      max_size=4),
                          st.booleans()), min_size=1, max_size=10),
       st.sampled_from(["conversions", "rate"]))
def test_shapley_closed_form_equals_permutation_definition(data, mode) -> None:
    rows_t, rows_c = [], []
    for sub, (_, chans, converts) in enumerate(data):
        for i, ch in enumerate(chans):
            rows_t.append({"subscriber": sub, "time": 100 * i, "channel": ch})
        if converts:
            rows_c.append({"subscriber": sub, "time": 1000, "value": 10.0 + sub})
    if not rows_c:
        rows_c.append({"subscriber": 0, "time": 1000, "value": 10.0})
    touches, conv = pd.DataFrame(rows_t), pd.DataFrame(rows_c)
    r = attribute(touches, conv, "shapley", shapley_value=mode, window=math.inf)
    j = journeys(touches, conv, window=math.inf)
    per_set: dict[frozenset, list[float]] = {}
    for path, ok in zip(j["path"], j["converted"], strict=True):
        per_set.setdefault(frozenset(path), []).append(float(ok))
    rv = {s: (sum(x) if mode == "conversions" else sum(x) / len(x)) for s, x in per_set.items()}
    phi = _brute_force_shapley(rv)
    assert r.credits["shapley_value"].to_dict() == pytest.approx(phi, abs=1e-9)
    total = sum(phi.values())
    assert r.credits["conversions"].to_dict() == pytest.approx(
        {k: x / total * len(conv) for k, x in phi.items()}, abs=1e-9)


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40), st.integers(0, 9),
                          st.booleans()), min_size=1, max_size=25),
       st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50), st.floats(0, 100)),
                min_size=1, max_size=6),
       st.sampled_from(["conversions", "rate"]), st.sampled_from(["none", "opened"]))
def test_shapley_bitmask_fast_path_equals_set_reference(tch, cnv, mode, require) -> None:
    touches = pd.DataFrame(tch, columns=["subscriber", "time", "channel", "opened"]).assign(
        clicked=False)
    conversions = pd.DataFrame(cnv, columns=["subscriber", "time", "value"])
    pairs = eligible_touches(touches, conversions, window=20, require=require)
    j = _journey_arrays(touches, conversions, pairs, require, "channel")
    fast, ref = _shapley_fast(j, mode), _shapley_reference(j, mode)
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12, atol=1e-12)


def test_shapley_with_more_than_63_channels_uses_reference_path() -> None:
    n = 70  # campaign-level attribution can have many "channels"
    touches = pd.DataFrame({"subscriber": np.repeat(np.arange(n), 2),
                            "time": np.tile([0, 10], n),
                            "channel": [f"c{i:02d}" for i in range(n)] + ["c00"] * n})
    conv = pd.DataFrame({"subscriber": np.arange(n), "time": 20, "value": 1.0})
    r = attribute(touches, conv, "shapley")
    # subscribers 0-34 get two distinct campaigns each, 35-69 get c00 twice
    j = journeys(touches, conv)
    expected: dict[str, float] = {}
    for path in j["path"]:
        chans = set(path)
        for c in chans:
            expected[c] = expected.get(c, 0.0) + 1 / len(chans)
    assert r.credits["conversions"].to_dict() == pytest.approx(expected)
    assert len(r.credits) > 63


def test_shapley_rate_uses_non_converting_journeys() -> None:
    # {A}: 1 of 1 converts; {B}: 1 of 4 converts; {A,B}: 1 of 1.
    # R = {A}:1, {B}:0.25, {A,B}:1 -> phi_A = 1 + 1/2 = 1.5, phi_B = 0.25 + 0.5 = 0.75.
    touches = pd.DataFrame({"subscriber": [1, 2, 3, 4, 5, 6, 6],
                            "time": [0] * 6 + [10], "channel": list("ABBBBAB")})
    conv = pd.DataFrame({"subscriber": [1, 2, 6], "time": [50] * 3, "value": [30.0, 30.0, 60.0]})
    r = attribute(touches, conv, "shapley", shapley_value="rate")
    assert r.credits["shapley_value"].to_dict() == pytest.approx({"A": 1.5, "B": 0.75})
    assert r.credits["conversions"].to_dict() == pytest.approx({"A": 2.0, "B": 1.0})
    # value rates: {A}: 30, {B}: 30/4, {A,B}: 60 -> phi_v A = 60, B = 37.5 -> shares of 120
    assert r.credits["value"].to_dict() == pytest.approx(
        {"A": 120 * 60 / 97.5, "B": 120 * 37.5 / 97.5})
    by_count = attribute(touches, conv, "shapley").credits["conversions"].to_dict()
    assert by_count == pytest.approx({"A": 1.5, "B": 1.5})


# --- window and engagement rules ----------------------------------------------------------


def test_window_excludes_old_touches_and_reports_unattributed() -> None:
    # Window 1.5 days: conv 1 sees only C (age 1 d); conv 2 sees only B (age 1 d).
    r = attribute(TOUCHES, CONVERSIONS, "first_touch", window=1.5 * D)
    assert r.credits["conversions"].to_dict() == {"B": 1.0, "C": 1.0}
    r = attribute(TOUCHES, CONVERSIONS, "linear", window=0.5 * D)
    assert r.credits.empty and r.unattributed_conversions == 2 and r.unattributed_value == 150
    assert r.attributed_conversions == 0 and r.n_conversions == 2


def test_window_edges_are_inclusive_and_future_touches_never_count() -> None:
    touches = pd.DataFrame({"subscriber": [1, 1, 1], "time": [0, 100, 101], "channel": list("XYZ")})
    conv = pd.DataFrame({"subscriber": [1], "time": [100], "value": [1.0]})
    assert attribute(touches, conv, "linear", window=100).credits["conversions"].to_dict() == {
        "X": 0.5, "Y": 0.5}
    assert attribute(touches, conv, "linear", window=99).credits["conversions"].to_dict() == {
        "Y": 1.0}


@pytest.mark.parametrize(
    ("require", "expected"),
    [("none", {"A": 0.0, "B": 1.0, "C": 1.0}),  # Braze-like: any message in the window
     # conv 2's B was opened; C clicked counts as opened; A eligible but never last
     ("opened", {"A": 0.0, "B": 1.0, "C": 1.0}),
     ("clicked", {"C": 1.0})],  # only C was clicked; conv 2 unattributed
)
def test_engagement_requirement_last_touch(require, expected) -> None:
    r = attribute(TOUCHES, CONVERSIONS, "last_touch", require=require)
    assert r.credits["conversions"].to_dict() == expected
    assert r.unattributed_conversions == (1 if require == "clicked" else 0)


def test_klaviyo_style_last_opened_skips_unopened_touch() -> None:
    touches = pd.DataFrame({"subscriber": [1, 1], "time": [0, 10], "channel": ["welcome", "promo"],
                            "opened": [True, False], "clicked": [False, False]})
    conv = pd.DataFrame({"subscriber": [1], "time": [20], "value": [42.0]})
    r = attribute(touches, conv, "last_touch", require="opened", window=5 * D)
    assert r.credits["value"].to_dict() == {"welcome": 42.0}
    assert attribute(touches, conv, "last_touch").credits["value"].to_dict() == {
        "promo": 42.0, "welcome": 0.0}


def test_touch_credited_by_several_conversions_and_custom_channel_column() -> None:
    touches = pd.DataFrame({"subscriber": [1], "time": [0], "campaign": ["spring"]})
    conv = pd.DataFrame({"subscriber": [1, 1], "time": [10, 20], "value": [5.0, 7.0]})
    r = attribute(touches, conv, "first_touch", channel="campaign")
    assert r.credits.loc["spring", "conversions"] == 2.0
    assert r.credits.loc["spring", "value"] == 12.0


def test_journeys_table() -> None:
    j = journeys(TOUCHES, CONVERSIONS)
    assert j["path"].tolist() == [("A", "B", "C"), ("A", "B"), ("B",)]
    assert j["converted"].tolist() == [True, True, False]
    assert j["value"].tolist() == [100.0, 50.0, 0.0]
    # With a 1.5-day window the older touches of converters form non-converting journeys.
    j = journeys(TOUCHES, CONVERSIONS, window=1.5 * D)
    assert j["path"].tolist() == [("C",), ("B",), ("A", "B"), ("A",), ("B",)]
    assert j["converted"].tolist() == [True, True, False, False, False]


# --- vectorized rule models vs a row-at-a-time reference ----------------------------------


def reference_rules(touches, conversions, model, window, half_life, weights):
    out: dict[str, float] = {}
    for i, cv in conversions.iterrows():
        path = [(row.time, j, row.channel) for j, row in touches.iterrows()
                if row.subscriber == cv.subscriber and 0 <= cv.time - row.time <= window]
        path.sort()
        k = len(path)
        for pos, (t, _, ch) in enumerate(path):
            if model == "first_touch":
                w = 1.0 if pos == 0 else 0.0
            elif model == "last_touch":
                w = 1.0 if pos == k - 1 else 0.0
            elif model == "linear":
                w = 1.0 / k
            elif model == "time_decay":
                w = 2 ** (-(cv.time - t) / half_life) / sum(
                    2 ** (-(cv.time - s) / half_life) for s, _, _ in path)
            else:
                f, m, la = weights
                if k == 1:
                    w = 1.0
                elif k == 2:
                    w = (f if pos == 0 else la) / (f + la)
                else:
                    w = f if pos == 0 else la if pos == k - 1 else m / (k - 2)
            out[ch] = out.get(ch, 0.0) + w
        del i
    return out


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.sampled_from("ABC")),
                min_size=1, max_size=15),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60)), min_size=1, max_size=5),
       st.sampled_from(["first_touch", "last_touch", "linear", "time_decay", "position_based"]),
       st.integers(1, 60))
def test_rule_models_match_loop_reference(tch, cnv, model, window) -> None:
    touches = pd.DataFrame(tch, columns=["subscriber", "time", "channel"])
    conversions = pd.DataFrame(cnv, columns=["subscriber", "time"]).assign(value=1.0)
    r = attribute(touches, conversions, model, window=window, half_life=7.0,
                  position_weights=(0.5, 0.3, 0.2))
    ref = reference_rules(touches, conversions, model, window, 7.0, (0.5, 0.3, 0.2))
    assert r.credits["conversions"].to_dict() == pytest.approx(ref, abs=1e-12)


def test_eligible_touches_columns() -> None:
    e = eligible_touches(TOUCHES, CONVERSIONS, require="opened")
    assert e["touch"].tolist() == [0, 2, 3, 4]
    assert e["pos"].tolist() == [0, 1, 0, 1] and e["k"].tolist() == [2, 2, 2, 2]
    assert e["age"].tolist() == [3 * D, D, 2 * D, D]


# --- invalid input ------------------------------------------------------------------------


INVALID = [
    (dict(model="u_shaped"), r"^model: expected one of \['first_touch', .*'shapley'\], got 'u_shaped'"),  # noqa: E501
    (dict(window=0), r"^window: expected a positive number of seconds, got 0"),
    (dict(window="5d"), r"^window: expected a positive number of seconds, got '5d'"),
    (dict(require="open"), r"^require: expected one of \['none', 'opened', 'clicked'\], got 'open'"),  # noqa: E501
    (dict(half_life=-1), r"^half_life: expected a positive number of seconds, got -1"),
    (dict(position_weights=(0.5, 0.5, 0.5)), r"^position_weights: expected \(first, middle, last\) non-negative summing to 1"),  # noqa: E501
    (dict(position_weights=(1.2, -0.2, 0.0)), r"^position_weights: expected"),
    (dict(shapley_value="value"), r"^shapley_value: expected one of \['conversions', 'rate'\], got 'value'"),  # noqa: E501
    (dict(channel="campaign"), r"^touches: expected columns \['subscriber', 'time', 'campaign'\], missing \['campaign'\]"),  # noqa: E501
    (dict(touches=TOUCHES.drop(columns="clicked"), require="clicked"), r"^touches: expected columns .*missing \['clicked'\]"),  # noqa: E501
    (dict(conversions=CONVERSIONS.drop(columns="value")), r"^conversions: expected columns \['subscriber', 'time', 'value'\], missing \['value'\]"),  # noqa: E501
    (dict(conversions=CONVERSIONS.assign(value=[1.0, np.nan])), r"^conversions.value: expected finite numbers"),  # noqa: E501
    (dict(touches=TOUCHES.assign(time=[0, np.nan, 1, 2, 3, 4])), r"^touches.time: expected finite times"),  # noqa: E501
    (dict(touches=TOUCHES.to_dict()), r"^touches: expected a pandas DataFrame, got dict"),
    (dict(model="markov", window=1), r"^conversions: expected at least one conversion with an eligible touch"),  # noqa: E501
]


@pytest.mark.parametrize(("kw", "message"), INVALID)
def test_invalid_inputs(kw, message) -> None:
    args = dict(touches=TOUCHES, conversions=CONVERSIONS)
    args.update(kw)
    with pytest.raises(StatsInputError, match=message):
        attribute(**args)


def test_markov_invalid() -> None:
    with pytest.raises(StatsInputError, match=r"^converted: expected shape \(2,\) like paths"):
        markov_removal_effects([("A",), ("B",)], [True])
    with pytest.raises(StatsInputError, match=r"^paths: expected at least one converting"):
        markov_removal_effects([("A",), ("B",)], [False, False])


def test_docstring_example_runs() -> None:
    import doctest

    import experiments.attribution as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_every_model_is_covered() -> None:
    assert set(ATTRIBUTION_MODELS) == {"first_touch", "last_touch", "linear", "time_decay",
                                       "position_based", "markov", "shapley"}
    for m in ATTRIBUTION_MODELS:
        r = attribute(TOUCHES, CONVERSIONS, m)
        assert r.credits["conversions"].sum() == pytest.approx(2.0)
        assert r.credits["value"].sum() == pytest.approx(150.0)
