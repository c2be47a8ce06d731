"""What a policy's arm sets on an email: the arm names each ``decides`` accepts and the
email feature codes they decode to (the codes the response model reads,
:class:`sim.response.EmailBatch`).

* ``subject_style``: arms are subject styles (``SUBJECT_STYLES``);
* ``send_hour``: arms are local hours ``h00``..``h23`` (or ``"0"``..``"23"``);
* ``strategy``: arms are content strategies (``CONTENT_STRATEGIES``), optionally
  suffixed ``:high`` or ``:standard`` to fix the personalization level (otherwise the
  rule-based level: high when engagement > 0.6);
* ``combination``: an arm sets several elements at once; its name is the levels joined by
  ``:`` (``limited_time:conversion_focused:shop_now``, the arm names of
  :class:`~policies.bandits.FactorizedThompson`). Each level names its element by its
  vocabulary (:data:`ELEMENTS`): a subject style, a content strategy, ``standard`` or
  ``personalized``, a call to action (``CALLS_TO_ACTION``), an hour ``h00``..``h23``,
  ``urgent`` or ``not_urgent``, or a discount ``off<percent>`` (``off15``: 15 % off,
  0..90). Every arm of a policy sets the same elements, each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies.base import CALLS_TO_ACTION, CONTENT_STRATEGIES, SUBJECT_STYLES
from policies.errors import SpecError

__all__ = ["ELEMENTS", "ArmVariants", "arm_columns", "element_of"]

_HOURS = tuple(f"h{h:02d}" for h in range(24))
_URGENCY = ("not_urgent", "urgent")
_PERSONALIZATION = ("standard", "personalized")
#: Elements a ``combination`` arm may set, with their levels' names (a discount's levels
#: are ``off0``..``off90``, whole percents).
ELEMENTS: dict[str, tuple[str, ...]] = {
    "subject_style": SUBJECT_STYLES,
    "strategy": CONTENT_STRATEGIES,
    "personalization": _PERSONALIZATION,
    "cta": CALLS_TO_ACTION,
    "send_hour": _HOURS,
    "urgency": _URGENCY,
    "incentive": tuple(f"off{p}" for p in range(91)),
}
_BY_LEVEL = {level: (element, i) for element, levels in ELEMENTS.items()
             for i, level in enumerate(levels)}
#: dtype of each column (:func:`arm_columns`)
_DTYPES = {"urgency": bool, "incentive": np.float64}


def element_of(level: str, where: str = "level") -> tuple[str, float]:
    """The element a ``combination`` level sets and its code (a discount: its fraction).

    Raises
    ------
    SpecError
        Naming ``where``, when ``level`` belongs to no element.
    """
    if level in _BY_LEVEL:
        element, code = _BY_LEVEL[level]
        return element, code / 100.0 if element == "incentive" else float(code)
    raise SpecError(
        f"{where}: expected a level of one of {', '.join(ELEMENTS)} (a subject style, a "
        f"content strategy, standard/personalized, {'/'.join(CALLS_TO_ACTION)}, h00..h23, "
        f"urgent/not_urgent or off0..off90), got {level!r}")


def _combination(arm_names: Sequence[str], path: str) -> dict[str, np.ndarray]:
    rows: list[dict[str, float]] = []
    for i, arm in enumerate(arm_names):
        where = f"{path}.arm_names[{i}]"
        row: dict[str, float] = {}
        for level in arm.split(":"):
            element, code = element_of(level, where)
            if element in row:
                raise SpecError(f"{where}: sets {element} twice in {arm!r}")
            row[element] = code
        if i and set(row) != set(rows[0]):
            raise SpecError(f"{where}: sets {', '.join(row)}, but {path}.arm_names[0] sets "
                            f"{', '.join(rows[0])}: every arm sets the same elements")
        rows.append(row)
    if rows and len(rows[0]) < 2:
        raise SpecError(f"{path}.arm_names[0]: a combination sets two or more elements "
                        f"(levels joined by ':'), got {arm_names[0]!r}")
    out = {}
    for element in (rows[0] if rows else ()):
        values = np.array([r[element] for r in rows])
        out[element] = values.astype(_DTYPES.get(element, np.int64))
    return out


def arm_columns(decides: str, arm_names: Sequence[str], path: str = "policy"
                ) -> dict[str, np.ndarray]:
    """The email features each arm sets: field of :class:`~sim.response.EmailBatch` ->
    its value per arm, shape (K,) (int64 codes; ``urgency`` bool, ``incentive``
    float64). ``personalization`` -1 means the rule-based level. Errors name
    ``{path}.arm_names[i]``."""
    if decides == "combination":
        return _combination(arm_names, path)
    value = np.empty(len(arm_names), np.int64)
    level = np.full(len(arm_names), -1, np.int64)
    for i, arm in enumerate(arm_names):
        where = f"{path}.arm_names[{i}]"
        if decides == "subject_style":
            if arm not in SUBJECT_STYLES:
                raise SpecError(f"{where}: expected a subject style "
                                f"({', '.join(SUBJECT_STYLES)}), got {arm!r}")
            value[i] = SUBJECT_STYLES.index(arm)
        elif decides == "send_hour":
            text = arm[1:] if arm.startswith("h") else arm
            if not text.isdigit() or not 0 <= int(text) <= 23:
                raise SpecError(f"{where}: expected an hour h00..h23, got {arm!r}")
            value[i] = int(text)
        elif decides == "strategy":
            base, _, lvl = arm.partition(":")
            if base not in CONTENT_STRATEGIES or lvl not in ("", "high", "standard"):
                raise SpecError(f"{where}: expected a content strategy "
                                f"({', '.join(CONTENT_STRATEGIES)}) optionally with "
                                f"':high'/':standard', got {arm!r}")
            value[i] = CONTENT_STRATEGIES.index(base)
            level[i] = {"": -1, "standard": 0, "high": 1}[lvl]
        else:
            raise SpecError(f"{path}.decides: expected subject_style, send_hour, strategy "
                            f"or combination, got {decides!r}")
    if decides == "strategy":
        return {"strategy": value, "personalization": level}
    return {decides: value}


@dataclass(frozen=True)
class ArmVariants:
    """Email feature codes of each arm of a policy.

    Parameters
    ----------
    decides : {"subject_style", "send_hour", "strategy", "combination"}
    arm_names : tuple of str
        As the module docstring says for each ``decides``.
    """

    decides: str
    arm_names: tuple[str, ...]

    def __post_init__(self) -> None:
        self.columns()  # validate

    def columns(self) -> dict[str, np.ndarray]:
        """Field -> value per arm, shape (K,) (:func:`arm_columns`)."""
        return arm_columns(self.decides, self.arm_names)

    def send_hours(self) -> np.ndarray | None:
        """Local send hour of each arm, int64 (K,), when the arms set it; else None."""
        return self.columns().get("send_hour")
