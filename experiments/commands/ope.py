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

``--logs`` may also be the trigger service's decision log (a directory of shards' parts
or one part, :mod:`actors.service.decision_log`), with ``--feedback FILE`` (Parquet or
CSV: ``trigger_id``, ``reward``; the rewards the ESP's events gave each send, a fire
without a row has reward 0). The fires the logging policy chose are evaluated (logged
arm, propensity and ``x_<feature>`` contexts from the log); there is no ground truth to
print next to the estimates.
"""

from __future__ import annotations

import argparse
from typing import Any

METHODS = ("ips", "snips", "dm", "dr")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", required=True, metavar="PATH",
                        help="run folder with decisions.parquet (spec record.decisions: "
                             "true), or the trigger service's decision log")
    parser.add_argument("--feedback", default=None, metavar="FILE",
                        help="service logs: rewards per trigger_id (Parquet or CSV)")
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


def _estimates(policy: Any, x: Any, subscribers: Any, action: Any, reward: Any, pscore: Any,
               variants: list[str], alpha: float, rng: Any) -> tuple[Any, list[Any]]:
    """The target policy's action distribution and the estimates of every method."""
    from experiments.ope import estimate_policy_value, fit_reward_model

    dist = action_distribution(policy, x, subscribers, variants, rng)
    q = fit_reward_model(x, action, reward, len(variants), rng)
    return dist, [estimate_policy_value(m, reward, action, pscore, dist, estimated_rewards=q,
                                        alpha=alpha) for m in METHODS]


def is_run_folder(path: str) -> bool:
    """A simulator run folder (else ``--logs`` is read as a service decision log)."""
    from pathlib import Path

    return (Path(path) / "spec.yaml").exists()


def evaluate_service_log(logs: str, policy_path: str, feedback: str | None, *,
                         alpha: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """The numbers ``triggerlab ope`` prints for a service decision log."""
    import numpy as np
    import pandas as pd

    from actors.service.decision_log import read_decision_log
    from policies.errors import SpecError
    from policies.features import FEATURE_NAMES

    if feedback is None:
        raise SpecError("--feedback: a service decision log has no rewards; give a file "
                        "with columns trigger_id, reward")
    log = read_decision_log(logs)
    log = log[(log["kind"] == "fire") & log["arm"].notna()].reset_index(drop=True)
    if not len(log):
        raise SpecError(f"--logs: {logs} holds no fires chosen by a policy")
    policies = sorted(set(log["policy"].astype(str)))
    if len(policies) != 1:
        raise SpecError(f"--logs: expected fires of one logging policy, got {policies}")
    xcols = [f"x_{f}" for f in FEATURE_NAMES]
    if any(c not in log.columns for c in xcols):
        raise SpecError(f"--logs: {logs} has no context columns (x_<feature>); the "
                        "service writes them when the subscriber table has the feature "
                        "columns")
    fb = _read_feedback(feedback)
    rewards = fb.groupby("trigger_id")["reward"].sum()
    reward = log["trigger_id"].astype(str).map(rewards).fillna(0.0).to_numpy(float)
    decides = str(log["decides"].iloc[0])
    spec, policy = _load_policy(policy_path, None, "click", seed)
    if spec.decides != decides:
        raise SpecError(f"policy.decides: the log's policy decides {decides!r}, "
                        f"got {spec.decides!r}")
    variants = [str(v) for v in pd.unique(log.sort_values("arm_index")["arm"].astype(str))]
    action = np.array([variants.index(v) for v in log["arm"].astype(str)])
    x = log[xcols].to_numpy(float)
    if np.isnan(x).any():
        raise SpecError("--logs: some fires have no context (subscribers missing from the "
                        "service's table)")
    rng = np.random.default_rng(seed)
    _, estimates = _estimates(policy, x, log["subscriber"].to_numpy("int64"), action, reward,
                              log["propensity"].to_numpy(float), variants, alpha, rng)
    return {"logs": str(logs), "n": len(log), "logging_policy": policies[0],
            "versions": sorted(set(log["policy_version"].astype(int))), "target": spec,
            "variants": variants, "estimates": estimates,
            "logged_value": float(reward.mean()), "with_feedback": int(
                log["trigger_id"].astype(str).isin(rewards.index).sum())}


def _read_feedback(path: str) -> Any:
    """The feedback file: trigger_id (str) and reward (finite float) columns."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from policies.errors import SpecError

    p = Path(path)
    if not p.is_file():
        raise SpecError(f"--feedback: {path!r} does not exist")
    try:
        df = pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
    except (OSError, ValueError) as exc:
        raise SpecError(f"--feedback: cannot read {path!r}: {exc}") from None
    missing = [c for c in ("trigger_id", "reward") if c not in df.columns]
    if missing:
        raise SpecError(f"--feedback: expected columns trigger_id, reward; {path!r} lacks "
                        f"{missing}")
    r = pd.to_numeric(df["reward"], errors="coerce").to_numpy(float)
    if not np.isfinite(r).all():
        bad = df["reward"][~np.isfinite(r)].iloc[0]
        raise SpecError(f"--feedback: reward: expected finite numbers, got {bad!r}")
    return pd.DataFrame({"trigger_id": df["trigger_id"].astype(str), "reward": r})


def evaluate(run_dir: str, policy_path: str, *, arm: str | None = None, alpha: float = 0.05,
             seed: int = 0, truth: bool = True) -> dict[str, Any]:
    """The numbers ``triggerlab ope`` prints (see the module docstring)."""
    import dataclasses

    import numpy as np

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
    dist, estimates = _estimates(policy, x, log["subscriber"].to_numpy("int64"), action,
                                 reward, pscore, variants, alpha, rng)
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
    level = f"{100 * (1 - args.alpha):.0f}%"
    from pathlib import Path

    if not Path(args.logs).exists():
        raise ValueError(f"--logs: expected a run folder or a service decision log, got "
                         f"{args.logs!r} (does not exist)")
    if not is_run_folder(args.logs):
        s = evaluate_service_log(args.logs, args.policy, args.feedback, alpha=args.alpha,
                                 seed=args.seed)
        print(f"service decision log {s['logs']}: {s['n']:,} fires chosen by "
              f"{s['logging_policy']} (versions {s['versions']}), variants {s['variants']}, "
              f"{s['with_feedback']:,} with feedback")
        print(f"new policy: {s['target'].name} deciding {s['target'].decides}")
        print(f"logged policy's observed value: {s['logged_value']:.5f}")
        print(f"{'method':<8}{'estimate':>10}  {level} CI")
        for e in s["estimates"]:
            print(f"{e.method:<8}{e.estimate:>10.5f}  [{e.ci_low:.5f}, {e.ci_high:.5f}]")
        return 0
    r = evaluate(args.logs, args.policy, arm=args.arm, alpha=args.alpha, seed=args.seed,
                 truth=not args.no_truth)
    lp, tp = r["logging_policy"], r["target"]
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
