"""``check_policy(policy)``: the conformance check every policy must pass.

Like scikit-learn's estimator checks, :func:`check_policy` runs a fixed battery of
checks on a policy *instance* (used as a template: it is cloned from its constructor
parameters and never modified) and raises :class:`AssertionError` naming the failed
check. Every ``select`` gets decision times ``now`` (a step of :data:`STEP_SECONDS` per
batch from :data:`START`, one second apart within a batch), which policies without a
time dependence ignore. The checks:

``params``        constructing from ``params()`` stores them unchanged, and selecting and
                  updating never mutates them;
``deterministic`` two clones fed the same seeds and data make identical choices;
``pickle``        a pickled-and-restored policy continues exactly like the original;
``state_dict``    the state is JSON-serializable and a fresh clone loaded from its JSON
                  continues exactly like the original; ``reset()`` returns to the start;
``output``        arms are int64 indices in range, propensities float64 in (0, 1];
``consistency``   on one repeated context, rows choosing the same arm report the same
                  propensity, and the empirical choice frequencies match the reported
                  propensities (within 5 standard errors, plus ``tolerance`` for
                  estimated propensities);
``bad_input``     wrong shapes, unknown arm names, out-of-range arm indices, rewards
                  outside the declared type, NaN, a wrong rng, malformed decision times
                  (and missing ones for ``requires_time`` policies) raise PolicyError.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from policies.base import Policy
from policies.errors import PolicyError

__all__ = ["CHECKS", "START", "STEP_SECONDS", "check_policy", "clone"]

#: Decision time (s since the epoch) of the checks' first batch, and the step between
#: batches (s).
START = 1_700_000_000
STEP_SECONDS = 3600


def clone(policy: Policy) -> Policy:
    """A fresh, unfitted policy built from ``policy``'s constructor parameters."""
    return type(policy)(**policy.params())


def _inputs(policy: Policy, n: int, rng: np.random.Generator,
            ids: np.ndarray | None = None) -> dict[str, Any]:
    d = getattr(policy, "n_features", None)
    out: dict[str, Any] = {"contexts": rng.random((n, d)) if d is not None else None}
    if policy.requires_subscribers:
        out["subscribers"] = ids if ids is not None else rng.integers(0, 50, n, dtype=np.int64)
    return out


def _rewards(policy: Policy, n: int, rng: np.random.Generator) -> np.ndarray:
    if policy.reward_type == "binary":
        return rng.integers(0, 2, n).astype(np.float64)
    return rng.random(n)


def _select(policy: Policy, inputs: dict[str, Any], rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    return policy.select(inputs["contexts"], rng, subscribers=inputs.get("subscribers"),
                         n=inputs["n"], now=inputs.get("now"))


def _run(policy: Policy, seed: int, steps: int, n: int) -> list[np.ndarray]:
    """Alternate select and (shuffled, delayed by one step) update; return the outputs."""
    rng = np.random.default_rng(seed)
    data = np.random.default_rng(seed + 1)
    out: list[np.ndarray] = []
    pending: tuple[np.ndarray, np.ndarray, dict[str, Any]] | None = None
    for step in range(steps):
        inputs = _inputs(policy, n, data)
        inputs["n"] = n
        inputs["now"] = START + step * STEP_SECONDS + np.arange(n, dtype=np.int64)
        arms, props = _select(policy, inputs, rng)
        _check_output(policy, arms, props, n)
        out += [arms, props]
        if pending is not None:
            p_arms, p_rewards, p_inputs = pending
            order = data.permutation(len(p_arms))
            ctx = p_inputs["contexts"]
            subs = p_inputs.get("subscribers")
            policy.update(p_arms[order], p_rewards[order],
                          None if ctx is None else ctx[order],
                          subscribers=None if subs is None else subs[order])
        pending = (arms, _rewards(policy, n, data), inputs)
    return out


def _check_output(policy: Policy, arms: np.ndarray, props: np.ndarray, n: int) -> None:
    name = type(policy).__name__
    assert isinstance(arms, np.ndarray) and arms.dtype == np.int64 and arms.shape == (n,), (
        f"output: {name}.select arms must be int64 of shape ({n},), got "
        f"{getattr(arms, 'dtype', type(arms))} {getattr(arms, 'shape', None)}")
    assert ((arms >= 0) & (arms < policy.n_arms)).all(), f"output: {name} arm out of range"
    assert isinstance(props, np.ndarray) and props.dtype == np.float64 and props.shape == (n,), (
        f"output: {name}.select propensities must be float64 of shape ({n},)")
    assert np.isfinite(props).all() and ((props > 0) & (props <= 1)).all(), (
        f"output: {name} propensities must be in (0, 1], got min {props.min()} "
        f"max {props.max()}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def check_params(policy: Policy) -> None:
    """Constructor stores parameters unchanged; select/update never mutate them."""
    params = policy.params()
    p = clone(policy)
    assert _same(p.params(), params), f"params: {type(policy).__name__} changed its parameters"
    snapshot = copy.deepcopy(params)
    _run(p, 0, 3, 50)
    assert _same(p.params(), snapshot), (
        f"params: {type(policy).__name__}.select/update mutated a constructor parameter")
    assert _same(policy.params(), snapshot), "params: check_policy modified the template"


def check_deterministic(policy: Policy) -> None:
    """Same seeds and data give identical arms and propensities."""
    a = _run(clone(policy), 7, 4, 60)
    b = _run(clone(policy), 7, 4, 60)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), (
        f"deterministic: {type(policy).__name__} differs between identical runs")


def check_pickle(policy: Policy) -> None:
    """A pickled-and-restored policy continues exactly like the original."""
    p = clone(policy)
    _run(p, 3, 3, 40)
    q = pickle.loads(pickle.dumps(p))
    assert all(np.array_equal(x, y) for x, y in zip(_run(p, 5, 2, 40), _run(q, 5, 2, 40),
                                                    strict=True)), (
        f"pickle: {type(policy).__name__} behaves differently after a pickle round trip")


def check_state_dict(policy: Policy) -> None:
    """State is JSON-serializable; loading it into a fresh clone restores behaviour; reset."""
    p = clone(policy)
    _run(p, 11, 3, 40)
    text = json.dumps(p.state_dict())
    q = clone(policy)
    q.load_state_dict(json.loads(text))
    assert json.loads(json.dumps(q.state_dict())) == json.loads(text), (
        f"state_dict: {type(policy).__name__} state differs after load_state_dict")
    assert all(np.array_equal(x, y) for x, y in zip(_run(p, 13, 2, 40), _run(q, 13, 2, 40),
                                                    strict=True)), (
        f"state_dict: {type(policy).__name__} behaves differently after a JSON round trip")
    p.reset()
    fresh = clone(policy)
    assert all(np.array_equal(x, y) for x, y in zip(_run(p, 17, 2, 40), _run(fresh, 17, 2, 40),
                                                    strict=True)), (
        f"state_dict: {type(policy).__name__}.reset() does not return to the initial state")


def check_consistency(policy: Policy, n: int = 4000, tolerance: float = 0.03) -> None:
    """Reported propensities agree with each other and with empirical frequencies."""
    p = clone(policy)
    _run(p, 19, 4, 200)
    data = np.random.default_rng(23)
    one = _inputs(p, 1, data)
    inputs: dict[str, Any] = {"n": n, "contexts": None if one["contexts"] is None
                              else np.repeat(one["contexts"], n, axis=0),
                              "now": START + 4 * STEP_SECONDS}
    if p.requires_subscribers:
        inputs["subscribers"] = np.arange(10**9, 10**9 + n, dtype=np.int64)  # unseen ids
    arms, props = _select(p, inputs, np.random.default_rng(29))
    _check_output(p, arms, props, n)
    name = type(policy).__name__
    tol = 0.0 if p.exact_propensities else tolerance
    total = 0.0
    for a in np.unique(arms):
        pa = props[arms == a]
        assert np.ptp(pa) <= 1e-9, (
            f"consistency: {name} reports different propensities for arm {a} on "
            f"identical rows: {pa.min()} .. {pa.max()}")
        freq = (arms == a).mean()
        se = np.sqrt(pa[0] * (1 - pa[0]) / n)
        assert abs(freq - pa[0]) <= 5 * se + tol + 1e-12, (
            f"consistency: {name} arm {a} chosen with frequency {freq:.4f} but reported "
            f"propensity {pa[0]:.4f}")
        total += pa[0]
    assert total <= 1.0 + tol * p.n_arms + 1e-9, (
        f"consistency: {name} propensities of distinct arms sum to {total:.4f} > 1")


def _bad_calls(policy: Policy) -> list[tuple[str, Callable[[Policy], Any]]]:
    d = getattr(policy, "n_features", None)
    n = 4
    rng = np.random.default_rng(0)
    ctx = rng.random((n, d)) if d is not None else None
    subs = np.arange(n, dtype=np.int64) if policy.requires_subscribers else None
    good_arms = np.zeros(n, dtype=np.int64)
    good_r = np.zeros(n)
    calls: list[tuple[str, Callable[[Policy], Any]]] = [
        ("unknown arm name", lambda p: p.update(["no-such-arm"] * n, good_r, ctx,
                                                 subscribers=subs)),
        ("arm index out of range", lambda p: p.update(np.full(n, p.n_arms), good_r, ctx,
                                                       subscribers=subs)),
        ("negative arm index", lambda p: p.update(np.full(n, -1), good_r, ctx,
                                                   subscribers=subs)),
        ("NaN reward", lambda p: p.update(good_arms, np.full(n, np.nan), ctx,
                                           subscribers=subs)),
        ("rewards of wrong length", lambda p: p.update(good_arms, np.zeros(n + 1), ctx,
                                                        subscribers=subs)),
        ("rng is not a Generator",
         lambda p: p.select(ctx, 42, subscribers=subs, n=n)),  # type: ignore[arg-type]
        ("negative n", lambda p: p.select(None, rng, n=-1)),
        ("decision times of wrong length",
         lambda p: p.select(ctx, rng, subscribers=subs, n=n,
                            now=np.arange(n + 1, dtype=np.int64))),
        ("fractional decision times",
         lambda p: p.select(ctx, rng, subscribers=subs, n=n, now=np.full(n, START + 0.5))),
    ]
    if policy.reward_type == "binary":
        calls.append(("reward 2 for a binary reward",
                      lambda p: p.update(good_arms, np.full(n, 2.0), ctx, subscribers=subs)))
    if d is not None:
        calls += [
            ("contexts with a wrong width",
             lambda p: p.select(rng.random((n, d + 1)), rng, subscribers=subs)),
            ("contexts with NaN",
             lambda p: p.select(np.full((n, d), np.nan), rng, subscribers=subs)),
            ("missing contexts", lambda p: p.select(None, rng, subscribers=subs, n=n)),
        ]
    else:
        calls.append(("1-d contexts", lambda p: p.select(np.zeros(n), rng, subscribers=subs)))
    if policy.requires_time:
        calls.append(("missing decision times",
                      lambda p: p.select(ctx, rng, subscribers=subs, n=n)))
    if policy.requires_subscribers:
        calls.append(("missing subscribers", lambda p: p.select(ctx, rng, n=n, now=START)))
        calls.append(("subscribers of wrong length",
                      lambda p: p.select(ctx, rng, subscribers=np.arange(n + 1), n=n,
                                         now=START)))
    return calls


def check_bad_input(policy: Policy) -> None:
    """Each malformed call raises PolicyError (a ValueError) naming the argument."""
    for what, call in _bad_calls(policy):
        p = clone(policy)
        try:
            call(p)
        except PolicyError as exc:
            assert str(exc), f"bad_input: {type(policy).__name__}: empty message for {what}"
            continue
        raise AssertionError(f"bad_input: {type(policy).__name__} accepted {what}")


CHECKS: dict[str, Callable[[Policy], None]] = {
    "params": check_params,
    "deterministic": check_deterministic,
    "pickle": check_pickle,
    "state_dict": check_state_dict,
    "consistency": check_consistency,
    "bad_input": check_bad_input,
}


def check_policy(policy: Policy) -> None:
    """Run every conformance check on ``policy`` (which is left untouched).

    Raises
    ------
    AssertionError
        Naming the first failed check (``params``, ``deterministic``, ``pickle``,
        ``state_dict``, ``consistency``, ``bad_input``) and what went wrong.
    """
    for check in CHECKS.values():
        check(policy)
