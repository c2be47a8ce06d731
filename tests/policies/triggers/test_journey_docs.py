"""docs/journeys.md cannot rot: every YAML block loads (or fails with exactly the message
in the text block after it), the examples cover every step and entry kind, and the
static-check table shows messages the loader really gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_journey_language import INVALID

from policies.errors import RuleError
from policies.triggers import compile_journey, load_rules
from policies.triggers.journeys import NODE_KINDS

DOC = Path(__file__).resolve().parents[3] / "docs" / "journeys.md"
_BLOCK = re.compile(r"```yaml\n(.+?)\n```(?:\s*```text\nRuleError: (.+?)\n```)?", re.S)


def _blocks() -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_page_has_its_examples() -> None:
    blocks = _blocks()
    assert len(blocks) >= 10
    assert sum(error is not None for _, error in blocks) >= 2


@pytest.mark.parametrize(("text", "error"), _blocks())
def test_yaml_block(text: str, error: str | None) -> None:
    if error is not None:
        with pytest.raises(RuleError) as info:
            load_rules(text)
        assert str(info.value) == error
        return
    rs = load_rules(text)
    for rule in rs.rules:
        assert rule.journey is not None
        compile_journey(rule)


def test_examples_cover_every_step_and_entry_kind() -> None:
    kinds, entries = set(), set()
    for text, error in _blocks():
        if error is None:
            for rule in load_rules(text).rules:
                kinds |= {NODE_KINDS[k] for k in compile_journey(rule).kind}
                entries.add(type(rule.journey.entry).__name__)  # type: ignore[union-attr]
    assert kinds == set(NODE_KINDS)
    assert entries == {"NoneType", "Inactivity", "AttributeEntry", "CatalogEntry"}


def test_whole_journey_bound_is_as_stated() -> None:
    text = _blocks()[0][0]
    assert "at most 3 (`cart_1`" in DOC.read_text(encoding="utf-8")
    assert compile_journey(load_rules(text).rules[0]).max_sends == 3


def test_static_check_table_messages_are_real() -> None:
    section = DOC.read_text(encoding="utf-8").split("## Static checks", 1)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    shown = [re.findall(r"`([^`]+)`", row)[-1] for row in rows]
    assert len(shown) >= 12
    real = {message for _, _, message in INVALID}
    assert [m for m in shown if m not in real] == []


def test_domain_page_lists_the_columns_of_each_event_type() -> None:
    from policies.event_schema import BUILTIN_EVENT_TYPES, event_columns

    text = (DOC.parent / "domain.md").read_text(encoding="utf-8")
    listed: dict[str, set[str]] = {}
    for types, cols in re.findall(r"^\| (`[a-z_`, ]+`) \| ([a-z_, ]+) \|$", text, re.M):
        for name in re.findall(r"`(\w+)`", types):
            listed[name] = set(cols.split(", "))
    carried = {t: set(event_columns(t) or ()) for t in BUILTIN_EVENT_TYPES}
    # columns other tests registered are carried by every type; no built-in one is
    registered = set.intersection(*carried.values())
    assert listed == {t: cols - registered for t, cols in carried.items()}
