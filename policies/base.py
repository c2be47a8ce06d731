"""The policy interface shared by A/B tests, bandits and personalization strategies.

Every policy is a small dataclass whose fields are its hyperparameters (stored unchanged,
validated in ``__post_init__``) and whose learned state is explicit (``field(init=False)``),
saved by :meth:`Policy.state_dict` and restored by :meth:`Policy.load_state_dict`.

The interface is batched::

    arms, propensities = policy.select(contexts, rng, subscribers=None, now=None)
    policy.update(arms, rewards, contexts, subscribers=None)

``contexts`` is an ``(n, d)`` float array, or ``None`` for context-free policies (then
``n`` comes from ``subscribers`` or the ``n=`` keyword). ``now`` is the decision time of
each row (int64 seconds since the epoch, UTC, supplied by the caller: the policy never
reads a clock); policies with a test window read it, the others ignore it. ``arms``
are int64 indices into ``policy.arm_names``; ``propensities[i]`` is the probability (in
``(0, 1]``) with which ``arms[i]`` was chosen. ``update`` also accepts arm *names*;
feedback may arrive late, in batches of any size and in any order.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from policies import checks
from policies.errors import PolicyError

__all__ = [
    "CALLS_TO_ACTION",
    "CONTENT_STRATEGIES",
    "REWARD_TYPES",
    "SUBJECT_STYLES",
    "ArmTallyPolicy",
    "Policy",
    "argmax_random_ties",
    "check_arm_names",
    "check_number",
    "check_reward_type",
    "state_array",
]

# The email vocabulary shared across the policy/simulator boundary, defined only here:
# an email carries the *position* of its subject style / content strategy as an integer
# code (actors.variants.ArmVariants), which the simulator's response model decodes
# (sim.presets re-exports these tuples; its per-style tables follow this order).

#: Subject-line styles (arm names of subject-line policies and of the response model).
SUBJECT_STYLES: tuple[str, ...] = (
    "plain", "first_name", "dont_miss", "limited_time", "learn", "question",
)
#: Content strategies of the rule-based personalization (docs/domain.md).
CONTENT_STRATEGIES: tuple[str, ...] = (
    "onboarding_education", "reengagement", "conversion_focused",
    "educational_nurturing", "general_engagement",
)
#: Calls to action (the email's main button): an element of multivariate tests. An email
#: without one (code -1) keeps its kind's own button and responds as before they existed.
CALLS_TO_ACTION: tuple[str, ...] = ("shop_now", "see_offer", "learn_more")
#: ``binary``: 0/1 (click, order); ``real``: any finite float (revenue).
REWARD_TYPES: tuple[str, ...] = ("binary", "real")

_STATE_VERSION = 1


def check_arm_names(arm_names: Any, name: str = "arm_names") -> tuple[str, ...]:
    """Validate a sequence of distinct non-empty arm names; return them as a tuple.

    Raises
    ------
    PolicyError
        If ``arm_names`` is not a sequence of at least two distinct non-empty strings.
    """
    if isinstance(arm_names, str) or not isinstance(arm_names, Sequence):
        raise PolicyError(f"{name}: expected a sequence of arm names, got {arm_names!r}")
    names = tuple(arm_names)
    if len(names) < 2:
        raise PolicyError(f"{name}: expected at least 2 arms, got {len(names)}")
    for i, a in enumerate(names):
        if not isinstance(a, str) or not a:
            raise PolicyError(f"{name}[{i}]: expected a non-empty string, got {a!r}")
    if len(set(names)) != len(names):
        dup = sorted({a for a in names if names.count(a) > 1})
        raise PolicyError(f"{name}: expected distinct names, got duplicates {dup}")
    return names


def check_number(name: str, value: Any, *, low: float | None = None,
                  high: float | None = None, low_open: bool = False,
                  high_open: bool = False, integer: bool = False) -> None:
    """Validate a scalar hyperparameter (finite, in range); raise PolicyError otherwise.

    ``low``/``high`` bound the value (open bounds with ``low_open``/``high_open``);
    ``integer`` requires an int. The checks and messages are :mod:`policies.checks`'
    (``epsilon: expected a number in [0, 1], got 1.5``).
    """
    if not integer:
        checks.check_number(name, value, error=PolicyError, low=low, high=high,
                            low_open=low_open, high_open=high_open)
        return
    lo = None if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
    hi = None if high is None else math.ceil(high) - 1 if high_open else math.floor(high)
    checks.check_int(name, value, error=PolicyError, low=lo, high=hi)


def check_reward_type(reward_type: Any) -> None:
    """Raise :class:`PolicyError` unless ``reward_type`` is ``"binary"`` or ``"real"``."""
    if reward_type not in ("binary", "real"):
        raise PolicyError(f"reward_type: expected 'binary' or 'real', got {reward_type!r}")


class Policy:
    """Base class of every policy (see the module docstring for the interface).

    Subclasses are dataclasses with an ``arm_names`` field (or property) and implement
    ``_select``, ``_update``, ``_get_state``, ``_set_state`` and ``reset``.
    """

    #: ``"binary"`` or ``"real"``; subclasses set it (as a field or class attribute).
    reward_type: str = "binary"
    #: True when ``select``/``update`` need ``subscribers=`` (A/B hashing, send time).
    requires_subscribers: ClassVar[bool] = False
    #: True when ``select`` needs ``now=`` (decision times: a test window that ends).
    requires_time: ClassVar[bool] = False
    #: True when propensities are exact (closed form), False when estimated.
    exact_propensities: ClassVar[bool] = True

    arm_names: Sequence[str]

    # ----------------------------------------------------------------- properties
    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arm_names)

    def arm_index(self, names: Sequence[str] | np.ndarray) -> np.ndarray:
        """Indices (int64) of arm ``names``; unknown names raise :class:`PolicyError`."""
        lookup = {a: i for i, a in enumerate(self.arm_names)}
        out = np.empty(len(names), dtype=np.int64)
        for i, a in enumerate(names):
            if a not in lookup:
                raise PolicyError(
                    f"arms[{i}]: expected one of {list(self.arm_names)}, got {a!r}")
            out[i] = lookup[a]
        return out

    # ------------------------------------------------------------------ interface
    def select(self, contexts: np.ndarray | None, rng: np.random.Generator, *,
               subscribers: np.ndarray | None = None, n: int | None = None,
               now: int | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Choose an arm for each of ``n`` rows.

        Parameters
        ----------
        contexts : ndarray of shape (n, d), or None
            Context features; ``None`` is allowed for context-free policies.
        rng : numpy.random.Generator
            Source of every random draw.
        subscribers : int64 ndarray of shape (n,), optional
            Subscriber ids; required by per-subscriber policies.
        n : int, optional
            Number of rows when neither ``contexts`` nor ``subscribers`` gives it.
        now : int or int64 ndarray of shape (n,), optional
            Decision time of each row (one int for all rows), seconds since the epoch
            (UTC); required by policies with ``requires_time``, ignored by those whose
            choices do not depend on time.

        Returns
        -------
        arms : int64 ndarray of shape (n,)
            Indices into ``arm_names``.
        propensities : float64 ndarray of shape (n,)
            Probability in (0, 1] with which each chosen arm was chosen.
        """
        if not isinstance(rng, np.random.Generator):
            raise PolicyError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        x, subs, n_rows = self._check_inputs(contexts, subscribers, n)
        times = self._check_now(now, n_rows)
        arms, props = self._select_at(x, rng, subs, n_rows, times)
        return arms, props

    def update(self, arms: Sequence[Any] | np.ndarray, rewards: Sequence[float] | np.ndarray,
               contexts: np.ndarray | None = None, *,
               subscribers: np.ndarray | None = None) -> None:
        """Learn from a batch of feedback (may be late, partial, in any order).

        Parameters
        ----------
        arms : (m,) int indices into ``arm_names`` or arm names (str)
        rewards : (m,) float; 0/1 for ``reward_type="binary"``, finite otherwise
        contexts : (m, d) float array, or None for context-free policies
        subscribers : (m,) int64 ids, for per-subscriber policies
        """
        a = self._check_arms(arms)
        r = self._check_rewards(rewards, len(a))
        x, subs, _ = self._check_inputs(contexts, subscribers, len(a), what="update")
        if len(a) == 0:
            return
        self._update(a, r, x, subs)

    def state_dict(self) -> dict[str, Any]:
        """Learned state as a JSON-serializable dict (lists, floats, ints, strings)."""
        return {"policy": type(self).__name__, "version": _STATE_VERSION,
                "state": _to_jsonable(self._get_state())}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore state saved by :meth:`state_dict` (from the same hyperparameters)."""
        if not isinstance(state, Mapping) or "state" not in state:
            raise PolicyError(
                f"state: expected a dict from state_dict(), got {type(state).__name__}")
        if state.get("policy") != type(self).__name__:
            raise PolicyError(
                f"state['policy']: expected {type(self).__name__!r}, got {state.get('policy')!r}")
        if state.get("version") != _STATE_VERSION:
            raise PolicyError(
                f"state['version']: expected {_STATE_VERSION}, got {state.get('version')!r}")
        self._set_state(state["state"])

    def params(self) -> dict[str, Any]:
        """Constructor parameters, as passed (deep copies)."""
        return {f.name: copy.deepcopy(getattr(self, f.name))
                for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.init}

    def reset(self) -> None:
        """Forget everything learned."""
        raise NotImplementedError

    # ------------------------------------------------------ subclass extension points
    def _select(self, contexts: np.ndarray | None, rng: np.random.Generator,
                subscribers: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _select_at(self, contexts: np.ndarray | None, rng: np.random.Generator,
                   subscribers: np.ndarray | None, n: int,
                   now: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``_select`` given the decision times ``now`` (int64 (n,), or None when the caller
        gave none); policies whose choices depend on time override this instead."""
        return self._select(contexts, rng, subscribers, n)

    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                subscribers: np.ndarray | None) -> None:
        raise NotImplementedError

    def _get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_state(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ validation
    def _check_inputs(self, contexts: Any, subscribers: Any, n: int | None,
                      what: str = "select") -> tuple[np.ndarray | None, np.ndarray | None, int]:
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
                raise PolicyError(f"n: expected a non-negative integer, got {n!r}")
            n = int(n)
        d = getattr(self, "n_features", None)  # context width, None = context-free
        x: np.ndarray | None = None
        if contexts is not None:
            x = np.asarray(contexts, dtype=np.float64)
            if x.ndim != 2:
                raise PolicyError(
                    f"contexts: expected a 2-d array (n, {d if d is not None else 'd'}), "
                    f"got shape {x.shape}")
            if d is not None and x.shape[1] != d:
                raise PolicyError(f"contexts: expected shape (n, {d}), got {x.shape}")
            if not np.isfinite(x).all():
                raise PolicyError("contexts: expected finite values, got NaN or inf")
            if n is not None and x.shape[0] != n:
                raise PolicyError(f"contexts: expected {n} rows, got {x.shape[0]}")
            n = x.shape[0]
        elif d is not None:
            raise PolicyError(f"contexts: expected an array of shape (n, {d}), got None")
        subs: np.ndarray | None = None
        if subscribers is not None:
            s = np.asarray(subscribers)
            if s.ndim != 1 or not (np.issubdtype(s.dtype, np.integer) or s.size == 0):
                raise PolicyError(
                    f"subscribers: expected a 1-d integer array, got dtype {s.dtype} "
                    f"shape {s.shape}")
            subs = s.astype(np.int64, copy=False)
            if n is not None and subs.shape[0] != n:
                raise PolicyError(f"subscribers: expected {n} ids, got {subs.shape[0]}")
            n = subs.shape[0]
        elif self.requires_subscribers:
            raise PolicyError(f"subscribers: {type(self).__name__}.{what} needs subscriber ids, "
                              "got None")
        if n is None:
            raise PolicyError("n: expected the number of rows (contexts, subscribers or n=), "
                              "got None")
        return x, subs, n

    def _check_now(self, now: Any, n: int) -> np.ndarray | None:
        """Decision times as int64 (n,) (an int is repeated), or None when not given."""
        if now is None:
            if self.requires_time:
                raise PolicyError(f"now: {type(self).__name__}.select needs the decision "
                                  "time (int seconds since the epoch), got None")
            return None
        if checks.is_int(now):
            return np.full(n, int(now), dtype=np.int64)
        t = np.asarray(now)
        if t.ndim != 1 or not (np.issubdtype(t.dtype, np.integer) or t.size == 0):
            raise PolicyError(f"now: expected int seconds or a 1-d integer array of {n} "
                              f"times, got {checks.show(now)}")
        if t.shape[0] != n:
            raise PolicyError(f"now: expected {n} times, got {t.shape[0]}")
        return t.astype(np.int64, copy=False)

    def _check_arms(self, arms: Any) -> np.ndarray:
        a = np.asarray(arms)
        if a.ndim != 1:
            raise PolicyError(f"arms: expected a 1-d array, got shape {a.shape}")
        if a.size == 0:
            return np.empty(0, dtype=np.int64)
        if a.dtype.kind in "USO":
            if a.dtype.kind == "O" and not all(isinstance(v, str) for v in a):
                raise PolicyError("arms: expected all indices or all names, got a mix")
            return self.arm_index(a.tolist())
        if a.dtype.kind == "f":
            if not np.isfinite(a).all() or (a != np.round(a)).any():
                raise PolicyError(f"arms: expected integer indices, got {a[:3].tolist()}")
        elif a.dtype.kind not in "iu":
            raise PolicyError(f"arms: expected integer indices or arm names, got dtype {a.dtype}")
        idx = a.astype(np.int64)
        bad = (idx < 0) | (idx >= self.n_arms)
        if bad.any():
            raise PolicyError(
                f"arms: expected indices in [0, {self.n_arms - 1}], got {idx[bad][:3].tolist()}")
        return idx

    def _check_rewards(self, rewards: Any, m: int) -> np.ndarray:
        try:
            r = np.asarray(rewards, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"rewards: expected numbers, got {rewards!r:.60}") from exc
        if r.shape != (m,):
            raise PolicyError(f"rewards: expected shape ({m},) like arms, got {r.shape}")
        if not np.isfinite(r).all():
            raise PolicyError("rewards: expected finite values, got NaN or inf")
        if self.reward_type == "binary" and ((r != 0) & (r != 1)).any():
            bad = r[(r != 0) & (r != 1)][:3].tolist()
            raise PolicyError(f"rewards: expected binary rewards 0 or 1, got {bad}")
        return r


class ArmTallyPolicy(Policy):
    """A policy that does not learn from feedback, only tallies it per arm for reporting.

    State: ``counts`` (int64, (K,)) observations and ``reward_sums`` (float64, (K,)) per
    arm. Used by :class:`~policies.ab.ABTest` and the rule-based personalization
    policies; subclasses implement ``_select`` and declare both as ``field(init=False)``.
    """

    counts: np.ndarray
    reward_sums: np.ndarray

    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                subscribers: np.ndarray | None) -> None:
        self.counts += np.bincount(arms, minlength=self.n_arms)
        self.reward_sums += np.bincount(arms, weights=rewards, minlength=self.n_arms)

    def reset(self) -> None:
        self.counts = np.zeros(self.n_arms, dtype=np.int64)
        self.reward_sums = np.zeros(self.n_arms)

    def _get_state(self) -> dict[str, Any]:
        return {"counts": self.counts, "reward_sums": self.reward_sums}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        counts = state_array(state, "counts", (self.n_arms,), nonnegative=True, dtype=np.int64)
        sums = state_array(state, "reward_sums", (self.n_arms,))
        self.counts, self.reward_sums = counts, sums


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v) for v in obj]
    return obj


def state_array(state: Mapping[str, Any], key: str, shape: tuple[int, ...], *,
                nonnegative: bool = False, dtype: Any = np.float64) -> np.ndarray:
    """Read ``state[key]`` as an array of ``shape``; PolicyError if malformed.

    ``shape`` entries of -1 accept any length on that axis.
    """
    if key not in state:
        raise PolicyError(f"state['{key}']: expected an array, missing")
    try:
        arr = np.asarray(state[key], dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"state['{key}']: expected numbers, got {state[key]!r:.60}") from exc
    if arr.ndim != len(shape) or any(s not in (-1, t) for s, t in zip(shape, arr.shape,
                                                                      strict=True)):
        raise PolicyError(f"state['{key}']: expected shape {shape}, got {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise PolicyError(f"state['{key}']: expected finite values, got NaN or inf")
    if nonnegative and (arr < 0).any():
        raise PolicyError(f"state['{key}']: expected non-negative counts, got "
                          f"{arr[arr < 0][:3].tolist()}")
    return arr.copy()


def argmax_random_ties(scores: np.ndarray, rng: np.random.Generator,
                       atol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise argmax of ``scores`` (n, K), breaking ties uniformly at random.

    Returns the chosen indices (int64, (n,)) and the number of tied maxima per row,
    so that the tie-breaking probability is ``1 / ties``. One uniform draw per row.
    """
    top = scores.max(axis=1, keepdims=True)
    is_top = scores >= top - atol
    ties = is_top.sum(axis=1)
    u = rng.random(scores.shape[0])
    # pick the k-th tied arm, k = floor(u * ties)
    k = np.minimum((u * ties).astype(np.int64), ties - 1)
    rank = np.cumsum(is_top, axis=1) - 1
    chosen = np.argmax(is_top & (rank == k[:, None]), axis=1).astype(np.int64)
    return chosen, ties
