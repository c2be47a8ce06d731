# Source of notebooks/03_off_policy_evaluation.ipynb -- edit here, then run
# `python notebooks/_build.py` (tests/notebooks checks that the two agree).
# ruff: noqa: E402, B018  (a notebook: imports after the parameters cell, cells end
# with the expression they display)

# %% [markdown]
# # Would a new subject-line policy beat the bandit we run? Ask the logs first
#
# **Question.** Our campaigns pick subject lines with Thompson sampling over six styles.
# A colleague proposes a *contextual* rule instead: "Don't Miss" for low-engagement
# subscribers, "Limited Time" for those ready to buy, "Learn: ..." for educational
# seekers, the first name for highly engaged ones, plain otherwise
# (`policies.personalization.SubjectRulePolicy`). Another proposal is simply "always use
# the first name". Can we estimate how many clicks each would get **from the logs of the
# bandit we already run**, without an experiment? Then we run both for real and compare
# the estimates with the truth.
#
# **Off-policy evaluation (OPE).** Every logged email records the subscriber's features
# `x`, the variant `a` the bandit chose, the probability it had of choosing it (the
# *propensity* `p`), and whether it was clicked (`r`). Estimators of the new policy's
# click rate:
#
# | estimator | idea | trade-off |
# |---|---|---|
# | IPS | weight logged clicks by `pi_new(a given x) / p` | unbiased; noisy if weights are large |
# | SNIPS | IPS divided by the mean weight | a little biased, less variance |
# | DM | a reward model predicts each variant's click rate | precise; biased if the model is wrong |
# | DR | DM plus an IPS correction of the model's error | unbiased if either part is right |

# %% tags=["parameters"]
SUBSCRIBERS = 20_000   # simulated subscribers per arm
DAYS = 14              # simulated days (one campaign email per subscriber per day)
SEED = 21
OUT = "runs/03_off_policy_evaluation"

# %%
# %matplotlib inline
import time

import matplotlib
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from sklearn.linear_model import LogisticRegression

import experiments
from experiments.notebook_helpers import plot_intervals
from experiments.ope import estimate_policy_value, fit_reward_model
from policies import FEATURE_NAMES, SUBJECT_STYLES
from policies.personalization import SubjectRulePolicy

matplotlib.use("Agg")   # figures are shown with display(fig)
pd.set_option("display.precision", 4)
started = time.perf_counter()

# %% [markdown]
# ## Setup: log the bandit, and (for the check) run the candidates
#
# One spec, three arms on the same subscribers and random numbers: the logging bandit,
# and the two candidates run for real. In practice you only have the first; the other
# two are here to grade the estimates. `record: {decisions: true}` keeps the per-email
# log with propensities and context features.

# %%
spec = {
    "name": "off_policy_evaluation",
    "seed": SEED,
    "population": {"subscribers": SUBSCRIBERS, "preset": "retail"},
    "duration": {"days": DAYS, "tick": "1h"},
    "rules": "none",
    "campaign": {"every_days": 1, "local_hour": 10, "subject_style": "plain"},
    "reward": "click",
    "reward_window": "1d",
    "arms": [
        {"name": "logging_thompson",
         "policy": {"name": "thompson", "decides": "subject_style", "scope": "campaign",
                    "arm_names": list(SUBJECT_STYLES)}},
        {"name": "rule_based",
         "policy": {"name": "rule_based", "decides": "subject_style", "scope": "campaign"}},
        {"name": "always_first_name",
         "campaign": {"every_days": 1, "local_hour": 10, "subject_style": "first_name"}},
    ],
    "metrics": ["clicks", "opens"],
    "record": {"decisions": True},
}
res = experiments.run(spec, out=OUT)
log = res.decisions.query("arm == 'logging_thompson'").reset_index(drop=True)
print(f"{len(log):,} logged emails; columns: {', '.join(log.columns[:12])}, ...")
log.head(3)

# %% [markdown]
# ## The candidates' action probabilities on the logged contexts
#
# OPE needs `pi_new(a given x)` for every logged email: for a deterministic policy a
# one-hot row. `select` is the same call a production service makes.

# %%
X = log[[f"x_{name}" for name in FEATURE_NAMES]].to_numpy()
action = log["arm_index"].to_numpy()
reward = log["reward"].to_numpy()
pscore = log["propensity"].to_numpy()
K = len(SUBJECT_STYLES)

rule = SubjectRulePolicy()
assert tuple(rule.arm_names) == tuple(SUBJECT_STYLES)
rule_arms, _ = rule.select(X, np.random.default_rng(0))
candidates = {
    "rule_based": np.eye(K)[rule_arms],
    "always_first_name": np.eye(K)[np.full(len(X), SUBJECT_STYLES.index("first_name"))],
}
weight_mean = {}
for name, dist in candidates.items():
    w = dist[np.arange(len(X)), action] / pscore
    weight_mean[name] = float(w.mean())
    print(f"{name:18s} agrees with the logged variant on {(w > 0).mean():5.1%} of emails; "
          f"importance weights: mean {w.mean():.3f} (should be near 1), max {w.max():.1f}")

# %% [markdown]
# ## Estimates
#
# The reward model is a logistic regression on the features, the variant and their
# interactions, cross-fitted in 3 folds so that no email's prediction has seen that email.

# %%
q_hat = fit_reward_model(X, action, reward, n_actions=K, rng=np.random.default_rng(1),
                         model=LogisticRegression(C=1.0, max_iter=200, tol=1e-3))
Q = log[[f"expected_reward__{s}" for s in SUBJECT_STYLES]].to_numpy()   # simulator truth
rows = []
for name, dist in candidates.items():
    for method in ("ips", "snips", "dm", "dr"):
        e = estimate_policy_value(method, reward, action, pscore, dist, estimated_rewards=q_hat)
        rows.append({"policy": name, "method": method, "estimate": e.estimate,
                     "ci_low": e.ci_low, "ci_high": e.ci_high})
estimates = pd.DataFrame(rows)
offline_truth = {name: float((dist * Q).sum(axis=1).mean()) for name, dist in candidates.items()}
estimates["offline_truth"] = estimates["policy"].map(offline_truth)
estimates["covers"] = ((estimates["ci_low"] <= estimates["offline_truth"])
                       & (estimates["offline_truth"] <= estimates["ci_high"]))
estimates

# %% [markdown]
# ## Run them for real: estimate vs truth
#
# *Offline truth* is what OPE estimates: the expected click rate had the candidate chosen
# the subject of every logged email (the simulator knows every variant's click
# probability). *Online truth* is the expected click rate when the candidate really runs
# for two weeks; it can differ, because a different subject history changes fatigue and
# unsubscribes along the way.

# %%
camp = res.truth.query("source == 'campaign' and group == 'treatment'").groupby("arm")[
    ["sends", "expected_clicks"]].sum()
online_truth = camp["expected_clicks"] / camp["sends"]
observed = res.summary().query("metric == 'clicks'").set_index("arm")["estimate"]
logging_truth = float(log["expected_reward"].mean())
for name in candidates:
    part = estimates[estimates["policy"] == name].assign(label=lambda d: d["method"].str.upper())
    display(plot_intervals(
        part, label="label", estimate="estimate", low="ci_low", high="ci_high",
        truth="offline_truth", truth_label="offline truth (simulator)", scale=100,
        lines={f"online truth ({100 * online_truth[name]:.2f} %)": online_truth[name],
               f"logging bandit, truth ({100 * logging_truth:.2f} %)": logging_truth},
        xlabel="click rate per email (%)",
        title=f"Off-policy estimates of '{name}' from the Thompson-sampling log"))
pd.DataFrame({"offline truth": pd.Series(offline_truth), "online truth": online_truth,
              "online observed": observed}).loc[[*candidates, "logging_thompson"]]

# %% [markdown]
# ## Conclusion

# %%
dr = estimates[estimates["method"] == "dr"].set_index("policy")
dm = estimates[estimates["method"] == "dm"].set_index("policy")
winner = dr["estimate"].idxmax()
lines = []
for name in candidates:
    lines.append(
        f"- `{name}`: DR estimates {100 * dr.loc[name, 'estimate']:.2f} % clicks per email "
        f"(95 % CI {100 * dr.loc[name, 'ci_low']:.2f} to {100 * dr.loc[name, 'ci_high']:.2f}); "
        f"offline truth {100 * offline_truth[name]:.2f} %, online truth "
        f"{100 * online_truth[name]:.2f} %.")
n_cover = int(estimates.query("method != 'dm'")["covers"].sum())
clickbait = float(log["variant"].isin(["dont_miss", "limited_time"]).mean())
n_dm = int(dm["covers"].sum())
lines += [
    f"- The logging bandit's true click rate: {100 * logging_truth:.2f} %. From the logs alone "
    f"we would pick `{winner}`, and running it confirms: online truth "
    f"{100 * online_truth[winner]:.2f} % vs {100 * online_truth['logging_thompson']:.2f} % "
    f"for the bandit ({online_truth[winner] / online_truth['logging_thompson'] - 1:+.0%}).",
    f"- IPS, SNIPS and DR intervals cover the offline truth in {n_cover} of "
    f"{3 * len(candidates)} cases; DM's narrow intervals in {n_dm} of {len(candidates)}: "
    "a misspecified reward model is precise and wrong, which is why DR adds the weighted "
    "correction.",
    "- Run for real, the candidates do better than their offline truth ("
    + ", ".join(f"`{n}` {online_truth[n] / offline_truth[n] - 1:+.0%}" for n in candidates)
    + f"): the history differs. The logging bandit sent {clickbait:.0%} of its emails with "
    "clickbait-style subjects ('Don't Miss', 'Limited Time'), which in this simulator build "
    "fatigue that lowers later responses; OPE evaluates each decision on the logged history.",
    "- Offline estimates answer 'what if this policy had chosen these emails'; a long-run "
    "effect (fatigue, unsubscribes) still needs an online test, but OPE tells you which "
    "candidates deserve one.",
]
display(Markdown("\n".join(lines)))

# %%
key_numbers = {
    "estimates": {f"{r.policy}/{r.method}": float(r.estimate) for r in estimates.itertuples()},
    "ci_low": {f"{r.policy}/{r.method}": float(r.ci_low) for r in estimates.itertuples()},
    "ci_high": {f"{r.policy}/{r.method}": float(r.ci_high) for r in estimates.itertuples()},
    "offline_truth": offline_truth,
    "online_truth": {a: float(v) for a, v in online_truth.items()},
    "logging_truth": logging_truth,
    "logging_observed": float(reward.mean()),
    "logged_emails": len(log),
    "weight_mean": weight_mean,
    "winner": winner,
    "runtime_s": time.perf_counter() - started,
}
pd.Series({k: v for k, v in key_numbers.items() if not isinstance(v, dict)})
