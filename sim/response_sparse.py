"""The world's email-response path: :func:`sim.response.sample`'s events, computed only
where they are needed.

Most delivered emails produce no event (no open, no click, no unsubscribe), yet
:func:`sim.response.sample` evaluates every probability and every outcome detail for
every email. :func:`respond` evaluates, for every email, only what its open and
unsubscribe draws need (:func:`sim.response._open_terms`); the click and purchase
probabilities for the emails a human opens; the open and unsubscribe outcomes
(:func:`sim.response._draw_open`) for the emails with an event; and what follows a click
(:func:`sim.response._draw_click`) for the clicked ones. Every formula is the one of
:mod:`sim.response`, applied element by element to fewer rows, so the events are the
same bit for bit (tests/sim/test_response_sparse.py proves it against ``sample``).
"""

from __future__ import annotations

import numba
import numpy as np

from sim import _events as E
from sim.clock import DAY
from sim.population import Population
from sim.response import (
    _N_U,
    _STAGE,
    _STAGE1,
    _STAGE2,
    EmailBatch,
    _assemble,
    _check_alerts,
    _click_terms,
    _draw_click,
    _draw_index,
    _draw_open,
    _logit,
    _open_terms,
    _sigmoid,
)
from sim.rng import PURPOSES, KeyedRandom

__all__ = ["apply_fatigue", "open_terms", "respond"]

#: positions in the stage-1 draws (``_STAGE1`` columns) of the machine-open, human-open,
#: click, unsubscribe and fatigue-noise uniforms (columns 0, 1, 5, 15, 19 of the table)
_U_MACHINE, _U_HUMAN, _U_CLICK, _U_UNSUB, _U_NOISE = 0, 1, 5, 6, 7


def respond(pop: Population, emails: EmailBatch, rng: KeyedRandom
            ) -> tuple[E.Events, np.ndarray]:
    """The response events of ``emails`` (identical to :func:`sim.response.sample`'s) and
    each email's fatigue-noise uniform (float64 (n,), column 19 of its uniforms: the
    input of :func:`apply_fatigue`). State is not changed."""
    row = pop.index_of(emails.subscriber)
    _check_alerts(pop, emails)
    index = _draw_index(emails)
    u1 = rng.uniforms(emails.subscriber, emails.time, PURPOSES["email"], k=len(_STAGE1),
                      index=index)
    o = open_terms(pop, row, emails)
    human = u1[:, _U_HUMAN] < o["p_human"]
    unsub = u1[:, _U_UNSUB] < o["p_unsub"]
    rows = np.flatnonzero(human | unsub | (u1[:, _U_MACHINE] < o["p_machine"]))  # any event
    h_rows = np.flatnonzero(human)  # a human open: a subset of rows
    pr_h = _click_terms(pop, row[h_rows], emails._rows(h_rows),
                        {name: col[h_rows] for name, col in o.items()}, None)
    need = unsub.copy()  # the rows whose detail draws are made: clicked or unsubscribed
    need[h_rows[u1[h_rows, _U_CLICK] < pr_h["p_click_given_open"]]] = True
    u = np.empty((len(rows), _N_U), order="F")  # columns contiguous: read column by column
    _put_columns(u, slice(None), _STAGE1, u1[rows])
    _put_columns(u, slice(None), _STAGE2, 0.5)  # placeholders, read only on need rows
    n_rows = np.flatnonzero(need)
    if len(n_rows):
        _put_columns(u, np.searchsorted(rows, n_rows), _STAGE2, rng.uniforms(
            emails.subscriber[n_rows], emails.time[n_rows], PURPOSES["email_detail"],
            k=len(_STAGE2), index=index[n_rows]))
    pr = _sparse_probabilities(o, rows, h_rows, pr_h)
    some = emails._rows(rows)
    d = _draw_open(pop, some, pr, u)
    c = np.flatnonzero(d["click"])
    dc = _draw_click(pop, some._rows(c), {name: col[c] for name, col in pr.items()}, u[c],
                     d["t_human"][c], d["human"][c])
    for name, col in dc.items():  # in place on the clicked rows; never read elsewhere
        d[name] = np.zeros(len(rows), col.dtype)
        d[name][c] = col
    return _assemble(some, pr, d), u1[:, _U_NOISE]


def _put_columns(u: np.ndarray, rows: slice | np.ndarray, cols: np.ndarray,
                 values: np.ndarray | float) -> None:
    """``u[rows][:, cols] = values`` in place (``values``: shape (len(rows), len(cols)) or
    a scalar), one slice per run of consecutive columns (no fancy column indexing)."""
    start = 0
    for end in range(1, len(cols) + 1):
        if end == len(cols) or cols[end] != cols[end - 1] + 1:
            lo, hi = int(cols[start]), int(cols[end - 1]) + 1
            u[rows, lo:hi] = values[:, start:end] if isinstance(values, np.ndarray) else values
            start = end


def _sparse_probabilities(o: dict[str, np.ndarray], rows: np.ndarray, h_rows: np.ndarray,
                          pr_h: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What :func:`sim.response._draw_open` and ``_draw_click`` read of
    :func:`sim.response.probabilities`, on ``rows`` (shape (m,)): the open terms ``o``
    of all emails taken at ``rows``, the click and purchase terms ``pr_h`` of the
    human-opened ``h_rows`` (a subset of ``rows``) put in place, 0 (False) on the other
    rows, where they are never read."""
    at = np.searchsorted(rows, h_rows)
    out = {"p_machine_open": o["p_machine"][rows], "p_human_open": o["p_human"][rows],
           "p_unsubscribe": o["p_unsub"][rows], "hour_distance": o["dh"][rows]}
    for name, dtype in (("p_click_given_open", np.float64),
                        ("p_purchase_given_click", np.float64),
                        ("order_value", np.float64), ("cart_open", bool)):
        col = np.zeros(len(rows), dtype)
        col[at] = pr_h[name]
        out[name] = col
    return out


def open_terms(pop: Population, row: np.ndarray, emails: EmailBatch) -> dict[str, np.ndarray]:
    """:func:`sim.response._open_terms` (its reference, same outputs bit for bit) with the
    per-email arithmetic in one compiled pass (:func:`_open_kernel`); the exponentials
    stay numpy's. ``row``: the emails' population rows, int64 (n,)."""
    p = pop.preset
    npe = pop.npe[row].astype(np.float64)
    sat = _sigmoid(p.satisfaction_sensitivity * npe)
    e_unsub = np.exp(-p.unsubscribe_npe_beta * npe)
    d = np.arange(13, dtype=np.float64)  # every hour distance, 0..12
    hour_term = p.hour_match_gain * (np.exp(-(d**2) / (2 * p.hour_match_width_hours**2)) - 0.3)
    n = len(row)
    eng, dh, logit = np.empty(n), np.empty(n), np.empty(n)
    live, p_machine, p_unsub = np.empty(n), np.empty(n), np.empty(n)
    seg, gone = np.empty(n, np.int64), np.empty(n, np.bool_)
    consts = np.array([
        _logit(p.open_base_triggered), _logit(p.open_base_campaign), p.open_engagement_slope,
        p.urgency_open_gain, p.satisfaction_weight, p.series_open_decay, p.lapsed_open_offset,
        p.machine_open_probability, p.unsubscribe_base_triggered,
        p.unsubscribe_base_campaign, p.urgency_unsubscribe_factor,
        p.series_unsubscribe_gain, p.lapsed_unsubscribe_factor,
        p.lapsed_inactive_days * DAY], np.float64)
    ok = _open_kernel(
        row, emails.time, emails.kind, emails.subject_style, emails.urgency,
        emails.series_index, emails.send_hour, pop.engagement, pop.intent, pop.cart_value,
        pop.lifecycle, pop.educational_seeker, pop.subscribed, pop.privacy_proxy,
        pop.preferred_hour, pop.utc_offset_minutes, pop.last_engaged, sat, e_unsub,
        hour_term, np.asarray(p.subject_open_effects, np.float64),
        np.asarray(p.kind_open_offsets, np.float64), consts, _STAGE["new_subscriber"],
        eng, dh, seg, gone, logit, live, p_machine, p_unsub)
    if not ok:  # an hour distance outside 0..12 (a preferred hour outside 0..23)
        return _open_terms(pop, row, emails)
    return {"eng": eng, "sat": sat, "dh": dh, "seg": seg, "gone": gone,
            "p_human": _sigmoid(logit) * live, "p_machine": p_machine, "p_unsub": p_unsub}


@numba.njit(cache=True, nogil=True)
def _open_kernel(row: np.ndarray, time: np.ndarray, kind: np.ndarray, style: np.ndarray,
                 urgency: np.ndarray, series: np.ndarray, send_hour: np.ndarray,
                 engagement: np.ndarray, intent: np.ndarray, cart_value: np.ndarray,
                 lifecycle: np.ndarray, seeker: np.ndarray, subscribed: np.ndarray,
                 proxy: np.ndarray, preferred_hour: np.ndarray, utc_offset: np.ndarray,
                 last_engaged: np.ndarray, sat: np.ndarray, e_unsub: np.ndarray,
                 hour_term: np.ndarray, subject_open: np.ndarray, kind_open: np.ndarray,
                 c: np.ndarray, new_stage: int, eng: np.ndarray, dh: np.ndarray,
                 seg: np.ndarray, gone: np.ndarray, logit: np.ndarray, live: np.ndarray,
                 p_machine: np.ndarray, p_unsub: np.ndarray
                 ) -> bool:  # pragma: no cover - compiled
    """Fill the (n,) outputs ``eng`` ... ``p_unsub`` with the per-email terms of
    :func:`sim.response._open_terms` (``logit``: the open logit; ``live``: 1.0 if
    subscribed), the same operations in the same order. ``sat`` and ``e_unsub``: numpy's
    satisfaction and ``exp(-unsubscribe_npe_beta NPE)``; ``hour_term``: the hour term of
    each distance 0..12; ``c``: the preset's constants (:func:`open_terms`). False if an
    hour distance falls outside 0..12 (the outputs are then incomplete)."""
    f03, f07, f16 = np.float32(0.3), np.float32(0.7), np.float32(1.6)
    for i in range(row.shape[0]):
        r = row[i]
        e32 = engagement[r]
        e = np.float64(e32)
        ready = np.float64(f16 * intent[r]) + (0.25 if cart_value[r] > 0 else 0.0)
        if lifecycle[r] == new_stage:
            s = 0
        elif e32 < f03:
            s = 1
        elif ready > 0.7:
            s = 2
        elif seeker[r]:
            s = 3
        elif e32 > f07:
            s = 4
        else:
            s = 5
        lapsed = np.float64(time[i] - last_engaged[r]) >= c[13]
        hour = send_hour[i]
        if hour < 0:
            hour = ((time[i] + np.int64(utc_offset[r]) * 60) // 3600) % 24
        d = abs(hour - np.int64(preferred_hour[r]))
        d = min(d, 24 - d)
        if d < 0 or d > 12:
            return False
        k = np.float64(series[i])
        x = c[0] if kind[i] != 0 else c[1]
        x = x + c[2] * (e - 0.5)
        x = x + subject_open[style[i], s]
        x = x + hour_term[d]
        x = x + c[3] * (1.0 if urgency[i] else 0.0)
        x = x + c[4] * (2.0 * sat[i] - 1.0)
        x = x + kind_open[kind[i]]
        if series[i] > 0:
            x = x - c[5] * k
        if lapsed:
            x = x + c[6]
        v = 1.0 if subscribed[r] else 0.0
        u = (c[8] if kind[i] != 0 else c[9]) * e_unsub[i] * (1.6 - e)
        u = u * (c[10] if urgency[i] else 1.0)
        if series[i] > 0:
            u = u * (1.0 + c[11] * k)
        if lapsed:
            u = u * c[12]
        eng[i], dh[i], seg[i], gone[i], logit[i], live[i] = e, np.float64(d), s, lapsed, x, v
        p_machine[i] = (1.0 if proxy[r] else 0.0) * c[7] * v
        p_unsub[i] = (u if not u > 0.5 else 0.5) * v
    return True


def apply_fatigue(pop: Population, emails: EmailBatch, noise: np.ndarray) -> None:
    """:func:`sim.response.npe_noise_update` (its reference, the same float32 NPE bit for
    bit) in one compiled pass (:func:`_fatigue_kernel`). ``noise``: float64 (n,)."""
    p = pop.preset
    consts = np.array([p.npe_email_cost, p.npe_clickbait_cost, p.npe_noise, p.series_npe_cost],
                      np.float64)
    _fatigue_kernel(pop.index_of(emails.subscriber), emails.subject_style, emails.urgency,
                    emails.series_index, np.ascontiguousarray(noise, np.float64),
                    np.asarray(p.subject_clickbait, np.float64), consts, pop.subscribed,
                    pop.npe)


@numba.njit(cache=True, nogil=True)
def _fatigue_kernel(row: np.ndarray, style: np.ndarray, urgency: np.ndarray,
                    series: np.ndarray, noise: np.ndarray, clickbait: np.ndarray,
                    c: np.ndarray, subscribed: np.ndarray, npe: np.ndarray
                    ) -> None:  # pragma: no cover - compiled
    """Add each email's fatigue change to float32 ``npe[row]`` in row order (as
    ``np.add.at``), the operations of :func:`sim.response.npe_noise_update` in its order;
    ``c``: email cost, clickbait cost, noise scale, series cost."""
    for i in range(row.shape[0]):
        r = row[i]
        live = 1.0 if subscribed[r] else 0.0
        cb = clickbait[style[i]] + (0.3 if urgency[i] else 0.0)
        if cb < 0.0:
            cb = 0.0
        elif cb > 1.0:
            cb = 1.0
        delta = (-c[0] - c[1] * 2.0 * (cb - 0.5) + c[2] * (2.0 * noise[i] - 1.0)) * live
        if series[i] > 0:
            delta = delta - c[3] * np.float64(series[i]) * live
        npe[r] = npe[r] + np.float32(delta)
