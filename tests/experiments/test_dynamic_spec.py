"""Spec keys of dynamic segments: scoring, arms' target, score columns in rules and in the
per-segment analysis; the docs' example runs; the built-in scorers fit on a prior run."""

from __future__ import annotations

import copy
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments.models.scorers import SCORERS, fit_scorers, register_scorer, training_run
from experiments.runner import run, scoring_config
from experiments.segments import segment_effects
from experiments.spec import load_spec
from policies.errors import RuleWarning, SpecError, TriggerLabValueError
from policies.subscriber_schema import SubscriberColumn

DOCS = Path(__file__).resolve().parents[2] / "docs" / "segments.md"

RULE = {"id": "r", "type": "reactivation",
        "when": [{"event": "page_view", "within": "1h", "count": 1}],
        "delay": "1h", "expire": "1d", "priority": 5, "reentry": "always",
        "segment": {"p_churn": {"min": 0.7}}}
BASE = {
    "name": "dyn", "seed": 3, "population": {"subscribers": 100}, "duration": {"days": 14},
    "scoring": {"scorers": ["propensity", "clusters"], "first_day": 7, "refresh": 7,
                "train": {"subscribers": 200, "days": 21, "model": "logistic"}},
    "rules": {"rules": [RULE]},
    "arms": [{"name": "everyone"}, {"name": "top", "target": {"by": "p_purchase_7d",
                                                              "top": 0.3}}],
    "analysis": {"segments": ["cluster"]},
}


def _with(path: str, value):
    d = copy.deepcopy(BASE)
    *keys, last = path.split(".")
    node = d
    for k in keys:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return d


_DROP = object()

BAD = [
    ("scoring.scorers", ["uplfit"],
     "scoring.scorers[0]: expected one of clusters, propensity, uplift, got 'uplfit'"),
    ("scoring.scorers", ["propensity", "clusters", "uplift"],
     "scoring.train.holdout: the 'uplift' scorer learns from a randomized send: expected "
     "a share in (0, 1) held out, got 0"),
    ("scoring.train.incentive", 1.0,
     "scoring.train.incentive: expected a fraction in [0, 1), got 1.0"),
    ("scoring.train.incentive", "30%",
     "scoring.train.incentive: expected a fraction in [0, 1), got '30%'"),
    ("scoring.scorers", [], "scoring.scorers: expected a non-empty list of scorer names"),
    ("scoring.scorers", ["clusters", "clusters"],
     "scoring.scorers[1]: duplicate scorer 'clusters'; list each scorer once"),
    ("scoring.scorers", _DROP, "scoring.scorers: missing"),
    ("scoring.refresh", 0, "scoring.refresh: expected a whole number of days >= 1, got 0"),
    ("scoring.refresh", -7, "scoring.refresh: expected a whole number of days >= 1, got -7"),
    ("scoring.refresh", 1.5, "scoring.refresh: expected a whole number of days >= 1, got 1.5"),
    ("scoring.first_day", 0, "scoring.first_day: expected a whole number of days >= 1, got 0"),
    ("scoring.first_day", 14, "scoring.first_day: expected fewer days than the run's "
                              "duration.days (14: no refresh would happen), got 14"),
    ("scoring.train.days", 14, "scoring.train.days: expected an integer >= 21, got 14"),
    ("scoring.train.subscribers", 50,
     "scoring.train.subscribers: expected an integer >= 100, got 50"),
    ("scoring.train.model", "forest",
     "scoring.train.model: expected one of hgb, logistic, got 'forest'"),
    ("scoring.train.holdout", 1.0,
     "scoring.train.holdout: expected a fraction in [0, 1), got 1.0"),
    ("scoring.every", 7, "scoring.every: unknown key; expected one of scorers, first_day, "
                         "refresh, train"),
    ("scoring.train.colour", 1, "scoring.train.colour: unknown key; expected one of "
                                "subscribers, days, model, holdout, incentive"),
    ("arms.1.target.top", 1.5, "arms[1].target.top: expected a fraction in (0, 1], got 1.5"),
    ("arms.1.target.top", 0, "arms[1].target.top: expected a fraction in (0, 1], got 0"),
    ("arms.1.target.top", -0.2, "arms[1].target.top: expected a fraction in (0, 1], got -0.2"),
    ("arms.1.target.top", "30%", "arms[1].target.top: expected a fraction in (0, 1], got '30%'"),
    ("arms.1.target.by", "uplift",
     "arms[1].target.by: expected a score column the spec's scoring produces "
     "(p_purchase_7d, p_churn, p_open, cluster), got 'uplift'"),
    ("arms.1.target.by", "engagement_score",
     "arms[1].target.by: expected a score column the spec's scoring produces"),
    ("arms.1.target.by", _DROP, "arms[1].target.by: missing"),
    ("arms.1.target.q", 0.3, "arms[1].target.q: unknown key; expected one of by, top"),
    ("arms.1.target", [0.3], "arms[1].target: expected a mapping"),
    ("scoring", _DROP, "rules: rules[0].segment.p_churn: 'p_churn' is a score column of "
                       "scorer 'propensity', which scoring.scorers does not list"),
    ("scoring.scorers", ["clusters"],
     "rules: rules[0].segment.p_churn: 'p_churn' is a score column of scorer "
     "'propensity', which scoring.scorers does not list (docs/segments.md)"),
    ("rules.rules.0.segment", {"p_churn": {"min": 1.5}},
     "rules: rules[0].segment.p_churn.min: expected at most 1 (a number in [0, 1]), got 1.5"),
    ("rules.rules.0.segment", {"p_churn": {"max": -0.5}},
     "rules: rules[0].segment.p_churn.max: expected at least 0 (a number in [0, 1]), "
     "got -0.5"),
    ("rules.rules.0.segment", {"p_chrun": {"min": 0.5}},
     "rules: rules[0].segment.p_chrun: 'p_chrun' is not a column of the simulated "
     "subscriber table"),
    ("arms.0.rules", {"r": {"segment": {"cluster": {"in": [1]}, "p_open": {"min": 0.2}}}},
     None),   # valid: both are produced
    ("analysis.segments", ["cluster", "p_open", "engagement_score"], None),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD)
def test_bad_dynamic_segment_keys(path, value, message):
    data = _with(path, value)
    if message is None:
        load_spec(data)
        return
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        load_spec(data)


@pytest.mark.parametrize(("scorers", "segments", "message"), [
    (["propensity"], ["cluster"], "analysis.segments[0]: 'cluster' is a score column of "
                                  "scorer 'clusters', which scoring.scorers does not list"),
    (["clusters"], ["p_open"], "analysis.segments[0]: 'p_open' is a score column of scorer "
                               "'propensity', which scoring.scorers does not list"),
])
def test_analysis_segments_need_the_scorer(scorers, segments, message):
    data = _with("analysis.segments", segments)
    data["scoring"]["scorers"] = scorers
    data["rules"] = "none"
    del data["arms"][1]["target"]
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        load_spec(data)


def test_target_without_scoring_is_refused():
    data = _with("scoring", _DROP)
    data["rules"] = "none"
    data["analysis"] = {}
    with pytest.raises(SpecError, match="^" + re.escape(
            "arms[1].target.by: expected a score column the spec's scoring produces (none: "
            "the spec has no scoring key), got 'p_purchase_7d'")):
        load_spec(data)


def test_arm_override_naming_an_unproduced_score_is_refused():
    data = _with("arms.0.rules", {"r": {"segment": {"uplift": {"min": 0.1}}}})
    with pytest.raises(SpecError, match=re.escape(
            "arms[0]: after the arm's changes, rules[0].segment.uplift: 'uplift' is a score "
            "column of scorer 'uplift', which scoring.scorers does not list")):
        load_spec(data)


def test_spec_with_scoring_round_trips():
    spec = load_spec(BASE)
    again = load_spec(spec.to_dict())
    assert again == spec
    assert again.scoring.to_dict()["train"] == {"subscribers": 200, "days": 21,
                                                "model": "logistic", "holdout": 0.0,
                                                "incentive": 0.0}
    assert spec.to_dict()["arms"][1]["target"] == {"by": "p_purchase_7d", "top": 0.3}


def test_spec_without_scoring_writes_no_scoring_key():
    d = _with("scoring", _DROP)
    del d["arms"][1]["target"]
    d["rules"] = "none"
    d["analysis"] = {}
    out = load_spec(d).to_dict()
    assert "scoring" not in out and "target" not in out["arms"][1]


def test_built_in_scorers_fit_on_the_prior_run_once():
    kw = dict(subscribers=200, days=21, seed=3, model="logistic")
    scorers, cols = fit_scorers(("propensity", "clusters"), **kw)
    assert cols == ("p_purchase_7d", "p_churn", "p_open", "cluster")
    assert fit_scorers(("propensity", "clusters"), **kw)[0] is scorers   # cached
    tr = training_run(200, 21, 99, model="logistic", holdout=0.5)
    p = scorers[0].score(tr.features)
    assert ((p >= 0) & (p <= 1)).all().all() and p.std().gt(0).all()
    c = scorers[1].score(tr.features)
    assert set(np.unique(c)) <= set(range(scorers[1].clusters.k_))
    # the prior run is its own world (a derived seed), cut at day 7 for 21 days
    assert tr.cut == tr.history.start + 7 * 86400
    assert 0.35 < 1 - tr.treated.mean() < 0.65     # a randomized send at the cut


def test_registering_a_scorer_is_one_line():
    class Uplift:
        def score(self, features):
            return (features["frequency"] * 0.01).rename("lift_demo")

    try:
        register_scorer("uplift_test", {"lift_demo": SubscriberColumn("number")},
                        lambda training, seed: Uplift())
        data = _with("scoring.scorers", ["clusters", "uplift_test"])
        data["arms"][1]["target"] = {"by": "lift_demo", "top": 0.5}
        data["rules"] = {"rules": [dict(RULE, segment={"lift_demo": {"min": 0.02}})]}
        spec = load_spec(data)
        sc = scoring_config(spec)
        assert sc.columns == ("cluster", "lift_demo")
        assert isinstance(sc.scorers[1], Uplift)
        with pytest.raises(ValueError, match=r"already produced by scorer 'uplift_test'"):
            register_scorer("other", {"lift_demo": SubscriberColumn("number")},
                            lambda t, s: Uplift())
    finally:
        SCORERS.pop("uplift_test", None)


def _docs_example() -> dict:
    text = DOCS.read_text()
    block = text.split("### Example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_docs_example_loads_as_written_and_runs_small():
    data = _docs_example()
    spec = load_spec(data)
    assert [a.name for a in spec.arms] == ["everyone", "top30_propensity", "campaign_holdout"]
    assert spec.scoring.scorers == ("propensity", "clusters")
    # small: 200 subscribers, 8 days of 2-hour ticks, refreshes on days 3 and 6
    n = 200
    data["population"]["subscribers"] = n
    data["duration"] = {"days": 8, "tick": "2h"}
    data["scoring"].update(first_day=3, refresh=3)
    data["scoring"]["train"]["subscribers"] = 200
    data["scoring"]["train"]["days"] = 21
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run(data, progress=False)
    # rules on score columns are not reported as unable to fire (no column at the start)
    assert not [w for w in caught if issubclass(w.category, RuleWarning)]
    m = res.metrics.query("metric == 'sends' and group == 'treatment'")
    camp = m[m["source"] == "campaign"].groupby(["arm", "day"])["value"].sum()
    # campaign on days 0 and 7: the targeted arm sends nothing before the first refresh,
    # then at most ceil(0.3 n) (the top, less those who unsubscribed since day 6)
    assert camp[("top30_propensity", 0)] == 0 and camp[("everyone", 0)] > 0.9 * n
    assert 0 < camp[("top30_propensity", 7)] <= math.ceil(0.3 * n)
    assert camp[("top30_propensity", 7)] >= 0.9 * math.ceil(0.3 * camp[("everyone", 7)])
    assert camp.loc["campaign_holdout"].sum() == 0 if "campaign_holdout" in camp else True
    truth = res.truth.groupby("arm")["sends"].sum()
    assert truth["top30_propensity"] == m[m["arm"] == "top30_propensity"]["value"].sum()
    seg = segment_effects(res, "cluster")
    assert set(seg.effects["arm"]) == {"top30_propensity", "campaign_holdout"}
    assert len(seg.segments) >= 2 and all(s.isdigit() for s in seg.segments)
    deciles = segment_effects(res, "p_purchase_7d")
    assert 5 <= len(deciles.segments) <= 10 and deciles.segments[0].startswith("[")
    subs = res.subscribers
    a, b = (subs[subs["arm"] == n].set_index("subscriber")["cluster"]
            for n in ("everyone", "campaign_holdout"))
    assert a.equals(b)                      # the control's labels in every arm


def test_the_budget_counts_the_event_log_the_refreshes_read():
    from experiments.budget import BYTES_PER_SUBSCRIBER_DAY_SCORING, estimate

    with_scoring = load_spec(BASE)
    d = _with("scoring", _DROP)
    del d["arms"][1]["target"]
    d["rules"] = "none"
    d["analysis"] = {"segments": ["lifecycle_stage"]}
    plain = load_spec(d)
    assert estimate(with_scoring).bytes - estimate(plain).bytes == pytest.approx(
        BYTES_PER_SUBSCRIBER_DAY_SCORING * 100 * 14)


def test_uplift_scorer_learns_from_the_randomized_prior_run():
    """The uplift scorer fits on the prior run's randomized send (its cut email carries
    the spec's discount) and scores history features plus the subscriber table's
    attribute columns, as a refresh passes them."""
    from experiments.models.scorers import UPLIFT_ATTRIBUTES

    kw = dict(subscribers=600, days=21, seed=5, model="logistic", holdout=0.5)
    (scorer,), cols = fit_scorers(("uplift",), incentive=0.3, **kw)
    assert cols == ("uplift",)
    tr = training_run(600, 21, 17, model="logistic", holdout=0.5, incentive=0.3)
    assert set(UPLIFT_ATTRIBUTES) <= set(tr.table.columns)
    u = scorer.score(tr.features.join(tr.table[list(UPLIFT_ATTRIBUTES)]))
    assert u.name == "uplift" and u.index.equals(tr.features.index)
    assert np.isfinite(u).all() and u.std() > 0
    with pytest.raises(TriggerLabValueError, match="expected the attribute columns"):
        scorer.score(tr.features)           # a refresh always joins them
