r"""Conversion attribution across email touches: rule-based and data-driven models.

Inputs are two tables. ``touches``: one row per message delivered, with ``subscriber``,
``time`` (int seconds since the epoch, UTC), a channel column (``channel`` by default;
pass ``channel="campaign"`` or any column to credit) and, when engagement is required,
boolean ``opened`` / ``clicked``. ``conversions``: ``subscriber``, ``time`` and
``value`` (currency) per conversion.

A touch is **eligible** for a conversion when it belongs to the same subscriber, it was
sent within ``window`` seconds before the conversion (:math:`0 \le T - t \le` ``window``),
and it meets ``require``: ``"none"`` (Braze-style: every message in the window, opened or
not), ``"opened"`` (opened or clicked) or ``"clicked"`` (Klaviyo credits the last opened
or clicked message within 5 days: ``model="last_touch", require="opened",
window=5 * 86400``). A touch can earn credit from several conversions. A conversion with no
eligible touch is *unattributed* and reported as such.

Rule-based models split each attributed conversion over its :math:`k` eligible touches
ordered by time (ties by input order):

- ``first_touch`` / ``last_touch``: all credit to the first / last touch;
- ``linear``: :math:`1/k` each;
- ``time_decay``: weight :math:`2^{-(T - t)/h}` with half-life :math:`h` seconds, normalized;
- ``position_based`` (U-shaped) with weights :math:`(f, m, l)`, default (0.4, 0.2, 0.4):
  one touch gets 1; two get :math:`f/(f+l)` and :math:`l/(f+l)`; :math:`k \ge 3` give
  :math:`f` to the first, :math:`l` to the last and :math:`m/(k-2)` to each middle touch.

Data-driven models look at journeys: each attributed conversion's eligible touches
(a converting journey), and for each subscriber the eligible touches that belong to no
conversion's path (one non-converting journey).

- ``markov``: first-order Markov chain over ``start -> channels -> {conversion, null}``
  estimated from journey transition counts; the removal effect of channel :math:`c` is
  :math:`RE_c = 1 - P(\text{conv} \mid c \text{ removed}) / P(\text{conv})`, where removing
  :math:`c` sends every transition into it to ``null`` (Anderl et al., 2016). Credit is
  :math:`RE_c / \sum RE` of the attributed conversions (and of their value).
- ``shapley``: cooperative game over the channels with
  :math:`v(S) = \sum_{T \subseteq S} R(T)`, where :math:`R(T)` is, per distinct channel set
  :math:`T` of a journey, the number of conversions (``shapley_value="conversions"``) or
  the conversion rate conversions / journeys (``"rate"``, which uses the non-converting
  journeys) (Zhao et al., 2018). :math:`v` is a sum of unanimity games, so the Shapley
  value is exactly :math:`\phi_c = \sum_{T \ni c} R(T) / |T|` (checked against the
  permutation definition in the tests); credit is :math:`\phi_c / \sum \phi`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from experiments.stats._validate import _short
from policies.errors import StatsInputError

__all__ = [
    "ATTRIBUTION_MODELS",
    "AttributionResult",
    "attribute",
    "eligible_touches",
    "journeys",
    "markov_removal_effects",
]

ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based",
                      "markov", "shapley")
_REQUIRE = ("none", "opened", "clicked")


@dataclass(frozen=True)
class AttributionResult:
    """Credit per channel.

    Attributes
    ----------
    model : the attribution model.
    credits : pandas.DataFrame indexed by channel (sorted; every channel with an eligible
        touch or, for data-driven models, in a journey, even at zero credit) with columns
        ``conversions``
        (fractional conversions credited), ``value`` (currency credited) and ``share``
        (fraction of attributed conversions); ``markov`` adds ``removal_effect`` and
        ``shapley`` adds ``shapley_value``.
    n_conversions : all conversions in the input.
    attributed_conversions : conversions with at least one eligible touch (their credit
        sums to this).
    unattributed_conversions, unattributed_value : conversions without an eligible touch.
    """

    model: str
    credits: pd.DataFrame
    n_conversions: int
    attributed_conversions: int
    unattributed_conversions: int
    unattributed_value: float


def _require_frame(df: Any, name: str, columns: list[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise StatsInputError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StatsInputError(
            f"{name}: expected columns {columns}, missing {missing} (has {list(df.columns)})"
        )
    return df


def _times(series: pd.Series, name: str) -> np.ndarray:
    try:
        t = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsInputError(f"{name}: expected int seconds since the epoch") from None
    if not np.all(np.isfinite(t)):
        raise StatsInputError(f"{name}: expected finite times (int seconds), got NaN or inf")
    return t


def eligible_touches(touches: pd.DataFrame, conversions: pd.DataFrame, *,
                     window: float = 5 * 86400, require: str = "none",
                     channel: str = "channel") -> pd.DataFrame:
    """All (conversion, eligible touch) pairs, ordered by conversion then touch time.

    Parameters
    ----------
    touches, conversions : pandas.DataFrame
        As described in the module docstring.
    window : float > 0
        Look-back window in seconds (``inf`` for no limit).
    require : {"none", "opened", "clicked"}
        Engagement a touch needs to earn credit.
    channel : str
        Column of ``touches`` that is credited.

    Returns
    -------
    pandas.DataFrame
        Columns ``conversion`` (row position in ``conversions``), ``touch`` (row position in
        ``touches``), ``channel``, ``age`` (seconds from touch to conversion), ``value``,
        ``pos`` (0-based order of the touch in the conversion's path) and ``k`` (path length).
    """
    if require not in _REQUIRE:
        raise StatsInputError(f"require: expected one of {list(_REQUIRE)}, got {_short(require)}")
    try:
        win = float(window)
    except (TypeError, ValueError):
        win = float("nan")
    if not win > 0:
        raise StatsInputError(
            f"window: expected a positive number of seconds, got {_short(window)}")
    flags = {"none": [], "opened": ["opened", "clicked"], "clicked": ["clicked"]}[require]
    touches = _require_frame(touches, "touches", ["subscriber", "time", channel, *flags])
    conversions = _require_frame(conversions, "conversions", ["subscriber", "time", "value"])
    value = np.asarray(conversions["value"], dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise StatsInputError("conversions.value: expected finite numbers, got NaN or inf")
    if touches[channel].isna().any():
        raise StatsInputError(f"touches.{channel}: expected a channel on every touch, got NaN")
    t = pd.DataFrame({
        "subscriber": np.asarray(touches["subscriber"]),
        "t_time": _times(touches["time"], "touches.time"),
        "channel": np.asarray(touches[channel]),
        "touch": np.arange(len(touches)),
    })
    if require == "opened":
        keep = np.asarray(touches["opened"], bool) | np.asarray(touches["clicked"], bool)
        t = t[keep]
    elif require == "clicked":
        t = t[np.asarray(touches["clicked"], bool)]
    c = pd.DataFrame({
        "subscriber": np.asarray(conversions["subscriber"]),
        "c_time": _times(conversions["time"], "conversions.time"),
        "value": value,
        "conversion": np.arange(len(conversions)),
    })
    pairs = c.merge(t, on="subscriber", how="inner")
    age = pairs["c_time"].to_numpy() - pairs["t_time"].to_numpy()
    pairs = pairs[(age >= 0) & (age <= win)].copy()
    pairs["age"] = pairs["c_time"] - pairs["t_time"]
    pairs = pairs.sort_values(["conversion", "t_time", "touch"], kind="stable")
    g = pairs.groupby("conversion", sort=False)
    pairs["pos"] = g.cumcount().to_numpy()
    pairs["k"] = g["touch"].transform("size").to_numpy()
    return pairs[["conversion", "touch", "channel", "age", "value", "pos", "k"]].reset_index(
        drop=True)


def _rule_weights(pairs: pd.DataFrame, model: str, half_life: float,
                  weights: tuple[float, float, float]) -> np.ndarray:
    pos, k = pairs["pos"].to_numpy(), pairs["k"].to_numpy()
    if model == "first_touch":
        return (pos == 0).astype(float)
    if model == "last_touch":
        return (pos == k - 1).astype(float)
    if model == "linear":
        return 1.0 / k
    if model == "time_decay":
        age = pairs["age"].to_numpy()
        youngest = pairs.groupby("conversion", sort=False)["age"].transform("min").to_numpy()
        raw = np.exp2(-(age - youngest) / half_life)  # shift: no underflow, same ratios
        total = pd.Series(raw).groupby(pairs["conversion"].to_numpy()).transform("sum")
        return raw / total.to_numpy()
    f, m, la = weights
    first, last = pos == 0, pos == k - 1
    w = np.where(first, f, np.where(last, la, m / np.maximum(k - 2, 1)))
    two = k == 2
    if f + la > 0:
        w = np.where(two, np.where(first, f / (f + la), la / (f + la)), w)
    else:
        w = np.where(two, 0.5, w)
    return np.where(k == 1, 1.0, w)


def journeys(touches: pd.DataFrame, conversions: pd.DataFrame, *, window: float = 5 * 86400,
             require: str = "none", channel: str = "channel") -> pd.DataFrame:
    """Converting and non-converting journeys (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per journey: ``subscriber``, ``path`` (tuple of channels in time order),
        ``converted`` (bool) and ``value`` (0 for non-converting journeys).
    """
    pairs = eligible_touches(touches, conversions, window=window, require=require,
                             channel=channel)
    conv = pairs.groupby("conversion", sort=True).agg(
        path=("channel", tuple), value=("value", "first"))
    subs = np.asarray(conversions["subscriber"])
    conv_rows = pd.DataFrame({"subscriber": subs[conv.index.to_numpy()],
                              "path": conv["path"].to_numpy(), "converted": True,
                              "value": conv["value"].to_numpy()})
    flags = {"none": [], "opened": ["opened", "clicked"], "clicked": ["clicked"]}[require]
    keep = np.ones(len(touches), bool)
    if flags:
        keep = np.logical_or.reduce([np.asarray(touches[f], bool) for f in flags])
    keep[pairs["touch"].to_numpy()] = False
    rest = pd.DataFrame({"subscriber": np.asarray(touches["subscriber"])[keep],
                         "time": np.asarray(touches["time"], dtype=np.float64)[keep],
                         "channel": np.asarray(touches[channel])[keep],
                         "touch": np.flatnonzero(keep)})
    rest = rest.sort_values(["subscriber", "time", "touch"], kind="stable")
    null = rest.groupby("subscriber", sort=True)["channel"].agg(tuple)
    null_rows = pd.DataFrame({"subscriber": null.index.to_numpy(), "path": null.to_numpy(),
                              "converted": False, "value": 0.0})
    return pd.concat([conv_rows, null_rows], ignore_index=True)


def _absorb(p: np.ndarray, n_transient: int, conv: int) -> float:
    """P(absorbed in ``conv`` | start at state 0) for a row-stochastic matrix ``p``."""
    qt = p[:n_transient, :n_transient]
    rhs = p[:n_transient, conv]
    x = np.linalg.solve(np.eye(n_transient) - qt, rhs)
    return float(x[0])


def markov_removal_effects(paths: list[tuple] | pd.Series, converted: Any) -> pd.Series:
    r"""Removal effect of each channel in a first-order Markov chain of journeys.

    Parameters
    ----------
    paths : sequence of tuples of channels
        One journey each, in time order (empty journeys are ignored).
    converted : array_like of bool
        Whether each journey ended in a conversion.

    Returns
    -------
    pandas.Series
        :math:`RE_c = 1 - P_{-c}(\text{conv}) / P(\text{conv})`, indexed by channel (sorted).
    """
    paths = list(paths)
    conv_flags = np.asarray(converted, dtype=bool)
    if conv_flags.shape != (len(paths),):
        raise StatsInputError(
            f"converted: expected shape ({len(paths)},) like paths, got {conv_flags.shape}")
    lengths = np.array([len(p) for p in paths], dtype=np.int64)
    nonempty = lengths > 0
    flat = [c for p in paths for c in p]
    channels = sorted(set(flat), key=str)
    if not channels or not conv_flags[nonempty].any():
        raise StatsInputError("paths: expected at least one converting journey with a touch")
    index = {c: i + 1 for i, c in enumerate(channels)}  # 0 = start
    n_ch = len(channels)
    conv_state, null_state = n_ch + 1, n_ch + 2
    codes = np.fromiter((index[c] for c in flat), dtype=np.int64, count=len(flat))
    lengths, conv_flags = lengths[nonempty], conv_flags[nonempty]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # Each journey: start -> c_1 -> ... -> c_k -> (conv | null).
    src = np.concatenate([np.zeros(len(lengths), np.int64), codes])
    nxt = np.empty_like(codes)
    nxt[:-1] = codes[1:]
    nxt[ends - 1] = np.where(conv_flags, conv_state, null_state)
    dst = np.concatenate([codes[starts], nxt])
    counts = np.zeros((n_ch + 3, n_ch + 3))
    np.add.at(counts, (src, dst), 1.0)
    n_tr = n_ch + 1
    rows = counts[:n_tr].sum(axis=1, keepdims=True)
    p = np.zeros_like(counts)
    p[:n_tr] = counts[:n_tr] / rows
    base = _absorb(p, n_tr, conv_state)
    effects = np.empty(n_ch)
    for i in range(1, n_ch + 1):
        q = p.copy()
        q[:, null_state] += q[:, i]
        q[:, i] = 0.0
        effects[i - 1] = 1.0 - _absorb(q, n_tr, conv_state) / base
    return pd.Series(effects, index=pd.Index(channels, name="channel"), name="removal_effect")


def _shapley_phi(sets: pd.Series, weights: np.ndarray) -> pd.Series:
    r""":math:`\phi_c = \sum_{T \ni c} R(T)/|T|` from per-set values ``weights``."""
    size = sets.map(len).to_numpy()
    exploded = pd.DataFrame({"set": sets.to_numpy(), "w": weights / size}).explode("set")
    return exploded.groupby("set")["w"].sum()


def attribute(touches: pd.DataFrame, conversions: pd.DataFrame, model: str = "last_touch", *,
              window: float = 5 * 86400, require: str = "none", half_life: float = 86400.0,
              position_weights: tuple[float, float, float] = (0.4, 0.2, 0.4),
              shapley_value: str = "conversions",
              channel: str = "channel") -> AttributionResult:
    """Credit conversions (and their value) to channels.

    Parameters
    ----------
    touches, conversions : pandas.DataFrame
        See the module docstring for the columns.
    model : {"first_touch", "last_touch", "linear", "time_decay", "position_based",
        "markov", "shapley"}
    window : float > 0
        Attribution window in seconds (default 5 days; ``inf`` for none).
    require : {"none", "opened", "clicked"}
        Engagement a touch needs to earn credit.
    half_life : float > 0
        ``time_decay`` half-life in seconds (default 1 day).
    position_weights : (first, middle, last)
        ``position_based`` weights, non-negative, summing to 1.
    shapley_value : {"conversions", "rate"}
        Characteristic function of ``shapley`` (see the module docstring).
    channel : str
        Column of ``touches`` to credit (e.g. ``"campaign"``).

    Returns
    -------
    AttributionResult
    """
    if model not in ATTRIBUTION_MODELS:
        raise StatsInputError(
            f"model: expected one of {list(ATTRIBUTION_MODELS)}, got {_short(model)}")
    try:
        hl = float(half_life)
    except (TypeError, ValueError):
        hl = float("nan")
    if not (np.isfinite(hl) and hl > 0):
        raise StatsInputError(
            f"half_life: expected a positive number of seconds, got {_short(half_life)}")
    try:
        pw = tuple(float(v) for v in position_weights)
    except (TypeError, ValueError):
        pw = ()
    if len(pw) != 3 or min(pw) < 0 or not np.isclose(sum(pw), 1.0):
        raise StatsInputError(
            "position_weights: expected (first, middle, last) non-negative summing to 1, got "
            f"{_short(position_weights)}")
    if shapley_value not in ("conversions", "rate"):
        raise StatsInputError(
            f"shapley_value: expected one of ['conversions', 'rate'], got {_short(shapley_value)}")
    pairs = eligible_touches(touches, conversions, window=window, require=require,
                             channel=channel)
    values = np.asarray(conversions["value"], dtype=np.float64)
    n_conv = len(conversions)
    attributed = np.zeros(n_conv, bool)
    attributed[pairs["conversion"].to_numpy()] = True
    n_attr = int(attributed.sum())
    attr_value = float(values[attributed].sum())
    extra: dict[str, pd.Series] = {}
    if model in ("markov", "shapley"):
        if n_attr == 0:
            raise StatsInputError(
                "conversions: expected at least one conversion with an eligible touch for a "
                "data-driven model, got none")
        j = journeys(touches, conversions, window=window, require=require, channel=channel)
        if model == "markov":
            re = markov_removal_effects(j["path"], j["converted"])
            share = re / re.sum() if re.sum() > 0 else re * 0.0
            credit = pd.DataFrame({"conversions": share * n_attr, "value": share * attr_value})
            extra["removal_effect"] = re
        else:
            sets = j["path"].map(lambda p: tuple(sorted(set(p), key=str)))
            grp = pd.DataFrame({"set": sets, "conv": j["converted"].astype(float),
                                "value": j["value"], "n": 1.0}).groupby("set", sort=False).sum()
            keys = pd.Series(list(grp.index))
            if shapley_value == "conversions":
                rc, rv = grp["conv"].to_numpy(), grp["value"].to_numpy()
            else:
                rc = (grp["conv"] / grp["n"]).to_numpy()
                rv = (grp["value"] / grp["n"]).to_numpy()
            phi = _shapley_phi(keys, rc)
            phi_v = _shapley_phi(keys, rv)
            credit = pd.DataFrame({
                "conversions": phi / phi.sum() * n_attr if phi.sum() > 0 else phi * 0.0,
                "value": phi_v / phi_v.sum() * attr_value if phi_v.sum() > 0 else phi_v * 0.0,
            })
            extra["shapley_value"] = phi
    else:
        w = _rule_weights(pairs, model, hl, pw)
        credit = pd.DataFrame({"channel": pairs["channel"].to_numpy(), "conversions": w,
                               "value": w * pairs["value"].to_numpy()}).groupby(
            "channel", sort=False)[["conversions", "value"]].sum()
    credit = credit.sort_index(key=lambda idx: idx.map(str))
    credit.index.name = "channel"
    credit["share"] = credit["conversions"] / n_attr if n_attr else 0.0
    for name, series in extra.items():
        credit[name] = series.reindex(credit.index).to_numpy()
    return AttributionResult(
        model=model, credits=credit, n_conversions=n_conv, attributed_conversions=n_attr,
        unattributed_conversions=n_conv - n_attr,
        unattributed_value=float(values[~attributed].sum()),
    )
