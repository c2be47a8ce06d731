"""Rules that cannot fire in a simulation: refused when certain, warned when they depend
on the drawn population -- by ``run`` (one line on the command line), in the report
(a "Rule warnings" section only when there are any), never once per shard."""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments import run
from experiments.cli import main
from experiments.results import Results
from experiments.rule_checks import rule_warnings, sim_rule_problems
from experiments.spec import load_spec
from policies.errors import RuleWarning
from policies.triggers import default_rules, load_rules

CART: dict[str, Any] = {
    "id": "cart", "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "60m"}], "delay": "1h", "expire": "3d",
}
SPEC: dict[str, Any] = {
    "name": "cannot_fire", "seed": 4, "population": {"subscribers": 40},
    "duration": {"days": 1, "tick": "1h"},
    "rules": {"rules": [
        {**CART, "segment": {"engagement_score": {"min": 0.999}}},
        {**CART, "id": "browse", "type": "browse_abandonment",
         "when": [{"event": "product_view", "within": "60m"}]},
    ]},
    "arms": [{"name": "a"}, {"name": "b", "rules": {"browse": {"delay": "2h"}}}],
    "metrics": ["orders"], "shards": 2,
}
EMPTY = (r"^rule 'cart' cannot fire: none of the 40 subscribers passes its segment "
         r"\(engagement_score >= 0\.999\) \(simulated population of replication 0; every "
         r"arm\)$")


def _rules(**changes: Any) -> Any:
    return load_rules({"rules": [{**copy.deepcopy(CART), **changes}]})


PROBLEMS = [
    ("default", default_rules(), []),
    ("never-emitted", _rules(when=[{"event": "email_sent", "within": "1h"}]),
     [("rules[0].when[0].event", r"never emits 'email_sent' events")]),
    ("product-click", _rules(when=[{"event": "product_click", "within": "1h"}]),
     [("rules[0].when[0].event", r"never emits 'product_click'")]),
    ("where-not-carried", _rules(when=[
        {"event": "checkout_started", "within": "1h", "where": {"items": {"min": 2}}}]),
     [("rules[0].when[0].where.items",
       r"checkout_started events never carry 'items' \(they carry campaign_id, cart_value\)")]),
    ("where-carried", _rules(when=[
        {"event": "purchase_completed", "within": "1h", "where": {"revenue": {"min": 2}}}]),
     []),
    ("three-at-once", _rules(when=[
        {"event": "price_check", "within": "1h"},
        {"event": "email_open", "within": "1h", "where": {"link_type": "product"}}],
        segment={"tier": "gold", "engagement_score": {"min": 0.1}}),
     [("rules[0].when[0].event", r"never emits 'price_check'"),
      ("rules[0].when[1].where.link_type", r"email_open events never carry 'link_type'"),
      ("rules[0].segment.tier", r"'tier' is not a column")]),
    ("documented-columns", _rules(segment={c: {"min": 0} for c in (
        "engagement_score", "n_purchases", "cart_value", "top_category")}), []),
]


@pytest.mark.parametrize(("rules", "expected"), [c[1:] for c in PROBLEMS],
                         ids=[c[0] for c in PROBLEMS])
def test_what_a_simulation_can_never_satisfy(rules: Any, expected: list) -> None:
    got = sim_rule_problems(rules)
    assert [p for p, _ in got] == [p for p, _ in expected]
    for (_, reason), (_, pattern) in zip(got, expected, strict=True):
        assert re.search(pattern, reason), reason


def test_shipped_specs_have_no_rule_warnings() -> None:
    root = Path(__file__).resolve().parents[2] / "experiments" / "specs"
    for path in sorted(root.glob("*.yaml")):
        assert rule_warnings(load_spec(path)) == [], path.name


def test_run_warns_once_per_rule_and_the_report_lists_it(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    expected = rule_warnings(spec)
    assert len(expected) == 1 and re.search(EMPTY, expected[0]), expected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run(spec, out=tmp_path / "r", progress=False, plots=False)
    got = [str(w.message) for w in caught if issubclass(w.category, RuleWarning)]
    assert got == expected  # the run's warning, none from the two shards' engines
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    section = md.split("## Rule warnings\n", 1)[1].split("\n## ", 1)[0]
    assert f"- {expected[0]}" in section.splitlines()
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Rule warnings</h2>" in page and "none of the 40 subscribers" in page
    # the report is rebuilt from the spec alone: re-rendering keeps the section
    (tmp_path / "r" / "report.md").unlink()
    from experiments.report import rerender

    rerender(Results.load(res.run_dir), plots=False)
    assert "## Rule warnings" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")


def test_no_section_without_warnings(tmp_path: Path) -> None:
    spec = copy.deepcopy(SPEC)
    spec["rules"]["rules"][0]["segment"] = {"engagement_score": {"min": 0.1}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(spec, out=tmp_path / "r", progress=False, plots=False)
    assert not [w for w in caught if issubclass(w.category, RuleWarning)]
    assert "Rule warnings" not in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")


def test_cli_run_prints_the_warning_as_one_line(tmp_path: Path, capsys: Any) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    rc = main(["run", str(p), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("triggerlab run: warning: rule 'cart'"), err
    assert "Traceback" not in err and "RuleWarning" not in err
