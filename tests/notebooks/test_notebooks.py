"""Execute every notebook in ``notebooks/`` with small parameters and check its numbers.

Each notebook has one cell tagged ``parameters`` (plain ``NAME = value`` lines) and ends
with a dict ``key_numbers``. The test rewrites the tagged cell with the small sizes
below, runs the notebook top to bottom in a fresh ``python3`` kernel (nbclient) inside a
temporary directory, appends a cell that prints ``key_numbers`` as JSON, and asserts on
those numbers: the notebook's conclusions, not only that it ran.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"
MARK = "KEY_NUMBERS "

#: Small sizes for CI (each notebook's defaults are sized to run in < 2 minutes).
SMALL: dict[str, dict[str, object]] = {
    "01_compare_bandit_policies": {"SUBSCRIBERS": 5_000, "DAYS": 8, "REPLICATIONS": 1},
    "02_trigger_timing_experiment": {"SUBSCRIBERS": 20_000, "DAYS": 14, "REPLICATIONS": 1},
    # 12k: at 6k the two policies' DR estimates differ by 1 % (the truth: 15 %)
    "03_off_policy_evaluation": {"SUBSCRIBERS": 12_000, "DAYS": 8},
    # 1 s of load per run (was 2 s, 20k subscribers): the capacity run measured 5.6 M
    # events/s (asserted > 50k), the overload run at twice that is most of the time
    "04_load_test_triggers": {"SUBSCRIBERS": 10_000, "RATE": 50_000, "DURATION": 1.0},
    "05_personalization_and_send_time": {"SUBSCRIBERS": 4_000, "DAYS": 8},
    # 1,500 x 7 days (was 4,000 x 14, the very run of test_specs_outcomes'
    # test_cart_series_..., which owns the truth's conclusions): the funnel's counts 86 >
    # 76 > 55 > 35 on the spec's seed (79 > 68 > 54 > 34, 102 > 87 > 67 > 43 on the next two)
    "06_designing_a_cart_journey": {"SUBSCRIBERS": 1_500, "DAYS": 7, "REPLICATIONS": 1,
                                    # 6 days: Winning Path's 4-day window closes and it
                                    # commits (2 of 3 false at 1,500); the test asserts the
                                    # table's shape, not rates
                                    "AW_SUBSCRIBERS": 1_500, "AW_DAYS": 6,
                                    "AW_REPLICATIONS": 3},
    # 12k: at 8k the BIC elbow picks 3 clusters in the catalog-driven world (ARI 0.02)
    "07_segments_scores_and_uplift": {"SUBSCRIBERS": 12_000, "EFFECT_SUBSCRIBERS": 8_000,
                                      "UPLIFT_SUBSCRIBERS": 12_000, "TARGET_SUBSCRIBERS": 8_000},
    # 1,500 (was 5,000 x 14, the very run of test_specs_outcomes'
    # test_multivariate_..., which owns the comparison's conclusions): the true best is
    # the same on the spec's seed and the next two
    "08_multivariate_tests_and_tuning": {"SUBSCRIBERS": 1_500, "DAYS": 14,
                                         # 800 x 6 days (was 1,000 x 10): the search's best
                                         # 1.2 % below the grid's (asserted < 5 %), 6 %
                                         # above the declared series (1.7 % and 4 % before)
                                         "TUNE_SUBSCRIBERS": 800, "TUNE_DAYS": 6,
                                         "TRIALS": 16, "GRID_LEVELS": 3},
}

_ASSIGN = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)\s*=\s*(?P<value>[^#]*?)(?P<comment>\s*#.*)?$")


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inject(source: str, params: dict[str, object]) -> str:
    """``source`` with the values of the ``NAME = value`` lines in ``params`` replaced."""
    seen = set()
    lines = []
    for line in source.splitlines():
        m = _ASSIGN.match(line)
        if m and m.group("name") in params:
            name = m.group("name")
            seen.add(name)
            line = f"{name} = {params[name]!r}{m.group('comment') or ''}"
        lines.append(line)
    missing = sorted(set(params) - seen)
    if missing:
        raise KeyError(f"parameters cell has no assignment to {missing}")
    return "\n".join(lines)


def run_notebook(name: str, params: dict[str, object], workdir: Path) -> dict:
    """Execute notebook ``name`` with ``params`` in ``workdir``; return its key_numbers."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters'"
    tagged[0].source = inject(tagged[0].source, params)
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json\nprint({MARK!r} + json.dumps(key_numbers, default=str))"))
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith(MARK))
    return json.loads(line[len(MARK):])


@pytest.fixture
def kernel_env(monkeypatch):
    """Make the kernel spec's ``python`` the interpreter running the tests (a venv's,
    even when the venv is not activated) and let it import this checkout."""
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports this checkout, whatever is installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    from jupyter_client.kernelspec import KernelSpecManager

    assert KERNEL in KernelSpecManager().find_kernel_specs(), \
        "no 'python3' Jupyter kernel: install the dev extra (ipykernel)"


# --------------------------------------------------------------------------- builder


def test_notebooks_match_their_sources():
    build = _load_build()
    sources = build.sources()
    assert [s.stem for s in sources] == sorted(SMALL)
    for src in sources:
        committed = build.target(src).read_text(encoding="utf-8")
        assert committed == build.render(src), f"{src.name}: run python notebooks/_build.py"


def test_notebooks_have_no_outputs_and_one_parameters_cell():
    for name in SMALL:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        assert nb.metadata["kernelspec"]["name"] == KERNEL


def test_parse_percent_format():
    build = _load_build()
    cells = build.parse("header\n# %% [markdown]\n# # Title\n#\n# text\n"
                        "# %% tags=[\"parameters\"]\nN = 1\n\n# %%\n# %matplotlib inline\nx = N\n")
    assert cells == [("markdown", "# Title\n\ntext", []), ("code", "N = 1", ["parameters"]),
                     ("code", "%matplotlib inline\nx = N", [])]


@pytest.mark.parametrize(
    ("source", "params", "expected"),
    [
        ("N = 10   # size\nDAYS = 14", {"N": 3}, "N = 3   # size\nDAYS = 14"),
        ("OUT = 'runs/a'", {"OUT": "x"}, "OUT = 'x'"),
        ("RATE = 2.0", {"RATE": 0.5}, "RATE = 0.5"),
    ],
)
def test_inject(source, params, expected):
    assert inject(source, params) == expected


def test_inject_rejects_unknown_parameter():
    with pytest.raises(KeyError, match=r"no assignment to \['SIZE'\]"):
        inject("N = 1", {"SIZE": 2})


def test_production_doc_examples_run(tmp_path, monkeypatch):
    """docs/production.md's code blocks, run in order in one namespace."""
    import pandas as pd

    text = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    # section 7 (the trigger service) mixes commands with its code blocks: its own test
    # (tests/actors/service/test_service_docs.py) runs them together
    text = text.split("## 7. Running the trigger service")[0]
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for block in blocks:
        exec(compile(block, "docs/production.md", "exec"), ns)
    fires = ns["fires"]
    assert fires["trigger_id"].tolist() == ["cart_abandonment_24h:7:1767621600"]
    assert ns["send_log"]["propensity"].between(0, 1).all()
    stats = ns["engine"].stats()                      # the engine restored from its checkpoint
    assert stats.loc["cart_abandonment_24h", ["entered", "fired", "retried"]].tolist() == [1, 1, 1]
    assert ns["engine"].clock == 1_767_632_400 + 25 * 3600 + 30
    # issue 19: the send that got no click within its window reached the bandit as a 0
    # (a guide that fed only clicks taught a policy that learns from successes alone)
    state = ns["subjects"].state_dict()["state"]       # the policy restored from its checkpoint
    assert sum(state["failures"]) == 1 and sum(state["successes"]) == 0
    send_log = ns["send_log"]
    window_end = 1_767_632_400 + 25 * 3600 + ns["WINDOW"]
    assert send_log["reward"].tolist() == [0.0]        # the late click did not turn it into 1
    assert send_log["reward_at"].tolist() == [window_end] and send_log["learned"].all()
    # the evaluation log holds propensity, context and reward time; OPE read it
    logged = pd.read_csv(tmp_path / "sends.csv")
    assert len(logged) == 1 and logged["propensity"].between(0, 1).all()
    assert {"arm", "reward", "reward_at", "sent_at", "x_engagement_score"} <= set(logged)
    assert ns["value"].n_rounds == 1 and ns["value"].estimate == 0.0
    assert (tmp_path / "checkpoint" / "engine.pkl").exists()


def test_production_doc_tick_and_feedback_handle_bad_input(tmp_path, monkeypatch, capsys):
    """The guide's tick() survives the records quarantine exists for, and its learn()
    gives the bandit a 1 per click within the window and a 0 per window closed without
    one, each send once."""
    import pandas as pd

    text = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.S)[:3]:
        exec(compile(block, "docs/production.md", "exec"), ns)
    out = capsys.readouterr().out
    assert out.count("rejected:") == 3                 # no time, a bad time, not a record
    assert "rejected: time expected an ISO-8601" in out
    ns["buffer"] = [{"subscriber": 7, "time": "soon"}, None, 42, {"time": float("nan")},
                    {"subscriber": 7, "time": 1_767_632_400 + 10**6, "type": "page_view"}]
    ns["tick"](1_767_632_400 + 26 * 3600)              # no exception
    assert len(ns["buffer"]) == 1                      # only the future event waits
    assert capsys.readouterr().out.count("rejected:") == 4
    # feedback: two sends, one clicked in time, one clicked too late, one click twice
    subjects = ns["BetaThompson"](["plain", "first_name", "dont_miss"])
    ns["subjects"] = subjects
    (tmp_path / "sends.csv").unlink()                  # the guide's own send: not these
    sent, window = 1_000_000, ns["WINDOW"]
    ns["send_log"] = pd.DataFrame({
        "trigger_id": ["a", "b"], "subscriber": [1, 2], "sent_at": [sent, sent],
        "subject": ["plain", "dont_miss"], "arm": [0, 2], "propensity": [0.5, 0.25],
        "reward": [float("nan")] * 2, "reward_at": [float("nan")] * 2, "learned": False,
    })
    ns["on_click"]("a", at=sent + 60)
    ns["on_click"]("a", at=sent + 120)                 # a second click: ignored
    ns["on_click"]("zzz", at=sent + 60)                # unknown send: ignored
    ns["learn"](sent + 3600)                           # the click is learned now
    assert subjects.state_dict()["state"] == {"successes": [1.0, 0.0, 0.0],
                                              "failures": [0.0, 0.0, 0.0]}
    ns["on_click"]("b", at=sent + window + 1)          # after b's window: ignored
    ns["learn"](sent + window + 5)
    ns["learn"](sent + window + 10)                    # nothing learned twice
    assert subjects.state_dict()["state"] == {"successes": [1.0, 0.0, 0.0],
                                              "failures": [0.0, 0.0, 1.0]}
    logged = pd.read_csv(tmp_path / "sends.csv")
    assert logged["trigger_id"].tolist() == ["a", "b"]
    assert logged["reward"].tolist() == [1.0, 0.0]
    assert logged["reward_at"].tolist() == [sent + 60, sent + window]


# --------------------------------------------------------------------------- notebooks


@pytest.mark.slow
def test_01_compare_bandit_policies(kernel_env, tmp_path):
    k = run_notebook("01_compare_bandit_policies", SMALL["01_compare_bandit_policies"],
                     tmp_path)
    regret = k["regret"]
    assert set(regret) == {"ab_split", "epsilon_greedy", "thompson", "linucb"}
    assert regret["thompson"] < 0.85 * regret["ab_split"]
    assert regret["epsilon_greedy"] < regret["ab_split"]
    assert regret["linucb"] < regret["ab_split"]
    ctr = k["true_click_rate"]
    assert ctr["thompson"] > ctr["ab_split"]
    assert k["thompson_best_share_last_day"] > 0.5        # an equal split gives 1/3
    assert (tmp_path / "runs" / "01_compare_bandit_policies" / "report.md").exists()


@pytest.mark.slow
def test_02_trigger_timing(kernel_env, tmp_path):
    k = run_notebook("02_trigger_timing_experiment", SMALL["02_trigger_timing_experiment"],
                     tmp_path)
    truth = k["true_incremental_orders"]
    assert truth["reminder_1h"] > truth["reminder_4h"] > truth["reminder_24h"] > 0
    att = k["attributed_order_rate"]
    assert att["reminder_1h"] > att["reminder_24h"]
    # the paired (common random numbers) comparison finds 1 h better than 24 h
    assert k["paired_orders_ci_low"]["reminder_1h"] > 0
    n = k["n_per_arm_needed"]
    assert n["reminder_24h"] > n["reminder_4h"] > n["reminder_1h"] > 1_000
    assert 0 < k["mde_relative"] < 1
    assert 0.01 < k["baseline_orders_per_subscriber"] < 0.2
    for arm, p in k["holdout_p_value"].items():
        assert 0 <= p <= 1, arm
    assert ("The dashboard ranks the arms as the truth does" in k["conclusion"]) \
        is k["dashboard_agrees"]


#: Tiny sizes the parameters cells invite: the notebooks must run and every sentence of
#: their conclusions must follow the numbers (at these sizes notebook 02 crashed on a Wilson
#: bound of 1.08e-19 for 0/3200 and on a holdout without orders, and claimed "the
#: dashboard agrees on the ranking"; notebook 01 called a negative difference "the largest
#: gain").
TINY: dict[str, dict[str, object]] = {
    "01_compare_bandit_policies": {"SUBSCRIBERS": 2_000, "DAYS": 5, "REPLICATIONS": 1},
    "02_trigger_timing_experiment": {"SUBSCRIBERS": 300, "DAYS": 2, "REPLICATIONS": 1},
}


@pytest.mark.slow
def test_01_sentences_follow_the_numbers_at_tiny_size(kernel_env, tmp_path):
    k = run_notebook("01_compare_bandit_policies", TINY["01_compare_bandit_policies"], tmp_path)
    text = k["conclusion"]
    diffs = {a: v for a, v in k["revenue_diff"].items() if math.isfinite(v)}
    best = max(diffs, key=diffs.get)
    if diffs[best] > 0:
        assert f"the largest estimated gain is {best}" in text
    else:
        assert f"no arm's estimate is above the split; the closest is {best}" in text
        assert "gain is" not in text
    regret = k["regret"]
    change = regret["thompson"] / regret["ab_split"] - 1
    assert f"Thompson sampling lost {abs(change):.0%} " \
           f"{'fewer' if change <= 0 else 'more'} clicks" in text


@pytest.mark.slow
def test_02_sentences_follow_the_numbers_at_tiny_size(kernel_env, tmp_path):
    k = run_notebook("02_trigger_timing_experiment", TINY["02_trigger_timing_experiment"],
                     tmp_path)
    text = k["conclusion"]
    truth = k["true_incremental_orders"]
    att = k["attributed_order_rate"]
    order = sorted(truth, key=truth.get, reverse=True)
    agrees = all(att[a] > att[b] for a, b in itertools.pairwise(order))
    assert k["dashboard_agrees"] is agrees
    assert ("The dashboard ranks the arms as the truth does" in text) is agrees
    assert "agrees on the ranking" not in text
    assert f"`{order[0]}` causes the most incremental orders" in text
    if k["baseline_orders_per_subscriber"] == 0:
        assert "too few to size a test" in text
    assert "needs about 0 subscribers" not in text
    for arm, lo in k["paired_orders_ci_low"].items():
        if lo > 0:
            assert "the interval excludes 0" in text, arm


@pytest.mark.slow
def test_03_off_policy_evaluation(kernel_env, tmp_path):
    k = run_notebook("03_off_policy_evaluation", SMALL["03_off_policy_evaluation"], tmp_path)
    truth = k["offline_truth"]["rule_based"]
    for method in ("ips", "snips", "dr"):
        key = f"rule_based/{method}"
        # the intervals treat a subscriber's daily emails (8 here) as independent, which
        # they are not (each subscriber's click propensity repeats): the check allows a
        # design effect up to 4, i.e. twice the half-width (seen: IPS 21 % below the truth
        # at 1.4 half-widths on this seed after the world's journey terms, 27 % above on
        # seed 8)
        half = (k["ci_high"][key] - k["ci_low"][key]) / 2
        assert abs(k["estimates"][key] - truth) <= 2 * half, method
        assert abs(k["estimates"][key] / truth - 1) < 0.3, method
    for name in ("rule_based", "always_first_name"):
        assert abs(k["weight_mean"][name] - 1) < 0.1, name
    assert k["winner"] == "rule_based"
    assert k["online_truth"]["rule_based"] > k["online_truth"]["logging_thompson"]
    assert k["estimates"]["rule_based/dr"] > k["logging_observed"]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.own_cluster      # the notebook starts Ray in its kernel
def test_04_load_test(kernel_env, tmp_path):
    k = run_notebook("04_load_test_triggers", SMALL["04_load_test_triggers"], tmp_path)
    assert k["checks_passed"] == [True, True, True]
    assert k["processed_equals_offered"] == [True, True, True]
    assert k["duplicates"] == [0, 0, 0]
    assert k["nothing_lost_after_kill"] is True
    assert k["replayed_events"] > 0
    assert 0 < k["steady_p50_ms"] <= k["steady_p99_ms"]
    assert k["capacity_eps"] > 50_000
    assert k["overload_max_backlog"] > k["steady_max_backlog"]
    assert all(f > 0 for f in k["fires"])


@pytest.mark.slow
def test_05_personalization_and_send_time(kernel_env, tmp_path):
    k = run_notebook("05_personalization_and_send_time",
                     SMALL["05_personalization_and_send_time"], tmp_path)
    content = k["content_true_clicks"]
    assert content["rule_based"] > 1.05 * content["global_winner"]
    assert k["content_segments_won"] >= 4
    best = k["send_best_per_segment"]
    assert best["0-1 h from 10:00"] == "fixed_10h"     # 10:00 is their preferred hour
    assert best["7-12 h"] != "fixed_10h"
    opens = k["send_true_opens"]
    assert all(0.05 < v < 0.6 for v in opens.values())
    assert all(math.isfinite(v) for v in k["send_true_clicks"].values())


def test_06_designing_a_cart_journey(kernel_env, tmp_path):
    k = run_notebook("06_designing_a_cart_journey", SMALL["06_designing_a_cart_journey"],
                     tmp_path)
    assert k["arms"] == ["series", "one_reminder", "series_smart", "discount_every_email"]
    margin, caused = k["margin_truth"], k["orders_caused_truth"]
    # what the series, one reminder and the discount for everyone do to margin, orders
    # and margin per order (truth) is test_specs_outcomes'
    # test_cart_series_a_discount_for_everyone_wins_orders_and_loses_margin, on the run
    # this notebook makes at 4,000 x 14 days; here: the conclusion's changes are the
    # numbers
    assert margin["series"] > 0 and caused["series"] > 0
    assert k["discount_orders_change"] == pytest.approx(
        caused["discount_every_email"] / caused["series"] - 1)
    assert k["discount_margin_change"] == pytest.approx(
        margin["discount_every_email"] / margin["series"] - 1)
    assert k["best_margin_arm"] == max(margin, key=margin.get)
    sends = k["sends"]
    assert sends["one_reminder"] < sends["series_smart"] < sends["series"]
    # the control's flowchart counts: entries and three sends, each fewer than the last
    sent = [k["funnel_sent"][n] for n in sorted(k["funnel_sent"], key=int)]
    assert k["funnel_entered"] > sent[0] > sent[1] > sent[2] > 0
    # the automatic-winner table: four rules, the fixed split never commits
    assert k["auto_winner_arms"] == ["fixed_split", "klaviyo_auto_winner",
                                     "braze_winning_path", "thompson"]
    assert math.isnan(k["auto_winner_false_winner_rate"]["fixed_split"])
    assert 0 <= k["auto_winner_false_winner_rate"]["braze_winning_path"] <= 1
    assert k["auto_winner_regret"]["fixed_split"] > 0


@pytest.mark.slow
def test_07_segments_scores_and_uplift(kernel_env, tmp_path):
    k = run_notebook("07_segments_scores_and_uplift", SMALL["07_segments_scores_and_uplift"],
                     tmp_path)
    assert k["no_peeking"] is True
    # clusters recover part of the hidden segments, below what a supervised model reaches
    assert k["ari"] > 0.03 and k["ari"] > 20 * abs(k["ari_null"])
    assert k["ari"] <= k["ari_supervised"] + 0.02
    for target in ("purchase_7d", "churn", "open"):
        # better than chance, not better than the true probabilities (up to noise)
        assert 0.55 < k["auc"][target] <= k["auc_truth"][target] + 0.02, target
        assert k["corr_vs_truth"][target] > 0.1, target
    assert k["corr_vs_truth"]["open"] > 0.8
    # BG/NBD's forecast of the next two weeks within a factor 1.6 of what happened
    assert 1 / 1.6 < k["observed_purchases_2w"] / k["expected_purchases_2w"] < 1.6
    # the discount's effect changes sign with price sensitivity, and the report sees it
    true_diff = list(k["segment_true_diff"].values())
    diff = list(k["segment_diff"].values())
    assert true_diff[0] < 0 < true_diff[-1] and diff[0] < 0 < diff[-1]
    assert k["sign_agrees"] >= 4 and k["covered"] >= 4
    assert k["q_p_value"] < 1e-4
    # the sentences' lists follow the intervals
    for seg in k["segments_negative"]:
        assert k["segment_diff"][seg] < 0
    for seg in k["segments_positive"]:
        assert k["segment_diff"][seg] > 0
    assert k["segments_negative"] and k["segments_positive"]
    # uplift: the model's top 30 % holds more of the true incremental orders than the
    # propensity model's and than random, less than the truth's own ranking
    cap = k["uplift_captured"]
    assert 0.3 < cap["propensity"] < cap["model"] <= cap["truth"] + 0.02
    assert k["uplift_spearman"]["model"] > k["uplift_spearman"]["propensity"] + 0.2
    assert k["uplift_qini"]["model"] > k["uplift_qini"]["propensity"] > k["uplift_qini"]["random"]
    # targeting during a run: per email, uplift > propensity > everyone, truth and estimate
    for key in ("target_per_email", "target_per_email_truth"):
        v = k[key]
        assert v["top30_uplift"] > v["top30_propensity"] > v["everyone"] > 0, key
    assert k["target_uplift_significant"] is True


@pytest.mark.slow
def test_08_multivariate_tests_and_tuning(kernel_env, tmp_path):
    k = run_notebook("08_multivariate_tests_and_tuning",
                     SMALL["08_multivariate_tests_and_tuning"], tmp_path)
    best = "learn:general_engagement:learn_more"
    assert k["combination_arms"] == ["factorial", "factorized", "one_at_a_time"]
    # which arm finds the true best first, with what regret, and what the factorial
    # analysis finds is test_specs_outcomes'
    # test_multivariate_factorized_policy_finds_the_best_combination_first, on the run
    # this notebook makes at 5,000 x 14 days; here: the table and the analysis agree on
    # the truth
    assert set(k["true_best"].values()) == {best}
    assert k["analysis_true_best"] == best
    # tuning: the search's best within 5 % of the grid's best, above the declared series
    assert k["tune_trials"] == 16 and k["grid_points"] == 27
    assert k["tune_gap_to_grid"] < 0.05
    assert k["tune_best_truth"] > k["tune_baseline_truth"]
    assert k["best_rules_loaded"] == "cart_series"

