"""``triggerlab ope --logs RUN_DIR --policy POLICY.yaml``: off-policy evaluation.

Estimates the value (mean reward per email) of a new policy from the decision log of a
run (``decisions.parquet``: logged variant, propensity, reward, context features) with
IPS, SNIPS, DM and DR (:func:`experiments.ope.estimate_policy_value`, cross-fitted reward
model), and prints it next to the simulator's ground truth for that policy:

* *on the logged emails*: the expected reward of the new policy's choices for exactly the
  logged emails (``expected_reward__<variant>`` columns of the log) -- what the
  estimators target;
* *by running it*: the logging arm re-run with the same seed and the new policy in place
  of the old one; expected and observed reward per email it decided.

``POLICY.yaml`` holds one policy, as in a spec's ``arms[i].policy``::

    name: rule_based
    decides: subject_style
"""

from __future__ import annotations

import argparse
from typing import Any

METHODS = ("ips", "snips", "dm", "dr")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", required=True, metavar="RUN_DIR",
                        help="run folder with decisions.parquet (spec record.decisions: true)")
    parser.add_argument("--policy", required=True, metavar="POLICY.yaml",
                        help="the policy to evaluate (name, decides, parameters)")
    parser.add_argument("--arm", default=None,
                        help="logging arm (default: the first arm with logged decisions)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="1 - confidence level of the intervals (default 0.05)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the reward model's folds and the policy's draws")
    parser.add_argument("--no-truth", action="store_true",
                        help="skip re-running the arm with the new policy")


def _load_policy(path: str, arm_policy: Any, reward: str, seed: int) -> Any:
    from pathlib import Path

    from experiments.spec import build_policy, parse_policy, read_yaml

    data = read_yaml(Path(path), "policy")
    spec = parse_policy(data, "policy")
    if spec is None:
        from policies.errors import SpecError

        raise SpecError(f"policy: expected a policy mapping in {path}, got none")
    if arm_policy is not None and spec.decides != arm_policy.decides:
        from policies.errors import SpecError

        raise SpecError(f"policy.decides: the log's policy decides {arm_policy.decides!r}, "
                        f"got {spec.decides!r}")
    if arm_policy is not None and "scope" not in data:
        import dataclasses

        spec = dataclasses.replace(spec, scope=arm_policy.scope)
    return spec, build_policy(spec, "policy", reward=reward, seed=seed)


def action_distribution(policy: Any, contexts: Any, subscribers: Any, arm_names: Any,
                        rng: Any, draws: int = 100) -> Any:
    """The policy's probability of each logged arm for each row, shape (n, K).

    Context-free policies with ``arm_probabilities()`` give it directly; a policy whose
    choices all have propensity 1 (deterministic) gives one-hot rows; otherwise the
    frequencies of ``draws`` independent selections. Raises SpecError when the policy
    would choose a variant the log never sent (no overlap).
    """
    import numpy as np

    from policies.errors import SpecError

    names = list(arm_names)
    k = len(policy.arm_names)
    n = len(contexts)
    subs = subscribers if getattr(policy, "requires_subscribers", False) else None
    full = np.zeros((n, k))
    if hasattr(policy, "arm_probabilities"):
        full[:] = np.asarray(policy.arm_probabilities())[None, :]
    else:
        arms, props = policy.select(contexts, rng, subscribers=subs)
        if np.all(props == 1.0):
            full[np.arange(n), arms] = 1.0
        else:
            for _ in range(draws):
                a, _p = policy.select(contexts, rng, subscribers=subs)
                full[np.arange(n), a] += 1.0 / draws
    unlogged = [a for j, a in enumerate(policy.arm_names)
                if a not in names and full[:, j].max() > 0]
    if unlogged:
        raise SpecError(f"policy: it would send {unlogged}, which the log never sent "
                        f"(logged variants: {names}); off-policy estimates need overlap")
    dist = np.zeros((n, len(names)))
    for j, a in enumerate(policy.arm_names):
        if a in names:
            dist[:, names.index(a)] += full[:, j]
    return dist


def evaluate(run_dir: str, policy_path: str, *, arm: str | None = None, alpha: float = 0.05,
             seed: int = 0, truth: bool = True) -> dict[str, Any]:
    """The numbers ``triggerlab ope`` prints (see the module docstring)."""
    import dataclasses

    import numpy as np

    from experiments.ope import estimate_policy_value, fit_reward_model
    from experiments.results import Results
    from policies.errors import SpecError
    from policies.features import FEATURE_NAMES

    res = Results.load(run_dir)
    d = res.decisions
    if d is None or not len(d):
        raise SpecError(f"--logs: {run_dir} has no decisions.parquet; run the spec with "
                        "record: {decisions: true}")
    logged_arms = [a.name for a in res.spec.arms
                   if a.policy is not None and (d["arm"] == a.name).any()]
    if not logged_arms:
        raise SpecError(f"--logs: {run_dir} logged no policy decisions (no arm has a policy)")
    arm = arm or logged_arms[0]
    if arm not in logged_arms:
        raise SpecError(f"--arm: expected one of the policy arms with logged decisions "
                        f"{logged_arms}, got {arm!r}")
    arm_spec = res.spec.arm(arm)
    log = d[d["arm"] == arm].reset_index(drop=True)
    variants = [c.removeprefix("expected_reward__") for c in log.columns
                if c.startswith("expected_reward__") and log[c].notna().any()]
    if len(variants) < 2:
        raise SpecError(f"--arm: arm {arm!r} logged fewer than 2 variants; nothing to evaluate")
    target_spec, policy = _load_policy(policy_path, arm_spec.policy, res.spec.reward, seed)
    rng = np.random.default_rng(seed)
    x = log[[f"x_{f}" for f in FEATURE_NAMES]].to_numpy(float)
    action = np.array([variants.index(v) for v in log["variant"].astype(str)])
    reward = log["reward"].to_numpy(float)
    pscore = log["propensity"].to_numpy(float)
    dist = action_distribution(policy, x, log["subscriber"].to_numpy("int64"), variants, rng)
    q = fit_reward_model(x, action, reward, len(variants), rng)
    estimates = [estimate_policy_value(m, reward, action, pscore, dist, estimated_rewards=q,
                                       alpha=alpha) for m in METHODS]
    er = log[[f"expected_reward__{v}" for v in variants]].to_numpy(float)
    out: dict[str, Any] = {
        "run_dir": str(run_dir), "arm": arm, "logging_policy": arm_spec.policy,
        "target": target_spec, "n": len(log), "reward": res.spec.reward,
        "variants": variants, "estimates": estimates,
        "logged_value": float(reward.mean()),
        "truth_logged": float((dist * er).sum(axis=1).mean()),
        "truth_run": None,
    }
    if truth:
        from experiments.runner import simulate, simulation_config

        new_arm = dataclasses.replace(arm_spec, policy=target_spec)
        spec = dataclasses.replace(res.spec, arms=tuple(
            new_arm if a.name == arm else a for a in res.spec.arms))
        column = {"click": "expected_clicks", "order": "expected_orders",
                  "revenue": "expected_revenue"}[res.spec.reward]
        observed = {"click": "clicks", "order": "orders", "revenue": "revenue"}[res.spec.reward]
        reps = sorted(log["replication"].unique())
        exp_sum = obs_sum = sends = 0.0
        for r in reps:
            config = simulation_config(spec, new_arm, int(r), record_decisions=False)
            run = simulate(config)
            t = run.truth[(run.truth["group"] == "treatment") & (run.truth["arm"] != "")]
            exp_sum += float(t[column].sum())
            sends += float(t["sends"].sum())
            m = run.metrics
            m = m[(m["group"] == "treatment") & (m["arm"] != "") & (m["metric"] == observed)]
            obs_sum += float(m["value"].sum())
        out["truth_run"] = {"expected": exp_sum / sends if sends else float("nan"),
                            "observed": obs_sum / sends if sends else float("nan"),
                            "emails": sends, "replications": len(reps)}
    return out


def run(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha: expected a number in (0, 1), got {args.alpha}")
    r = evaluate(args.logs, args.policy, arm=args.arm, alpha=args.alpha, seed=args.seed,
                 truth=not args.no_truth)
    lp, tp = r["logging_policy"], r["target"]
    level = f"{100 * (1 - args.alpha):.0f}%"
    print(f"logging arm {r['arm']!r} ({lp.name if lp else 'fixed variants'}): {r['n']:,} "
          f"logged emails, reward = {r['reward']} per email, variants {r['variants']}")
    print(f"new policy: {tp.name} deciding {tp.decides} ({tp.scope})")
    print(f"logged policy's observed value: {r['logged_value']:.5f}")
    print(f"{'method':<8}{'estimate':>10}  {level} CI")
    for e in r["estimates"]:
        print(f"{e.method:<8}{e.estimate:>10.5f}  [{e.ci_low:.5f}, {e.ci_high:.5f}]")
    print(f"truth on the logged emails (expected reward of the new policy's choices): "
          f"{r['truth_logged']:.5f}")
    tr = r["truth_run"]
    if tr is not None:
        print(f"truth by running the new policy (same seed, {tr['replications']} "
              f"replication(s), {tr['emails']:,.0f} emails): expected {tr['expected']:.5f}, "
              f"observed {tr['observed']:.5f}")
    return 0
