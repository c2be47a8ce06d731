r"""Off-policy evaluation: the value of a new policy estimated from an old policy's logs.

The interface follows Open Bandit Pipeline (OBP): round ``i`` of the log has a reward
:math:`r_i`, the logged action :math:`a_i` (an int in ``[0, n_actions)``), the logging
policy's propensity :math:`p_i = \pi_0(a_i \mid x_i)`, optionally the slot
:math:`k_i` (``position``) of a ranked list, and the evaluation policy's distribution
``action_dist[i, a, k]`` :math:`= \pi_e(a \mid x_i, k)`. With importance weight
:math:`w_i = \pi_e(a_i \mid x_i, k_i) / p_i` and a reward model
:math:`\hat q(x_i, a, k)` (``estimated_rewards``), the per-round values are

- ``ips``: :math:`v_i = w_i r_i`;
- ``dm``: :math:`v_i = \hat q_i^{\pi} := \sum_a \pi_e(a \mid x_i, k_i)\,\hat q(x_i, a, k_i)`;
- ``dr``: :math:`v_i = \hat q_i^{\pi} + w_i (r_i - \hat q(x_i, a_i, k_i))`;
- ``switch_dr``: like ``dr`` but the correction term is dropped where
  :math:`w_i > \lambda` (``switch_threshold``): :math:`v_i = \hat q_i^{\pi} +
  w_i 1\{w_i \le \lambda\}(r_i - \hat q(x_i, a_i, k_i))` (Wang et al., 2017);

and the estimate is their mean. ``snips`` is the ratio
:math:`\sum_i w_i r_i / \sum_i w_i`.

Confidence intervals: with ``rng=None`` a normal interval
:math:`\hat V \pm z_{1-\alpha/2}\, s / \sqrt n` where :math:`s` is the sample standard
deviation of the per-round values (for ``snips``, of the delta-method influence values
:math:`w_i (r_i - \hat V) / \bar w`). With a generator ``rng`` a nonparametric bootstrap
over rounds (the whole estimator, ratio included, recomputed on each resample) and its
percentile interval. Both treat ``estimated_rewards`` as fixed: reward-model uncertainty
is not propagated, so fit it with cross-fitting (:func:`fit_reward_model`) so that a
round's prediction never saw that round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

from experiments.stats._validate import _short, check_alpha, check_choice
from policies.errors import StatsInputError

__all__ = ["OPE_METHODS", "PolicyValueEstimate", "estimate_policy_value", "fit_reward_model"]

OPE_METHODS = ("ips", "snips", "dm", "dr", "switch_dr")
_CHUNK_VALUES = 4_000_000


@dataclass(frozen=True)
class PolicyValueEstimate:
    """Estimated value of the evaluation policy (reward units per round).

    Attributes
    ----------
    method : the estimator.
    estimate : point estimate of :math:`E[r]` under the evaluation policy.
    ci_low, ci_high : ``1 - alpha`` confidence interval.
    standard_error : normal-theory standard error, or the bootstrap replicates' standard
        deviation when ``ci_method == "bootstrap"``.
    n_rounds : number of logged rounds.
    ci_method : ``"normal"`` or ``"bootstrap"``.
    alpha : the level used.
    """

    method: str
    estimate: float
    ci_low: float
    ci_high: float
    standard_error: float
    n_rounds: int
    ci_method: str
    alpha: float


def _as_1d(value: Any, name: str, dtype: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise StatsInputError(
            f"{name}: expected an array of numbers, got {_short(value)}"
        ) from None
    if arr.ndim != 1 or arr.size == 0:
        raise StatsInputError(
            f"{name}: expected a non-empty 1-D array, got shape {np.shape(value)}"
        )
    return arr


def _int_array(value: Any, name: str, n: int, high: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise StatsInputError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise StatsInputError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        raise StatsInputError(
            f"{name}: expected values in [0, {high}), got range [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64)


def _validated(reward: Any, action: Any, pscore: Any, action_dist: Any, position: Any,
               estimated_rewards: Any, need_model: bool):
    r = _as_1d(reward, "reward", np.float64)
    n = r.size
    if not np.all(np.isfinite(r)):
        raise StatsInputError("reward: expected finite numbers, got NaN or inf")
    dist = np.asarray(action_dist, dtype=np.float64)
    if dist.ndim == 2:
        dist = dist[:, :, None]
    if dist.ndim != 3 or dist.shape[0] != n:
        raise StatsInputError(
            f"action_dist: expected shape (n_rounds={n}, n_actions) or (n_rounds, n_actions, "
            f"n_positions), got {np.shape(action_dist)}"
        )
    n_actions, len_list = dist.shape[1], dist.shape[2]
    if not np.all(np.isfinite(dist)) or np.any(dist < 0) or \
            not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
        raise StatsInputError(
            "action_dist: expected probabilities summing to 1 over actions (axis 1)"
        )
    a = _int_array(action, "action", n, n_actions)
    p = _as_1d(pscore, "pscore", np.float64)
    if p.shape != (n,):
        raise StatsInputError(f"pscore: expected shape ({n},), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any((p <= 0) | (p > 1)):
        raise StatsInputError(
            f"pscore: expected propensities in (0, 1], got range [{np.nanmin(p):g}, "
            f"{np.nanmax(p):g}]"
        )
    if position is None:
        if len_list > 1:
            raise StatsInputError(
                f"position: expected an array of slots when action_dist has {len_list} "
                "positions, got None"
            )
        k = np.zeros(n, dtype=np.int64)
    else:
        k = _int_array(position, "position", n, len_list)
    q = None
    if estimated_rewards is not None:
        q = np.asarray(estimated_rewards, dtype=np.float64)
        if q.ndim == 2:
            q = q[:, :, None]
        if q.shape != dist.shape:
            raise StatsInputError(
                f"estimated_rewards: expected the shape of action_dist {dist.shape}, got "
                f"{np.shape(estimated_rewards)}"
            )
        if not np.all(np.isfinite(q)):
            raise StatsInputError("estimated_rewards: expected finite numbers")
    elif need_model:
        raise StatsInputError(
            "estimated_rewards: expected an array of shape like action_dist for this method "
            "(fit one with fit_reward_model), got None"
        )
    return r, a, p, dist, k, q


def estimate_policy_value(method: str, reward: Any, action: Any, pscore: Any,
                          action_dist: Any, position: Any = None,
                          estimated_rewards: Any = None, alpha: float = 0.05,
                          rng: np.random.Generator | None = None, *,
                          n_bootstrap: int = 2000,
                          switch_threshold: float = 10.0) -> PolicyValueEstimate:
    r"""Estimate the per-round value of an evaluation policy from logged bandit data.

    Formulas and the interval construction are in the module docstring.

    Parameters
    ----------
    method : {"ips", "snips", "dm", "dr", "switch_dr"}
    reward : array_like, shape (n_rounds,)
        Observed rewards (e.g. 0/1 click, or order value in currency).
    action : array_like of int, shape (n_rounds,)
        Logged actions in ``[0, n_actions)``.
    pscore : array_like, shape (n_rounds,)
        Logging propensities of the logged actions, in (0, 1].
    action_dist : array_like, shape (n_rounds, n_actions) or (n_rounds, n_actions, n_positions)
        Evaluation policy's action probabilities (sum to 1 over axis 1), as in OBP.
    position : array_like of int, shape (n_rounds,), optional
        Slot of each round; required when there is more than one position.
    estimated_rewards : array_like, shape like ``action_dist``, optional
        Reward model :math:`\hat q(x_i, a, k)`; required by ``dm``, ``dr``, ``switch_dr``.
    alpha : float in (0, 1)
        The interval has coverage ``1 - alpha``.
    rng : numpy.random.Generator, optional
        When given, a bootstrap interval with ``n_bootstrap`` resamples is computed from it;
        otherwise a normal interval.
    n_bootstrap : int >= 10, keyword-only
    switch_threshold : float > 0, keyword-only
        :math:`\lambda` of ``switch_dr``: importance weights above it use the reward model
        only. ``inf`` makes ``switch_dr`` equal to ``dr``.

    Returns
    -------
    PolicyValueEstimate
    """
    method = check_choice(method, "method", OPE_METHODS)
    alpha = check_alpha(alpha)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise StatsInputError(f"rng: expected a numpy.random.Generator or None, got {_short(rng)}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) \
            or n_bootstrap < 10:
        raise StatsInputError(f"n_bootstrap: expected an integer >= 10, got {_short(n_bootstrap)}")
    lam = float(switch_threshold)
    if not lam > 0:
        raise StatsInputError(
            f"switch_threshold: expected a positive number, got {_short(switch_threshold)}"
        )
    r, a, p, dist, k, q = _validated(reward, action, pscore, action_dist, position,
                                     estimated_rewards, method in ("dm", "dr", "switch_dr"))
    n = r.size
    rows = np.arange(n)
    w = dist[rows, a, k] / p
    if method == "snips":
        num, den = w * r, w
        est = float(num.sum() / den.sum())
        values = w * (r - est) / w.mean()
    else:
        if method == "ips":
            values = w * r
        else:
            assert q is not None
            q_pi = np.einsum("na,na->n", dist[rows, :, k], q[rows, :, k])
            if method == "dm":
                values = q_pi
            else:
                resid = r - q[rows, a, k]
                keep = w if method == "dr" else w * (w <= lam)
                values = q_pi + keep * resid
        est = float(values.mean())
        num, den = values, None
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    if rng is None:
        z = _st.norm.ppf(1 - alpha / 2)
        return PolicyValueEstimate(method, est, est - z * se, est + z * se, se, n, "normal",
                                   alpha)
    reps = np.empty(int(n_bootstrap))
    chunk = max(1, _CHUNK_VALUES // n)
    for start in range(0, int(n_bootstrap), chunk):
        m = min(chunk, int(n_bootstrap) - start)
        idx = rng.integers(0, n, size=(m, n))
        if den is None:
            reps[start:start + m] = num[idx].mean(axis=1)
        else:
            reps[start:start + m] = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return PolicyValueEstimate(method, est, float(lo), float(hi), float(reps.std(ddof=1)), n,
                               "bootstrap", alpha)


def _design(context: np.ndarray, action: np.ndarray, position: np.ndarray, n_actions: int,
            len_list: int, interactions: bool) -> np.ndarray:
    one_a = np.eye(n_actions)[action]
    parts = [context, one_a]
    if len_list > 1:
        parts.append(np.eye(len_list)[position])
    if interactions:
        parts.append((context[:, :, None] * one_a[:, None, :]).reshape(len(action), -1))
    return np.hstack(parts)


def fit_reward_model(context: Any, action: Any, reward: Any, n_actions: int,
                     rng: np.random.Generator, position: Any = None, len_list: int = 1,
                     model: Any = None, n_folds: int = 3,
                     interactions: bool = True) -> np.ndarray:
    r"""Fit :math:`\hat q(x, a, k)` with scikit-learn and K-fold cross-fitting.

    Rounds are split at random into ``n_folds`` folds; for each fold a clone of ``model``
    is fitted on the other folds and predicts that fold's rounds for every action and
    position. Every prediction is therefore out-of-sample for its round, which keeps
    ``dr`` free of own-observation overfitting bias (as OBP's
    ``RegressionModel.fit_predict``).

    Parameters
    ----------
    context : array_like, shape (n_rounds, n_features)
        Context features :math:`x_i`.
    action : array_like of int, shape (n_rounds,)
        Logged actions.
    reward : array_like, shape (n_rounds,)
        Observed rewards.
    n_actions : int
        Number of actions.
    rng : numpy.random.Generator
        Draws the fold assignment.
    position : array_like of int, shape (n_rounds,), optional
        Logged slots in ``[0, len_list)``.
    len_list : int, default 1
        Number of positions.
    model : scikit-learn estimator, optional
        Cloned for each fold. Default: ``LogisticRegression(C=100, max_iter=1000)`` when
        the rewards are all 0/1, ``Ridge(alpha=1e-3)`` otherwise. Classifiers with
        ``predict_proba`` are read as :math:`P(r = 1)`.
    n_folds : int >= 1, default 3
        ``1`` fits and predicts in-sample (no cross-fitting).
    interactions : bool, default True
        Features are ``[x, onehot(a), onehot(k), x * onehot(a)]``; without the interaction
        block a linear model cannot let the best action depend on the context.

    Returns
    -------
    numpy.ndarray, shape (n_rounds, n_actions, len_list)
        ``estimated_rewards`` for :func:`estimate_policy_value`.
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression, Ridge

    x = np.asarray(context, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    r = _as_1d(reward, "reward", np.float64)
    n = r.size
    if x.ndim != 2 or x.shape[0] != n:
        raise StatsInputError(f"context: expected shape ({n}, n_features), got {np.shape(context)}")
    if not isinstance(n_actions, (int, np.integer)) or n_actions < 1:
        raise StatsInputError(f"n_actions: expected a positive integer, got {_short(n_actions)}")
    if not isinstance(len_list, (int, np.integer)) or len_list < 1:
        raise StatsInputError(f"len_list: expected a positive integer, got {_short(len_list)}")
    a = _int_array(action, "action", n, int(n_actions))
    k = np.zeros(n, dtype=np.int64) if position is None else _int_array(
        position, "position", n, int(len_list))
    if not isinstance(rng, np.random.Generator):
        raise StatsInputError(f"rng: expected a numpy.random.Generator, got {_short(rng)}")
    if not isinstance(n_folds, (int, np.integer)) or not 1 <= n_folds <= n:
        raise StatsInputError(f"n_folds: expected an integer in [1, {n}], got {_short(n_folds)}")
    binary = bool(np.all((r == 0) | (r == 1)))
    if model is None:
        model = LogisticRegression(C=100.0, max_iter=1000) if binary else Ridge(alpha=1e-3)
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) % n_folds
    out = np.empty((n, int(n_actions), int(len_list)))
    for f in range(n_folds):
        test = fold == f
        train = ~test if n_folds > 1 else test
        est = clone(model).fit(_design(x[train], a[train], k[train], n_actions, len_list,
                                       interactions), r[train])
        xt = x[test]
        for act in range(n_actions):
            for pos in range(len_list):
                design = _design(xt, np.full(len(xt), act), np.full(len(xt), pos), n_actions,
                                 len_list, interactions)
                if hasattr(est, "predict_proba"):
                    proba = est.predict_proba(design)
                    classes = list(est.classes_)
                    pred = proba[:, classes.index(1)] if 1 in classes else np.zeros(len(xt))
                else:
                    pred = est.predict(design)
                out[test, act, pos] = pred
    return out
