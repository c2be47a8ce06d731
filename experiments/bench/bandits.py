"""Bandit throughput and regret: ``python -m experiments.bench bandits [--json] [--record]``.

Context-free problem (issue 4): 10 arms with click probabilities
``linspace(0.01, 0.05, 10)``, 1,000,000 rounds in batches of 1,000, for each context-free
policy; rounds/s counts only the time inside ``select`` + ``update`` and cumulative
(pseudo-)regret is ``sum(p_best - p_arm)``, both the mean of 3 seeds. The same problem
runs through MABWiser (benchmark-only dependency, ``bench`` extra) side by side; its
rounds/s is measured over ``--mabwiser-rounds`` rounds (default: all) and the regret of
both libraries is compared on that same horizon. ``*_regret_se`` is the standard error
of the mean regret over the seeds: with 3 seeds, Thompson-sampling regret differences
of +-30 % between two implementations of the same algorithm are noise.

Contextual problem: LinUCB, linear and logistic Thompson sampling with d = 20 features,
10 arms, logistic click model, ``--contextual-rounds`` rounds in batches of 1,000 (the
numba propensity kernel is compiled before timing: a one-off ~0.5 s per process).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from experiments.bench._common import emit
from policies.bandits import (
    EXP3,
    UCB1,
    BetaThompson,
    DiscountedThompson,
    EpsilonGreedy,
    GaussianThompson,
    LinearThompson,
    LinUCB,
    LogisticThompson,
    SlidingWindowThompson,
    Softmax,
    gaussian_max_probability,
)
from policies.base import Policy

K = 10
PROBS = np.linspace(0.01, 0.05, K)
ARMS = [f"arm{i}" for i in range(K)]

CONTEXT_FREE: dict[str, Callable[[], Policy]] = {
    "beta_ts": lambda: BetaThompson(ARMS),
    "gaussian_ts": lambda: GaussianThompson(ARMS, prior_mean=0.03, prior_variance=0.03,
                                            reward_type="binary"),
    "epsilon_greedy": lambda: EpsilonGreedy(ARMS, epsilon=0.01),
    "ucb1": lambda: UCB1(ARMS),
    "softmax": lambda: Softmax(ARMS, temperature=0.005),
    "exp3": lambda: EXP3(ARMS, gamma=0.01),
    "discounted_ts": lambda: DiscountedThompson(ARMS, discount=0.99999),
    "sliding_window_ts": lambda: SlidingWindowThompson(ARMS, window=200_000),
}


def _run_ours(make: Callable[[], Policy], seed: int, rounds: int, batch: int,
              checkpoint: int) -> tuple[float, float, float]:
    """(policy seconds, regret at ``rounds``, regret at ``checkpoint``)."""
    policy = make()
    rng = np.random.default_rng([seed, 1])
    env = np.random.default_rng([seed, 2])
    gap = PROBS.max() - PROBS
    spent, regret, at_checkpoint = 0.0, 0.0, float("nan")
    for start in range(0, rounds, batch):
        t0 = time.perf_counter()
        arms, _ = policy.select(None, rng, n=batch)
        t1 = time.perf_counter()
        rewards = (env.random(batch) < PROBS[arms]).astype(np.float64)
        t2 = time.perf_counter()
        policy.update(arms, rewards)
        spent += (t1 - t0) + (time.perf_counter() - t2)
        regret += float(gap[arms].sum())
        if start + batch == checkpoint:
            at_checkpoint = regret
    return spent, regret, at_checkpoint


def _mabwiser_policies() -> dict[str, Any]:
    from mabwiser.mab import LearningPolicy

    return {
        "beta_ts": LearningPolicy.ThompsonSampling(),
        "epsilon_greedy": LearningPolicy.EpsilonGreedy(epsilon=0.01),
        "ucb1": LearningPolicy.UCB1(alpha=float(np.sqrt(2.0))),
        "softmax": LearningPolicy.Softmax(tau=0.005),
    }


def _run_mabwiser(learning_policy: Any, seed: int, rounds: int, batch: int
                  ) -> tuple[float, float]:
    from mabwiser.mab import MAB

    mab = MAB(list(range(K)), learning_policy, seed=seed)
    env = np.random.default_rng([seed, 2])
    gap = PROBS.max() - PROBS
    dummy = np.zeros((batch, 1))
    spent, regret = 0.0, 0.0
    # MABWiser needs a first fit before predicting: one round per arm (counted in regret)
    first = np.arange(K)
    t0 = time.perf_counter()
    mab.fit(first, (env.random(K) < PROBS[first]).astype(np.int64))
    spent += time.perf_counter() - t0
    regret += float(gap[first].sum())
    for _ in range(0, rounds - K, batch):
        t0 = time.perf_counter()
        arms = np.asarray(mab.predict(dummy), dtype=np.int64)
        t1 = time.perf_counter()
        rewards = (env.random(batch) < PROBS[arms]).astype(np.int64)
        t2 = time.perf_counter()
        mab.partial_fit(arms, rewards)
        spent += (t1 - t0) + (time.perf_counter() - t2)
        regret += float(gap[arms].sum())
    return spent, regret


def _run_contextual(make: Callable[[], Policy], seed: int, rounds: int, batch: int,
                    d: int) -> tuple[float, float, float]:
    """(policy seconds, regret, regret of uniform random) on a logistic click model."""
    policy = make()
    rng = np.random.default_rng([seed, 1])
    env = np.random.default_rng([seed, 2])
    theta = env.normal(0.0, 1.0, (K, d)) / np.sqrt(d)
    spent, regret, random_regret = 0.0, 0.0, 0.0
    for _ in range(0, rounds, batch):
        x = env.normal(0.0, 1.0, (batch, d))
        x[:, 0] = 1.0
        p = 1.0 / (1.0 + np.exp(-(x @ theta.T - 3.0)))            # (batch, K), ~5 %
        t0 = time.perf_counter()
        arms, _ = policy.select(x, rng)
        t1 = time.perf_counter()
        rows = np.arange(batch)
        rewards = (env.random(batch) < p[rows, arms]).astype(np.float64)
        t2 = time.perf_counter()
        policy.update(arms, rewards, x)
        spent += (t1 - t0) + (time.perf_counter() - t2)
        best = p.max(axis=1)
        regret += float((best - p[rows, arms]).sum())
        random_regret += float((best - p.mean(axis=1)).sum())
    return spent, regret, random_regret


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench bandits")
    parser.add_argument("--rounds", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--mabwiser-rounds", type=int, default=None,
                        help="rounds for MABWiser (default: --rounds)")
    parser.add_argument("--contextual-rounds", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--policies", default=",".join(CONTEXT_FREE),
                        help="comma-separated subset of " + ",".join(CONTEXT_FREE))
    parser.add_argument("--no-mabwiser", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    rounds, batch = args.rounds, args.batch
    mab_rounds = args.mabwiser_rounds or rounds
    if rounds % batch or mab_rounds % batch:
        parser.error("--rounds and --mabwiser-rounds must be multiples of --batch")
    seeds = range(args.seeds)
    names = [n for n in args.policies.split(",") if n]
    unknown = [n for n in names if n not in CONTEXT_FREE]
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {list(CONTEXT_FREE)}")

    figures: dict[str, Any] = {"rounds": rounds, "batch": batch, "seeds": args.seeds,
                               "mabwiser_rounds": mab_rounds,
                               "uniform_random_regret": float(rounds * (PROBS.max()
                                                                        - PROBS.mean()))}
    lines = [f"{'policy':<18} {'rounds/s':>12} {'regret':>9} {'regret@mab':>11} "
             f"{'mabwiser r/s':>13} {'mab regret':>11} {'speed x':>8} {'regret x':>9}"]
    mab = {} if args.no_mabwiser else _mabwiser_policies()
    for name in names:
        runs = [_run_ours(CONTEXT_FREE[name], s, rounds, batch, mab_rounds) for s in seeds]
        rps = rounds * len(runs) / sum(r[0] for r in runs)
        regret = float(np.mean([r[1] for r in runs]))
        regret_at = float(np.mean([r[2] for r in runs]))
        figures[f"{name}_rounds_per_s"] = rps
        figures[f"{name}_regret"] = regret
        figures[f"{name}_regret_se"] = float(np.std([r[1] for r in runs], ddof=1)
                                             / np.sqrt(len(runs))) if len(runs) > 1 else 0.0
        row = f"{name:<18} {rps:>12,.0f} {regret:>9,.0f} {regret_at:>11,.0f}"
        if name in mab:
            mruns = [_run_mabwiser(mab[name], s, mab_rounds, batch) for s in seeds]
            mrps = mab_rounds * len(mruns) / sum(r[0] for r in mruns)
            mregret = float(np.mean([r[1] for r in mruns]))
            figures[f"mabwiser_{name}_rounds_per_s"] = mrps
            figures[f"mabwiser_{name}_regret"] = mregret
            figures[f"mabwiser_{name}_regret_se"] = float(
                np.std([r[1] for r in mruns], ddof=1) / np.sqrt(len(mruns))
            ) if len(mruns) > 1 else 0.0
            figures[f"{name}_speedup_vs_mabwiser"] = rps / mrps
            figures[f"{name}_regret_ratio_vs_mabwiser"] = regret_at / mregret
            row += (f" {mrps:>13,.0f} {mregret:>11,.0f} {rps / mrps:>8.2f}"
                    f" {regret_at / mregret:>9.2f}")
        lines.append(row)

    contextual: dict[str, Callable[[], Policy]] = {
        "linucb": lambda: LinUCB(ARMS, n_features=args.features, alpha=0.5),
        "linear_ts": lambda: LinearThompson(ARMS, n_features=args.features, v=0.2),
        "logistic_ts": lambda: LogisticThompson(ARMS, n_features=args.features, v=1.0),
    }
    if args.contextual_rounds:
        # compile the numba propensity kernel once, outside the timed region
        gaussian_max_probability(np.zeros((1, 2)), np.ones((1, 2)), np.zeros(1, dtype=np.int64))
        lines.append("")
        lines.append(f"{'contextual (d=' + str(args.features) + ')':<18} {'rounds/s':>12} "
                     f"{'regret':>9} {'random':>11}")
        for name, make in contextual.items():
            cruns = [_run_contextual(make, s, args.contextual_rounds, batch, args.features)
                     for s in seeds]
            crps = args.contextual_rounds * len(cruns) / sum(r[0] for r in cruns)
            cregret = float(np.mean([r[1] for r in cruns]))
            crandom = float(np.mean([r[2] for r in cruns]))
            figures[f"{name}_d{args.features}_rounds_per_s"] = crps
            figures[f"{name}_d{args.features}_regret"] = cregret
            figures[f"{name}_d{args.features}_random_regret"] = crandom
            lines.append(f"{name:<18} {crps:>12,.0f} {cregret:>9,.0f} {crandom:>11,.0f}")
    emit("bandits", argv, figures, as_json=args.json, record=args.record,
         title="bandits", table="\n".join(lines))
    return 0
