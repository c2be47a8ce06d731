"""Off-policy estimators: hand-computed logs, a loop reference, and simulated logs with
known truth (unbiasedness, interval coverage, DM bias, SNIPS variance)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.dummy import DummyRegressor

from experiments.ope import OPE_METHODS, estimate_policy_value, fit_reward_model
from policies.errors import StatsInputError

# --- a small logging world with known truth: 4 contexts, 3 actions, Bernoulli rewards ----
Q = np.array([[0.6, 0.3, 0.2], [0.2, 0.7, 0.3], [0.3, 0.2, 0.8], [0.5, 0.5, 0.1]])
PI0 = np.array([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6], [0.4, 0.3, 0.3]])
PIE = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])
V_TRUE = float(np.mean((PIE * Q).sum(axis=1)))  # contexts uniform: 0.3125


def simulate(seed: int, n: int):
    g = np.random.default_rng(seed)
    ctx = g.integers(0, 4, n)
    act = (g.random(n)[:, None] > np.cumsum(PI0[ctx], axis=1)).sum(axis=1)
    reward = (g.random(n) < Q[ctx, act]).astype(float)
    return ctx, act, reward, PI0[ctx, act], PIE[ctx]


def per_action_means(act, reward):
    """A misspecified reward model: ignores the context (the logger's choice depends on it)."""
    return np.broadcast_to([reward[act == a].mean() for a in range(3)], (len(act), 3))


@pytest.fixture(scope="module")
def many_runs():
    out = {m: [] for m in ("ips", "snips", "dm_misspecified", "dr_misspecified", "dr_true")}
    for seed in range(200):
        ctx, act, r, p, dist = simulate(seed, 1000)
        bad, true = per_action_means(act, r), Q[ctx]
        for name, method, q in (("ips", "ips", None), ("snips", "snips", None),
                                ("dm_misspecified", "dm", bad), ("dr_misspecified", "dr", bad),
                                ("dr_true", "dr", true)):
            e = estimate_policy_value(method, r, act, p, dist, estimated_rewards=q)
            out[name].append((e.estimate, e.ci_low <= V_TRUE <= e.ci_high))
    return {k: np.array(v) for k, v in out.items()}


def test_truth_is_what_we_think() -> None:
    assert V_TRUE == pytest.approx((0.32 + 0.33 + 0.34 + 0.26) / 4)


@pytest.mark.parametrize("name", ["ips", "dr_misspecified", "dr_true", "snips"])
def test_unbiased_and_intervals_cover(many_runs, name) -> None:
    est, covered = many_runs[name][:, 0], many_runs[name][:, 1]
    # Mean of 200 independent estimates is within 3 standard errors of the truth
    # (observed |bias| / SE: ips 0.20, snips 0.09, dr 0.24 / 0.11).
    assert abs(est.mean() - V_TRUE) < 3 * est.std(ddof=1) / math.sqrt(len(est))
    # 95 % intervals: observed coverage 0.95 / 0.95 / 0.945 / 0.95 with these fixed seeds.
    assert 0.92 <= covered.mean() <= 0.98


def test_dm_with_misspecified_model_is_biased(many_runs) -> None:
    est, covered = many_runs["dm_misspecified"][:, 0], many_runs["dm_misspecified"][:, 1]
    bias = est.mean() - V_TRUE
    assert bias > 0.15  # observed +0.171: the logger sends the good action in each context
    assert abs(bias) > 50 * est.std(ddof=1) / math.sqrt(len(est))
    assert covered.mean() < 0.05


def test_snips_and_dr_have_lower_variance_than_ips(many_runs) -> None:
    sd = {k: v[:, 0].std(ddof=1) for k, v in many_runs.items()}
    assert sd["snips"] < 0.9 * sd["ips"]  # observed 0.0233 vs 0.0269
    assert sd["dr_true"] < 0.9 * sd["ips"]  # observed 0.0231


# --- hand-computed log ------------------------------------------------------------------
HAND = dict(
    reward=[1.0, 0.0, 1.0, 0.0], action=[0, 1, 1, 0], pscore=[0.5, 0.5, 0.25, 0.75],
    action_dist=[[0.2, 0.8], [0.5, 0.5], [1.0, 0.0], [0.6, 0.4]],
    estimated_rewards=[[0.4, 0.6], [0.3, 0.2], [0.9, 0.1], [0.5, 0.5]],
)
# w = [0.4, 1, 0, 0.8]; q_pi = [0.56, 0.25, 0.9, 0.5]; r - q(a_i) = [0.6, -0.2, 0.9, -0.5]


@pytest.mark.parametrize(
    ("method", "kw", "expected"),
    [("ips", {}, 0.1), ("snips", {}, 0.4 / 2.2), ("dm", {}, 2.21 / 4),
     ("dr", {}, 1.85 / 4), ("switch_dr", {"switch_threshold": 0.9}, 2.05 / 4),
     ("switch_dr", {"switch_threshold": math.inf}, 1.85 / 4),
     ("switch_dr", {"switch_threshold": 1e-9}, 2.21 / 4 + 0.0)],
)
def test_hand_computed_log(method, kw, expected) -> None:
    e = estimate_policy_value(method, **HAND, **kw)
    assert e.estimate == pytest.approx(expected, abs=1e-12)
    assert e.n_rounds == 4 and e.ci_method == "normal"


def test_hand_ips_interval() -> None:
    e = estimate_policy_value("ips", **HAND, alpha=0.1)
    # values [0.4, 0, 0, 0]: sd = 0.2, se = 0.1
    assert e.standard_error == pytest.approx(0.1)
    assert (e.ci_low, e.ci_high) == pytest.approx((0.1 - 1.6448536 * 0.1, 0.1 + 1.6448536 * 0.1))


# --- loop reference with positions --------------------------------------------------------


def reference(method, r, a, p, dist, k, q, lam):
    """Plain-Python per-round loop (OBP's definitions)."""
    vals, ws = [], []
    for i in range(len(r)):
        w = dist[i][a[i]][k[i]] / p[i]
        ws.append(w)
        if method in ("ips", "snips"):
            vals.append(w * r[i])
            continue
        q_pi = sum(dist[i][b][k[i]] * q[i][b][k[i]] for b in range(len(dist[i])))
        corr = w * (r[i] - q[i][a[i]][k[i]])
        if method == "dm":
            corr = 0.0
        elif method == "switch_dr" and w > lam:
            corr = 0.0
        vals.append(q_pi + corr)
    return sum(vals) / sum(ws) if method == "snips" else sum(vals) / len(vals)


@given(st.integers(0, 2**31), st.integers(2, 40), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from(OPE_METHODS), st.floats(0.5, 5.0))
def test_vectorized_equals_loop_reference(seed, n, n_actions, len_list, method, lam) -> None:
    g = np.random.default_rng(seed)
    dist = g.dirichlet(np.ones(n_actions), size=(n, len_list)).transpose(0, 2, 1)
    a = g.integers(0, n_actions, n)
    k = g.integers(0, len_list, n)
    p = g.uniform(0.05, 1.0, n)
    r = g.normal(1.0, 2.0, n)
    q = g.normal(1.0, 1.0, (n, n_actions, len_list))
    e = estimate_policy_value(method, r, a, p, dist, position=k, estimated_rewards=q,
                              switch_threshold=lam)
    assert e.estimate == pytest.approx(
        reference(method, r.tolist(), a.tolist(), p.tolist(), dist.tolist(), k.tolist(),
                  q.tolist(), lam), rel=1e-10, abs=1e-10)


# --- bootstrap intervals ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ips", "snips", "dr"])
def test_bootstrap_interval_close_to_normal_and_seeded(method) -> None:
    ctx, act, r, p, dist = simulate(7, 5000)
    q = Q[ctx]
    normal = estimate_policy_value(method, r, act, p, dist, estimated_rewards=q)
    boot = estimate_policy_value(method, r, act, p, dist, estimated_rewards=q,
                                 rng=np.random.default_rng(3), n_bootstrap=1000)
    again = estimate_policy_value(method, r, act, p, dist, estimated_rewards=q,
                                  rng=np.random.default_rng(3), n_bootstrap=1000)
    assert boot.ci_method == "bootstrap" and boot.estimate == normal.estimate
    assert (boot.ci_low, boot.ci_high) == (again.ci_low, again.ci_high)
    assert boot.standard_error == pytest.approx(normal.standard_error, rel=0.1)
    assert boot.ci_low == pytest.approx(normal.ci_low, abs=0.3 * normal.standard_error)
    assert boot.ci_high == pytest.approx(normal.ci_high, abs=0.3 * normal.standard_error)


# --- reward model -------------------------------------------------------------------------


def test_fit_reward_model_recovers_cells_and_feeds_dr() -> None:
    ctx, act, r, p, dist = simulate(11, 20_000)
    onehot = np.eye(4)[ctx]
    q_hat = fit_reward_model(onehot, act, r, n_actions=3, rng=np.random.default_rng(0))
    assert q_hat.shape == (20_000, 3, 1)
    assert np.max(np.abs(q_hat[:, :, 0] - Q[ctx])) < 0.05
    dm = estimate_policy_value("dm", r, act, p, dist, estimated_rewards=q_hat)
    dr = estimate_policy_value("dr", r, act, p, dist, estimated_rewards=q_hat)
    assert abs(dm.estimate - V_TRUE) < 0.01
    assert dr.ci_low <= V_TRUE <= dr.ci_high
    # Without the context-action interaction a linear model is misspecified here.
    additive = fit_reward_model(onehot, act, r, n_actions=3, rng=np.random.default_rng(0),
                                interactions=False)
    assert np.max(np.abs(additive[:, :, 0] - Q[ctx])) > 0.1


def test_cross_fitting_predicts_each_round_from_other_folds() -> None:
    g = np.random.default_rng(5)
    n = 300
    r = g.normal(0, 1, n)
    q_hat = fit_reward_model(g.normal(size=(n, 2)), g.integers(0, 2, n), r, n_actions=2,
                             rng=np.random.default_rng(1), model=DummyRegressor(), n_folds=3)
    values = q_hat[:, 0, 0]
    distinct = np.unique(values)
    assert len(distinct) == 3
    for v in distinct:
        fold = values == v
        assert fold.sum() == 100
        assert v == pytest.approx(r[~fold].mean(), rel=1e-12)  # fitted without its own fold
    in_sample = fit_reward_model(np.zeros((n, 1)), np.zeros(n, dtype=int), r, n_actions=2,
                                 rng=np.random.default_rng(1), model=DummyRegressor(), n_folds=1)
    assert np.allclose(in_sample, r.mean())


def test_fit_reward_model_with_positions() -> None:
    g = np.random.default_rng(2)
    n = 4000
    k = g.integers(0, 2, n)
    a = g.integers(0, 3, n)
    r = 1.0 + 0.5 * a - 0.7 * k + g.normal(0, 0.1, n)
    q = fit_reward_model(np.zeros((n, 1)), a, r, n_actions=3, rng=g, position=k, len_list=2)
    assert q.shape == (n, 3, 2)
    expected = 1.0 + 0.5 * np.arange(3)[:, None] - 0.7 * np.arange(2)[None, :]
    assert np.max(np.abs(q - expected)) < 0.02


# --- invalid input ------------------------------------------------------------------------


def _with(**changes):
    kw = dict(HAND)
    kw.update(changes)
    return kw


INVALID = [
    ("ipw", _with(), r"^method: expected one of \['ips', 'snips', 'dm', 'dr', 'switch_dr'\], got 'ipw'"),  # noqa: E501
    ("ips", _with(reward=[]), r"^reward: expected a non-empty 1-D array, got shape \(0,\)"),
    ("ips", _with(reward=[1.0, np.nan, 0, 0]), r"^reward: expected finite numbers"),
    ("ips", _with(action=[0, 1, 2, 0]), r"^action: expected values in \[0, 2\), got range \[0, 2\]"),  # noqa: E501
    ("ips", _with(action=[0.0, 1.0, 1.0, 0.0]), r"^action: expected integers, got dtype float64"),
    ("ips", _with(action=[0, 1]), r"^action: expected shape \(4,\), got \(2,\)"),
    ("ips", _with(pscore=[0.5, 0.0, 0.25, 0.75]), r"^pscore: expected propensities in \(0, 1\], got range \[0, 0.75\]"),  # noqa: E501
    ("ips", _with(pscore=[0.5, 0.5]), r"^pscore: expected shape \(4,\), got \(2,\)"),
    ("ips", _with(action_dist=[[0.2, 0.7]] * 4), r"^action_dist: expected probabilities summing to 1 over actions"),  # noqa: E501
    ("ips", _with(action_dist=[[1.0, 0.0]] * 3), r"^action_dist: expected shape \(n_rounds=4, n_actions\)"),  # noqa: E501
    ("ips", _with(action_dist=np.full((4, 2, 2), 0.5)), r"^position: expected an array of slots when action_dist has 2 positions, got None"),  # noqa: E501
    ("dr", _with(estimated_rewards=None), r"^estimated_rewards: expected an array of shape like action_dist for this method"),  # noqa: E501
    ("dm", _with(estimated_rewards=[[0.1, 0.2]]), r"^estimated_rewards: expected the shape of action_dist \(4, 2, 1\), got \(1, 2\)"),  # noqa: E501
    ("ips", _with(alpha=1.5), r"^alpha: expected a probability in \(0, 1\), got 1.5"),
    ("ips", _with(rng=42), r"^rng: expected a numpy.random.Generator or None, got 42"),
    ("ips", _with(n_bootstrap=3), r"^n_bootstrap: expected an integer >= 10, got 3"),
    ("switch_dr", _with(switch_threshold=0.0), r"^switch_threshold: expected a positive number, got 0.0"),  # noqa: E501
]


@pytest.mark.parametrize(("method", "kw", "message"), INVALID)
def test_invalid_inputs(method, kw, message) -> None:
    with pytest.raises(StatsInputError, match=message):
        estimate_policy_value(method, **kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [(dict(context=np.zeros((3, 1))), r"^context: expected shape \(4, n_features\), got \(3, 1\)"),
     (dict(n_actions=0), r"^n_actions: expected a positive integer, got 0"),
     (dict(rng=None), r"^rng: expected a numpy.random.Generator, got None"),
     (dict(n_folds=0), r"^n_folds: expected an integer in \[1, 4\], got 0"),
     (dict(position=[0, 0, 1, 0]), r"^position: expected values in \[0, 1\), got range \[0, 1\]"),
     (dict(action=[0, 3, 1, 0]), r"^action: expected values in \[0, 2\), got range \[0, 3\]")],
)
def test_fit_reward_model_invalid(kw, message) -> None:
    args = dict(context=np.zeros((4, 1)), action=[0, 1, 1, 0], reward=[1.0, 0, 1, 0],
                n_actions=2, rng=np.random.default_rng(0))
    args.update(kw)
    with pytest.raises(StatsInputError, match=message):
        fit_reward_model(**args)
