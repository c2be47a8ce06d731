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


@dataclass(frozen=True)
class _Journeys:
    """Journeys as flat arrays: journey ``j`` is ``codes[starts[j]:starts[j] + lengths[j]]``."""

    labels: list[Any]  # channel of each code, sorted by str
    codes: np.ndarray  # int64 channel codes of all journeys, concatenated
    lengths: np.ndarray  # int64 per journey, each >= 1
    converted: np.ndarray  # bool per journey
    value: np.ndarray  # float per journey (0 for non-converting)
    subscriber: np.ndarray  # per journey

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.lengths) - self.lengths


def _journey_arrays(touches: pd.DataFrame, conversions: pd.DataFrame, pairs: pd.DataFrame,
                    require: str, channel: str) -> _Journeys:
    conv_ids, conv_len = np.unique(pairs["conversion"].to_numpy(), return_counts=True)
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
    null_subs, null_len = np.unique(rest["subscriber"].to_numpy(), return_counts=True)
    channels = np.concatenate([pairs["channel"].to_numpy(), rest["channel"].to_numpy()])
    labels = sorted(pd.unique(channels), key=str)
    codes = pd.Index(labels).get_indexer(channels).astype(np.int64)
    n_conv = len(conv_ids)
    return _Journeys(
        labels=labels, codes=codes,
        lengths=np.concatenate([conv_len, null_len]).astype(np.int64),
        converted=np.concatenate([np.ones(n_conv, bool), np.zeros(len(null_len), bool)]),
        value=np.concatenate([np.asarray(conversions["value"], np.float64)[conv_ids],
                              np.zeros(len(null_len))]),
        subscriber=np.concatenate([np.asarray(conversions["subscriber"])[conv_ids], null_subs]),
    )


def journeys(touches: pd.DataFrame, conversions: pd.DataFrame, *, window: float = 5 * 86400,
             require: str = "none", channel: str = "channel") -> pd.DataFrame:
    """Converting and non-converting journeys (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per journey, converting journeys first (in conversion order), then
        non-converting ones (by subscriber): ``subscriber``, ``path`` (tuple of channels in
        time order), ``converted`` (bool) and ``value`` (0 for non-converting journeys).
    """
    pairs = eligible_touches(touches, conversions, window=window, require=require,
                             channel=channel)
    j = _journey_arrays(touches, conversions, pairs, require, channel)
    names = np.array(j.labels, dtype=object)[j.codes]
    paths = [tuple(names[s:s + n]) for s, n in zip(j.starts, j.lengths, strict=True)]
    return pd.DataFrame({"subscriber": j.subscriber, "path": paths, "converted": j.converted,
                         "value": j.value})


def _absorb(p: np.ndarray, n_transient: int, conv: int) -> float:
    """P(absorbed in ``conv`` | start at state 0) for a row-stochastic matrix ``p``."""
    qt = p[:n_transient, :n_transient]
    rhs = p[:n_transient, conv]
    x = np.linalg.solve(np.eye(n_transient) - qt, rhs)
    return float(x[0])


def _markov_effects(codes: np.ndarray, lengths: np.ndarray, converted: np.ndarray,
                    n_ch: int) -> np.ndarray:
    """Removal effects from flat journey arrays (codes in ``[0, n_ch)``, lengths >= 1)."""
    if not converted.any():
        raise StatsInputError("paths: expected at least one converting journey with a touch")
    states = codes + 1  # 0 = start
    conv_state, null_state = n_ch + 1, n_ch + 2
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # Each journey: start -> c_1 -> ... -> c_k -> (conv | null).
    src = np.concatenate([np.zeros(len(lengths), np.int64), states])
    nxt = np.empty_like(states)
    nxt[:-1] = states[1:]
    nxt[ends - 1] = np.where(converted, conv_state, null_state)
    dst = np.concatenate([states[starts], nxt])
    counts = np.zeros((n_ch + 3, n_ch + 3))
    np.add.at(counts, (src, dst), 1.0)
    n_tr = n_ch + 1
    rows = counts[:n_tr].sum(axis=1, keepdims=True)
    p = np.zeros_like(counts)
    p[:n_tr] = counts[:n_tr] / np.where(rows > 0, rows, 1.0)
    base = _absorb(p, n_tr, conv_state)
    effects = np.empty(n_ch)
    for i in range(1, n_ch + 1):
        q = p.copy()
        q[:, null_state] += q[:, i]
        q[:, i] = 0.0
        effects[i - 1] = 1.0 - _absorb(q, n_tr, conv_state) / base
    return effects


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
    paths = [tuple(p) for p in paths]
    conv_flags = np.asarray(converted, dtype=bool)
    if conv_flags.shape != (len(paths),):
        raise StatsInputError(
            f"converted: expected shape ({len(paths)},) like paths, got {conv_flags.shape}")
    lengths = np.array([len(p) for p in paths], dtype=np.int64)
    flat = [c for p in paths for c in p]
    labels = sorted(set(flat), key=str)
    codes = pd.Index(labels).get_indexer(flat).astype(np.int64) if flat else np.zeros(0, int)
    nonempty = lengths > 0
    if not labels or not conv_flags[nonempty].any():
        raise StatsInputError("paths: expected at least one converting journey with a touch")
    effects = _markov_effects(codes, lengths[nonempty], conv_flags[nonempty], len(labels))
    return pd.Series(effects, index=pd.Index(labels, name="channel"), name="removal_effect")


def _shapley_fast(j: _Journeys, mode: str) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\phi_c = \sum_{T \ni c} R(T)/|T|` with channel sets as 64-bit masks.

    Returns ``(phi, phi_value)`` over ``j.labels``; needs at most 63 channels.
    """
    n_ch = len(j.labels)
    bits = np.left_shift(np.uint64(1), j.codes.astype(np.uint64))
    masks = np.bitwise_or.reduceat(bits, j.starts) if len(bits) else bits
    uniq, inv = np.unique(masks, return_inverse=True)
    conv = np.bincount(inv, weights=j.converted.astype(float), minlength=len(uniq))
    val = np.bincount(inv, weights=j.value, minlength=len(uniq))
    if mode == "rate":
        n = np.bincount(inv, minlength=len(uniq)).astype(float)
        conv, val = conv / n, val / n
    member = ((uniq[:, None] >> np.arange(n_ch, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    size = member.sum(axis=1)
    return (conv / size) @ member, (val / size) @ member


def _shapley_reference(j: _Journeys, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Same as :func:`_shapley_fast` with Python sets (any number of channels)."""
    agg: dict[frozenset, list[float]] = {}
    for s, n, ok, v in zip(j.starts, j.lengths, j.converted, j.value, strict=True):
        key = frozenset(j.codes[s:s + n].tolist())
        row = agg.setdefault(key, [0.0, 0.0, 0.0])
        row[0] += float(ok)
        row[1] += float(v)
        row[2] += 1.0
    phi, phi_v = np.zeros(len(j.labels)), np.zeros(len(j.labels))
    for key, (conv, val, n) in agg.items():
        if mode == "rate":
            conv, val = conv / n, val / n
        for c in key:
            phi[c] += conv / len(key)
            phi_v[c] += val / len(key)
    return phi, phi_v


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

    Examples
    --------
    >>> touches = pd.DataFrame({"subscriber": [1, 1], "time": [0, 3600],
    ...                         "channel": ["welcome", "cart"]})
    >>> conversions = pd.DataFrame({"subscriber": [1], "time": [7200], "value": [40.0]})
    >>> attribute(touches, conversions, "linear").credits["value"].to_dict()
    {'cart': 20.0, 'welcome': 20.0}
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
    extra: dict[str, np.ndarray] = {}
    if model in ("markov", "shapley"):
        if n_attr == 0:
            raise StatsInputError(
                "conversions: expected at least one conversion with an eligible touch for a "
                "data-driven model, got none")
        j = _journey_arrays(touches, conversions, pairs, require, channel)
        if model == "markov":
            score = score_v = _markov_effects(j.codes, j.lengths, j.converted, len(j.labels))
            extra["removal_effect"] = score
        else:
            fn = _shapley_fast if len(j.labels) <= 63 else _shapley_reference
            score, score_v = fn(j, shapley_value)
            extra["shapley_value"] = score
        share = score / score.sum() if score.sum() > 0 else np.zeros_like(score)
        share_v = score_v / score_v.sum() if score_v.sum() > 0 else np.zeros_like(score_v)
        credit = pd.DataFrame({"conversions": share * n_attr, "value": share_v * attr_value},
                              index=pd.Index(j.labels, name="channel"))
    else:
        w = _rule_weights(pairs, model, hl, pw)
        credit = pd.DataFrame({"channel": pairs["channel"].to_numpy(), "conversions": w,
                               "value": w * pairs["value"].to_numpy()}).groupby(
            "channel", sort=False)[["conversions", "value"]].sum()
        credit = credit.sort_index(key=lambda idx: idx.map(str))
    credit.index.name = "channel"
    credit["share"] = credit["conversions"] / n_attr if n_attr else 0.0
    for name, arr in extra.items():
        credit[name] = arr
    return AttributionResult(
        model=model, credits=credit, n_conversions=n_conv, attributed_conversions=n_attr,
        unattributed_conversions=n_conv - n_attr,
        unattributed_value=float(values[~attributed].sum()),
    )
