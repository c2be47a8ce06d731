# Source of notebooks/08_multivariate_tests_and_tuning.ipynb -- edit here, then run
# `python notebooks/_build.py` (tests/notebooks checks that the two agree).
# ruff: noqa: E402, B018  (a notebook: imports after the parameters cell, cells end
# with the expression they display)

# %% [markdown]
# # Several email elements at once, and tuning a journey's parameters
#
# **Question 1.** The campaign's subject line, its content and its button: test them one
# at a time, all together in a factorial test, or let a bandit learn the combination?
# Elements can interact: an educational subject ("Learn how to ...") works with a
# "Learn more" button and not with "Shop now". Who finds the best email, after how many
# sends, and who sees the interaction?
#
# **Question 2.** The cart series' waits and discount: instead of guessing three arms,
# search the values by Bayesian optimization on the simulator, with a guardrail on
# unsubscribes. How close does the search come to the best value a dense grid finds?
#
# The simulator knows the true expected clicks and margin of every email, so each
# estimate below stands next to its truth.

# %% tags=["parameters"]
SUBSCRIBERS = 10_000       # subscribers per arm of the multivariate test
DAYS = 14                  # simulated days of the multivariate test
TUNE_SUBSCRIBERS = 1_500   # subscribers of each tuning run
TUNE_DAYS = 14             # simulated days of each tuning run
TRIALS = 24                # Bayesian-optimization trials
GRID_LEVELS = 3            # values per parameter of the comparison grid (levels ** 3 points)
OUT = "runs/08_multivariate"

# %%
# %matplotlib inline
import dataclasses
import time
from importlib import resources
from pathlib import Path

import matplotlib
import pandas as pd
import yaml
from IPython.display import Markdown, display

import experiments
from experiments.combinations import combination_table, factorial_analysis
from experiments.factorial_plots import effects_plot, interaction_plot
from experiments.tuning import grid_search, tune
from experiments.tuning_plots import history_plot
from policies.triggers import load_rules

matplotlib.use("Agg")   # figures are shown with display(fig)
pd.set_option("display.precision", 4)
started = time.perf_counter()


def spec_file(name: str) -> dict:
    return yaml.safe_load(resources.files("experiments.specs").joinpath(f"{name}.yaml")
                          .read_text())


# %% [markdown]
# ## 1. Three ways to test subject x content x button
#
# The `multivariate` spec: the daily campaign, 2 subjects (`plain`, `learn`) x 2 contents
# (`general_engagement`, `conversion_focused`) x 2 buttons (`shop_now`, `learn_more`) = 8
# combinations; the current email is `plain:general_engagement:shop_now`. Each arm sets
# all three elements at once (`decides: combination`):
#
# * `factorial`: the full factorial test, every combination to 1/8 of the list;
# * `factorized`: Thompson sampling with one posterior per element level;
# * `one_at_a_time`: an A/B test of the subject (with the current content and button),
#   then of the content, then of the button.

# %%
mv = spec_file("multivariate")
mv["population"]["subscribers"] = SUBSCRIBERS
mv["duration"]["days"] = DAYS
res = experiments.run(mv, out=f"{OUT}/multivariate")
table = combination_table(res).set_index("arm")
table[["policy", "sends", "true_best", "pick", "found", "sends_to_find", "expected_regret"]]

# %% [markdown]
# *Pick*: for the factorial test, the best observed combination once it beats every other
# one significantly (what the test can declare); for a policy, the combination it sends to
# at least three quarters of the list. *Sends to find*: sends until the pick became the
# true best for good. *Regret*: expected clicks lost against sending each email its true
# best combination.

# %% [markdown]
# ## 2. The factorial analysis, with the truth
#
# Main effects (each level against the first, averaged over the other elements) and
# two-way interactions (differences of differences) from a linear model of the clicks,
# with Holm-adjusted p-values. The truth of a cell is the expected clicks of the emails
# the test sent with it.

# %%
fa = factorial_analysis(res, "factorial")
effects = fa.effects.set_index("effect")[["level", "estimate", "ci_low", "ci_high",
                                          "p_adjusted", "significant", "truth"]]
fig = interaction_plot(fa, "subject_style", "cta")
display(fig)
fig = effects_plot(fa)
display(fig)
effects

# %%
inter = effects.loc["subject_style:cta"]
best_levels = ":".join(fa.best["levels"].values())
true_best = ":".join(fa.best["true_best"].values())
fz, oat, fac = (table.loc[a] for a in ("factorized", "one_at_a_time", "factorial"))


def sends(row: pd.Series) -> str:
    n = row["sends_to_find"]
    return "never" if pd.isna(n) else f"after {int(n):,} sends"


found = "real and found" if inter["significant"] else "not found"
display(Markdown(
    f"**The subject x button interaction is {found}**: "
    f"{inter['estimate']:+.4f} clicks per email [{inter['ci_low']:+.4f}, "
    f"{inter['ci_high']:+.4f}] (truth {inter['truth']:+.4f}). The analysis' best cell is "
    f"`{best_levels}`"
    + (", the true best. " if best_levels == true_best else f"; the true best is `{true_best}`. ")
    + f"The factorized policy acts on the true best `{fz['true_best']}` {sends(fz)} and "
    f"loses {fz['expected_regret']:.0f} expected clicks; the factorial test declares it "
    f"{sends(fac)} (regret {fac['expected_regret']:.0f}); one element at a time ends on "
    f"`{oat['pick']}` (regret {oat['expected_regret']:.0f}): it tested the subject with "
    "the current 'shop now' button, where the educational subject loses."))

# %% [markdown]
# ## 3. Tuning the cart series
#
# The `tune_cart_series` spec's `tune` section names the arm, the metric (margin per
# subscriber), the guardrail (unsubscribes no more than 0.0005 per subscriber above the
# series as declared) and three parameters by their path in the rules: the first wait,
# the wait before the last call and the last call's discount. Each batch of trials is one
# run with common random numbers; each trial is judged by the simulator's expected margin.

# %%
tc = experiments.load_spec(spec_file("tune_cart_series"))
tc = dataclasses.replace(tc, subscribers=TUNE_SUBSCRIBERS, days=TUNE_DAYS)
print(yaml.safe_dump(tc.tune.to_dict(), sort_keys=False))
result = tune(tc, trials=TRIALS, out=f"{OUT}/tune")
fig = history_plot(result, tc.tune)
display(fig)
result.trials.sort_values("metric_truth", ascending=False).head(5)

# %% [markdown]
# The same budget's worth of judgement needs a reference: a full grid of `GRID_LEVELS`
# values per parameter, every point judged by the same truth, in the same runs' random
# numbers.

# %%
grid = grid_search(tc, GRID_LEVELS)
feasible = grid[grid["feasible"].astype(bool)]
grid_best = feasible.loc[feasible["metric_truth"].idxmax()]
gap = 1 - result.best["metric_truth"] / grid_best["metric_truth"]
display(Markdown(
    f"Bayesian optimization: best margin {result.best['metric_truth']:.4f} per subscriber "
    f"(truth) at {result.best['values']} after {len(result.trials)} trials; the "
    f"{len(grid)}-point grid's best: {grid_best['metric_truth']:.4f} at "
    f"first_wait={grid_best['first_wait']}, last_wait={grid_best['last_wait']}, "
    f"discount={grid_best['discount']:.2f}. The search is "
    + (f"{gap:.1%} below the grid's best" if gap > 0 else f"{-gap:.1%} above the grid's best")
    + f" with {len(result.trials) / len(grid):.0%} of its runs; the declared series earns "
    f"{result.baseline['metric_truth']:.4f}."))

# %% [markdown]
# The tuned values write back as a rules file that `triggerlab run` and `triggerlab
# serve` load unchanged:

# %%
rules = load_rules(Path(f"{OUT}/tune/best_rules.yaml").read_text())
print(Path(f"{OUT}/tune/best_rules.yaml").read_text()[:600])

# %%
key_numbers = {
    "combination_arms": list(table.index),
    "true_best": {a: str(v) for a, v in table["true_best"].items()},
    "found": {a: bool(v) for a, v in table["found"].items()},
    "pick": {a: (None if pd.isna(v) else str(v)) for a, v in table["pick"].items()},
    "sends_to_find": {a: (None if pd.isna(v) else int(v))
                      for a, v in table["sends_to_find"].items()},
    "regret": {a: float(v) for a, v in table["expected_regret"].items()},
    "interaction_estimate": float(inter["estimate"]),
    "interaction_ci": [float(inter["ci_low"]), float(inter["ci_high"])],
    "interaction_truth": float(inter["truth"]),
    "interaction_significant": bool(inter["significant"]),
    "analysis_best": best_levels,
    "analysis_true_best": true_best,
    "tune_trials": len(result.trials),
    "tune_best_truth": float(result.best["metric_truth"]),
    "tune_baseline_truth": float(result.baseline["metric_truth"]),
    "grid_points": len(grid),
    "grid_best_truth": float(grid_best["metric_truth"]),
    "tune_gap_to_grid": float(gap),
    "best_rules_loaded": rules.rules[0].id,
    "runtime_s": time.perf_counter() - started,
}
pd.Series({k: v for k, v in key_numbers.items() if not isinstance(v, (dict, list))})
