"""The ``tune`` section of an experiment spec: which parameters of one arm's rules
``triggerlab tune`` searches, in which ranges, for which metric (docs/tuning.md).

.. code-block:: yaml

    tune:
      arm: series                    # the arm whose rules are tuned
      metric: attributed_margin      # maximized (minimized for unsubscribes)
      objective: truth               # or observed (default truth: the expected value)
      guardrail: {metric: unsubscribes, max_worse: 0.002}   # vs the arm as declared
      trials: 30
      parameters:
        first_wait: {path: "cart_series.steps[0].wait", low: 30m, high: 6h}
        discount: {path: cart_series.emails.cart_last_call.incentive, low: 0.0, high: 0.3}
        cap: {path: settings.frequency_cap.max, low: 1, high: 4}

A parameter's ``path`` starts with a rule id (then one of the keys an arm may override:
``delay``, ``expire``, ``steps``, ``emails``, ...) or ``settings``, and continues with keys
and list indices into the tuned arm's rules as they stand (the experiment's rules with the
arm's changes). ``low``/``high`` are both durations (``30m``: searched in whole minutes),
both integers, or numbers (``log: true`` searches on a log scale).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.checks import (
    check_bool,
    check_choice,
    check_int,
    check_mapping,
    check_number,
    check_string,
)
from policies.errors import SpecError
from policies.triggers import format_duration, parse_duration

__all__ = ["OBJECTIVES", "PARAMETER_KINDS", "TUNE_KEYS", "TuneParameter", "TuneSpec",
           "apply_values", "current_values", "parse_tune", "path_tokens"]

TUNE_KEYS = ("arm", "metric", "objective", "guardrail", "trials", "parallel", "parameters")
#: What a trial is judged by: the simulator's expected value of the metric (``truth``:
#: no response noise) or the value observed in the run (``observed``: as a live test).
OBJECTIVES = ("truth", "observed")
_GUARDRAIL_KEYS = ("metric", "max_worse")
_PARAMETER_KEYS = ("path", "low", "high", "log")
#: ``duration`` (searched in whole minutes, written as ``90m``), ``int``, ``float``.
PARAMETER_KINDS = ("duration", "int", "float")
#: Keys a path may take after a rule id (what an arm may override).
_RULE_KEYS = ("delay", "expire", "priority", "segment", "reentry", "content", "exclude",
              "when", "steps", "emails", "exit", "goal")
_SETTINGS = ("frequency_cap", "quiet_hours", "retry", "smart_sending")
_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def path_tokens(path: str, where: str) -> list[str | int]:
    """``cart_series.steps[0].wait`` as ``["cart_series", "steps", 0, "wait"]``."""
    if not isinstance(path, str) or not path:
        raise SpecError(f"{where}: expected a path like 'cart_series.steps[0].wait', got "
                        f"{path!r}")
    out: list[str | int] = []
    for part in path.split("."):
        m = list(_TOKEN.finditer(part))
        if not part or not m or m[0].start() != 0 or m[0].group(1) is None or "".join(
                x.group(0) for x in m) != part:
            raise SpecError(f"{where}: {path!r} is not a path like 'cart_series.steps[0].wait' "
                            f"(at {part!r})")
        for x in m:
            out.append(x.group(1) if x.group(1) is not None else int(x.group(2)))
    return out


@dataclass(frozen=True)
class TuneParameter:
    """One searched value: ``path`` into the tuned arm's rules, range ``[low, high]``
    (seconds for durations), ``kind`` (:data:`PARAMETER_KINDS`), ``log`` scale."""

    name: str
    path: str
    low: float
    high: float
    kind: str
    log: bool = False

    def spec_value(self, value: float) -> Any:
        """The value as the rules file writes it (a duration string, an int or a float)."""
        if self.kind == "duration":
            return format_duration(int(value))
        if self.kind == "int":
            return int(value)
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        low, high = ((format_duration(int(self.low)), format_duration(int(self.high)))
                     if self.kind == "duration" else
                     (int(self.low), int(self.high)) if self.kind == "int"
                     else (self.low, self.high))
        d: dict[str, Any] = {"path": self.path, "low": low, "high": high}
        if self.log:
            d["log"] = True
        return d


@dataclass(frozen=True)
class TuneSpec:
    """A spec's ``tune`` section (see the module docstring)."""

    arm: str
    metric: str
    parameters: tuple[TuneParameter, ...]
    guardrail_metric: str | None = None
    guardrail_max_worse: float = 0.0
    trials: int = 20
    objective: str = "truth"

    @property
    def objective_column(self) -> str:
        """The column of a trial's figures its objective reads (``metric_truth`` or
        ``metric``)."""
        return "metric_truth" if self.objective == "truth" else "metric"

    @property
    def guardrail_column(self) -> str:
        """The column of the guardrail difference by the objective."""
        return "guardrail_true_worse" if self.objective == "truth" else "guardrail_worse"
    parallel: int = 1

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"arm": self.arm, "metric": self.metric}
        if self.objective != "truth":
            d["objective"] = self.objective
        if self.guardrail_metric is not None:
            d["guardrail"] = {"metric": self.guardrail_metric,
                              "max_worse": self.guardrail_max_worse}
        d["trials"] = self.trials
        if self.parallel != 1:
            d["parallel"] = self.parallel
        d["parameters"] = {p.name: p.to_dict() for p in self.parameters}
        return d


def _bound(where: str, value: Any) -> tuple[str, float]:
    if isinstance(value, str):
        try:
            return "duration", float(parse_duration(value))
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a number or a duration, got {value!r}")
    if isinstance(value, int):
        return "int", float(value)
    check_number(where, value, error=SpecError)
    return "float", float(value)


def _parameter(where: str, name: str, value: Any) -> TuneParameter:
    raw = check_mapping(where, value, _PARAMETER_KEYS, ("path", "low", "high"), error=SpecError)
    path = check_string(f"{where}.path", raw["path"], error=SpecError)
    tokens = path_tokens(path, f"{where}.path")
    head = tokens[0]
    if head == "settings":
        if len(tokens) < 2 or tokens[1] not in _SETTINGS:
            raise SpecError(f"{where}.path: after 'settings' expected one of "
                            f"{', '.join(_SETTINGS)}, got {path!r}")
    elif len(tokens) < 2 or tokens[1] not in _RULE_KEYS:
        raise SpecError(f"{where}.path: expected '<rule id>.<{'|'.join(_RULE_KEYS)}>...' or "
                        f"'settings....', got {path!r}")
    k_lo, low = _bound(f"{where}.low", raw["low"])
    k_hi, high = _bound(f"{where}.high", raw["high"])
    kinds = {k_lo, k_hi}
    if kinds == {"int", "float"}:
        kind = "float"
    elif len(kinds) == 1:
        kind = k_lo
    else:
        raise SpecError(f"{where}: low and high must both be durations or both numbers, got "
                        f"{raw['low']!r} and {raw['high']!r}")
    if not low < high:
        raise SpecError(f"{where}: expected low < high, got {raw['low']!r} and {raw['high']!r}")
    log = check_bool(f"{where}.log", raw.get("log", False), error=SpecError)
    if log and low <= 0:
        raise SpecError(f"{where}.log: a log scale needs low > 0, got {raw['low']!r}")
    if kind == "duration" and (low % 60 or high % 60):
        raise SpecError(f"{where}: durations are searched in whole minutes; got "
                        f"{raw['low']!r} and {raw['high']!r}")
    return TuneParameter(name, path, low, high, kind, log)


def parse_tune(value: Any, arms: list[str], metrics: list[str]) -> TuneSpec | None:
    """The ``tune`` section (None when absent); SpecError naming the field otherwise.
    ``arms``/``metrics``: the spec's arm names and metrics, which it must name."""
    if value is None:
        return None
    raw = check_mapping("tune", value, TUNE_KEYS, ("arm", "metric", "parameters"),
                        error=SpecError)
    arm = check_string("tune.arm", raw["arm"], error=SpecError)
    if arm not in arms:
        raise SpecError(f"tune.arm: expected one of the spec's arms {arms}, got {arm!r}")
    metric = check_string("tune.metric", raw["metric"], error=SpecError)
    if metric not in metrics:
        raise SpecError(f"tune.metric: expected one of the spec's metrics {metrics}, got "
                        f"{metric!r}")
    g_metric, g_max = None, 0.0
    if raw.get("guardrail") is not None:
        g = check_mapping("tune.guardrail", raw["guardrail"], _GUARDRAIL_KEYS, ("metric",),
                          error=SpecError)
        g_metric = check_string("tune.guardrail.metric", g["metric"], error=SpecError)
        if g_metric not in metrics:
            raise SpecError(f"tune.guardrail.metric: expected one of the spec's metrics "
                            f"{metrics}, got {g_metric!r}")
        g_max = check_number("tune.guardrail.max_worse", g.get("max_worse", 0.0), low=0,
                             error=SpecError)
    params = raw["parameters"]
    if not isinstance(params, Mapping) or not params:
        raise SpecError(f"tune.parameters: expected a mapping of parameter names to "
                        f"{{path, low, high}}, got {params!r}")
    parsed = tuple(_parameter(f"tune.parameters.{name}", str(name), v)
                   for name, v in params.items())
    paths = [p.path for p in parsed]
    dup = sorted({p for p in paths if paths.count(p) > 1})
    if dup:
        raise SpecError(f"tune.parameters: a path is searched twice: {dup}")
    return TuneSpec(
        arm=arm, metric=metric, parameters=parsed, guardrail_metric=g_metric,
        guardrail_max_worse=float(g_max),
        trials=check_int("tune.trials", raw.get("trials", 20), low=1, error=SpecError),
        parallel=check_int("tune.parallel", raw.get("parallel", 1), low=1, error=SpecError),
        objective=check_choice("tune.objective", raw.get("objective", "truth"), OBJECTIVES,
                               error=SpecError))


def _walk(node: Any, tokens: list[str | int], where: str, path: str) -> tuple[Any, str | int]:
    """The container holding the path's last token, and that token."""
    for i, tok in enumerate(tokens[:-1]):
        node = _step(node, tok, where, path, tokens[:i + 1])
    last = tokens[-1]
    _step(node, last, where, path, tokens)  # the value must exist
    return node, last


def _step(node: Any, tok: str | int, where: str, path: str, done: list[str | int]) -> Any:
    if isinstance(tok, int):
        if not isinstance(node, list) or tok >= len(node):
            raise SpecError(f"{where}: {path!r}: no item [{tok}] (after "
                            f"{_render(done[:-1])!r})")
        return node[tok]
    if not isinstance(node, Mapping) or tok not in node:
        have = sorted(map(str, node)) if isinstance(node, Mapping) else type(node).__name__
        raise SpecError(f"{where}: {path!r}: no key {tok!r} (after {_render(done[:-1])!r}; "
                        f"there: {have})")
    return node[tok]


def _render(tokens: list[str | int]) -> str:
    out = ""
    for t in tokens:
        out += f"[{t}]" if isinstance(t, int) else (f".{t}" if out else t)
    return out


def _slots(data: dict[str, Any], tune: TuneSpec, where: str
           ) -> list[tuple[TuneParameter, list[str | int], Any, str | int]]:
    """Per parameter of ``tune``: its path's tokens, and the container in ``data`` (the
    tuned arm's rules data) holding its value with the key or index of the value."""
    by_id = {r.get("id"): r for r in data.get("rules", [])}
    out = []
    for p in tune.parameters:
        tokens = path_tokens(p.path, f"{where}.{p.name}.path")
        if tokens[0] == "settings":
            root: Any = data.get("settings") or {}
        elif tokens[0] in by_id:
            root = by_id[tokens[0]]
        else:
            raise SpecError(f"{where}.{p.name}.path: {p.path!r}: the tuned arm has no rule "
                            f"{tokens[0]!r} (rules: {sorted(map(str, by_id))})")
        node, last = _walk(root, tokens[1:], f"{where}.{p.name}.path", p.path)
        out.append((p, tokens, node, last))
    return out


def current_values(rules: Mapping[str, Any], tune: TuneSpec,
                   where: str = "tune.parameters") -> dict[str, Any]:
    """Each parameter's value in the tuned arm's rules data (checks every path)."""
    return {p.name: node[last] for p, _, node, last in _slots(dict(rules), tune, where)}


def apply_values(rules: Mapping[str, Any], tune: TuneSpec, values: Mapping[str, Any],
                 where: str = "tune.parameters") -> tuple[dict[str, Any], dict[str, Any]]:
    """The tuned arm's rules data with ``values`` (parameter name -> rules-file value) set,
    and the arm overrides that give it: ``{"rules": {rule id: {key: new value}},
    "settings": {key: new value}}`` (whole top-level values, as an arm replaces them)."""
    data = copy.deepcopy(dict(rules))
    touched_rules: dict[str, set[str]] = {}
    touched_settings: set[str] = set()
    for p, tokens, node, last in _slots(data, tune, where):
        if tokens[0] == "settings":
            touched_settings.add(str(tokens[1]))
        else:
            touched_rules.setdefault(str(tokens[0]), set()).add(str(tokens[1]))
        node[last] = values[p.name]
    by_id = {r.get("id"): r for r in data.get("rules", [])}
    overrides: dict[str, Any] = {}
    if touched_rules:
        overrides["rules"] = {rid: {k: copy.deepcopy(by_id[rid][k]) for k in sorted(keys)}
                              for rid, keys in touched_rules.items()}
    if touched_settings:
        overrides["settings"] = {k: copy.deepcopy(data["settings"][k])
                                 for k in sorted(touched_settings)}
    return data, overrides
