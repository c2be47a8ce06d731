"""The README's "Trigger rules" example and the modules' doctests run and say what they show."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest
import yaml

import policies.triggers.decisions
import policies.triggers.durations
import policies.triggers.engine
from policies.triggers import load_rules

README = Path(__file__).resolve().parents[3] / "README.md"


def _section() -> str:
    return README.read_text(encoding="utf-8").split("## Trigger rules", 1)[1].split("\n## ", 1)[0]


def test_readme_example_fires_and_retries() -> None:
    code = re.findall(r"```python\n(.+?)\n```", _section(), re.S)[0]
    ns: dict = {}
    exec(code, ns)
    df = ns["decisions"].to_pandas()
    assert df[["rule", "kind", "time", "attempt"]].values.tolist() == [
        ["cart_abandonment_24h", "fire", 1_767_711_600, 1]
    ]
    assert ns["engine"].stats().loc["cart_abandonment_24h", "retried"] == 1


def test_readme_schema_block_loads() -> None:
    text = re.findall(r"```yaml\n(.+?)\n```", _section(), re.S)[0]
    rs = load_rules(yaml.safe_load(text))
    assert rs.ids == ("cart_abandonment_24h",)
    assert rs.settings.frequency_cap is not None and rs.settings.frequency_cap.per == 86400


@pytest.mark.parametrize(
    "module",
    [policies.triggers.engine, policies.triggers.durations, policies.triggers.decisions],
)
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
