# Source of notebooks/02_trigger_timing_experiment.ipynb -- edit here, then run
# `python notebooks/_build.py` (tests/notebooks checks that the two agree).
# ruff: noqa: E402, B018  (a notebook: imports after the parameters cell, cells end
# with the expression they display)

# %% [markdown]
# # When should the cart-abandonment reminder go out?
#
# **Question.** Our cart-abandonment rule emails shoppers who left a cart worth at least
# 25 and did not buy. It waits 24 hours today. Would 1 hour or 4 hours earn more
# *incremental* orders and revenue, i.e. orders that would not have happened without the
# email? Does sending sooner cost unsubscribes? And how many subscribers would a real
# test need to tell the answer apart?
#
# **Design.** Three arms change only the rule's delay (1 h, 4 h, 24 h). In every arm a
# random 20 % holdout (a salted hash of the subscriber id) gets no reminder at all: that
# holdout is the "none" arm, and comparing with it measures what the reminder *causes*.
# Attributed orders (an order within the reward window after a reminder) are what an email
# dashboard shows; they overstate the effect, because some shoppers come back on their
# own. The simulator knows which orders the email caused, so we can check every estimate
# against the truth.

# %% tags=["parameters"]
SUBSCRIBERS = 40_000   # simulated subscribers per arm
DAYS = 14              # simulated days
REPLICATIONS = 2       # independent repetitions
HOLDOUT = 0.2          # share of subscribers who get no reminder, in every arm
SEED = 7
OUT = "runs/02_trigger_timing"

# %%
# %matplotlib inline
import itertools
import math
import time
from importlib import resources

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from IPython.display import Markdown, display
from scipy import stats

import experiments
from experiments.notebook_helpers import plot_intervals
from experiments.stats import (
    mde_for_sample_size,
    proportions_ztest,
    sample_size_two_proportions,
)

matplotlib.use("Agg")   # figures are shown with display(fig)
pd.set_option("display.precision", 4)
started = time.perf_counter()

# %% [markdown]
# ## Setup
#
# The rule is the reference `cart_abandonment_24h` (`policies/triggers/reference_rules.yaml`):
# an `add_to_cart` of at least 25, no purchase or cleared cart, prospects and customers
# with engagement of at least 0.3, at most one triggered email a day, no sends between
# 22:00 and 08:00 local time. A weekly newsletter goes to everybody, holdout included.

# %%
reference = yaml.safe_load(resources.files("policies.triggers")
                           .joinpath("reference_rules.yaml").read_text())
cart_rule = next(r for r in reference["rules"] if r["id"] == "cart_abandonment_24h")
print(yaml.safe_dump(cart_rule, sort_keys=False))

DELAYS = {"reminder_1h": "1h", "reminder_4h": "4h", "reminder_24h": "24h"}
spec = {
    "name": "cart_reminder_timing",
    "seed": SEED,
    "population": {"subscribers": SUBSCRIBERS, "preset": "retail"},
    "duration": {"days": DAYS, "tick": "15m"},
    "rules": {"rules": [cart_rule], "settings": reference["settings"]},
    "campaign": {"every_days": 7, "local_hour": 10, "subject_style": "plain"},
    "reward": "order",
    "arms": [{"name": name, "rules": {"cart_abandonment_24h": {"delay": delay}},
              "holdout": HOLDOUT} for name, delay in DELAYS.items()],
    "control": "reminder_24h",
    "sources": ["cart_abandonment_24h"],   # email metrics count the reminders only
    "metrics": ["incremental_orders", "orders", "revenue_per_recipient",
                "attributed_orders", "unsubscribes"],
    "replications": REPLICATIONS,
}
res = experiments.run(spec, out=OUT)
summary = res.summary()
res

# %% [markdown]
# ## Result 1: what the email dashboard shows
#
# Orders attributed to a reminder (within 3 days of it), per reminder sent.

# %%
att = summary[summary["metric"] == "attributed_orders"]
display(plot_intervals(att, estimate="estimate", low="ci_low", high="ci_high",
                       truth="true_value", scale=100,
                       xlabel="attributed orders per reminder sent (%)",
                       title="Attributed conversion rate of the reminder"))
att[["arm", "numerator", "denominator", "estimate", "ci_low", "ci_high", "true_value"]]

# %% [markdown]
# ## Result 2: what the reminder causes (vs the holdout)
#
# Incremental orders per subscriber = orders per subscriber in the arm's treatment group
# minus orders per subscriber in its holdout (all orders, organic ones included). Revenue
# is treated the same way; its interval comes from the spread of the daily differences
# (replication x day blocks). The red crosses are the simulator's expected orders and
# revenue caused by the reminders.

# %%
inc = summary[summary["metric"] == "incremental_orders"].copy()
sizes = res.counts("incremental_orders").set_index(["arm", "replication"])
revenue = (res.metrics.query("source == 'site' and metric == 'revenue_all'")
           .pivot_table(index=["arm", "replication", "day"], columns="group", values="value",
                        aggfunc="sum").reset_index()
           .join(sizes[["denominator", "holdout_denominator"]], on=["arm", "replication"]))
revenue["difference"] = (revenue["treatment"] / revenue["denominator"]
                         - revenue["holdout"] / revenue["holdout_denominator"])
truth = (res.truth.query("group == 'treatment' and source == 'cart_abandonment_24h'")
         .groupby("arm")[["expected_orders", "expected_incremental_orders", "expected_revenue"]]
         .sum())
subs_t = sizes["denominator"].groupby(level="arm").sum()
rev_rows = []
for arm in res.arms:
    d = revenue.loc[revenue["arm"] == arm, "difference"]
    blocks = len(d)
    est = DAYS * d.mean()
    se = DAYS * d.std(ddof=1) / np.sqrt(blocks)
    q = stats.t.ppf(0.975, blocks - 1)
    caused_share = truth.loc[arm, "expected_incremental_orders"] / truth.loc[arm, "expected_orders"]
    rev_rows.append({"arm": arm, "estimate": est, "ci_low": est - q * se, "ci_high": est + q * se,
                     "true_value": truth.loc[arm, "expected_revenue"] * caused_share / subs_t[arm]})
inc_rev = pd.DataFrame(rev_rows)
display(plot_intervals(inc, estimate="estimate", low="ci_low", high="ci_high", truth="true_value",
                       scale=1000, reference=0.0, reference_label="no effect",
                       xlabel="incremental orders per 1,000 subscribers (treatment - holdout)",
                       title=f"Orders caused by the reminder over {DAYS:g} days"))
display(plot_intervals(inc_rev, estimate="estimate", low="ci_low", high="ci_high",
                       truth="true_value", reference=0.0, reference_label="no effect",
                       xlabel="incremental revenue per subscriber (currency units)",
                       title=f"Revenue caused by the reminder over {DAYS:g} days"))
inc[["arm", "estimate", "ci_low", "ci_high", "true_value"]].assign(
    holdout_orders=inc["arm"].map(res.counts("incremental_orders").groupby("arm")["holdout_numerator"].sum()))

# %% [markdown]
# In the simulator, purchase intent fades within about a day, so a late reminder mostly
# reaches shoppers who were coming back anyway (the crosses show what that does to the
# truth). Compare the width of the intervals with the differences between the arms: a
# treatment-minus-holdout comparison needs a large holdout to rank the arms.
#
# ## Result 3: the right test
#
# * **Orders per subscriber** (most subscribers order at most once in two weeks) is a
#   proportion: compare two independent groups with the **two-proportion z-test**
#   (`experiments.stats.proportions_ztest`). **Revenue per recipient** is heavily skewed:
#   use **Welch's t-test** on per-subscriber revenue (`welch_ttest`), or a bootstrap.
# * Compare *per subscriber*, not per email: arms send different numbers of reminders,
#   and the holdout receives none, so "orders per email" has no holdout counterpart.
# * Arms against each other: in production, randomize subscribers between 1 h, 4 h, 24 h
#   and holdout and use the same tests. In the simulator, all arms share subscribers and
#   random numbers, so `res.summary()` compares arms with a **paired** test over day
#   blocks, which is usually far more precise: compare the interval widths of the two
#   tables.

# %%
counts = res.counts("incremental_orders").groupby("arm")[
    ["numerator", "denominator", "holdout_numerator", "holdout_denominator"]].sum()
tests = []
for arm in res.arms:
    c = counts.loc[arm]
    z = proportions_ztest(c["holdout_numerator"], c["holdout_denominator"],
                          c["numerator"], c["denominator"])
    tests.append({"arm": arm, "holdout rate": c["holdout_numerator"] / c["holdout_denominator"],
                  "treatment rate": c["numerator"] / c["denominator"], "difference": z.effect,
                  "ci_low": z.ci_low, "ci_high": z.ci_high, "p_value": z.p_value})
vs_holdout = pd.DataFrame(tests).set_index("arm")
display(vs_holdout)
paired = summary[(summary["metric"].isin(["orders", "revenue_per_recipient"]))
                 & ~summary["is_control"]]
paired[["metric", "arm", "diff", "diff_ci_low", "diff_ci_high", "p_adjusted", "true_diff",
        "ci_covers_truth"]]

# %% [markdown]
# ## Result 4: unsubscribes

# %%
uns = summary[summary["metric"] == "unsubscribes"]
display(plot_intervals(uns, estimate="estimate", low="ci_low", high="ci_high", scale=1000,
                       xlabel="unsubscribes from a reminder, per 1,000 subscribers",
                       title="Unsubscribes from reminder emails"))
uns[["arm", "numerator", "denominator", "estimate", "ci_low", "ci_high", "p_adjusted"]]

# %% [markdown]
# ## Result 5: power and the sample size a real test needs
#
# How many subscribers per group does a two-proportion z-test need to detect each arm's
# *true* incremental effect against the holdout (5 % two-sided, 80 % power)? And what is
# the smallest lift our holdout could have detected? With an unequal split (a holdout
# share `h`), the total number of subscribers for the same precision is
# `n_equal / (2 h (1 - h))`, where `n_equal` is the per-arm size of an even split.

# %%
baseline = counts["holdout_numerator"].sum() / counts["holdout_denominator"].sum()
true_inc = inc.set_index("arm")["true_value"]
# a power calculation needs a baseline rate in (0, 1): a tiny holdout may have no orders
sizable = bool(0 < baseline < 1)
rel_lift = true_inc / baseline if sizable else true_inc * math.nan
n_needed = pd.Series({arm: int(sample_size_two_proportions(baseline, lift))
                      for arm, lift in rel_lift.items() if lift > 0
                      and baseline * (1 + lift) < 1}, dtype="int64")
total_needed = np.ceil(n_needed / (2 * HOLDOUT * (1 - HOLDOUT))).astype("int64")
holdout_size = counts["holdout_denominator"].mean()
treatment_size = counts["denominator"].mean()
n_equiv = 2 / (1 / holdout_size + 1 / treatment_size)   # even split with the same precision
mde = float(mde_for_sample_size(baseline, n_equiv)) if sizable else math.nan
power_table = pd.DataFrame({"true relative lift": rel_lift, "n per arm (even split)": n_needed,
                            f"total with a {HOLDOUT:.0%} holdout": total_needed})
display(power_table)

lifts = np.geomspace(0.01, 0.5, 60)
lifts = lifts[baseline * (1 + lifts) < 1] if sizable else lifts[:0]
curve = sample_size_two_proportions(baseline, lifts) if len(lifts) else lifts
fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
ax.loglog(100 * lifts, curve, color="tab:blue", label="n per arm for 80 % power")
for arm, lift in rel_lift.items():
    if arm in n_needed.index:
        ax.plot(100 * lift, n_needed[arm], "o", ms=8, label=f"{arm}: true lift {lift:.1%}")
ax.axhline(n_equiv, color="gray", ls="--",
           label=f"this experiment (even-split equivalent, {n_equiv:,.0f})")
ax.set_xticks([1, 2, 5, 10, 20, 50])
ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
ax.set_xlabel("relative lift in orders per subscriber to detect (%)")
ax.set_ylabel("subscribers per arm")
ax.set_title(f"Sample size vs effect (baseline {baseline:.2%} orders per subscriber)")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.tight_layout()
display(fig)
print(f"smallest relative lift detectable with this holdout: {mde:.1%}" if sizable else
      f"the holdout has {counts['holdout_numerator'].sum():.0f} orders: no baseline rate "
      "to size a test from")

# %% [markdown]
# ## Conclusion

# %%
best = true_inc.idxmax()
truth_order = list(true_inc.sort_values(ascending=False).index)
att_rate = att.set_index("arm")["estimate"]
paired_orders = paired[paired["metric"] == "orders"].set_index("arm")
uns_rate = uns.set_index("arm")["estimate"]
n_sig = int((vs_holdout["p_value"] < 0.05).sum())
common_point = vs_holdout["ci_low"].max() <= vs_holdout["ci_high"].min()
overlap = ("all their intervals overlap, so these estimates alone do not rank the arms"
           if common_point else "some of their intervals do not overlap")
# does the dashboard rank the arms as the truth does? (strictly, every arm with a rate)
ranked = [a for a in truth_order if np.isfinite(att_rate.get(a, math.nan))]
dashboard_agrees = len(ranked) >= 2 and all(
    att_rate[a] > att_rate[b] for a, b in itertools.pairwise(ranked))
dashboard = ("The dashboard ranks the arms as the truth does" if dashboard_agrees else
             "The dashboard does not rank the arms as the truth does")


def per_thousand(arm):
    return f"{arm} {1000 * true_inc[arm]:.2f}"


def sizing_sentence():
    if not sizable:
        return (f"the holdout has {counts['holdout_numerator'].sum():.0f} orders out of "
                f"{counts['holdout_denominator'].sum():.0f} subscribers, too few to size a test")
    fit = [a for a in truth_order if a in n_needed.index]
    if not fit:
        return "no arm has a positive true effect to size a test for"
    a = fit[0]
    return (f"detecting the {a} reminder's true lift of {rel_lift[a]:.1%} needs about "
            f"{n_needed[a]:,} subscribers per arm with an even split "
            f"({total_needed[a]:,} in total with a {HOLDOUT:.0%} holdout); this holdout "
            f"could only detect lifts above {mde:.0%}")


def paired_sentence(arm):
    r = paired_orders.loc[arm]
    d, lo, hi = 1000 * r["diff"], 1000 * r["diff_ci_low"], 1000 * r["diff_ci_high"]
    if not np.isfinite([d, lo, hi]).all():
        return f"{arm}: no interval (too few orders)"
    verdict = ("the interval excludes 0" if lo > 0 or hi < 0 else
               "the interval includes 0, so even this test does not separate them")
    return (f"{arm} vs {res.spec.control_arm} {'adds' if d >= 0 else 'removes'} "
            f"{abs(d):.2f} orders per 1,000 subscribers (95 % CI {lo:.2f} to {hi:.2f}; "
            f"{verdict})")


conclusion = (
    f"- **{'Send sooner' if best == 'reminder_1h' else 'Best: ' + best}.** The simulator's "
    f"truth: `{best}` causes the most incremental orders; per 1,000 subscribers in "
    f"{DAYS:g} days: " + ", ".join(per_thousand(a) for a in truth_order) + ".\n"
    f"- {dashboard} (attributed orders per reminder: "
    + ", ".join(f"{a} {100 * v:.2f} %" for a, v in att_rate.items())
    + "); attribution is not causation either way: it also counts shoppers who would have "
    f"returned anyway.\n"
    f"- Against the holdout (two-proportion z-test), arms significant at the 5 % level: "
    f"{n_sig} of {len(vs_holdout)} (p-values "
    + ", ".join(f"{a} {v:.2f}" for a, v in vs_holdout["p_value"].items())
    + f"); {overlap}. The power calculation: {sizing_sentence()}.\n"
    f"- The paired comparison of arms (same subscribers): "
    + "; ".join(paired_sentence(a) for a in paired_orders.index) + ".\n"
    "- Unsubscribes from reminders per 1,000 subscribers: "
    + ", ".join(f"{a} {1000 * v:.2f}" for a, v in uns_rate.items()) + ".")
display(Markdown(conclusion))

# %%
key_numbers = {
    "true_incremental_orders": {a: float(v) for a, v in true_inc.items()},
    "estimated_incremental_orders": {a: float(v) for a, v in
                                     inc.set_index("arm")["estimate"].items()},
    "attributed_order_rate": {a: float(v) for a, v in att_rate.items()},
    "true_attributed_order_rate": {a: float(v) for a, v in
                                   att.set_index("arm")["true_value"].items()},
    "holdout_p_value": {a: float(v) for a, v in vs_holdout["p_value"].items()},
    "paired_orders_diff": {a: float(v) for a, v in paired_orders["diff"].items()},
    "paired_orders_ci_low": {a: float(v) for a, v in paired_orders["diff_ci_low"].items()},
    "dashboard_agrees": dashboard_agrees,
    "conclusion": conclusion,
    "n_per_arm_needed": {a: int(v) for a, v in n_needed.items()},
    "mde_relative": mde,
    "baseline_orders_per_subscriber": float(baseline),
    "unsubscribes_per_subscriber": {a: float(v) for a, v in uns_rate.items()},
    "incremental_revenue": {r["arm"]: float(r["estimate"]) for r in rev_rows},
    "true_incremental_revenue": {r["arm"]: float(r["true_value"]) for r in rev_rows},
    "runtime_s": time.perf_counter() - started,
}
pd.Series({k: v for k, v in key_numbers.items() if not isinstance(v, dict)})
