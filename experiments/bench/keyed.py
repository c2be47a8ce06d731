"""``python -m experiments.bench keyed``: what a keyed policy draw costs per row.

For each policy (a 3-arm subject test; contextual ones with the 12 subscriber
features), after ``--updates`` rewarded sends: wall microseconds per row of

* ``batch`` -- one ``policy.select`` for ``--rows`` rows with one generator (what a
  simulator run with ``draws: batch`` does each tick);
* ``keyed`` -- :func:`policies.keyed.select_keyed` over ``--rows`` trigger ids (what the
  trigger service does for each fire, and a run with ``draws: keyed``).

Best of ``--repeat``. Figures ``<policy>_batch_us_per_row`` and
``<policy>_keyed_us_per_row``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from experiments.bench._common import emit

POLICIES: dict[str, dict[str, Any]] = {
    "thompson": {},
    "epsilon_greedy": {"epsilon": 0.1},
    "ucb1": {},
    "softmax": {},
    "gaussian_thompson": {},
    "ab": {},
    "auto_winner": {},
    "linucb": {},
    "lin_thompson": {},
    "logistic_thompson": {},
}
ARMS = ["plain", "question", "dont_miss"]


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(rows: int = 2000, updates: int = 5000, repeat: int = 3,
            seed: int = 1) -> dict[str, Any]:
    """The figures (module docstring)."""
    from actors.registry import make_policy
    from policies.features import FEATURE_NAMES
    from policies.keyed import select_keyed

    rng = np.random.default_rng(seed)
    d = len(FEATURE_NAMES)
    keys = [f"cart_abandonment_24h:{i}:{1_767_600_000 + 17 * i}" for i in range(rows)]
    subs = np.arange(rows, dtype=np.int64)
    now = np.full(rows, 1_767_700_000, np.int64)
    out: dict[str, Any] = {"rows": rows, "updates": updates}
    for name, extra in POLICIES.items():
        params = {"arms": ARMS} if name == "ab" else {"arm_names": ARMS, **extra}
        policy = make_policy(name, params, decides="subject_style", reward="click",
                             seed=seed)
        contextual = getattr(policy, "n_features", None) is not None
        x = rng.random((max(rows, updates), d)) if contextual else None
        arms = rng.integers(0, len(ARMS), updates)
        rewards = (rng.random(updates) < np.array([0.02, 0.03, 0.025])[arms]).astype(float)
        policy.update(arms, rewards, None if x is None else x[:updates],
                      subscribers=rng.integers(0, 10**6, updates))
        ctx = None if x is None else x[:rows]

        def batch(p: Any = policy, c: Any = ctx) -> None:
            p.select(c, np.random.default_rng([seed, 7]), subscribers=subs, n=rows, now=now)

        def keyed(p: Any = policy, c: Any = ctx) -> None:
            select_keyed(p, keys, seed, contexts=c, subscribers=subs, now=now)

        out[f"{name}_batch_us_per_row"] = _best(batch, repeat) / rows * 1e6
        out[f"{name}_keyed_us_per_row"] = _best(keyed, repeat) / rows * 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m experiments.bench keyed")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--updates", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if min(args.rows, args.updates, args.repeat) < 1 or args.seed < 0:
        p.error("--rows, --updates and --repeat must be >= 1, --seed >= 0")
    figures = measure(args.rows, args.updates, args.repeat, args.seed)
    emit("keyed", argv, figures, as_json=args.json, record=args.record,
         title="keyed policy draws (per row, keyed vs one batch)")
    return 0
