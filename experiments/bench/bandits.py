"""Bandit throughput and regret: ``python -m experiments.bench bandits [--json] [--record]``.

Context-free problem (issue 4): 10 arms with click probabilities
``linspace(0.01, 0.05, 10)``, 1,000,000 rounds in batches of 1,000, for each context-free
policy; rounds/s counts only the time inside ``select`` + ``update`` and cumulative
(pseudo-)regret is ``sum(p_best - p_arm)``, both the mean of 3 seeds. Round ``i`` is
decided at time ``i`` seconds (``now``) for subscriber id ``i``; the explore-then-commit
rules (``auto_winner``: Klaviyo's defaults, 500 recipients per variant and 90 % win
probability; ``winning_path``: a test window of :data:`WINDOW_ROUNDS` rounds) and the
fixed equal split ``ab`` are there to compare with Thompson sampling. The same problem
runs through MABWiser (benchmark-only dependency, ``bench`` extra) side by side; its
rounds/s is measured over ``--mabwiser-rounds`` rounds (default: all) and the regret of
both libraries is compared on that same horizon (MABWiser's first ``fit`` on one round
per arm counts as K of those rounds).

Rewards come from a reward tape (:mod:`experiments.bench._reward_tape`, common random
numbers): for seed ``s`` the ``k``-th pull of arm ``a`` gets the ``k``-th outcome of
arm ``a``'s pre-drawn Bernoulli sequence, the same for every policy and for MABWiser.
Different seeds give independent tapes, so the seeds are independent replicates and
``ours - MABWiser`` per seed is a paired difference. Reported per policy:
``*_regret_per_seed``, ``*_regret_se`` (standard error of the mean over seeds) and, for
policies also run through MABWiser, ``{name}_regret_diff_vs_mabwiser`` (mean over seeds
of ours minus MABWiser's regret at the MABWiser horizon), ``{name}_regret_diff_se``
(its paired standard error) and ``{name}_regret_corr_vs_mabwiser`` (correlation of the
two libraries' per-seed regrets). The selection randomness is still each library's own
(``default_rng([seed, 1])`` for ours, ``MAB(seed=seed)``), so the pairing removes the
reward noise only.

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
from experiments.bench._reward_tape import RewardTape
from policies.ab import ABTest
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
from policies.explore_commit import AutoWinner, ExploreThenCommit, WinningPath

K = 10
PROBS = np.linspace(0.01, 0.05, K)
ARMS = [f"arm{i}" for i in range(K)]
#: Test window of ``winning_path``, in rounds (= seconds): 10,000 recipients per arm.
WINDOW_ROUNDS = 100_000

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
    "ab": lambda: ABTest(ARMS, salt="bench"),
    "auto_winner": lambda: AutoWinner(ARMS),
    "winning_path": lambda: WinningPath(ARMS, experiment_window=WINDOW_ROUNDS),
}


def _run_ours(make: Callable[[], Policy], seed: int, rounds: int, batch: int,
              checkpoint: int) -> tuple[float, float, float, Policy]:
    """(policy seconds, regret at ``rounds``, regret at ``checkpoint``, the policy)."""
    policy = make()
    rng = np.random.default_rng([seed, 1])
    tape = RewardTape(PROBS, seed)
    gap = PROBS.max() - PROBS
    spent, regret, at_checkpoint = 0.0, 0.0, float("nan")
    for start in range(0, rounds, batch):
        ids = np.arange(start, start + batch, dtype=np.int64)   # round = subscriber = second
        t0 = time.perf_counter()
        arms, _ = policy.select(None, rng, n=batch, now=ids,
                                subscribers=ids if policy.requires_subscribers else None)
        t1 = time.perf_counter()
        rewards = tape.rewards(arms)
        t2 = time.perf_counter()
        policy.update(arms, rewards, subscribers=ids if policy.requires_subscribers else None)
        spent += (t1 - t0) + (time.perf_counter() - t2)
        regret += float(gap[arms].sum())
        if start + batch == checkpoint:
            at_checkpoint = regret
    return spent, regret, at_checkpoint, policy


def _se(values: list[float]) -> float:
    """Standard error of the mean of ``values`` (0 for a single value)."""
    if len(values) < 2:
        return 0.0
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


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
    """(MABWiser seconds, regret over exactly ``rounds`` rounds)."""
    from mabwiser.mab import MAB

    mab = MAB(list(range(K)), learning_policy, seed=seed)
    tape = RewardTape(PROBS, seed)
    gap = PROBS.max() - PROBS
    dummy = np.zeros((batch, 1))
    spent, regret = 0.0, 0.0
    # MABWiser needs a first fit before predicting: one round per arm (counted in the
    # rounds and the regret); the last batch is K rounds short so the horizon is `rounds`
    first = np.arange(K)
    t0 = time.perf_counter()
    mab.fit(first, tape.rewards(first).astype(np.int64))
    spent += time.perf_counter() - t0
    regret += float(gap[first].sum())
    for start in range(K, rounds, batch):
        m = min(batch, rounds - start)
        t0 = time.perf_counter()
        arms = np.asarray(mab.predict(dummy[:m]), dtype=np.int64).reshape(m)
        t1 = time.perf_counter()
        rewards = tape.rewards(arms).astype(np.int64)
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
    lines = [f"{'policy':<18} {'rounds/s':>12} {'regret':>9} {'+-se':>6} {'regret@mab':>11} "
             f"{'mabwiser r/s':>13} {'mab regret':>11} {'+-se':>6} {'speed x':>8} "
             f"{'regret x':>9} {'diff':>7} {'+-se':>6}"]
    mab = {} if args.no_mabwiser else _mabwiser_policies()
    notes: list[str] = []
    for name in names:
        runs = [_run_ours(CONTEXT_FREE[name], s, rounds, batch, mab_rounds) for s in seeds]
        rps = rounds * len(runs) / sum(r[0] for r in runs)
        per_seed = [r[1] for r in runs]
        regret, regret_se = float(np.mean(per_seed)), _se(per_seed)
        regret_at = float(np.mean([r[2] for r in runs]))
        figures[f"{name}_rounds_per_s"] = rps
        figures[f"{name}_regret"] = regret
        figures[f"{name}_regret_se"] = regret_se
        figures[f"{name}_regret_per_seed"] = [round(r, 3) for r in per_seed]
        done = [r[3] for r in runs if isinstance(r[3], ExploreThenCommit)]
        if done:
            figures[f"{name}_winner_per_seed"] = [p.winner for p in done]
            figures[f"{name}_decided_at_round_per_seed"] = [p.decided_at for p in done]
            notes.append(f"{name}: winner per seed {[p.winner for p in done]} (best arm "
                         f"{K - 1}, -1 = none), decided at round "
                         f"{[p.decided_at for p in done]}")
        row = f"{name:<18} {rps:>12,.0f} {regret:>9,.0f} {regret_se:>6,.0f} {regret_at:>11,.0f}"
        if name in mab:
            mruns = [_run_mabwiser(mab[name], s, mab_rounds, batch) for s in seeds]
            mrps = mab_rounds * len(mruns) / sum(r[0] for r in mruns)
            mper_seed = [r[1] for r in mruns]
            mregret, mregret_se = float(np.mean(mper_seed)), _se(mper_seed)
            # paired over seeds (same reward tape), both at the MABWiser horizon
            diffs = [r[2] - m for r, m in zip(runs, mper_seed, strict=True)]
            diff, diff_se = float(np.mean(diffs)), _se(diffs)
            figures[f"mabwiser_{name}_rounds_per_s"] = mrps
            figures[f"mabwiser_{name}_regret"] = mregret
            figures[f"mabwiser_{name}_regret_se"] = mregret_se
            figures[f"mabwiser_{name}_regret_per_seed"] = [round(r, 3) for r in mper_seed]
            figures[f"{name}_speedup_vs_mabwiser"] = rps / mrps
            figures[f"{name}_regret_ratio_vs_mabwiser"] = regret_at / mregret
            figures[f"{name}_regret_diff_vs_mabwiser"] = diff
            figures[f"{name}_regret_diff_se"] = diff_se
            figures[f"{name}_regret_corr_vs_mabwiser"] = (
                float(np.corrcoef([r[2] for r in runs], mper_seed)[0, 1])
                if len(runs) > 1 else float("nan"))
            row += (f" {mrps:>13,.0f} {mregret:>11,.0f} {mregret_se:>6,.0f} {rps / mrps:>8.2f}"
                    f" {regret_at / mregret:>9.2f} {diff:>+7,.0f} {diff_se:>6,.0f}")
        lines.append(row)
    lines += notes
    if mab and any(n in mab for n in names):
        lines.append("diff = ours - MABWiser regret at the MABWiser horizon, mean over seeds "
                     "with paired s.e. (same reward tape per seed)")

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
