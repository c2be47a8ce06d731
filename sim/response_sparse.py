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

import numpy as np

from sim import _events as E
from sim.population import Population
from sim.response import (
    _N_U,
    _STAGE1,
    _STAGE2,
    EmailBatch,
    _assemble,
    _check_alerts,
    _click_terms,
    _draw_click,
    _draw_index,
    _draw_open,
    _open_terms,
)
from sim.rng import PURPOSES, KeyedRandom

__all__ = ["respond"]

#: positions in the stage-1 draws (``_STAGE1`` columns) of the machine-open, human-open,
#: click, unsubscribe and fatigue-noise uniforms (columns 0, 1, 5, 15, 19 of the table)
_U_MACHINE, _U_HUMAN, _U_CLICK, _U_UNSUB, _U_NOISE = 0, 1, 5, 6, 7


def respond(pop: Population, emails: EmailBatch, rng: KeyedRandom
            ) -> tuple[E.Events, np.ndarray]:
    """The response events of ``emails`` (identical to :func:`sim.response.sample`'s) and
    each email's fatigue-noise uniform (float64 (n,), column 19 of its uniforms: the
    input of :func:`sim.response.npe_noise_update`). State is not changed."""
    row = pop.index_of(emails.subscriber)
    _check_alerts(pop, emails)
    index = _draw_index(emails)
    u1 = rng.uniforms(emails.subscriber, emails.time, PURPOSES["email"], k=len(_STAGE1),
                      index=index)
    o = _open_terms(pop, row, emails)
    human = u1[:, _U_HUMAN] < o["p_human"]
    unsub = u1[:, _U_UNSUB] < o["p_unsub"]
    rows = np.flatnonzero(human | unsub | (u1[:, _U_MACHINE] < o["p_machine"]))  # any event
    h_rows = np.flatnonzero(human)  # a human open: a subset of rows
    pr_h = _click_terms(pop, row[h_rows], emails._rows(h_rows),
                        {name: col[h_rows] for name, col in o.items()}, None)
    need = unsub.copy()  # the rows whose detail draws are made: clicked or unsubscribed
    need[h_rows[u1[h_rows, _U_CLICK] < pr_h["p_click_given_open"]]] = True
    u = np.full((len(rows), _N_U), 0.5)
    u[:, _STAGE1] = u1[rows]
    n_rows = np.flatnonzero(need)
    if len(n_rows):
        u[np.ix_(np.searchsorted(rows, n_rows), _STAGE2)] = rng.uniforms(
            emails.subscriber[n_rows], emails.time[n_rows], PURPOSES["email_detail"],
            k=len(_STAGE2), index=index[n_rows])
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
