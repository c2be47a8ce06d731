"""UpliftModel: recovers a known heterogeneous effect (two-model and X-learner, boosting
and ridge), is seeded, scores a Series named ``uplift`` indexed like the features, and
rejects bad inputs with messages that name the field."""

from __future__ import annotations

import pickle
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from policies.errors import TriggerLabValueError
from policies.segments import HISTORY_FEATURES, UpliftModel


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    """History-feature columns filled with random non-negative numbers, plus an
    attribute column ``trait`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({c: rng.exponential(2.0, n) for c in HISTORY_FEATURES},
                     index=pd.Index(np.arange(100, 100 + n), name="subscriber"))
    f["trait"] = rng.random(n)
    return f


def sample(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                   np.ndarray]:
    """A randomized sample whose true effect is 2 trait + [frequency > 2] and whose
    baseline (the same for both groups) depends on other columns."""
    f = frame(n, seed)
    rng = np.random.default_rng(seed + 1)
    treated = rng.random(n) < 0.5
    tau = 2.0 * f["trait"].to_numpy() + (f["frequency"].to_numpy() > 2.0)
    base = np.log1p(f["monetary"].to_numpy()) + 0.5 * np.log1p(f["opens_last"].to_numpy())
    y = base + treated * tau + rng.normal(0, 0.5, n)
    return f, treated, y, tau


@pytest.mark.parametrize(("method", "base"), [("x", "hgb"), ("t", "hgb"), ("x", "linear"),
                                              ("t", "linear")])
def test_recovers_a_known_effect(method: str, base: str) -> None:
    f, t, y, tau = sample(2500)
    m = UpliftModel(seed=3, method=method, base=base, attributes=("trait",),
                    treated_share=0.5, max_iter=25)
    s = m.fit(f, t, y).score(f)
    assert isinstance(s, pd.Series) and s.name == "uplift" and s.index.equals(f.index)
    assert s.dtype == np.float64
    assert spearmanr(s, tau).statistic > 0.8
    assert abs(s.mean() - tau.mean()) < 0.15       # in the outcome's unit
    # without the attribute the trait is invisible: much worse
    blind = UpliftModel(seed=3, method=method, base=base, max_iter=25).fit(f, t, y).score(f)
    assert spearmanr(blind, tau).statistic < spearmanr(s, tau).statistic - 0.3


def test_seeded_pickles_and_keeps_parameters() -> None:
    f, t, y, _ = sample(800)
    a = UpliftModel(seed=1, base="hgb", attributes=("trait",), max_iter=10)
    params = dict(vars(a))
    sa = a.fit(f, t, y).score(f)
    sb = UpliftModel(seed=1, base="hgb", attributes=("trait",), max_iter=10).fit(f, t, y).score(f)
    pd.testing.assert_series_equal(sa, sb)
    assert {k: vars(a)[k] for k in params if not k.endswith("_")} == {
        k: v for k, v in params.items() if not k.endswith("_")}
    assert a.share_ == pytest.approx(t.mean())
    again = pickle.loads(pickle.dumps(a))
    pd.testing.assert_series_equal(again.score(f), sa)
    assert len(a.score(f.iloc[:0])) == 0


def test_x_learner_weights_by_the_known_share() -> None:
    f, t, y, _ = sample(800)
    m = UpliftModel(seed=0, base="hgb", treated_share=0.2, max_iter=10).fit(f, t, y)
    x = m.models_
    from policies.segments import design_matrix

    d = design_matrix(f)
    want = 0.2 * x["tau0"].predict(d) + 0.8 * x["tau1"].predict(d)
    np.testing.assert_allclose(m.score(f).to_numpy(), want)


F = frame(40)
T = np.arange(40) % 2 == 0
Y = np.linspace(0.0, 1.0, 40)
FIT_ROWS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    # (constructor arguments, fit arguments replaced, message)
    ({"seed": -1}, {}, "seed: expected an integer >= 0, got -1"),
    ({"seed": True}, {}, "seed: expected an integer >= 0, got True"),
    ({"method": "s"}, {}, "method: expected one of t, x, got 's'"),
    ({"base": "forest"}, {}, "base: expected one of hgb, linear, got 'forest'"),
    ({"treated_share": 0}, {}, "treated_share: expected a number in (0, 1), got 0"),
    ({"treated_share": 1.5}, {}, "treated_share: expected a number in (0, 1), got 1.5"),
    ({"treated_share": float("nan")}, {}, "treated_share: expected a number in (0, 1), got nan"),
    ({"attributes": "trait"}, {}, "attributes: expected a tuple of column names, got 'trait'"),
    ({"attributes": ("",)}, {}, "attributes: expected a tuple of column names, got ('',)"),
    ({"max_iter": 0}, {}, "max_iter: expected an integer >= 1, got 0"),
    ({"learning_rate": 0.0}, {}, "learning_rate: expected a number > 0, got 0.0"),
    ({"max_leaf_nodes": 1}, {}, "max_leaf_nodes: expected an integer >= 2, got 1"),
    ({"min_samples_leaf": 0}, {}, "min_samples_leaf: expected an integer >= 1, got 0"),
    ({"alpha": -1.0}, {}, "alpha: expected a number >= 0, got -1.0"),
    ({}, {"features": F.to_numpy()}, "features: expected a DataFrame of history features"),
    ({}, {"features": F.drop(columns="frequency")},
     "features: expected the columns of history_features, missing ['frequency']"),
    ({}, {"treated": T[:-1]}, "treated: expected 40 values (one per row of features), got 39"),
    ({}, {"outcome": Y[:-1]}, "outcome: expected 40 values (one per row of features), got 39"),
    ({}, {"treated": np.ones(40, bool)},
     "treated: expected at least 2 sent and 2 held-out rows, got 40 sent and 0 held out"),
    ({}, {"treated": np.zeros(40, bool)},
     "treated: expected at least 2 sent and 2 held-out rows, got 0 sent and 40 held out"),
    ({}, {"treated": np.r_[True, np.zeros(39, bool)]},
     "treated: expected at least 2 sent and 2 held-out rows, got 1 sent and 39 held out"),
    ({}, {"outcome": np.r_[0.0, 0.0, 0.0, np.nan, Y[4:]]},
     "outcome[3]: expected a finite number, got nan"),
    ({}, {"outcome": np.r_[np.inf, -np.inf, Y[2:]]},
     "outcome[0]: expected a finite number, got inf (2 bad rows)"),
    ({}, {"outcome": np.array(["a"] * 40)}, "outcome[0]: expected a finite number, got 'a'"),
    ({}, {"outcome": Y.reshape(40, 1)},
     "outcome: expected a one-dimensional array, got shape (40, 1)"),
    ({}, {"outcome": 3.0}, "outcome: expected an array of values, got 3.0"),
    ({}, {"outcome": "0101"}, "outcome: expected an array of values, got '0101'"),
    ({}, {"treated": np.r_[T[:5], 2, T[6:]]},
     "treated[5]: expected true or false (or 0/1), got 2"),
    ({}, {"treated": np.r_[np.nan, T[1:]]},
     "treated[0]: expected true or false (or 0/1), got nan"),
    ({}, {"treated": np.array(["yes"] * 40)},
     "treated[0]: expected true or false (or 0/1), got 'yes' (40 bad rows)"),
    ({}, {"treated": pd.Series(T)},
     "treated: expected a Series indexed like features (or an array), got another index"),
    ({}, {"outcome": pd.Series(Y, index=F.index[::-1])},
     "outcome: expected a Series indexed like features (or an array), got another index"),
    ({"attributes": ("price_sensitivity",)}, {},
     "features: expected the attribute columns ['price_sensitivity'], missing "
     "['price_sensitivity']"),
    ({"attributes": ("trait",)}, {"features": F.assign(trait=np.r_[0, 0, 0, 0, np.nan,
                                                                   np.zeros(35)])},
     "features.trait[4]: expected a finite number, got a missing value (subscriber 104)"),
    ({"attributes": ("trait",)}, {"features": F.assign(trait=["high"] * 40)},
     "features.trait[0]: expected a number or missing, got 'high' (subscriber 100; 40 bad "
     "rows)"),
]


@pytest.mark.parametrize(("kwargs", "args", "message"), FIT_ROWS)
def test_bad_inputs(kwargs: dict[str, Any], args: dict[str, Any], message: str) -> None:
    call = {"features": F, "treated": T, "outcome": Y, **args}
    with pytest.raises(TriggerLabValueError, match="^" + re.escape(message)):
        UpliftModel(**{"seed": 0, "max_iter": 5, **kwargs}).fit(**call)


def test_bad_score_calls() -> None:
    with pytest.raises(TriggerLabValueError, match=r"^UpliftModel: call fit before score$"):
        UpliftModel(seed=0).score(F)
    m = UpliftModel(seed=0, max_iter=5).fit(F, T, Y)
    with pytest.raises(TriggerLabValueError, match=re.escape("missing ['recency_days']")):
        m.score(F.drop(columns="recency_days"))
    with pytest.raises(TriggerLabValueError, match=r"^features: expected a DataFrame"):
        m.score(F.to_dict())


def test_a_boolean_outcome_is_zero_one() -> None:
    bought = Y > 0.5
    a = UpliftModel(seed=0).fit(F, T, bought).score(F)
    b = UpliftModel(seed=0).fit(F, T, bought.astype(float)).score(F)
    pd.testing.assert_series_equal(a, b)
