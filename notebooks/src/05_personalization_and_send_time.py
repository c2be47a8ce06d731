# Source of notebooks/05_personalization_and_send_time.ipynb -- edit here, then run
# `python notebooks/_build.py` (tests/notebooks checks that the two agree).
# ruff: noqa: E402, B018  (a notebook: imports after the parameters cell, cells end
# with the expression they display)

# %% [markdown]
# # Personalize the content and the send time, or find one global winner?
#
# **Question.** Two common ideas for a newsletter:
#
# 1. **Content strategy.** Pick each subscriber's content by rules (onboarding content
#    for new subscribers, re-engagement for inactive ones, conversion-focused content for
#    those ready to buy, educational nurturing for seekers, general content otherwise)
#    instead of the single strategy that works best on average.
# 2. **Send time.** Deliver when each subscriber tends to read instead of one hour for
#    everybody.
#
# Against a *global winner* (a bandit that finds the single best option for everybody),
# do they earn more clicks, and for which subscribers?
#
# **Design.** Two experiments on the same simulated population, each emailing everyone
# daily and learning from clicks within a day. The decision log records, for every
# email, the subscriber's features and the simulator's expected click probability, so
# every result below is also broken down by segment and checked against the truth.

# %% tags=["parameters"]
SUBSCRIBERS = 12_000   # simulated subscribers per arm
DAYS = 14              # simulated days (one campaign email per subscriber per day)
SEED = 5

# %%
# %matplotlib inline
import time

import matplotlib
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import experiments
from experiments import plots
from experiments.notebook_helpers import plot_segments, segment_summary
from policies import CONTENT_STRATEGIES, FEATURE_NAMES
from policies.personalization.rules import content_strategy

matplotlib.use("Agg")   # figures are shown with display(fig)
pd.set_option("display.precision", 4)
started = time.perf_counter()


def base_spec(name, arms, control):
    return {
        "name": name, "seed": SEED,
        "population": {"subscribers": SUBSCRIBERS, "preset": "retail"},
        "duration": {"days": DAYS, "tick": "1h"},
        "rules": "none",
        "campaign": {"every_days": 1, "local_hour": 10, "subject_style": "plain"},
        "reward": "click", "reward_window": "1d",
        "arms": arms, "control": control,
        "metrics": ["clicks", "opens", "orders", "unsubscribes"],
        "record": {"decisions": True},
    }


# %% [markdown]
# ## Part 1: rule-based content strategy vs the global winner

# %%
content = experiments.run(base_spec("content_strategy", [
    {"name": "global_winner",
     "policy": {"name": "thompson", "decides": "strategy", "scope": "campaign",
                "arm_names": list(CONTENT_STRATEGIES)}},
    {"name": "rule_based",
     "policy": {"name": "rule_based", "decides": "strategy", "scope": "campaign"}},
], control="global_winner"))
display(plots.allocation(content))

# %% [markdown]
# The global winner settles on the strategy that works best on average. The rule-based
# arm sends each segment its own strategy from day one (its shares simply mirror the
# segment sizes). Segments below are the groups the rules put subscribers in, computed
# from the same features the policy sees.

# %%
SEGMENT_LABELS = {"onboarding_education": "new subscribers", "reengagement": "low engagement",
                  "conversion_focused": "ready to buy", "educational_nurturing": "edu. seekers",
                  "general_engagement": "everyone else"}
d = content.decisions
X = d[[f"x_{name}" for name in FEATURE_NAMES]].to_numpy()
segment = pd.Categorical(
    np.asarray([SEGMENT_LABELS[s] for s in CONTENT_STRATEGIES])[content_strategy(X)],
    categories=list(SEGMENT_LABELS.values()), ordered=True)
by_segment = segment_summary(d, segment, order=content.arms)
display(plot_segments(by_segment, value="truth", errors=None, ylabel="true click rate (%)",
                      title="Content strategy: expected click rate per email, by segment"))
content_table = by_segment["truth"].unstack().assign(
    lift=lambda t: t["rule_based"] / t["global_winner"] - 1)
content_table["emails (rule_based)"] = by_segment["emails"].unstack()["rule_based"]
content_table

# %%
content_summary = content.summary()
content_summary.query("metric in ['clicks', 'opens']")[
    ["metric", "arm", "estimate", "ci_low", "ci_high", "lift", "lift_ci_low", "lift_ci_high",
     "p_adjusted", "true_value", "true_lift"]]

# %% [markdown]
# ## Part 2: send-time optimization vs one global hour
#
# Four arms: everybody at 10:00 local time (the status quo), the single best hour learned
# by Thompson sampling (the global winner and control), a per-subscriber optimizer
# (`send_time`: each subscriber's best hour so far, shrunk to the population's, 10 %
# exploration), and a contextual bandit (LinUCB over the 24 hours) that sees the
# subscriber's stated preferred hour among its features.

# %%
HOURS = [f"h{h:02d}" for h in range(24)]
send_time = experiments.run(base_spec("send_time", [
    {"name": "fixed_10h",
     "policy": {"name": "fixed_hour", "decides": "send_hour", "scope": "campaign", "hour": 10}},
    {"name": "global_best_hour",
     "policy": {"name": "thompson", "decides": "send_hour", "scope": "campaign",
                "arm_names": HOURS}},
    {"name": "per_subscriber",
     "policy": {"name": "send_time", "decides": "send_hour", "scope": "campaign",
                "epsilon": 0.1}},
    {"name": "contextual",
     "policy": {"name": "linucb", "decides": "send_hour", "scope": "campaign",
                "arm_names": HOURS, "alpha": 0.3}},
], control="global_best_hour"))

# %% [markdown]
# Segments: how far the subscriber's preferred hour is from 10:00 (the preferred hour is
# recovered from the `hour_sin`/`hour_cos` features).

# %%
d2 = send_time.decisions
preferred = np.round(np.arctan2(d2["x_hour_sin"], d2["x_hour_cos"]) / (2 * np.pi) * 24) % 24
distance = np.minimum((preferred - 10) % 24, (10 - preferred) % 24)
hour_segment = pd.cut(distance, [-1, 1, 3, 6, 12],
                      labels=["0-1 h from 10:00", "2-3 h", "4-6 h", "7-12 h"])
by_hour = segment_summary(d2, hour_segment, order=send_time.arms)
display(plot_segments(by_hour, value="truth", ylabel="true click rate (%)",
                      title="Send time: expected click rate per email, by distance of the "
                            "preferred hour from 10:00"))
sent_hour = d2["variant"].str[1:].astype(int)
miss = np.minimum((preferred - sent_hour) % 24, (sent_hour - preferred) % 24)
late = d2["time"] >= d2["time"].min() + (DAYS - 3) * 86400
arm_late = d2["arm"][late]
display(pd.DataFrame({
    "hours from preferred (last 3 days)": miss[late].groupby(arm_late).mean(),
    "share within 1 h of preferred (last 3 days)": (miss[late] <= 1).groupby(arm_late).mean(),
}).loc[send_time.arms])
send_summary = send_time.summary()
send_summary.query("metric in ['clicks', 'opens']")[
    ["metric", "arm", "estimate", "ci_low", "ci_high", "lift", "p_adjusted", "true_value",
     "true_lift"]]

# %% [markdown]
# ## Conclusion

# %%
true_clicks = content_summary.query("metric == 'clicks'").set_index("arm")["true_value"]
seg_wins = int((content_table["lift"] > 0).sum())
send_true = send_summary.query("metric == 'clicks'").set_index("arm")["true_value"]
send_opens = send_summary.query("metric == 'opens'").set_index("arm")["true_value"]
best_send = send_true.idxmax()
hour_truth = by_hour["truth"].unstack()
best_per_segment = hour_truth.idxmax(axis=1)
near, far = best_per_segment.iloc[0], best_per_segment.iloc[-1]
opt_clicks = send_summary.query("metric == 'clicks' and arm == 'per_subscriber'")["numerator"]
clicks_per_subscriber = float(opt_clicks.iloc[0]) / SUBSCRIBERS
display(Markdown(
    f"- **Content:** the rule-based strategy's true click rate is "
    f"{100 * true_clicks['rule_based']:.2f} % vs {100 * true_clicks['global_winner']:.2f} % for "
    f"the global winner ({true_clicks['rule_based'] / true_clicks['global_winner'] - 1:+.0%}); it "
    f"wins in {seg_wins} of {len(content_table)} segments, "
    f"{'most' if seg_wins else 'closest'} in "
    f"'{content_table['lift'].idxmax()}' ({content_table['lift'].max():+.0%}).\n"
    f"- **Send time:** true click rates "
    + ", ".join(f"{a} {100 * v:.2f} %" for a, v in send_true.items())
    + "; true open rates "
    + ", ".join(f"{a} {100 * v:.1f} %" for a, v in send_opens.items())
    + f". Best: `{best_send}`.\n"
    f"- By segment, the best send-time arm is: "
    + "; ".join(f"{s}: {a}" for s, a in best_per_segment.items())
    + (f". Subscribers who read near 10:00 are best served by `{near}`, those far from it "
       f"by `{far}`." if near != far else f". `{near}` is best everywhere.")
    + f"\n- The per-subscriber optimizer saw {clicks_per_subscriber:.2f} clicks per subscriber "
    f"in {DAYS:g} days (its true click rate: {100 * send_true['per_subscriber']:.2f} %): far too "
    f"few to find a personal hour from clicks alone. A contextual policy that uses what we "
    f"already know (the stated preferred hour) learns from everybody at once."))

# %%
key_numbers = {
    "content_true_clicks": {a: float(v) for a, v in true_clicks.items()},
    "content_segment_lift": {str(s): float(v) for s, v in content_table["lift"].items()},
    "content_segments_won": seg_wins,
    "send_true_clicks": {a: float(v) for a, v in send_true.items()},
    "send_true_opens": {a: float(v) for a, v in send_opens.items()},
    "send_best_arm": best_send,
    "send_best_per_segment": {str(s): str(a) for s, a in best_per_segment.items()},
    "send_truth_by_segment": {f"{s}/{a}": float(v) for (s, a), v in by_hour["truth"].items()},
    "runtime_s": time.perf_counter() - started,
}
pd.Series({k: v for k, v in key_numbers.items() if not isinstance(v, dict)})
