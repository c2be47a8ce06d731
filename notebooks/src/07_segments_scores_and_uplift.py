# Source of notebooks/07_segments_scores_and_uplift.ipynb -- edit here, then run
# `python notebooks/_build.py` (tests/notebooks checks that the two agree).
# ruff: noqa: E402, B018  (a notebook: imports after the parameters cell, cells end
# with the expression they display)

# %% [markdown]
# # Who should get the email? Segments, scores and per-segment effects, checked against the truth
#
# **Question.** Our subscribers differ: some buy every week, some open everything and
# never buy, some have drifted away. Can we find those groups from their event history
# alone, predict who will buy or churn next week, and tell for whom a campaign works and
# for whom it backfires? A marketing tool gives a score and a chart; it cannot say how
# right they are. The simulator knows every subscriber's hidden segment and true
# probabilities, so here each model is read next to the truth.
#
# **Plan.** (1) simulate eight weeks of a shop with a weekly newsletter; (2) compute
# behavioral features from the event log up to a cut day (recency, frequency, money,
# engagement trends, category affinity); (3) cluster them and compare the clusters with
# the hidden segments; (4) train purchase, churn and open propensity models at day 28,
# test them at day 42 against the true probabilities; (5) fit customer lifetime value
# (BG/NBD and Gamma-Gamma); (6) run a discount test and read its effect by segment;
# (7) learn from a randomized send whom the discount *persuades* (uplift), and compare
# that ranking with the purchase propensity against the simulator's true effect; (8) use
# both scores as dynamic segments during a run: mail the top 30 % by each, refreshed
# weekly, against a holdout.

# %% tags=["parameters"]
SUBSCRIBERS = 30_000          # subscribers of the simulated history (steps 1-5)
EFFECT_SUBSCRIBERS = 20_000   # subscribers per arm of the discount test (step 6)
UPLIFT_SUBSCRIBERS = 40_000   # subscribers of the randomized send for the uplift model (7)
TARGET_SUBSCRIBERS = 20_000   # subscribers per arm of the targeting experiment (8)
SEED = 7
OUT = "runs/07_segments"

# %%
# %matplotlib inline
import time
from importlib import resources
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from IPython.display import Image, Markdown, display

import experiments
from experiments.models.clusters import cluster_report
from experiments.models.data import simulate_history
from experiments.models.propensity import propensity_report
from experiments.models.uplift import PERSUADABLE, plot_qini, simulate_uplift, uplift_report
from experiments.notebook_helpers import plot_intervals
from experiments.segments import segment_analyses
from policies.event_schema import EVENT_TYPES
from policies.segments import clv, fit_beta_geo, fit_gamma_gamma, history_features, rfm_summary

matplotlib.use("Agg")   # figures are shown with display(fig)
pd.set_option("display.precision", 3)
started = time.perf_counter()

# %% [markdown]
# ## 1. Eight weeks of history
#
# One simulated world, a newsletter to everybody every Monday (day 0, 7, ...). At days 28
# and 42, before that day's newsletter, the simulator records its truth for every
# subscriber: the hidden behavioral segment, the true probability of a purchase within 7
# days, of churning (no visit within 14 days, or unsubscribing from that newsletter) and
# of opening it. Afterwards the log tells what actually happened.

# %%
history = simulate_history(SUBSCRIBERS, SEED, days=56, cuts=(28, 42))
train_cut, test_cut = history.cuts
print(f"{len(history.events):,} events from {SUBSCRIBERS:,} subscribers; cuts at day "
      f"{(train_cut.now - history.start) // 86400} and {(test_cut.now - history.start) // 86400}")

# %% [markdown]
# ## 2. Features from the event history
#
# `history_features(events, now)` reads only events at or before `now`: a model trained
# on them never sees the future. Six weekly windows give the engagement trend (the slope
# of opens, clicks and sessions per week).

# %%
rows = test_cut.subscribed.index[test_cut.subscribed.to_numpy()].to_numpy()
features = history_features(history.events, test_cut.now, rows, window_days=7, n_windows=6)
later = history_features(history.events, test_cut.now + 7 * 86400, rows, window_days=7,
                         n_windows=6)
early = history_features(history.events[history.events.time <= test_cut.now], test_cut.now,
                         rows, window_days=7, n_windows=6)
no_peeking = bool(early.equals(features))
print(f"features at day 42 from the whole log == from the log cut at day 42: {no_peeking}; "
      f"a week later they differ for {int((later != features).any(axis=1).sum()):,} subscribers")
features.describe().T[["mean", "50%", "max"]]

# %% [markdown]
# ## 3. Behavioral clusters vs the hidden segments
#
# A Gaussian mixture over the standardized features; the number of clusters is chosen by
# the elbow of the BIC. The adjusted Rand index (ARI) says how well clusters recover the
# simulator's hidden segments: 0 is chance (the permutation null beside it), 1 is perfect,
# and a supervised classifier that *knows* the segments in training gives the ceiling
# that these features allow.

# %%
clusters = cluster_report(features, test_cut.truth["segment"], seed=SEED)
crosstab = pd.crosstab(clusters["clusters"].rename("cluster"),
                       test_cut.truth.loc[features.index, "segment"].rename("hidden segment"),
                       normalize="index")
print(f"k = {clusters['k']} ({clusters['criterion']}); ARI {clusters['ari']:.3f} "
      f"(null {clusters['ari_null']:.3f}, supervised ceiling {clusters['ari_supervised']:.3f})")
crosstab.round(2)

# %% [markdown]
# ## 4. Propensity scores vs the true probabilities
#
# Calibrated gradient boosting, trained on day-28 features and outcomes, scored on day 42
# (a time-based split). The AUC of the *true* probabilities is the best any model can
# reach: some of what happens next week is luck. The correlation with the truth and the
# calibration error against it say how close the score is to the probability it stands
# for.

# %%
table, scorer, calibration = propensity_report(history, seed=SEED)
fig, axes = plt.subplots(1, len(calibration), figsize=(4 * len(calibration), 3.8))
for ax, (name, cal) in zip(axes, calibration.items(), strict=True):
    top = float(cal[["truth", "score"]].to_numpy().max()) * 1.05
    ax.plot(cal["truth"], cal["score"], marker="o", label="score deciles")
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="score = truth")
    ax.set(xlim=(0, top), ylim=(0, top), title=name,
           xlabel="true probability (mean per score decile)")
axes[0].set_ylabel("score (mean per decile)")
axes[0].legend(loc="upper left")
fig.suptitle("Propensity scores vs the simulator's true probabilities (day 42)")
fig.tight_layout()
display(fig)
plt.close(fig)
table[["base_rate", "auc", "auc_truth", "brier", "brier_truth", "corr_vs_truth", "ece_vs_truth"]]

# %% [markdown]
# ## 5. Customer lifetime value
#
# BG/NBD (how often a customer buys while "alive", and the chance of having left) and
# Gamma-Gamma (how much per purchase), fitted by maximum likelihood on the purchase
# history up to day 42 (weeks as the time unit). The same code reproduces the published
# fit on the CDNOW data set (docs/segments.md).

# %%
summary = rfm_summary(history.events, test_cut.now)
beta_geo = fit_beta_geo(summary["x"], summary["t_x"], summary["T"])
repeat = summary[summary["x"] > 0]
gamma_gamma = fit_gamma_gamma(repeat["x"], repeat["m_x"])
value = clv(beta_geo, gamma_gamma, repeat)
next_2w = beta_geo.expected_purchases(2, summary["x"], summary["t_x"], summary["T"])
ev = history.events
after = ((ev.type == EVENT_TYPES.code("purchase_completed")) & (ev.time > test_cut.now)
         & (ev.time <= test_cut.now + 14 * 86400))
purchase_days = pd.DataFrame({"subscriber": ev.subscriber[after],
                              "day": ev.time[after] // 86400}).drop_duplicates()
observed_2w = (purchase_days["subscriber"].value_counts()
               .reindex(summary.index, fill_value=0))    # purchase days, as the model counts
poisson_limit = beta_geo.r > 1e3 and beta_geo.alpha > 1e3
print(f"{len(summary):,} customers, {len(repeat):,} with repeat purchases")
print(f"BG/NBD: r={beta_geo.r:.4g} alpha={beta_geo.alpha:.4g} (mean rate r/alpha = "
      f"{beta_geo.r / beta_geo.alpha:.4f} purchase days a week), a={beta_geo.a:.3g} "
      f"b={beta_geo.b:.3g}; Gamma-Gamma p={gamma_gamma.p:.3g} q={gamma_gamma.q:.3g} "
      f"gamma={gamma_gamma.gamma:.3g}")
if poisson_limit:
    print("r and alpha went to the edge of the search with a fixed ratio: the likelihood is "
          "highest at the Poisson limit, i.e. these repeat counts show no more spread than "
          "one common purchase rate would give.")
print(f"purchase days of these customers in the next 2 weeks: expected {next_2w.sum():,.0f}, "
      f"observed {observed_2w.sum():,}; mean 12-month CLV of repeat customers {value.mean():.1f}")
value.describe()

# %% [markdown]
# ## 6. For whom does a discount pay? Effects by segment
#
# The shipped spec `segment_effects`: a daily newsletter with a 30 % discount vs the same
# newsletter at full price. In this world a discount raises the chance that a click ends
# in an order in proportion to the subscriber's price sensitivity, and costs 30 % of the
# order: it earns more from price-sensitive subscribers and less from the others. The
# report breaks the revenue effect down by price-sensitivity quintile and lifecycle
# stage, with Benjamini-Hochberg adjusted p-values, a test of each segment against the
# rest, Cochran's Q for heterogeneity, and the simulator's true effect beside each.

# %%
spec = yaml.safe_load(resources.files("experiments.specs").joinpath("segment_effects.yaml")
                      .read_text())
spec["population"]["subscribers"] = EFFECT_SUBSCRIBERS
res = experiments.run(spec, out=OUT)
by_segment = {a.column: a for a in segment_analyses(res)}
sensitivity = by_segment["price_sensitivity"]
effects = sensitivity.effects[["segment", "subscribers", "diff", "diff_ci_low", "diff_ci_high",
                               "p_adjusted", "true_diff", "ci_covers_truth"]]
fig, ax = plt.subplots(figsize=(6, 3.5))
y = np.arange(len(effects))
ax.errorbar(effects["diff"], y, xerr=[effects["diff"] - effects["diff_ci_low"],
                                      effects["diff_ci_high"] - effects["diff"]],
            fmt="o", capsize=3, label="estimate, 95 % interval")
ax.scatter(effects["true_diff"], y, marker="x", color="red", zorder=3, label="truth")
ax.axvline(0, color="grey", lw=1)
ax.set_yticks(y, effects["segment"])
ax.set(xlabel="revenue per recipient, discount - full price",
       ylabel="price sensitivity quintile", title="Effect of the discount by segment")
ax.legend(loc="lower right")
display(fig)
plt.close(fig)
tests = {c: a.tests.iloc[0] for c, a in by_segment.items()}
effects

# %% [markdown]
# ## 7. Whom does the discount persuade? Uplift vs propensity
#
# Sending the discount to the subscribers most likely to buy sounds right, but many of
# them would have bought anyway. What matters is the *uplift*: orders with the email
# minus orders without it. It can only be learned from a randomized send. Here, in a
# world built so that the two differ (an inbox that opens and clicks, purchase intent
# alike across subscribers, and a discount that works through price sensitivity, a trait
# organic buying ignores: docs/segments.md, "Uplift"), a discount newsletter goes to a
# random half of the subscribers at day 28; half of the subscribers train an X-learner
# (ridge) on history features and the subscriber table's price sensitivity, the other
# half test it. The simulator gives every test subscriber's **true** uplift: the
# expected orders in the 7 days after the email, with it minus without it.
#
# The Qini curve is the incremental orders earned by mailing the top share of a ranking
# (per subscriber of the sample); the dashed line is mailing at random.

# %%
sample = simulate_uplift(UPLIFT_SUBSCRIBERS, SEED, overrides=PERSUADABLE)
uplift = uplift_report(sample, seed=SEED, base="linear", propensity_model="logistic")
Path(OUT).parent.mkdir(parents=True, exist_ok=True)
qini_png = plot_qini({"uplift model": uplift["curves"]["model"],
                      "purchase propensity": uplift["curves"]["propensity"],
                      "true uplift": uplift["curves"]["truth"]},
                     f"{OUT}_qini.png", title="Qini curves on the test half")
display(Image(filename=str(qini_png)))
rankings = pd.DataFrame({
    r: {"Spearman with the true uplift": uplift.get(f"spearman_{r}", np.nan),
        "Qini area": uplift[f"qini_{r}"],
        "top 30 % captures (share of true incremental orders)": uplift[f"captured_{r}"]}
    for r in ("model", "propensity", "true_propensity", "truth", "random")}).T
rankings.index = ["uplift model", "propensity model", "true purchase probability",
                  "true uplift", "random"]
rankings

# %% [markdown]
# ## 8. Targeting during a run: everyone vs top 30 % by propensity vs top 30 % by uplift
#
# The shipped spec `uplift_targeting`: the discount newsletter goes weekly to everyone,
# to the top 30 % by purchase propensity, or to the top 30 % by uplift. The scores are
# dynamic segments: fitted once on a prior run of other subscribers (whose day-21
# newsletter went to a random half), then refreshed every 7 days from each subscriber's
# own history during the run. Every arm keeps a random 20 % holdout that gets no
# newsletter, so treatment minus holdout is what the newsletter causes; dividing by the
# emails sent gives **incremental orders per email**, the figure that decides whom to
# mail when emails have a cost (fatigue, unsubscribes, discounts given away).

# %%
target_spec = yaml.safe_load(resources.files("experiments.specs")
                             .joinpath("uplift_targeting.yaml").read_text())
target_spec["population"]["subscribers"] = TARGET_SUBSCRIBERS
targeting = experiments.run(target_spec, out=f"{OUT}_targeting")
per_email = (targeting.summary().query("metric == 'incremental_orders_per_email'")
             .set_index("arm"))
display(plot_intervals(per_email.reset_index(), estimate="estimate", low="ci_low",
                       high="ci_high", truth="true_value",
                       xlabel="incremental orders per email sent (treatment - holdout)",
                       title="Orders caused per email, by whom the newsletter goes to"))
per_email[["estimate", "ci_low", "ci_high", "true_value", "p_adjusted"]]

# %% [markdown]
# ## What we learned

# %%
auc = table["auc"]
auc_truth = table["auc_truth"]
negative = effects[effects["diff_ci_high"] < 0]["segment"].tolist()
positive = effects[effects["diff_ci_low"] > 0]["segment"].tolist()


def where(segments: list, sign: str) -> str:
    return (f"significantly {sign} in {', '.join(segments)}" if segments
            else f"nowhere significantly {sign}")


q = tests["price_sensitivity"]
display(Markdown(
    f"- **Clusters:** {clusters['k']} behavioral clusters recover the hidden segments with "
    f"ARI {clusters['ari']:.2f} (chance {clusters['ari_null']:.2f}; a classifier trained on "
    f"the true segments reaches {clusters['ari_supervised']:.2f} from the same features).\n"
    f"- **Scores:** purchase propensity AUC {auc['purchase_7d']:.3f} against "
    f"{auc_truth['purchase_7d']:.3f} for the true probabilities; churn {auc['churn']:.3f} vs "
    f"{auc_truth['churn']:.3f}; open {auc['open']:.3f} vs {auc_truth['open']:.3f}. The score "
    f"correlates with the true purchase probability at "
    f"{table.loc['purchase_7d', 'corr_vs_truth']:.2f}.\n"
    f"- **Lifetime value:** BG/NBD expects {next_2w.sum():,.0f} purchase days of the "
    f"{len(summary):,} customers in the two weeks after day 42; {observed_2w.sum():,} "
    f"happened ({observed_2w.sum() / next_2w.sum() - 1:+.0%}).\n"
    f"- **Per-segment effect:** over everybody the discount changes revenue per recipient by "
    f"{q['overall_diff']:+.3f}; by price-sensitivity quintile the effect is "
    f"{where(negative, 'negative')} and {where(positive, 'positive')}"
    f" (Cochran's Q = {q['q']:.1f} on {int(q['df'])} df, p = {q['q_p_value']:.2g}). The "
    f"estimate has the true effect's sign in {int(q['sign_agrees'])} of {len(effects)} "
    f"segments and its interval covers the truth in {int(q['covered'])}. By lifecycle stage "
    f"the heterogeneity test gives p = {tests['lifecycle_stage']['q_p_value']:.2g}.\n"
    f"- **Uplift:** mailing the top 30 % by the uplift model captures "
    f"{uplift['captured_model']:.0%} of the true incremental orders (the true uplift's own "
    f"ranking {uplift['captured_truth']:.0%}, the purchase-propensity model "
    f"{uplift['captured_propensity']:.0%}, at random 30 %); its scores correlate with the "
    f"true uplift at {uplift['spearman_model']:.2f} (Spearman), the propensity's at "
    f"{uplift['spearman_propensity']:.2f}.\n"
    f"- **Targeting during a run:** per email sent, the newsletter causes "
    f"{per_email.loc['top30_uplift', 'estimate']:.3f} orders when it goes to the top 30 % "
    f"by uplift, {per_email.loc['top30_propensity', 'estimate']:.3f} to the top 30 % by "
    f"propensity and {per_email.loc['everyone', 'estimate']:.3f} to everyone (truth "
    f"{per_email.loc['top30_uplift', 'true_value']:.3f}, "
    f"{per_email.loc['top30_propensity', 'true_value']:.3f}, "
    f"{per_email.loc['everyone', 'true_value']:.3f}); the estimates sit "
    f"{1 - (per_email['estimate'] / per_email['true_value']).mean():.0%} below the truth on "
    f"average, mostly because the truth leaves out the organic orders a purchase makes less likely "
    f"afterwards."))

# %%
key_numbers = {
    "no_peeking": no_peeking,
    "clusters_k": int(clusters["k"]),
    "ari": float(clusters["ari"]),
    "ari_null": float(clusters["ari_null"]),
    "ari_supervised": float(clusters["ari_supervised"]),
    "auc": {k: float(v) for k, v in auc.items()},
    "auc_truth": {k: float(v) for k, v in auc_truth.items()},
    "corr_vs_truth": {k: float(v) for k, v in table["corr_vs_truth"].items()},
    "bgnbd_poisson_limit": bool(poisson_limit),
    "bgnbd": {"r": beta_geo.r, "alpha": beta_geo.alpha, "a": beta_geo.a, "b": beta_geo.b},
    "expected_purchases_2w": float(next_2w.sum()),
    "observed_purchases_2w": int(observed_2w.sum()),
    "overall_diff": float(q["overall_diff"]),
    "segment_diff": dict(zip(effects["segment"], map(float, effects["diff"]), strict=True)),
    "segment_true_diff": dict(zip(effects["segment"], map(float, effects["true_diff"]),
                                  strict=True)),
    "segments_negative": negative,
    "segments_positive": positive,
    "sign_agrees": int(q["sign_agrees"]),
    "covered": int(q["covered"]),
    "q_p_value": float(q["q_p_value"]),
    "lifecycle_q_p_value": float(tests["lifecycle_stage"]["q_p_value"]),
    "target_per_email": {a: float(v) for a, v in per_email["estimate"].items()},
    "target_per_email_truth": {a: float(v) for a, v in per_email["true_value"].items()},
    "target_uplift_significant": bool(per_email.loc["top30_uplift", "significant"]),
    "uplift_captured": {r: float(uplift[f"captured_{r}"])
                        for r in ("model", "propensity", "true_propensity", "truth")},
    "uplift_qini": {r: float(uplift[f"qini_{r}"])
                    for r in ("model", "propensity", "true_propensity", "truth", "random")},
    "uplift_spearman": {r: float(uplift[f"spearman_{r}"])
                        for r in ("model", "propensity", "true_propensity")},
    "runtime_s": time.perf_counter() - started,
}
pd.Series({k: v for k, v in key_numbers.items() if not isinstance(v, (dict, list))})
