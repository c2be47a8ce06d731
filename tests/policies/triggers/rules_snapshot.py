"""Every rule set the repository ships, as text: the reference rules, each arm of every
experiment spec (shipped and golden) and the README's rules block.

``snapshot()`` renders each rule and the settings with the fields a plain rule had before
journeys (a rule without ``steps`` must load exactly as it did);
``tests/data/rules_snapshot.json`` holds the output of the code before journeys, and
``test_journey_language`` compares. Regenerate only on purpose::

    PYTHONPATH=. python tests/policies/triggers/rules_snapshot.py > tests/data/rules_snapshot.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

#: The fields of a plain Rule and of Settings before journeys (in their order).
RULE_FIELDS = ("id", "type", "when", "delay", "expire", "exclude", "priority", "segment",
               "reentry", "cooldown", "content")
SETTINGS_FIELDS = ("frequency_cap", "quiet_hours", "retry")


def _render(obj: Any, name: str, names: tuple[str, ...]) -> str:
    return f"{name}(" + ", ".join(f"{f}={getattr(obj, f)!r}" for f in names) + ")"


def sources() -> dict[str, Any]:
    """Label -> rules data (a mapping ``load_rules`` takes) of every shipped plain rule set
    (spec arms whose rules hold a journey are left out)."""
    import yaml

    from experiments.design import arm_rules
    from experiments.spec import spec_from_dict
    from policies.triggers.rules import default_rules_data
    from policies.yaml_io import read_yaml_file

    out: dict[str, Any] = {"reference_rules.yaml": default_rules_data()}
    specs = sorted((ROOT / "experiments" / "specs").glob("*.yaml")) + sorted(
        (ROOT / "tests" / "data" / "golden").glob("*/spec.yaml"))
    for path in specs:
        raw = read_yaml_file(path, "spec", ValueError)
        raw.pop("run", None)  # a run folder's copy also records the run
        spec = spec_from_dict(raw, path.parent)
        for arm in spec.arms:
            data = arm_rules(spec.rules, arm)
            # journey specs came after the snapshot: they are not "as before"
            if data is not None and not any("steps" in r for r in data.get("rules", [])):
                out[f"{path.relative_to(ROOT)}:{arm.name}"] = data
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Trigger rules", 1)[1].split("\n## ", 1)[0]
    out["README.md#trigger-rules"] = yaml.safe_load(
        re.findall(r"```yaml\n(.+?)\n```", section, re.S)[0])
    return out


def snapshot() -> dict[str, list[str]]:
    """Label -> the rendered rules and settings of each source."""
    from policies.triggers import load_rules

    out = {}
    for label, data in sources().items():
        rs = load_rules(data)
        out[label] = [_render(r, "Rule", RULE_FIELDS) for r in rs.rules] + [
            _render(rs.settings, "Settings", SETTINGS_FIELDS)]
    return out


if __name__ == "__main__":
    json.dump(snapshot(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
