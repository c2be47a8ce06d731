"""Issue 19: bad input never breaks the CLI and never fools it.

Table-driven: each case is (files, argv, exit status, message regex). Classes: duplicate
YAML keys (specs, rules), ``validate`` catching what would make ``run`` fail (empty or
non-mapping files, rules files, metrics, absurd sizes, every spec key with a wrong
type), rules that can never fire (refused) or cannot fire on the simulated data
(warned), names that end up in paths, and ``--out`` checked before the work.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import experiments.runner as runner_mod
from experiments.budget import check_budget, estimate, format_bytes, format_seconds
from experiments.cli import main
from experiments.spec import load_spec
from policies.errors import RuleError, SpecError
from policies.triggers import load_rules

BASE: dict[str, Any] = {
    "name": "tiny", "seed": 1, "population": {"subscribers": 20},
    "duration": {"days": 1, "tick": "1h"}, "rules": "none",
    "arms": [{"name": "a"}, {"name": "b"}], "metrics": ["orders"],
}
RULES = """\
rules:
  - id: cart
    type: cart_abandonment
    when: [{event: add_to_cart, within: 60m}]
    delay: 1h
    expire: 3d
"""
CART_RULE: dict[str, Any] = yaml.safe_load(RULES)["rules"][0]


def _rules_file(**rule: Any) -> str:
    """RULES with the cart rule's keys changed."""
    return yaml.safe_dump({"rules": [{**CART_RULE, **rule}]})


def _spec_rules(arms: Any = None, **rule: Any) -> str:
    """A spec whose inline rules are the cart rule with ``rule`` changes."""
    return _spec(rules={"rules": [{**CART_RULE, **rule}]},
                 **({"arms": arms} if arms is not None else {}))


def _spec(**changes: Any) -> str:
    d = {**BASE, **changes}
    return yaml.safe_dump(d, allow_unicode=True)


def _cli(tmp_path: Path, capsys: Any, argv: list[str]) -> tuple[int, str, str]:
    argv = [a.format(dir=tmp_path) for a in argv]
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(autouse=True)
def _no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any case here must be refused before a simulation starts."""
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the simulation ran before the input was refused")

    monkeypatch.setattr(runner_mod, "_run_all", boom)


# ---------------------------------------------------------------------------
# validate / run on bad spec and rules files: one line, exit 2

VALIDATE_BAD = [
    # duplicate keys, at any depth, in specs and in rules files
    ("dup-top", _spec() + "seed: 2\n",
     r"spec: duplicate key 'seed' at line \d+ \(first at line \d+\) in .*s\.yaml"),
    ("dup-nested", "name: x\nseed: 1\npopulation:\n  subscribers: 20\n  subscribers: 30\n"
                   "arms: [{name: a}, {name: b}]\n",
     r"duplicate key 'subscribers' at line 5 \(first at line 4\)"),
    ("dup-arm", "name: x\nseed: 1\narms:\n  - name: a\n    name: b\n  - name: c\n",
     r"duplicate key 'name' at line 5 \(first at line 4\)"),
    ("dup-flow", "{name: x, seed: 1, name: y, arms: [{name: a}, {name: b}]}\n",
     r"duplicate key 'name' at line 1 \(first at line 1\)"),
    ("dup-rules-file", RULES + "  - id: two\n    id: three\n",
     r"duplicate key 'id' at line 8 \(first at line 7\)"),
    # what validate itself crashed on / let through to run
    ("empty-file", "", r"s\.yaml: expected a mapping, got None"),
    ("yaml-list", "- a\n- b\n", r"expected a mapping, got \['a', 'b'\]"),
    ("yaml-scalar", "42\n", r"expected a mapping, got 42"),
    ("metrics-empty", _spec(metrics=[]), r"metrics: expected a non-empty list"),
    ("metrics-dup", _spec(metrics=["orders", "orders"]),
     r"metrics\[1\]: duplicate metric 'orders'"),
    ("subscribers-1e12", _spec(population={"subscribers": 10**12}),
     r"population\.subscribers: the run would need about .* TB of memory .* available"),
    ("replications-1e9", _spec(replications=10**9),
     r"replications: the run would need about .* TB of memory .* available; and would "
     r"take about .* on one core"),
    ("rules-file-bad-rule", RULES.replace("delay: 1h", "delay: soon"),
     r"rules: rules\[0\]\.delay: expected a duration"),
    # rules that could never fire, whatever the data (rules files and specs alike)
    ("rules-file-stage-vip", _rules_file(segment={"lifecycle_stage": {"in": ["vip"]}}),
     r"s\.yaml: rules: rules\[0\]\.segment\.lifecycle_stage\.in\[0\]: expected one of "
     r"new_subscriber, .*, got 'vip'; no subscriber can have it$"),
    ("rules-file-score-above-1", _rules_file(segment={"engagement_score": {"min": 1.5}}),
     r"rules\[0\]\.segment\.engagement_score\.min: no subscriber can pass: "
     r"engagement_score is a number in \[0, 1\], got min 1\.5$"),
    ("rules-file-where-typo", _rules_file(when=[{"event": "add_to_cart", "within": "1h",
                                                 "where": {"cart_vlaue": {"min": 25}}}]),
     r"rules\[0\]\.when\[0\]\.where\.cart_vlaue: unknown event data column 'cart_vlaue' "
     r"\(did you mean 'cart_value'\?\)"),
    ("spec-stage-typo", _spec_rules(segment={"lifecycle_stage": "prospects"}),
     r"s\.yaml: rules: rules\[0\]\.segment\.lifecycle_stage: .*got 'prospects' \(did you "
     r"mean 'prospect'\?\)"),
    ("spec-hour-25", _spec_rules(segment={"preferred_hour": {"in": [9, 25]}}),
     r"rules\[0\]\.segment\.preferred_hour\.in\[1\]: expected a whole number in \[0, 23\], "
     r"got 25"),
    # ... and what can never fire in a simulation (a spec's data are the simulator's)
    ("spec-event-never-emitted", _spec_rules(when=[{"event": "price_check", "within": "1h"}]),
     r"rules: rules\[0\]\.when\[0\]\.event: the simulator never emits 'price_check' "
     r"events \(it emits page_view, .*\), so the rule cannot fire in a simulation$"),
    ("spec-where-not-carried", _spec_rules(when=[
        {"event": "email_click", "within": "1h", "where": {"cart_value": {"min": 1}}}]),
     r"rules\[0\]\.when\[0\]\.where\.cart_value: the simulator's email_click events "
     r"never carry 'cart_value' \(they carry campaign_id, link_type\)"),
    ("spec-where-second-condition", _spec_rules(when=[
        {"event": "add_to_cart", "within": "1h"},
        {"event": "page_view", "within": "1h", "where": {"price": {"min": 1}}}]),
     r"rules\[0\]\.when\[1\]\.where\.price: the simulator's page_view events never "
     r"carry 'price'"),
    ("spec-segment-column", _spec_rules(segment={"tier": "gold"}),
     r"rules: rules\[0\]\.segment\.tier: 'tier' is not a column of the simulated subscriber "
     r"table \(its columns: lifecycle_stage, .*\), so the rule cannot fire in a simulation$"),
    ("spec-segment-typo", _spec_rules(segment={"engagment_score": {"min": 0.5}}),
     r"segment\.engagment_score: 'engagment_score' is not a column of the simulated "
     r"subscriber table \(did you mean 'engagement_score'\?\)"),
    ("spec-arm-segment-column", _spec_rules(arms=[
        {"name": "a"}, {"name": "b", "rules": {"cart": {"segment": {"vip": True}}}}]),
     r"arms\[1\]: after the arm's changes, rules\[0\]\.segment\.vip: 'vip' is not a column"),
    ("spec-arm-stage-vip", _spec_rules(arms=[
        {"name": "a"},
        {"name": "b", "rules": {"cart": {"segment": {"lifecycle_stage": {"in": ["vip"]}}}}}]),
     r"arms\[1\]: after the arm's changes, rules\[0\]\.segment\.lifecycle_stage\.in\[0\]: "
     r"expected one of .*got 'vip'"),
    # names that end up in paths
    ("name-escape", _spec(name="../../escape"), r"name: expected a run name usable as a "
                                                r"folder name .*got '\.\./\.\./escape'"),
    ("name-empty", _spec(name=""), r"name: expected a "),
    ("name-blank", _spec(name="   "), r"name: expected a run name"),
    ("name-dot", _spec(name="."), r"name: expected a run name"),
    ("name-dotdot", _spec(name=".."), r"name: expected a run name"),
    ("name-absolute", _spec(name="/tmp/x"), r"name: expected a run name"),
    ("name-slash", _spec(name="a/b"), r"name: expected a run name"),
    ("name-backslash", _spec(name="a\\b"), r"name: expected a run name"),
    ("name-newline", _spec(name="a\nb"), r"name: expected a run name"),
    ("name-nul", _spec(name="a\x00b").replace("\\0", "\\0"), r"name|malformed"),
    ("name-long", _spec(name="x" * 201), r"name: expected a run name"),
    ("name-long-unicode", _spec(name="é" * 101), r"name: expected a run name"),
    ("name-trailing-space", _spec(name="x "), r"name: expected a run name"),
    ("arm-name-empty", _spec(arms=[{"name": " "}, {"name": "b"}]),
     r"arms\[0\]\.name: expected a non-empty name"),
    ("arm-name-control", _spec(arms=[{"name": "a\tb"}, {"name": "b"}]),
     r"arms\[0\]\.name: expected a non-empty name"),
    ("description-mapping", _spec(description={"a": 1}), r"description: expected a string"),
    ("not-utf8", b"name: \xff\xfe\n", r"s\.yaml is not UTF-8 text"),
]
# every spec key with a wrong type
WRONG_TYPES = {
    "name": 5, "seed": "x", "population": [], "duration": [], "rules": 5, "campaign": 5,
    "reward": 5, "reward_window": [], "arms": 5, "control": 5, "metrics": 5,
    "primary_metric": 5, "sources": {"a": 1}, "replications": "x",
    "common_random_numbers": "maybe", "executor": 5, "shards": "x", "record": [],
    "analysis": [], "description": [1],
}
VALIDATE_BAD += [(f"type-{k}", _spec(**{k: v}), rf"s\.yaml: {k}(\[0\])?: ")
                 for k, v in WRONG_TYPES.items()]
# per-segment analysis keys and the campaign discount (issue 18)
VALIDATE_BAD += [
    ("segments-unknown-column", _spec(analysis={"segments": ["engagment_score"]}),
     r"analysis\.segments\[0\]: 'engagment_score' is not a column of the simulated "
     r"subscriber table \(did you mean 'engagement_score'\?\)"),
    ("segments-duplicate", _spec(analysis={"segments": ["lifecycle_stage"] * 2}),
     r"analysis\.segments\[1\]: duplicate column 'lifecycle_stage'"),
    ("segments-not-a-list", _spec(analysis={"segments": {"a": 1}}),
     r"analysis\.segments: expected a list of names"),
    ("segment-bins", _spec(analysis={"segments": ["lifecycle_stage"], "segment_bins": 1}),
     r"analysis\.segment_bins: expected"),
    ("segment-correction", _spec(analysis={"segment_correction": "fdr"}),
     r"analysis\.segment_correction: expected one of"),
    ("campaign-incentive", _spec(campaign={"incentive": 1.5}),
     r"campaign\.incentive: expected a discount fraction in \[0, 1\), got 1\.5"),
    ("campaign-holdout-text", _spec(campaign={"holdout": "no"}),
     r"campaign\.holdout: expected true or false \(does the arms' holdout get the "
     r"campaign too\?\), got 'no'"),
    ("campaign-holdout-number", _spec(campaign={"holdout": 0}),
     r"campaign\.holdout: expected true or false .*got 0"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in VALIDATE_BAD],
                         ids=[c[0] for c in VALIDATE_BAD])
def test_validate_refuses_with_one_line(tmp_path: Path, capsys: Any, text: str | bytes,
                                        message: str) -> None:
    p = tmp_path / "s.yaml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    rc, out, err = _cli(tmp_path, capsys, ["validate", str(p)])
    assert rc == 2, out
    assert err.count("\n") == 1 and err.startswith("triggerlab validate: error: "), err
    assert "Traceback" not in err
    assert re.search(message, err, re.S), err


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in VALIDATE_BAD],
                         ids=[c[0] for c in VALIDATE_BAD])
def test_run_refuses_the_same_before_simulating(tmp_path: Path, capsys: Any,
                                               text: str | bytes, message: str) -> None:
    p = tmp_path / "s.yaml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    rc, _, err = _cli(tmp_path, capsys, ["run", str(p), "--no-progress"])
    assert rc == 2
    assert err.startswith("triggerlab run: error: ") and err.count("\n") == 1, err
    assert not (tmp_path.parent / "escape").exists()


VALIDATE_OK = [
    ("rules-file", RULES, r"ok: .*s\.yaml: rules file, 1 rule\(s\) \(cart\)"),
    ("unicode-name", _spec(name="kampagne-ä-日本"), r"ok: .*'kampagne-ä-日本'"),
    ("estimate", _spec(), r"estimate ~.* memory, ~\d+ s on one core"),
    ("merge-keys", "base: &b {name: a}\nname: x\nseed: 1\n"
                   "arms: [{<<: *b, name: a2}, {name: b}]\nrules: none\n", r"ok: "),
]


# valid, but some rule cannot fire on the simulated data: warnings, exit status 0
VALIDATE_WARN = [
    ("rules-file-event", _rules_file(when=[{"event": "price_check", "within": "1h"}]),
     [r"s\.yaml: rules\[0\]\.when\[0\]\.event: the simulator never emits 'price_check' "
      r"events .*so the rule cannot fire in a simulation \(a production table or stream may "
      r"have it\)$"]),
    ("rules-file-two", _rules_file(
        when=[{"event": "email_click", "within": "1h", "where": {"cart_value": {"min": 1}}}],
        segment={"tier": "gold"}),
     [r"rules\[0\]\.when\[0\]\.where\.cart_value: the simulator's email_click events",
      r"rules\[0\]\.segment\.tier: 'tier' is not a column of the simulated subscriber"]),
    ("spec-empty-segment", _spec_rules(segment={"engagement_score": {"min": 0.999}}),
     [r"s\.yaml: rule 'cart' cannot fire: none of the 20 subscribers passes its segment "
      r"\(engagement_score >= 0\.999\) \(simulated population of replication 0; every "
      r"arm\)$"]),
    ("spec-stage-absent", _spec(
        population={"subscribers": 20, "overrides": {"lifecycle_mix": {"prospect": 1.0}}},
        rules={"rules": [{**CART_RULE, "segment": {"lifecycle_stage": {"in": ["lapsed"]}}}]}),
     [r"rule 'cart' cannot fire: no subscriber has lifecycle_stage in \['lapsed'\] \(of 20 "
      r"subscribers\)"]),
    ("spec-one-arm", _spec_rules(arms=[
        {"name": "a"}, {"name": "b"},
        {"name": "c", "rules": {"cart": {"segment": {"n_purchases": {"min": 10**6}}}}}]),
     [r"rule 'cart' cannot fire: .*n_purchases >= 1000000\) \(simulated population of "
      r"replication 0; arms c\)$"]),
]


@pytest.mark.parametrize(("text", "messages"), [c[1:] for c in VALIDATE_WARN],
                         ids=[c[0] for c in VALIDATE_WARN])
def test_validate_warns_about_rules_that_cannot_fire(tmp_path: Path, capsys: Any, text: str,
                                                     messages: list[str]) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    rc, out, err = _cli(tmp_path, capsys, ["validate", str(p)])
    assert rc == 0, err
    lines = err.splitlines()
    assert len(lines) == len(messages), err
    for line, message in zip(lines, messages, strict=True):
        assert line.startswith("triggerlab validate: warning: "), line
        assert re.search(message, line), line
    assert "Traceback" not in err
    assert re.search(rf"^ok: .*; {len(messages)} warning\(s\)$", out), out


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in VALIDATE_OK],
                         ids=[c[0] for c in VALIDATE_OK])
def test_validate_accepts(tmp_path: Path, capsys: Any, text: str, message: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    if "base:" in text:  # unknown top-level key: only the merge matters; load directly
        with pytest.raises(SpecError, match=r"base: unknown key"):
            load_spec(p)
        return
    rc, out, err = _cli(tmp_path, capsys, ["validate", str(p)])
    assert rc == 0, err
    assert re.search(message, out), out


# ---------------------------------------------------------------------------
# the loaders themselves (same messages for library callers)

def test_duplicate_keys_in_library_loaders(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^spec: duplicate key 'seed' at line 3 \(first at "
                                        r"line 2\)"):
        load_spec("name: x\nseed: 1\nseed: 2\narms: [{name: a}, {name: b}]\n")
    with pytest.raises(RuleError, match=r"duplicate key 'delay' at line 6 \(first at line 5"):
        load_rules(RULES.replace("delay: 1h\n", "delay: 1h\n    delay: 2h\n"))  # lines 5, 6
    f = tmp_path / "r.yaml"
    f.write_text(RULES + "rules: []\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"duplicate key 'rules' at line 7 \(first at line 1\) "
                                        r"in .*r\.yaml"):
        load_rules(f)
    spec = tmp_path / "s.yaml"
    spec.write_text(_spec(rules="r.yaml"), encoding="utf-8")
    with pytest.raises(SpecError, match=r"rules: duplicate key 'rules'"):
        load_spec(spec)


def test_budget_estimate_and_message() -> None:
    spec = load_spec(yaml.safe_load(_spec()))
    est = estimate(spec)
    assert 0 < est.bytes < 2**20 and 0 < est.seconds < 1 and est.runs == 2
    with pytest.raises(SpecError, match=r"need about .* but 1 KB is available"):
        check_budget(spec, available=1024)
    assert format_bytes(2.8e15).endswith("TB") and format_seconds(1e12).endswith("years")


# ---------------------------------------------------------------------------
# --out: checked before the work, messages name the user's path

def _out_case(tmp_path: Path, kind: str) -> str:
    if kind == "file":
        (tmp_path / "f").write_text("x")
        return str(tmp_path / "f")
    if kind == "under-file":
        (tmp_path / "f").write_text("x")
        return str(tmp_path / "f" / "run")
    if kind == "non-run-folder":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "notes.txt").write_text("mine")
        return str(tmp_path / "d")
    if kind == "read-only-dir":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return str(ro / "run")
    raise AssertionError(kind)


OUT_BAD = [
    ("file", r"--out: expected a directory, got the file .*/f$"),
    ("under-file", r"--out: cannot create .*/f/run: .*/f is not a directory"),
    ("non-run-folder", r"--out: .*/d is a non-empty directory that is not a run folder"),
    ("read-only-dir", r"--out: cannot create .*/ro/run: .*/ro is not writable"),
]


@pytest.mark.parametrize(("kind", "message"), OUT_BAD, ids=[k for k, _ in OUT_BAD])
def test_run_out_checked_before_the_work(tmp_path: Path, capsys: Any, kind: str,
                                         message: str) -> None:
    if kind == "read-only-dir" and os.geteuid() == 0:
        pytest.skip("root can write to a read-only directory")
    spec = tmp_path / "s.yaml"
    spec.write_text(_spec(), encoding="utf-8")
    out = _out_case(tmp_path, kind)
    rc, _, err = _cli(tmp_path, capsys, ["run", str(spec), "--out", out, "--no-progress"])
    assert rc == 2 and err.count("\n") == 1, err
    assert re.search(message, err.strip()), err
    assert ".tmp-" not in err


@pytest.mark.parametrize(("kind", "message"), OUT_BAD[:2] + OUT_BAD[3:],
                         ids=[k for k, _ in OUT_BAD[:2] + OUT_BAD[3:]])
def test_loadtest_out_checked_before_the_work(tmp_path: Path, capsys: Any,
                                              monkeypatch: pytest.MonkeyPatch, kind: str,
                                              message: str) -> None:
    if kind == "read-only-dir" and os.geteuid() == 0:
        pytest.skip("root can write to a read-only directory")
    import experiments.commands.loadtest as lt

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the load test started before --out was checked")

    monkeypatch.setattr(lt, "_stream", boom)
    monkeypatch.setattr(lt, "rules_option", boom)
    out = _out_case(tmp_path, kind)
    rc, _, err = _cli(tmp_path, capsys, ["loadtest", "--rules", "reference", "--out", out])
    assert rc == 2 and err.count("\n") == 1, err
    assert re.search(message, err.strip()), err


def test_default_run_folder_stays_under_runs(tmp_path: Path, capsys: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(_spec(name="../../escape"), encoding="utf-8")
    rc, _, err = _cli(tmp_path, capsys, ["run", str(spec)])
    assert rc == 2 and "name: expected a run name" in err
    assert not any(tmp_path.parent.parent.glob("escape*"))
