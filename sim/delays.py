"""When an email's responses land: the delay model of :func:`sim.response.sample` and the
probability that a response lands within a window.

The delays (seconds after delivery; every draw independent, ``Z`` standard normal,
``U`` uniform on (0, 1), ``Exp(m)`` exponential with mean ``m``):

* **machine open** ``Dm = 30 + floor(570 U)``: uniform on 30 .. 599;
* **human open** ``Dh = floor(max(60, a exp(0.9 Z)))`` with
  ``a = open_delay_median_hours * 3600 (1 + dh / 6)`` for ``dh`` hours between the send
  hour and the subscriber's preferred hour: a log-normal (median ``a``, log-sd 0.9)
  floored to whole seconds, at least 60;
* **click** ``Dc = Dh + C`` with ``C = floor(max(5, Exp(click_delay_mean_s)))``;
* **order** (``purchase_completed``, which carries the revenue)
  ``Do = Dc + 20 + floor(60 U) + 60 + floor(Exp(purchase_delay_mean_s))``.

All delays are whole seconds, so their distribution functions on the integers are exact:

* ``P(Dm <= w) = clip((w - 29) / 570, 0, 1)``;
* ``P(Dh <= w) = Phi((ln(w + 1) - ln a) / 0.9)`` for ``w >= 60``, else 0 (``Dh <= w``
  iff the unfloored delay is below ``w + 1``);
* click and order: sums of independent integer delays, whose distribution function is
  that of ``Dh`` convolved with the probability masses of the other parts: ``C`` puts
  ``1 - q^6`` on 5 and ``(1 - q) q^j`` on ``j >= 6`` (``q = exp(-1 / click_delay_mean_s)``),
  ``floor(Exp(m))`` is geometric, ``(1 - r) r^g`` (``r = exp(-1 / m)``), ``floor(60 U)``
  uniform on 0 .. 59. A geometric mass is a one-pole recursive filter, so
  :func:`delay_cdfs` runs ``P(Dh <= n)`` for ``n = 0, 1, ...`` through these filters
  (``scipy.signal.lfilter``) up to the longest window it is asked: O(longest window)
  work, then cached for the windows of a run. :func:`delay_cdfs_reference` is the direct
  sum ``sum_j P(part = j) P(Dh <= w - j)`` (geometric masses cut where their tail is below
  ``exp(-40)``), for any window one at a time; tests hold the two equal.

A response counts toward its email in the runtime when it lands at most
``reward_window_seconds`` after delivery and no later than the run's end
(:class:`actors.result.RunResult`), so its probability within window ``w`` is

* open: ``p_machine P(Dm <= w) + (1 - p_machine) p_human P(Dh <= w)`` (the observed open
  is the machine's when the proxy opens the email);
* click: ``p_click P(Dc <= w)``; order: ``p_purchase P(Do <= w')`` and revenue
  ``order_value`` times that, where for a cart reminder to a subscriber whose cart will
  come back on its own (an organic return purchase is scheduled at ``return_time``)
  ``w' = min(w, return_time - send - 1)``: the organic purchase buys the cart first and
  the reminder's later purchase is dropped (:func:`sim.state.valid_mask`);
* incremental order: the order within ``w`` unless the cart comes back on its own within
  ``w`` (:func:`within_window`).

What a delay model cannot know is left out: a cart reminder's purchase is also dropped
when a later session buys, replaces or clears the cart first (the session has not
happened at delivery).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

from sim._grouping import distinct_rows, group_order

if TYPE_CHECKING:
    from sim.population import Population
    from sim.presets import Preset
    from sim.response import EmailBatch

__all__ = [
    "CHECKOUT_DELAY_S",
    "KINDS",
    "MACHINE_OPEN_DELAY_S",
    "MIN_CLICK_DELAY_S",
    "MIN_OPEN_DELAY_S",
    "OPEN_DELAY_SIGMA",
    "UNSUBSCRIBE_DELAY_S",
    "UNSUBSCRIBE_NO_OPEN_S",
    "VIEW_DELAY_S",
    "DelayModel",
    "delay_cdfs",
    "delay_cdfs_reference",
    "unsubscribe_cdf",
    "within_window",
]

#: Log-sd of the human open delay.
OPEN_DELAY_SIGMA = 0.9
#: Shortest human open delay, s.
MIN_OPEN_DELAY_S = 60
#: Machine open delay ``first + floor(span U)``: (first, span), s.
MACHINE_OPEN_DELAY_S = (30, 570)
#: Shortest open-to-click delay, s.
MIN_CLICK_DELAY_S = 5
#: Click-to-product-view delay ``first + floor(span U)``: (first, span), s.
VIEW_DELAY_S = (20, 60)
#: Product view to the purchase's earliest time, s (then an exponential wait).
CHECKOUT_DELAY_S = 60
#: Unsubscribe after the human open (or, without one, after ``UNSUBSCRIBE_NO_OPEN_S``)
#: ``first + floor(span U)``: (first, span), s.
UNSUBSCRIBE_DELAY_S = (30, 270)
#: Without a human open an unsubscribe is timed from delivery + this, s.
UNSUBSCRIBE_NO_OPEN_S = 3600
#: Response kinds of :func:`delay_cdfs`, in the order of its rows.
KINDS = ("machine_open", "human_open", "click", "order")
_TAIL = 40.0  # geometric masses are cut at exp(-_TAIL) of tail
_CHUNK = 1 << 14
_CHUNKS_KEPT = 16  # per hour distance: 16 x 2 x 16384 float64 = 4 MiB (a 3-day window)


@dataclass(frozen=True)
class DelayModel:
    """The preset parameters of the response delays (hashable, for caching).

    Parameters
    ----------
    open_delay_median_hours : float
        Median human open delay at the preferred hour, h.
    click_delay_mean_s, purchase_delay_mean_s : float
        Means of the exponential open-to-click and view-to-purchase waits, s.
    """

    open_delay_median_hours: float
    click_delay_mean_s: float
    purchase_delay_mean_s: float

    @classmethod
    def from_preset(cls, preset: Preset) -> DelayModel:
        """The delay parameters of ``preset``."""
        return cls(float(preset.open_delay_median_hours), float(preset.click_delay_mean_s),
                   float(preset.purchase_delay_mean_s))

    def open_scale(self, hour_distance: float) -> float:
        """Median ``a`` of the human open delay ``hour_distance`` hours off the preferred
        hour, s."""
        return self.open_delay_median_hours * 3600.0 * (1.0 + hour_distance / 6.0)


def _human_cdf(a: float, n: np.ndarray) -> np.ndarray:
    """P(Dh <= n) for integer seconds ``n`` (float64, any shape)."""
    n = np.asarray(n, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(np.maximum(n, 0.0) + 1.0) - math.log(a)) / OPEN_DELAY_SIGMA
    return np.where(n >= MIN_OPEN_DELAY_S, ndtr(z), 0.0)


def _machine_cdf(n: np.ndarray) -> np.ndarray:
    first, span = MACHINE_OPEN_DELAY_S
    return np.clip((np.asarray(n, np.float64) - (first - 1)) / span, 0.0, 1.0)


def _click_filter(mean_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``C = floor(max(5, Exp(mean)))`` as a filter: ``(1 - q^6) z^-5 + sum_{j>=6}
    (1 - q) q^j z^-j = z^-5 ((1 - q^6) + (q^6 - q) z^-1) / (1 - q z^-1)``."""
    q = math.exp(-1.0 / mean_s)
    k = MIN_CLICK_DELAY_S
    b = np.zeros(k + 2)
    b[k] = -math.expm1((k + 1) * math.log(q))  # 1 - q^6
    b[k + 1] = q ** (k + 1) - q
    return b, np.array([1.0, -q])


def _geometric_filter(mean_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``floor(Exp(mean))``: ``(1 - r) / (1 - r z^-1)``."""
    r = math.exp(-1.0 / mean_s)
    return np.array([-math.expm1(-1.0 / mean_s)]), np.array([1.0, -r])


def _view_shift() -> tuple[int, int]:
    """The uniform part between click and purchase: (first, count) of
    ``first + floor(count U)``, the constant waits included."""
    first, span = VIEW_DELAY_S
    return first + CHECKOUT_DELAY_S, span


@functools.lru_cache(maxsize=16)
def _support_array(support: tuple[int, ...]) -> np.ndarray:
    sup = np.asarray(support, np.int64)
    if len(sup) and (np.diff(sup) <= 0).any():
        raise ValueError("support: expected increasing windows")
    return sup


class _Chain:
    """The click and order filters run over ``P(Dh <= n)``, n = 0, 1, ..., chunk by
    chunk; the filters' state at every chunk start is kept, so the value at any ``n``
    up to the last one run is recomputed from the chunk holding it, identically."""

    def __init__(self, model: DelayModel, hour_distance: float) -> None:
        self.a = model.open_scale(hour_distance)
        self.bc, self.ac = _click_filter(model.click_delay_mean_s)
        self.bg, self.ag = _geometric_filter(model.purchase_delay_mean_s)
        first, span = _view_shift()
        self.back = first + span - 1  # inputs of the uniform part reach back this far
        self.kernel = np.full(span, 1.0 / span)
        self.states = [(np.zeros(len(self.bc) - 1), np.zeros(self.back),
                        np.zeros(len(self.ag) - 1))]
        self.kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`run` of chunk ``k``, kept for the last :data:`_CHUNKS_KEPT` chunks asked
        (a run is exact and repeatable, so keeping its output changes nothing)."""
        hit = self.kept.pop(k, None)
        if hit is None:
            hit = self.run(k)
        self.kept[k] = hit   # most recently used last
        if len(self.kept) > _CHUNKS_KEPT:
            self.kept.pop(next(iter(self.kept)))
        return hit

    def run(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Click and order CDFs on chunk ``k`` (n in [k CHUNK, (k + 1) CHUNK)); the
        state after it is kept."""
        # scipy.signal takes ~1.3 s to import (it loads scipy.stats): only a process that
        # computes delay CDFs pays it, not every process importing the simulator
        from scipy.signal import lfilter

        zc, prev, zg = self.states[k]
        n = np.arange(k * _CHUNK, (k + 1) * _CHUNK)
        click, zc = lfilter(self.bc, self.ac, _human_cdf(self.a, n), zi=zc)
        ext = np.concatenate([prev, click])
        viewed = np.convolve(ext, self.kernel, mode="valid")[:len(n)]
        order, zg = lfilter(self.bg, self.ag, viewed, zi=zg)
        if len(self.states) == k + 1:
            self.states.append((zc, ext[-self.back:], zg))
        return click, order

    def at(self, w: np.ndarray) -> np.ndarray:
        """Click and order CDFs at windows ``w`` (int, >= 0, at most the chunks run),
        float64 (2, len(w))."""
        out = np.empty((2, len(w)))
        chunk = w // _CHUNK
        for k in np.unique(chunk):
            while len(self.states) <= k:  # chunks run in order, once
                self.run(len(self.states) - 1)
            sel = chunk == k
            click, order = self._chunk(int(k))
            out[0, sel] = click[w[sel] - k * _CHUNK]
            out[1, sel] = order[w[sel] - k * _CHUNK]
        return out


@functools.lru_cache(maxsize=64)
def _grid(model: DelayModel, hour_distance: float, support: tuple[int, ...]
          ) -> tuple[_Chain, np.ndarray]:
    """The filter chain run up to ``max(support)`` and P(delay <= w) of each of
    :data:`KINDS` at the ``support`` windows, float64 (4, len(support))."""
    w = _support_array(support)
    chain = _Chain(model, hour_distance)
    out = np.empty((len(KINDS), len(w)))
    out[0] = _machine_cdf(w)
    out[1] = _human_cdf(chain.a, w)
    out[2:] = chain.at(w)
    return chain, out


@functools.lru_cache(maxsize=8)
def _part_masses(model: DelayModel) -> tuple[np.ndarray, np.ndarray]:
    """Probability masses of ``C`` and of ``C + 80 + floor(60 U) + floor(Exp)`` on
    0 .. len - 1 (geometric tails cut below exp(-40))."""
    q = math.exp(-1.0 / model.click_delay_mean_s)
    jc = MIN_CLICK_DELAY_S + math.ceil(_TAIL * model.click_delay_mean_s)
    pc = np.zeros(jc + 1)
    pc[MIN_CLICK_DELAY_S] = 1.0 - q ** (MIN_CLICK_DELAY_S + 1)
    j = np.arange(MIN_CLICK_DELAY_S + 1, jc + 1)
    pc[j] = (1.0 - q) * q ** j.astype(np.float64)
    first, span = _view_shift()
    pv = np.zeros(first + span)
    pv[first:] = 1.0 / span
    r = math.exp(-1.0 / model.purchase_delay_mean_s)
    g = np.arange(math.ceil(_TAIL * model.purchase_delay_mean_s) + 1, dtype=np.float64)
    pg = (1.0 - r) * r ** g
    return pc, np.convolve(np.convolve(pc, pv), pg)


def delay_cdfs_reference(model: DelayModel, hour_distance: float, window: int
                         ) -> dict[str, float]:
    """Specification of :func:`delay_cdfs` for one window (direct sums, slow)."""
    a = model.open_scale(hour_distance)
    pc, pr = _part_masses(model)
    w = int(window)

    def conv(mass: np.ndarray) -> float:
        j = np.arange(len(mass))
        return float(np.dot(mass, _human_cdf(a, w - j)))

    return {"machine_open": float(_machine_cdf(np.array(w))),
            "human_open": float(_human_cdf(a, np.array(w))),
            "click": conv(pc), "order": conv(pr)}


def delay_cdfs(model: DelayModel, hour_distance: np.ndarray, window: np.ndarray,
               support: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """P(delay <= window) of each response kind, per email.

    Parameters
    ----------
    model : DelayModel
    hour_distance : ndarray of float64, shape (n,)
        Hours between send hour and preferred hour (``probabilities(...)["hour_distance"]``).
    window : ndarray of int64, shape (n,)
        Seconds after delivery; a response counts when its delay is <= window (< 0:
        never).
    support : tuple of int, optional
        Sorted windows computed together (once per process, cached): pass every window a
        run can ask, so each call is a look-up. Windows outside it are computed one at a
        time by :func:`delay_cdfs_reference`.

    Returns
    -------
    dict of str -> ndarray of float64, shape (n,)
        ``machine_open``, ``human_open``, ``click``, ``order`` (see :data:`KINDS`).
    """
    dh = np.asarray(hour_distance, np.float64)
    win = np.asarray(window, np.int64)
    out = np.zeros((len(KINDS), len(win)))
    support = support if support is not None else ()
    sup = _support_array(support)
    live = np.flatnonzero(win >= 0)
    inv, (dists,) = distinct_rows(dh[live])
    order, bounds = group_order(inv, len(dists))
    for g, d in enumerate(dists.tolist()):
        rows = live[order[bounds[g]:bounds[g + 1]]]
        w = win[rows]
        pos = np.minimum(np.searchsorted(sup, w), max(len(sup) - 1, 0))
        hit = sup[pos] == w if len(sup) else np.zeros(len(w), bool)
        if hit.all():
            out[:, rows] = _grid(model, float(d), support)[1][:, pos]
            continue
        if hit.any():
            out[:, rows[hit]] = _grid(model, float(d), support)[1][:, pos[hit]]
        inside = ~hit & (w <= (sup[-1] if len(sup) else -1))
        if inside.any():
            chain = _grid(model, float(d), support)[0]
            wi = w[inside]
            out[0, rows[inside]] = _machine_cdf(wi)
            out[1, rows[inside]] = _human_cdf(chain.a, wi)
            out[2:, rows[inside]] = chain.at(wi)
        for w1 in np.unique(w[~hit & ~inside]):
            ref = delay_cdfs_reference(model, float(d), int(w1))
            out[:, rows[~hit & ~inside & (w == w1)]] = np.array([ref[k] for k in KINDS])[:, None]
    return dict(zip(KINDS, out, strict=True))


@functools.lru_cache(maxsize=4096)
def _after_open_share(a: float, window: int) -> float:
    """``P(Dh + 30 + floor(270 U) <= window)`` for the human open delay of median ``a``
    (s): the mean of ``P(Dh <= window - 30 - j)`` over ``j = 0 .. 269`` (cached: a run asks
    the same few hour distances and windows tick after tick)."""
    first, span = UNSUBSCRIBE_DELAY_S
    return float(_human_cdf(a, window - first - np.arange(span)).mean())


def unsubscribe_cdf(model: DelayModel, hour_distance: np.ndarray, window: np.ndarray,
                    p_human_open: np.ndarray) -> np.ndarray:
    """P(an unsubscribe lands within ``window`` s of delivery | the email is unsubscribed
    from), float64 (n,).

    The unsubscribe follows the human open by ``30 + floor(270 U)`` s, or delivery + 3600 s
    when the subscriber does not open (the open draw is independent of the unsubscribe
    draw): ``h P(Dh + 30 + floor(270 U) <= w) + (1 - h) P(3630 + floor(270 U) <= w)``
    with ``h = p_human_open``; the first term is the mean of ``P(Dh <= w - 30 - j)`` over
    ``j = 0 .. 269``, computed once per distinct (hour distance, window).
    """
    dh = np.asarray(hour_distance, np.float64)
    win = np.asarray(window, np.int64)
    first, span = UNSUBSCRIBE_DELAY_S
    after_open = np.zeros(len(win))
    if len(win):
        inv, (dhs, wins) = distinct_rows(dh, win)
        vals = np.array([_after_open_share(model.open_scale(d), w)
                         for d, w in zip(dhs.tolist(), wins.tolist(), strict=True)])
        after_open = vals[inv]
    no_open = np.clip((win - (UNSUBSCRIBE_NO_OPEN_S + first) + 1) / span, 0.0, 1.0)
    h = np.asarray(p_human_open, np.float64)
    return np.where(win >= 0, h * after_open + (1.0 - h) * no_open, 0.0)


def within_window(pop: Population, emails: EmailBatch, pr: dict[str, Any],
                  window: np.ndarray | int, support: tuple[int, ...] | None = None
                  ) -> dict[str, np.ndarray]:
    """Probabilities that each email's responses land within ``window`` s of delivery.

    Parameters
    ----------
    pop : Population
        The state at delivery (the same as for ``pr``).
    emails : EmailBatch
    pr : dict
        :func:`sim.response.probabilities` of ``emails``.
    window : ndarray of int64, shape (n,) (or a scalar)
        Seconds after delivery in which a response counts (inclusive).
    support : tuple of int, optional
        See :func:`delay_cdfs`.

    Returns
    -------
    dict of str -> ndarray of float64, shape (n,)
        ``p_open``, ``p_click``, ``p_purchase``, ``expected_revenue`` (currency) and
        ``p_incremental_purchase`` of responses landing within the window: see the module
        docstring. With an unbounded window they equal the fields of ``pr``, except that a
        cart reminder's order that would land after the cart came back on its own is
        not counted.
    """
    n = len(emails)
    win = np.broadcast_to(np.asarray(window, np.int64), (n,))
    model = DelayModel.from_preset(pop.preset)
    row = pop.index_of(emails.subscriber)
    ret = pop.return_time[row].astype(np.int64)
    returner = np.asarray(pr["cart_open"], bool) & (ret > emails.time)
    to_return = ret - emails.time
    buy_win = np.where(returner, np.minimum(win, to_return - 1), win)
    dh = pr["hour_distance"]
    cdf = delay_cdfs(model, dh, win, support)
    order = cdf["order"]
    if returner.any():
        idx = np.flatnonzero(returner & (buy_win != win))
        if len(idx):
            order = order.copy()
            order[idx] = delay_cdfs(model, dh[idx], buy_win[idx], support)["order"]
    pm = pr["p_machine_open"]
    p_purchase = pr["p_purchase"] * order
    anyway = returner & (to_return <= win)
    out = {
        "p_open": pm * cdf["machine_open"] + (1.0 - pm) * pr["p_human_open"] * cdf["human_open"],
        "p_click": pr["p_click"] * cdf["click"],
        "p_purchase": p_purchase,
        "expected_revenue": p_purchase * pr["order_value"],
        "p_incremental_purchase": p_purchase * ~anyway,
    }
    if "order_margin" in pr:
        out["expected_margin"] = p_purchase * pr["order_margin"]
        out["expected_discount"] = p_purchase * pr["discount_value"]
    out["p_unsubscribe"] = pr["p_unsubscribe"] * unsubscribe_cdf(model, dh, win,
                                                                 pr["p_human_open"])
    return out
