"""The fast engine with journeys: numpy state and numba kernels, the same decisions as the
reference (:mod:`policies.triggers._reference_journeys`, the executable spec of
docs/journeys.md, "Semantics: the engine contract").

:class:`FastJourneyCore` is the fast core of a rule set with journeys (a rule set without
journeys keeps :class:`~policies.triggers._fast.FastCore` and its kernels unchanged).
Plain rules keep FastCore's per-(subscriber, rule) arrays; journeys add:

* per (subscriber, journey) an int32 ``jslot``: -1 never entered; ``p >= 0`` a **record**
  of the record pool, while the journey runs or retries a send (int64 columns
  :data:`_PI_NAMES`, float64 propensities, uint64 wait-until "seen" bits and the
  entry-predicate bits of the entry event, which a branch ``entry`` case tests), 216
  bytes; ``-2 - q`` a **parked record** ``q`` once it neither runs nor retries
  (``reentry``'s last entry / end and the latest send for failure reports: int64
  :data:`K_LENTRY`.., int32 :data:`KI_SNODE`.., float64 propensity; 68 bytes), the record
  going to a free list that the next entry reuses;
* per subscriber and inactivity rule the latest activity, the lapse used and the
  ``since_attribute`` start; the first event seen;
* per subscriber with a product event an index into a **catalog pool** of blocks of 8
  products (int32 product, last view, cart, purchase; most recent last; an int32 entry
  gate, :func:`_settle`; 140 bytes): ids of 2**31 - 1 and more by a code
  (:meth:`FastJourneyCore._product_codes`), times as seconds after an epoch that moves
  forward (:data:`_EPOCH_LEAD`). A call's catalog
  events visit the **audience lists** of their products (:meth:`FastJourneyCore._audience`)
  rather than every block;
* per subscriber the bits of the branch cases' ``segment`` tests of all journeys packed
  in uint64 words, and of the attribute entries' tests (recomputed at
  ``update_subscribers``);
* the frequency-cap ring of send times is widened to ``n_rules + 1`` when smart sending
  is on, so that the latest send not reported failed is always in it.

A vectorized prefilter evaluates every ``where``/``match``/entry test per event (bit
masks), so the compiled loop only combines bits. Policy splits call the policy from the
compiled loop (``numba.objmode``), with the reference's keyed generator.

The kernels are compiled without numba's reference counting (``_nrt=False``): they
allocate nothing and only read and write the arrays they are given, which the caller
holds; with it, every array taken out of the state tuples or passed to a helper cost two
atomic operations (a journey send about 2 us instead of 0.3 us).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numba
import numpy as np
import pandas as pd

from policies.ab import salt_key
from policies.base import Policy
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from policies.features import subscriber_features
from policies.triggers._fast import (
    _ST_ENTERED,
    _ST_FAILED,
    _ST_LATE,
    _ST_RETRIED,
    FAR,
    NONE,
    FastCore,
    _event_mask,
    _quiet_end,
)
from policies.triggers._prefetch import prefetch
from policies.triggers._reference_journeys import _entry_key, step_names
from policies.triggers.catalog import CatalogBatch, drop_fraction
from policies.triggers.decisions import (
    Decisions,
    TriggerIdError,
    parse_journey_trigger_id,
    trigger_id,
)
from policies.triggers.journeys import (
    CATALOG_EVENT_TYPES,
    WAIT_SINCE,
    AttributeEntry,
    CatalogEntry,
    Inactivity,
    JourneyProgram,
    compile_journey,
)
from policies.triggers.ruleset import Predicate, RuleSet, segment_mask

# decision kinds (ALL_KINDS order)
_FIRE, _CANCEL, _EXPIRE, _SUPPRESS, _EXIT, _SKIP, _BRANCH, _SPLIT = range(8)
# node kinds (journeys.NODE_KINDS order)
_N_SEND, _N_WAIT, _N_UNTIL, _N_BRANCH, _N_SPLIT, _N_EXIT = range(6)
_SINCE_ENTRY, _SINCE_SEND = WAIT_SINCE.index("entry"), WAIT_SINCE.index("last_send")
#: Products remembered per subscriber (docs/journeys.md, contract point 8).
CATALOG_MEMORY = 8
#: Catalog-memory times are int32 seconds after an epoch (``meta[2]``); never: NONE32.
NONE32 = np.int32(-(2**31))
#: When a time is more than 2**31 - 1 s after the epoch, the epoch moves to 2**30 s before
#: it; times then more than 2**31 s before the epoch (older than 2**31 + 2**30 s, more than
#: MAX_DURATION: no audience window reaches them) are forgotten (NONE32), which decides
#: the same: an expired view or cart is out of every audience and an expired purchase is
#: before every view or cart still in one.
_EPOCH_LEAD = 2**30

# rule table
(_R_EXPIRE, _R_WINDOW, _R_REENTRY, _R_COOLDOWN, _R_EXCL, _R_PRIO, _R_J, _R_DELAY,
 _R_PC) = range(9)
# journey table
(_J_RULE, _J_NODES, _J_PATHS, _J_ENTRY, _J_INACT, _J_VIEWED, _J_CARTED, _J_SEGW, _J_SEGS,
 _J_NCOL) = range(10)
_E_EVENT, _E_INACTIVE, _E_ATTRIBUTE, _E_CATALOG = range(4)
# node table
_N_KIND, _N_ARG, _N_NEXT, _N_FIRST, _N_NPATHS, _N_SINCE, _N_EXPIRE, _N_SMART, _N_POLICY = range(9)
# settings
(_S_QON, _S_QSTART, _S_QEND, _S_CAPON, _S_CAPPER, _S_CAPMAX, _S_SMART, _S_VIEW, _S_CART,
 _S_BUY, _S_NCOL) = range(11)
#: int64 columns of a journey record (cursor, reentry memory, latest send, retry slot).
_PI_NAMES = ("c_node", "c_due", "c_entry", "c_reached", "c_key", "c_last", "last_entry",
             "ended", "s_entry", "s_node", "s_att", "s_time", "s_reached", "s_key",
             "s_failed", "r_node", "r_entry", "r_due", "r_att", "r_reached", "r_key")
(C_NODE, C_DUE, C_ENTRY, C_REACHED, C_KEY, C_LAST, L_ENTRY, ENDED, S_ENTRY, S_NODE, S_ATT,
 S_TIME, S_REACHED, S_KEY, S_FAILED, R_NODE, R_ENTRY, R_DUE, R_ATT, R_REACHED, R_KEY
 ) = range(len(_PI_NAMES))
_PF_C, _PF_S, _PF_R = 0, 1, 2  # propensities: cursor, latest send, retry
#: int64 columns of a parked record (a journey neither running nor retrying: re-entry
#: memory and latest send); int32 columns; its propensity is ``pkf``.
K_LENTRY, K_ENDED, K_SENTRY, K_STIME, K_SREACHED, K_SKEY = range(6)
KI_SNODE, KI_SATT, KI_SFAILED = range(3)
# meta: records used (high-water mark), catalog blocks used, catalog epoch, free record
# list head, parked records used, free parked list head, record and parked limits
(_M_REC, _M_CAT, _M_EPOCH, _M_FREE, _M_PARK, _M_PFREE, _M_RLIM, _M_PLIM,
 _M_LEN) = range(9)
_PU_SEEN_E, _PU_SEEN_S, _PU_EBITS = 0, 1, 2
#: bits of ``type_any`` (per event type): some rule excludes it, some rule's ``when``
#: names it, some inactivity clock restarts on it
_TY_EXCL, _TY_WHEN, _TY_ACT = 1, 2, 4
# due items
_IT_CURSOR, _IT_PLAIN, _IT_RETRY, _IT_TIMER = 0, 1, 2, 3  # the reference's tie order

#: How many events (or audience blocks, or due rows) ahead the kernels ask for the state
#: rows they will read (:mod:`policies.triggers._prefetch`); the catalog blocks of an
#: event are asked for half as far ahead, once its row's ``cslot`` is in cache.
_AHEAD = 16

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: ``numba.njit`` (typed loosely: the stubs lack the ``_nrt`` option used below).
_njit: Any = numba.njit
#: The policy-split chooser of the core running a kernel on this thread.
_LOCAL = threading.local()


def _policy_choice(r: int, row: int, entry: int, node: int) -> tuple[int, float]:
    chooser: Callable[[int, int, int, int], tuple[int, float]] = _LOCAL.chooser
    return chooser(r, row, entry, node)


@_njit(cache=True, _nrt=False)
def _mix(z):  # pragma: no cover - compiled
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@_njit(cache=True, _nrt=False)
def keyed_unit_fast(sub, key, counter):  # pragma: no cover - compiled
    """:func:`policies.ab.keyed_unit` with the salt's key given (uint64)."""
    k = _mix(key ^ np.uint64(counter))
    h = _mix(_mix(np.uint64(sub) ^ k))
    return np.float64(h >> np.uint64(11)) * 2.0**-53


@_njit(cache=True, _nrt=False, inline="always")
def _emit(OUT, s, r, kind, t, entry, att, node, path, prop, key, stats):  # pragma: no cover
    out, outp, cnt = OUT
    n = cnt[0]
    out[n, 0] = s
    out[n, 1] = r
    out[n, 2] = kind
    out[n, 3] = t
    out[n, 4] = entry
    out[n, 5] = att
    out[n, 6] = node
    out[n, 7] = path
    out[n, 8] = key
    outp[n] = prop
    cnt[0] = n + 1
    if kind < 4:
        stats[r, 1 + kind] += 1


@_njit(cache=True, _nrt=False, inline="always")
def _quiet(T, S, s, t):  # pragma: no cover - compiled
    st = T[1]
    if st[_S_QON]:
        return _quiet_end(t, np.int64(S[10][s]), st[_S_QSTART], st[_S_QEND])
    return t


@_njit(cache=True, _nrt=False, inline="always")
def _capped(T, S, s, t):  # pragma: no cover - compiled
    st = T[1]
    if not st[_S_CAPON]:
        return False
    cap = S[8]
    lo = t - st[_S_CAPPER]
    used = 0
    for j in range(cap.shape[1]):
        if cap[s, j] > lo:
            used += 1
    return used >= st[_S_CAPMAX]


@_njit(cache=True, _nrt=False, inline="always")
def _recent_send(S, s, t, window):  # pragma: no cover - compiled
    cap = S[8]
    lo = t - window
    for j in range(cap.shape[1]):
        if cap[s, j] > lo:
            return True
    return False


@_njit(cache=True, _nrt=False, inline="always")
def _remember_send(S, s, t):  # pragma: no cover - compiled
    cap = S[8]
    if cap.shape[1] == 0:
        return
    jmin = 0
    for j in range(1, cap.shape[1]):
        if cap[s, j] < cap[s, jmin]:
            jmin = j
    cap[s, jmin] = t


@_njit(cache=True, _nrt=False)
def _plain_decide(T, S, OUT, s, r, d):  # pragma: no cover - compiled
    rinfo = T[0]
    pend_entry, pend_due, pend_att, lf_time, lf_entry, lf_att = S[2], S[3], S[4], S[5], S[6], S[7]
    stats = S[25]
    pc = rinfo[r, _R_PC]
    e = pend_entry[s, pc]
    a = np.int64(pend_att[s, pc])
    send_at = _quiet(T, S, s, d)
    if send_at > e + rinfo[r, _R_EXPIRE]:
        kind = _EXPIRE
    elif send_at > d:
        pend_due[s, pc] = send_at
        return
    elif _capped(T, S, s, d):
        kind = _SUPPRESS
    else:
        kind = _FIRE
        _remember_send(S, s, d)
        lf_time[s, pc] = d
        lf_entry[s, pc] = e
        lf_att[s, pc] = a
    pend_entry[s, pc] = NONE
    _emit(OUT, s, r, kind, d, e, a, -1, -1, 1.0, -1, stats)


@_njit(cache=True, _nrt=False)
def _inact_due(inact, act, lapse, first_seen, attr_t0, s, k):  # pragma: no cover - compiled
    """When inactivity timer ``k`` of row ``s`` is due (FAR: never)."""
    t0 = act[s, k]
    if t0 == NONE:
        t0 = attr_t0[s, k]
    if t0 == NONE:
        t0 = first_seen[s]
    if t0 == NONE or lapse[s, k] == t0:
        return FAR
    return t0 + inact[k, 1]


@_njit(cache=True, _nrt=False)
def _next_item(T, S, s):  # pragma: no cover - compiled
    """The next due item of row ``s``: (due, what, rule, journey or timer index); what
    is -1 when nothing is pending."""
    return _next_of(T[0], T[2], T[9], S[2], S[3], S[12], S[13], S[17], S[18], S[19], S[20], s)


@_njit(cache=True, _nrt=False)
def _next_of(rinfo, jinfo, inact, pend_entry, pend_due, jslot, pi, act, lapse, first_seen,
             attr_t0, s):  # pragma: no cover - compiled
    """:func:`_next_item` over the arrays (no tuple: numba reference-counts every array
    taken out of one). Order: due, -priority, rule, node, then cursor < plain < retry <
    timer (the reference's tuple order)."""
    bd = FAR
    bp = np.int64(0)
    br = np.int64(-1)
    bn = np.int64(0)
    bw = np.int64(-1)
    bx = np.int64(-1)
    for r in range(rinfo.shape[0]):
        j = rinfo[r, _R_J]
        prio = -rinfo[r, _R_PRIO]
        for w in range(4):
            if j < 0:
                pc = rinfo[r, _R_PC]
                if w != _IT_PLAIN or pend_entry[s, pc] == NONE:
                    continue
                d = pend_due[s, pc]
                node = np.int64(-1)
                idx = np.int64(-1)
            else:
                p = jslot[s, j]
                if w == _IT_CURSOR:
                    if p < 0 or pi[p, C_NODE] < 0:
                        continue
                    d = pi[p, C_DUE]
                    node = pi[p, C_NODE]
                    idx = j
                elif w == _IT_RETRY:
                    if p < 0 or pi[p, R_NODE] < 0:
                        continue
                    d = pi[p, R_DUE]
                    node = pi[p, R_NODE]
                    idx = j
                elif w == _IT_TIMER:
                    k = jinfo[j, _J_INACT]
                    if k < 0:
                        continue
                    d = _inact_due(inact, act, lapse, first_seen, attr_t0, s, k)
                    if d == FAR:
                        continue
                    node = np.int64(-2)
                    idx = k
                else:
                    continue
            better = False
            if bw < 0 or d < bd:
                better = True
            elif d == bd:
                if prio < bp:
                    better = True
                elif prio == bp:
                    if r < br:
                        better = True
                    elif r == br and (node < bn or (node == bn and w < bw)):
                        better = True
            if better:
                bd, bp, br, bn, bw, bx = d, prio, np.int64(r), node, np.int64(w), idx
    return bd, bw, br, bx


@_njit(cache=True, _nrt=False, inline="always")
def _path_start(T, j, g, k):  # pragma: no cover - compiled
    jinfo, ninfo, pinfo = T[2], T[3], T[4]
    return pinfo[jinfo[j, _J_PATHS] + ninfo[g, _N_FIRST] + k, 0]


@_njit(cache=True, _nrt=False, inline="always")
def _end(S, p, t):  # pragma: no cover - compiled
    pi = S[13]
    pi[p, C_NODE] = -1
    pi[p, ENDED] = t


@_njit(cache=True, _nrt=False, inline="always")
def _continue_send(T, S, OUT, s, j, p, t):  # pragma: no cover - compiled
    """Contract point 2: the send at the cursor's node tried at ``t``; False when quiet
    hours postpone it (the cursor waits at the send)."""
    jinfo, ninfo, st = T[2], T[3], T[1]
    pi, pf, pu, stats = S[13], S[14], S[15], S[25]
    r = jinfo[j, _J_RULE]
    node = pi[p, C_NODE]
    g = jinfo[j, _J_NODES] + node
    send_at = _quiet(T, S, s, t)
    expire = ninfo[g, _N_EXPIRE]
    entry = pi[p, C_ENTRY]
    prop = pf[p, _PF_C]
    if expire >= 0 and send_at > pi[p, C_REACHED] + expire:
        kind = _EXPIRE
    elif send_at > t:
        pi[p, C_DUE] = send_at
        return False
    else:
        smart = ninfo[g, _N_SMART]
        window = st[_S_SMART] if smart < 0 else smart
        if window > 0 and _recent_send(S, s, t, window):
            kind = _SKIP
        elif _capped(T, S, s, t):
            kind = _SUPPRESS
        else:
            kind = _FIRE
            _remember_send(S, s, t)
            pi[p, S_ENTRY] = entry
            pi[p, S_NODE] = node
            pi[p, S_ATT] = 1
            pi[p, S_TIME] = t
            pi[p, S_REACHED] = pi[p, C_REACHED]
            pi[p, S_KEY] = pi[p, C_KEY]
            pi[p, S_FAILED] = 0
            pf[p, _PF_S] = prop
            pi[p, C_LAST] = t
            pu[p, _PU_SEEN_S] = np.uint64(0)
    _emit(OUT, s, r, kind, t, entry, 1, node, -1, prop, pi[p, C_KEY], stats)
    return True


@_njit(cache=True, _nrt=False)
def _choose(T, S, s, j, p, node, g):  # pragma: no cover - compiled
    """Contract point 7: (path, propensity) of the split at node ``node``."""
    jinfo, ninfo, pcum, pweight, pkey = T[2], T[3], T[6], T[7], T[8]
    pi, ids = S[13], S[24]
    first = jinfo[j, _J_PATHS] + ninfo[g, _N_FIRST]
    n = ninfo[g, _N_NPATHS]
    entry = pi[p, C_ENTRY]
    if ninfo[g, _N_POLICY] < 0:
        u = keyed_unit_fast(ids[s], pkey[g], entry)
        k = 0
        while k < n and pcum[first + k] <= u:
            k += 1
        if k > n - 1:
            k = n - 1
        return np.int64(k), pweight[first + k]
    r = jinfo[j, _J_RULE]
    with numba.objmode(k2="int64", pr="float64"):
        k2, pr = _policy_choice(r, s, entry, node)
    return k2, pr


@_njit(cache=True, _nrt=False)
def _branch_case(T, S, s, j, p, g):  # pragma: no cover - compiled
    jinfo, ninfo, pinfo, pmask = T[2], T[3], T[4], T[5]
    pu, segb = S[15], S[23]
    first = jinfo[j, _J_PATHS] + ninfo[g, _N_FIRST]
    n = ninfo[g, _N_NPATHS]
    eb = pu[p, _PU_EBITS]
    word = segb[s, jinfo[j, _J_SEGW]] >> np.uint64(jinfo[j, _J_SEGS])
    for k in range(n):
        bit = pinfo[first + k, 1]
        if bit >= 0 and not (word >> np.uint64(bit)) & np.uint64(1):
            continue
        m = pmask[first + k]
        if eb & m == m:
            return k
    return n - 1


@_njit(cache=True, _nrt=False)
def _run(T, S, OUT, s, j, p, node, t):  # pragma: no cover - compiled
    """Run from ``node`` at ``t`` through the steps that take no time, until the journey
    waits or ends."""
    jinfo, ninfo = T[2], T[3]
    pi, pf, pu, stats = S[13], S[14], S[15], S[25]
    r = jinfo[j, _J_RULE]
    while True:
        if node < 0:
            _end(S, p, t)
            return
        pi[p, C_NODE] = node
        pi[p, C_REACHED] = t
        g = jinfo[j, _J_NODES] + node
        kind = ninfo[g, _N_KIND]
        if kind == _N_WAIT:
            pi[p, C_DUE] = t + ninfo[g, _N_ARG]
            return
        if kind == _N_UNTIL:
            pi[p, C_DUE] = t + ninfo[g, _N_ARG]
            since = ninfo[g, _N_SINCE]
            bit = np.uint64(1) << np.uint64(node)
            if (since == _SINCE_ENTRY and pu[p, _PU_SEEN_E] & bit) or (
                    since == _SINCE_SEND and pu[p, _PU_SEEN_S] & bit):
                _emit(OUT, s, r, _BRANCH, t, pi[p, C_ENTRY], 1, node, 0, pf[p, _PF_C],
                      pi[p, C_KEY], stats)
                node = _path_start(T, j, g, 0)
                continue
            return
        if kind == _N_SEND:
            if not _continue_send(T, S, OUT, s, j, p, t):
                return
            node = ninfo[g, _N_NEXT]
            continue
        if kind == _N_EXIT:
            _emit(OUT, s, r, _EXIT, t, pi[p, C_ENTRY], 1, node, -1, pf[p, _PF_C], pi[p, C_KEY],
                  stats)
            _end(S, p, t)
            return
        if kind == _N_SPLIT:
            path, prop = _choose(T, S, s, j, p, node, g)
            pf[p, _PF_C] = prop
            _emit(OUT, s, r, _SPLIT, t, pi[p, C_ENTRY], 1, node, path, prop, pi[p, C_KEY],
                  stats)
        else:
            path = _branch_case(T, S, s, j, p, g)
            _emit(OUT, s, r, _BRANCH, t, pi[p, C_ENTRY], 1, node, path, pf[p, _PF_C],
                  pi[p, C_KEY], stats)
        node = _path_start(T, j, g, path)


@_njit(cache=True, _nrt=False)
def _resume(T, S, OUT, s, j, p, t):  # pragma: no cover - compiled
    jinfo, ninfo = T[2], T[3]
    pi, pf, stats = S[13], S[14], S[25]
    node = pi[p, C_NODE]
    g = jinfo[j, _J_NODES] + node
    kind = ninfo[g, _N_KIND]
    if kind == _N_WAIT:
        _run(T, S, OUT, s, j, p, ninfo[g, _N_NEXT], t)
    elif kind == _N_UNTIL:
        _emit(OUT, s, jinfo[j, _J_RULE], _BRANCH, t, pi[p, C_ENTRY], 1, node, 1, pf[p, _PF_C],
              pi[p, C_KEY], stats)
        _run(T, S, OUT, s, j, p, _path_start(T, j, g, 1), t)
    elif _continue_send(T, S, OUT, s, j, p, t):
        _run(T, S, OUT, s, j, p, ninfo[g, _N_NEXT], t)


@_njit(cache=True, _nrt=False)
def _retry_send(T, S, OUT, s, j, p, t):  # pragma: no cover - compiled
    jinfo, ninfo = T[2], T[3]
    pi, pf, stats = S[13], S[14], S[25]
    node = pi[p, R_NODE]
    g = jinfo[j, _J_NODES] + node
    send_at = _quiet(T, S, s, t)
    expire = ninfo[g, _N_EXPIRE]
    if expire >= 0 and send_at > pi[p, R_REACHED] + expire:
        kind = _EXPIRE
    elif send_at > t:
        pi[p, R_DUE] = send_at
        return
    elif _capped(T, S, s, t):
        kind = _SUPPRESS
    else:
        kind = _FIRE
        _remember_send(S, s, t)
        pi[p, S_ENTRY] = pi[p, R_ENTRY]
        pi[p, S_NODE] = node
        pi[p, S_ATT] = pi[p, R_ATT]
        pi[p, S_TIME] = t
        pi[p, S_REACHED] = pi[p, R_REACHED]
        pi[p, S_KEY] = pi[p, R_KEY]
        pi[p, S_FAILED] = 0
        pf[p, _PF_S] = pf[p, _PF_R]
    _emit(OUT, s, jinfo[j, _J_RULE], kind, t, pi[p, R_ENTRY], pi[p, R_ATT], node, -1,
          pf[p, _PF_R], pi[p, R_KEY], stats)
    pi[p, R_NODE] = -1


@_njit(cache=True, _nrt=False, inline="always")
def _full(meta):  # pragma: no cover - compiled
    """One more step might overflow the record or the parked pool."""
    return meta[_M_REC] > meta[_M_RLIM] or meta[_M_PARK] > meta[_M_PLIM]


@_njit(cache=True, _nrt=False, inline="always")
def _alloc(S):  # pragma: no cover - compiled
    """A fresh record: the head of the free list, else the next unused."""
    pi, pf, pu, meta = S[13], S[14], S[15], S[16]
    p = meta[_M_FREE]
    if p >= 0:
        meta[_M_FREE] = pi[p, C_DUE]
    else:
        p = meta[_M_REC]
        meta[_M_REC] = p + 1
    for c in range(pi.shape[1]):
        pi[p, c] = NONE
    pi[p, C_NODE] = -1
    pi[p, S_NODE] = -1
    pi[p, R_NODE] = -1
    for c in range(pf.shape[1]):
        pf[p, c] = 1.0
        pu[p, c] = np.uint64(0)
    return p


@_njit(cache=True, _nrt=False)
def _park_idle(S, s):  # pragma: no cover - compiled
    """Park the records of row ``s`` whose journey neither runs nor retries: their
    re-entry memory and latest send move to the parked pool (68 bytes instead of 216),
    the record goes to the free list; ``jslot`` holds ``-2 - parked index``."""
    jslot, pi, pf, meta, pk, pki, pkf = S[12], S[13], S[14], S[16], S[29], S[30], S[31]
    for j in range(jslot.shape[1]):
        p = jslot[s, j]
        if p < 0 or pi[p, C_NODE] >= 0 or pi[p, R_NODE] >= 0:
            continue
        q = meta[_M_PFREE]
        if q >= 0:
            meta[_M_PFREE] = pk[q, 0]
        else:
            q = meta[_M_PARK]
            meta[_M_PARK] = q + 1
        pk[q, K_LENTRY] = pi[p, L_ENTRY]
        pk[q, K_ENDED] = pi[p, ENDED]
        pk[q, K_SENTRY] = pi[p, S_ENTRY]
        pk[q, K_STIME] = pi[p, S_TIME]
        pk[q, K_SREACHED] = pi[p, S_REACHED]
        pk[q, K_SKEY] = pi[p, S_KEY]
        pki[q, KI_SNODE] = pi[p, S_NODE]
        pki[q, KI_SATT] = pi[p, S_ATT]
        pki[q, KI_SFAILED] = pi[p, S_FAILED]
        pkf[q] = pf[p, _PF_S]
        jslot[s, j] = -2 - q
        pi[p, C_DUE] = meta[_M_FREE]
        meta[_M_FREE] = p


@_njit(cache=True, _nrt=False)
def _settle(T, S, s):  # pragma: no cover - compiled
    """After row ``s``'s journeys changed: park the idle records (:func:`_park_idle`) and
    set the **entry gate** of its catalog block (``cgate``, a time after the catalog
    epoch): a lower bound of the first time any catalog journey could take an entry of
    ``s`` while no event of ``s`` comes (an event may end a journey: the event loop
    settles after one). A catalog event before the gate is refused by every catalog
    journey of the block's owner, so its audience visit skips the block without reading
    the subscriber's state (:func:`_run_events`). Per catalog journey: never entered, no
    bound; running, its cursor's due time (the earliest it can move, end included);
    otherwise its re-entry: ``once``, never; ``cooldown``, the end + the cooldown."""
    _park_idle(S, s)
    b = S[21][s]
    if b < 0:
        return
    rinfo, jinfo = T[0], T[2]
    jslot, pi = S[12], S[13]
    g = FAR
    for j in range(jinfo.shape[0]):
        if jinfo[j, _J_ENTRY] != _E_CATALOG:
            continue
        p = jslot[s, j]
        if p == -1:
            g = NONE
            break
        if p >= 0 and pi[p, C_NODE] >= 0:
            gj = pi[p, C_DUE]
        else:
            r = jinfo[j, _J_RULE]
            last, ended = _memory(S, p)
            mode = rinfo[r, _R_REENTRY]
            gj = NONE
            if mode == 1 and last != NONE:
                gj = FAR
            elif mode == 2 and ended != NONE:
                gj = ended + rinfo[r, _R_COOLDOWN]
        if gj < g:
            g = gj
    x = g - S[16][_M_EPOCH]
    S[32][b] = NONE32 if x <= NONE32 else np.int32(min(x, 2**31 - 1))


@_njit(cache=True, _nrt=False, inline="always")
def _unpark(S, s, j, q):  # pragma: no cover - compiled
    """A record for row ``s``'s journey ``j`` parked at ``q`` (which goes free)."""
    jslot, pi, pf, meta, pk, pki, pkf = S[12], S[13], S[14], S[16], S[29], S[30], S[31]
    p = _alloc(S)
    pi[p, L_ENTRY] = pk[q, K_LENTRY]
    pi[p, ENDED] = pk[q, K_ENDED]
    pi[p, S_ENTRY] = pk[q, K_SENTRY]
    pi[p, S_TIME] = pk[q, K_STIME]
    pi[p, S_REACHED] = pk[q, K_SREACHED]
    pi[p, S_KEY] = pk[q, K_SKEY]
    pi[p, S_NODE] = pki[q, KI_SNODE]
    pi[p, S_ATT] = pki[q, KI_SATT]
    pi[p, S_FAILED] = pki[q, KI_SFAILED]
    pf[p, _PF_S] = pkf[q]
    pk[q, 0] = meta[_M_PFREE]
    meta[_M_PFREE] = q
    jslot[s, j] = p
    return p


@_njit(cache=True, _nrt=False, inline="always")
def _memory(S, p):  # pragma: no cover - compiled
    """(last entry, end) of an entered journey's record ``p`` (active or parked)."""
    if p >= 0:
        return S[13][p, L_ENTRY], S[13][p, ENDED]
    return S[29][-2 - p, K_LENTRY], S[29][-2 - p, K_ENDED]


@_njit(cache=True, _nrt=False, inline="always")
def _try_enter(T, S, OUT, s, j, t, key, ebits):  # pragma: no cover - compiled
    """Contract point 3: enter journey ``j`` at ``t`` unless it runs, the subscriber
    entered it at this second, the segment or re-entry refuse."""
    rinfo, jinfo = T[0], T[2]
    seg, jslot, pi, pf, pu, stats = S[11], S[12], S[13], S[14], S[15], S[25]
    r = jinfo[j, _J_RULE]
    p = jslot[s, j]
    if p >= 0 and pi[p, C_NODE] >= 0:
        return
    if p != -1:
        last, ended = _memory(S, p)
        if last == t:
            return
    if not seg[s, r]:
        return
    if p != -1:
        mode = rinfo[r, _R_REENTRY]
        if mode == 1 and last != NONE:
            return
        if mode == 2 and ended != NONE and t < ended + rinfo[r, _R_COOLDOWN]:
            return
    if p == -1:
        p = _alloc(S)
        jslot[s, j] = p
    elif p < 0:
        p = _unpark(S, s, j, -2 - p)
    pi[p, C_ENTRY] = t
    pi[p, C_KEY] = key
    pi[p, C_DUE] = 0
    pi[p, C_REACHED] = 0
    pi[p, C_LAST] = NONE
    pf[p, _PF_C] = 1.0
    pu[p, _PU_SEEN_E] = np.uint64(0)
    pu[p, _PU_SEEN_S] = np.uint64(0)
    pu[p, _PU_EBITS] = ebits
    pi[p, L_ENTRY] = t
    stats[r, _ST_ENTERED] += 1
    pi[p, C_NODE] = 0
    _run(T, S, OUT, s, j, p, 0, t)


@_njit(cache=True, _nrt=False)
def _decide_due(T, S, OUT, s, t):  # pragma: no cover - compiled
    """Contract point 1: decide everything of row ``s`` due at or before ``t``, one item
    at a time in (due, -priority, rule, node) order."""
    inact = T[9]
    jslot, lapse, next_due = S[12], S[18], S[9]
    while True:
        d, what, r, x = _next_item(T, S, s)
        if what < 0 or d > t:
            next_due[s] = d if what >= 0 else FAR
            _settle(T, S, s)
            return
        if what == _IT_PLAIN:
            _plain_decide(T, S, OUT, s, r, d)
        elif what == _IT_RETRY:
            _retry_send(T, S, OUT, s, x, jslot[s, x], d)
        elif what == _IT_CURSOR:
            _resume(T, S, OUT, s, x, jslot[s, x], d)
        else:
            lapse[s, x] = d - inact[x, 1]  # one entry (attempt) per lapse
            _try_enter(T, S, OUT, s, inact[x, 0], d, np.int64(-1), np.uint64(0))


@_njit(cache=True, _nrt=False, inline="always")
def _refresh(T, S, s):  # pragma: no cover - compiled
    d, what, _, _ = _next_item(T, S, s)
    S[9][s] = d if what >= 0 else FAR


@_njit(cache=True, _nrt=False, inline="always")
def _ends(excl, xb, xm, evkey, key):  # pragma: no cover - compiled
    if excl:
        return True
    if xb & ~xm:
        return True
    return (xb & xm) != 0 and key >= 0 and evkey >= 0 and evkey == key


@_njit(cache=True, _nrt=False)
def _exit_event(T, S, OUT, s, j, p, t, ex, xb, evk):  # pragma: no cover - compiled
    """``exclude`` and exit criteria end the running journey (kind ``exit``) and cancel a
    pending retry of its sends (kind ``cancel``)."""
    jinfo, xmatch = T[2], T[14]
    pi, pf, stats = S[13], S[14], S[25]
    r = jinfo[j, _J_RULE]
    if pi[p, C_NODE] >= 0 and _ends(ex, xb, xmatch[j], evk, pi[p, C_KEY]):
        _emit(OUT, s, r, _EXIT, t, pi[p, C_ENTRY], 1, pi[p, C_NODE], -1, pf[p, _PF_C],
              pi[p, C_KEY], stats)
        _end(S, p, t)
    if pi[p, R_NODE] >= 0 and _ends(ex, xb, xmatch[j], evk, pi[p, R_KEY]):
        _emit(OUT, s, r, _CANCEL, t, pi[p, R_ENTRY], pi[p, R_ATT], pi[p, R_NODE], -1,
              pf[p, _PF_R], pi[p, R_KEY], stats)
        pi[p, R_NODE] = -1


@_njit(cache=True, _nrt=False)
def _until_event(T, S, OUT, s, j, p, t):  # pragma: no cover - compiled
    """The cursor waits at a wait-until whose event just happened: the happened path."""
    jinfo = T[2]
    pi, pf, stats = S[13], S[14], S[25]
    node = pi[p, C_NODE]
    g = jinfo[j, _J_NODES] + node
    _emit(OUT, s, jinfo[j, _J_RULE], _BRANCH, t, pi[p, C_ENTRY], 1, node, 0, pf[p, _PF_C],
          pi[p, C_KEY], stats)
    _run(T, S, OUT, s, j, p, _path_start(T, j, g, 0), t)


@_njit(cache=True, _nrt=False, inline="always")
def _search(aprod, x):  # pragma: no cover - compiled
    """Index of ``x`` in the sorted ``aprod`` (-1: absent), by binary search."""
    lo, hi = 0, aprod.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if aprod[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    if lo < aprod.shape[0] and aprod[lo] == x:
        return lo
    return -1


@_njit(cache=True, _nrt=False, inline="always")
def _listen(A, b, prod):  # pragma: no cover - compiled
    """Block ``b`` now remembers ``prod``: if a catalog event of this call is about
    ``prod``, prepend ``b`` to its audience list (binary search of the sorted products)."""
    aprod, ahead, anext, ablock, acnt = A
    lo = _search(aprod, prod)
    if lo >= 0:
        k = acnt[0]
        acnt[0] = k + 1
        ablock[k] = b
        anext[k] = ahead[lo]
        ahead[lo] = k


@_njit(cache=True, _nrt=False)
def _rebase(ctimes, cgate, meta, shift):  # pragma: no cover - compiled
    """Move the catalog-memory epoch ``shift`` s later (see :data:`_EPOCH_LEAD`); entry
    gates only get lower (a gate stays a lower bound)."""
    meta[2] += shift
    for b in range(meta[1]):
        x = cgate[b]
        if x != NONE32:
            y = np.int64(x) - shift
            cgate[b] = y if y > NONE32 else NONE32
        for q in range(CATALOG_MEMORY):
            for k in range(3):
                x = ctimes[b, q, k]
                if x != NONE32:
                    y = np.int64(x) - shift
                    ctimes[b, q, k] = y if y > NONE32 else NONE32


@_njit(cache=True, _nrt=False)
def _remember_product(cslot, cprod, ctimes, cowner, clen, cgate, meta, s, t, is_view,
                      is_buy, prod, A):  # pragma: no cover - compiled
    """Contract point 8: the last :data:`CATALOG_MEMORY` products viewed or carted (most
    recent last); a purchase marks a remembered product only. A product of this call's
    catalog events that enters block ``b`` puts ``b`` on that product's audience list
    (:meth:`FastJourneyCore._audience`)."""
    b = cslot[s]
    f = -1
    if b >= 0:
        for q in range(clen[b]):
            if cprod[b, q] == prod:
                f = q
                break
    if t - meta[2] > 2**31 - 1:
        _rebase(ctimes, cgate, meta, t - _EPOCH_LEAD - meta[2])
    o = np.int32(t - meta[2])
    if is_buy:
        if f >= 0:
            ctimes[b, f, 2] = o
        return
    if b < 0:
        b = meta[1]
        meta[1] = b + 1
        cslot[s] = b
        cowner[b] = s
        clen[b] = 0
        cgate[b] = NONE32  # no bound until the owner's journeys settle
    n = clen[b]
    if f >= 0:
        v, c, bo = ctimes[b, f, 0], ctimes[b, f, 1], ctimes[b, f, 2]
        start = f
    else:
        v, c, bo = NONE32, NONE32, NONE32
        start = 0 if n == CATALOG_MEMORY else n  # full: forget the least recent
    if f >= 0 or n == CATALOG_MEMORY:
        for q in range(start, n - 1):
            cprod[b, q] = cprod[b, q + 1]
            ctimes[b, q, 0] = ctimes[b, q + 1, 0]
            ctimes[b, q, 1] = ctimes[b, q + 1, 1]
            ctimes[b, q, 2] = ctimes[b, q + 1, 2]
        n -= 1
    if is_view:
        v = o
    else:
        c = o
    if f < 0:
        _listen(A, b, prod)
    cprod[b, n] = prod
    ctimes[b, n, 0] = v
    ctimes[b, n, 1] = c
    ctimes[b, n, 2] = bo
    clen[b] = n + 1


@_njit(cache=True, _nrt=False, inline="always")
def _advance(nxt, node, k):  # pragma: no cover - compiled
    """The node ``k`` steps after ``node`` on a linked list (-1 past its end)."""
    for _ in range(k):
        if node < 0:
            break
        node = nxt[node]
    return node


@_njit(cache=True, _nrt=False, inline="always")
def _ask_block(clen, cprod, ctimes, b):  # pragma: no cover - compiled
    """Prefetch catalog block ``b``: its length, products and both lines of its times."""
    prefetch(clen, b)
    prefetch(cprod, b)
    prefetch(ctimes, b)
    prefetch(ctimes[b, CATALOG_MEMORY - 1], 0)


@_njit(cache=True, _nrt=False)
def _run_events(T, S, OUT, E, C, A, pos, room, cat_room):  # pragma: no cover - compiled
    """Events and catalog events in time order (catalog after events of the same second),
    from ``pos`` = (event, catalog event, audience-list node + 1); stops early (False,
    ``pos`` updated) when the output or a pool might overflow. ``A``: the audience lists
    of the call's catalog products (:meth:`FastJourneyCore._audience`).

    Contract point 1 per event: what is due, then exits, wait-until matches, activity,
    catalog memory, entries. The common work is written out here over arrays taken out
    of the tuples once (numba reference-counts every array taken out of a tuple or
    passed to a call); journey steps run in the helpers.
    """
    rinfo, st, jinfo, ninfo, inact = T[0], T[1], T[2], T[3], T[9]
    ctab, when_lut, excl_lut, act_lut, type_any = T[10], T[11], T[12], T[13], T[15]
    ring, last_excl, pend_entry, pend_due, pend_att = S[0], S[1], S[2], S[3], S[4]
    lf_time, next_due, seg, jslot, pi, pu, meta = S[5], S[9], S[11], S[12], S[13], S[15], S[16]
    act, cslot, cprod, stats, ctimes, cowner, clen = S[17], S[21], S[22], S[25], S[26], S[27], S[28]
    lapse, first_seen, attr_t0, cgate = S[18], S[19], S[20], S[32]
    cap, pk = S[8], S[29]
    out, outp, cnt = OUT
    ev_row, ev_time, ev_type, ev_bits, ev_j, ev_x, ev_wu, ev_key, ev_eb, ev_prod = E
    c_time, c_rules, c_prod, c_key, c_eb, c_list = C
    a_head, a_next, a_block = A[1], A[2], A[3]
    n_ev = ev_row.shape[0]
    n_cat = c_time.shape[0]
    n_rules = rinfo.shape[0]
    n_j = jinfo.shape[0]
    n_cond = ctab.shape[0]
    n_inact = inact.shape[0]
    view_code, cart_code, buy_code = st[_S_VIEW], st[_S_CART], st[_S_BUY]
    i, c, b0 = pos[0], pos[1], pos[2]
    while True:
        if c < n_cat and (i >= n_ev or c_time[c] < ev_time[i]):
            if c_rules[c] != 0:
                prod = c_prod[c]
                tc = c_time[c]
                node = a_head[c_list[c]] if b0 == 0 else b0 - 1
                # look-ahead cursors (the list does not change while it is visited): the
                # blocks _AHEAD nodes on, their owners' rows half as far, records nearer
                far = _advance(a_next, node, _AHEAD)
                near = _advance(a_next, node, _AHEAD // 2)
                close = _advance(a_next, node, _AHEAD // 4)
                while node >= 0:
                    if cnt[0] > room or _full(meta):
                        pos[0], pos[1], pos[2] = i, c, node + 1
                        return False
                    if far >= 0:
                        b2 = a_block[far]
                        prefetch(cgate, b2)
                        prefetch(cowner, b2)
                        _ask_block(clen, cprod, ctimes, b2)
                        far = a_next[far]
                    if near >= 0:
                        b2 = a_block[near]
                        if cgate[b2] <= tc - meta[2]:
                            s2 = np.int64(cowner[b2])
                            prefetch(next_due, s2)
                            prefetch(jslot, s2)
                            prefetch(seg, s2)
                            if cap.shape[1]:
                                prefetch(cap, s2)
                        near = a_next[near]
                    if close >= 0:  # the journeys' records of an owner nearer still
                        b2 = a_block[close]
                        if cgate[b2] <= tc - meta[2]:
                            s2 = np.int64(cowner[b2])
                            for j in range(n_j):
                                if (c_rules[c] >> j) & 1:
                                    p = jslot[s2, j]
                                    if p >= 0:
                                        prefetch(pi, p)
                                    elif p < -1:
                                        prefetch(pk, -2 - p)
                        close = a_next[close]
                    b = a_block[node]
                    node = a_next[node]
                    if cgate[b] > tc - meta[2]:
                        continue  # every catalog journey refuses the owner's entry
                    for f in range(clen[b]):
                        if cprod[b, f] != prod:
                            continue
                        # contract point 8: what is due first, then the audience test
                        s = np.int64(cowner[b])
                        if next_due[s] <= tc:
                            d, what, _, _ = _next_of(rinfo, jinfo, inact, pend_entry, pend_due,
                                                     jslot, pi, act, lapse, first_seen,
                                                     attr_t0, s)
                            next_due[s] = d if what >= 0 else FAR
                            if next_due[s] <= tc:
                                _decide_due(T, S, OUT, s, tc)
                        viewed, carted, bought = ctimes[b, f, 0], ctimes[b, f, 1], ctimes[b, f, 2]
                        age = tc - meta[2]  # times are offsets from the epoch
                        for j in range(n_j):
                            if not (c_rules[c] >> j) & 1:
                                continue
                            w = jinfo[j, _J_VIEWED]
                            ok = w > 0 and viewed != NONE32 and age - viewed < w and (
                                bought == NONE32 or bought < viewed)
                            w = jinfo[j, _J_CARTED]
                            ok = ok or (w > 0 and carted != NONE32 and age - carted < w and (
                                bought == NONE32 or bought < carted))
                            if ok:
                                _try_enter(T, S, OUT, s, j, tc, c_key[c, j], c_eb[c, j])
                                p = jslot[s, j]  # the entry's cursor is the only new due
                                if p >= 0 and pi[p, C_NODE] >= 0 and pi[p, C_DUE] < next_due[s]:
                                    next_due[s] = pi[p, C_DUE]
                        _settle(T, S, s)
                        break
            c += 1
            b0 = 0
            continue
        if i >= n_ev:
            break
        if cnt[0] > room or _full(meta) or meta[_M_CAT] > cat_room:
            pos[0], pos[1], pos[2] = i, c, 0
            return False
        if i + _AHEAD < n_ev:  # the rows of a later event, and the catalog block of a nearer one
            s2 = ev_row[i + _AHEAD]
            prefetch(next_due, s2)
            prefetch(cslot, s2)
            if n_inact:
                prefetch(act, s2)
            if ev_j[i + _AHEAD] >= 0:
                prefetch(jslot, s2)
                prefetch(seg, s2)
        if i + _AHEAD // 2 < n_ev and ev_prod[i + _AHEAD // 2] != -1:
            b2 = cslot[ev_row[i + _AHEAD // 2]]
            if b2 >= 0:
                _ask_block(clen, cprod, ctimes, b2)
        s = ev_row[i]
        t = ev_time[i]
        y = ev_type[i]
        ji = ev_j[i]
        slow = False
        if next_due[s] <= t:  # a lower bound: the exact time first
            d, what, _, _ = _next_of(rinfo, jinfo, inact, pend_entry, pend_due, jslot, pi, act,
                                     lapse, first_seen, attr_t0, s)
            next_due[s] = d if what >= 0 else FAR
            if next_due[s] <= t:
                _decide_due(T, S, OUT, s, t)
        flags = type_any[y]
        # exits: exclude and exit criteria
        for r in range(n_rules if ji >= 0 or flags & _TY_EXCL else 0):
            j = rinfo[r, _R_J]
            ex = excl_lut[y, r]
            if j < 0:
                pc = rinfo[r, _R_PC]
                if ex and pend_entry[s, pc] != NONE:
                    n = cnt[0]
                    out[n, 0], out[n, 1], out[n, 2], out[n, 3] = s, r, _CANCEL, t
                    out[n, 4], out[n, 5], out[n, 6], out[n, 7] = (
                        pend_entry[s, pc], np.int64(pend_att[s, pc]), -1, -1)
                    out[n, 8] = -1
                    outp[n] = 1.0
                    cnt[0] = n + 1
                    stats[r, 1 + _CANCEL] += 1
                    pend_entry[s, pc] = NONE
            elif ji >= 0 and (ex or ev_x[ji, j] != 0):
                p = jslot[s, j]
                if p >= 0 and (pi[p, C_NODE] >= 0 or pi[p, R_NODE] >= 0):
                    _exit_event(T, S, OUT, s, j, p, t, ex, ev_x[ji, j], ev_key[ji, j])
                    slow = True
            if ex and rinfo[r, _R_EXCL] >= 0:
                last_excl[s, rinfo[r, _R_EXCL]] = t
        # remember the event for every condition it satisfies (replace the oldest time)
        bits = ev_bits[i]
        if bits != 0:
            for k in range(n_cond):
                if (bits >> k) & 1:
                    off = ctab[k, 3]
                    jmin = off
                    for q in range(off + 1, off + ctab[k, 2]):
                        if ring[s, q] < ring[s, jmin]:
                            jmin = q
                    ring[s, jmin] = t
        # wait-until matches
        for j in range(n_j if ji >= 0 else 0):
            m = ev_wu[ji, j]
            if m == 0:
                continue
            p = jslot[s, j]
            if p < 0 or pi[p, C_NODE] < 0:
                continue
            pu[p, _PU_SEEN_E] |= m
            pu[p, _PU_SEEN_S] |= m
            node = pi[p, C_NODE]
            if ninfo[jinfo[j, _J_NODES] + node, _N_KIND] == _N_UNTIL and (
                    m >> np.uint64(node)) & np.uint64(1):
                _until_event(T, S, OUT, s, j, p, t)
                slow = True
        # activity restarts inactivity clocks (a used lapse ends: the due may come earlier)
        for k in range(n_inact if flags & _TY_ACT else 0):
            if act_lut[y, k]:
                act[s, k] = t
                if t + inact[k, 1] < next_due[s]:
                    next_due[s] = t + inact[k, 1]
        if view_code >= 0 and ev_prod[i] != -1 and (
                y == view_code or y == cart_code or y == buy_code):
            _remember_product(cslot, cprod, ctimes, cowner, clen, cgate, meta, s, t,
                              y == view_code, y == buy_code, ev_prod[i], A)
        # entries
        for r in range(n_rules if flags & _TY_WHEN else 0):
            if not when_lut[y, r] or not seg[s, r]:
                continue
            j = rinfo[r, _R_J]
            pc = rinfo[r, _R_PC]
            mode = rinfo[r, _R_REENTRY]
            if j < 0:
                if pend_entry[s, pc] != NONE:
                    continue
                if mode == 1 and lf_time[s, pc] != NONE:
                    continue
                if mode == 2 and lf_time[s, pc] != NONE and (
                        t < lf_time[s, pc] + rinfo[r, _R_COOLDOWN]):
                    continue
            else:
                p = jslot[s, j]
                if p >= 0 and pi[p, C_NODE] >= 0:
                    continue
                if p != -1:
                    last, ended = _memory(S, p)
                    if last == t or (mode == 1 and last != NONE):
                        continue
                    if mode == 2 and ended != NONE and t < ended + rinfo[r, _R_COOLDOWN]:
                        continue
            ex = rinfo[r, _R_EXCL]
            if ex >= 0 and last_excl[s, ex] > t - rinfo[r, _R_WINDOW]:
                continue
            ok = True
            for k in range(n_cond):
                if ctab[k, 0] != r:
                    continue
                lo = t - ctab[k, 1]
                off = ctab[k, 3]
                for q in range(off, off + ctab[k, 2]):
                    if ring[s, q] <= lo:
                        ok = False
                        break
                if not ok:
                    break
            if not ok:
                continue
            if j < 0:
                pend_entry[s, pc] = t
                pend_due[s, pc] = t + rinfo[r, _R_DELAY]
                pend_att[s, pc] = 1
                stats[r, _ST_ENTERED] += 1
                if pend_due[s, pc] < next_due[s]:
                    next_due[s] = pend_due[s, pc]
            else:
                _try_enter(T, S, OUT, s, j, t, ev_key[ji, j], ev_eb[ji, j])
                slow = True
        if slow:
            _settle(T, S, s)
            _refresh(T, S, s)
        i += 1
    pos[0], pos[1], pos[2] = i, c, 0
    return True


@_njit(cache=True, _nrt=False, inline="always")
def _prefetch_due(jslot, pi, cap, act, s):  # pragma: no cover - compiled
    """Ask for the state a due row ``s`` is decided from: its journey records, send ring
    and inactivity clocks."""
    for j in range(jslot.shape[1]):
        p = jslot[s, j]
        if p >= 0:
            prefetch(pi, p)
            prefetch(pi[p, 8:], 0)
            prefetch(pi[p, 16:], 0)
    if cap.shape[1]:  # (a row of no columns has no element to ask for)
        prefetch(cap, s)
    if act.shape[1]:
        prefetch(act, s)


@_njit(cache=True, _nrt=False)
def _run_until(T, S, OUT, rows, pos, until, room):  # pragma: no cover - compiled
    """Decide what is due by ``until`` for the due ``rows`` (:meth:`FastCore._due_rows`)
    from ``rows[pos[0]]`` on; stops early (False, ``pos`` updated) when the output
    or a pool might overflow."""
    cnt, meta, next_due = OUT[2], S[16], S[9]
    rinfo, jinfo, inact = T[0], T[2], T[9]
    pend_entry, pend_due, jslot, pi = S[2], S[3], S[12], S[13]
    act, lapse, first_seen, attr_t0, cap = S[17], S[18], S[19], S[20], S[8]
    n = rows.shape[0]
    for i in range(pos[0], min(pos[0] + _AHEAD, n)):
        _prefetch_due(jslot, pi, cap, act, rows[i])
    for i in range(pos[0], n):
        if i + _AHEAD < n:
            _prefetch_due(jslot, pi, cap, act, rows[i + _AHEAD])
        s = rows[i]
        d, what, _, _ = _next_of(rinfo, jinfo, inact, pend_entry, pend_due, jslot, pi, act,
                                 lapse, first_seen, attr_t0, s)  # next_due: a lower bound
        next_due[s] = d if what >= 0 else FAR
        if next_due[s] > until:
            continue
        if cnt[0] > room or _full(meta):
            pos[0] = i
            return False
        _decide_due(T, S, OUT, s, until)
    pos[0] = n
    return True


@_njit(cache=True, _nrt=False)
def _enter_many(T, S, OUT, rows, js, at, pos, room):  # pragma: no cover - compiled
    cnt, meta = OUT[2], S[16]
    for q in range(pos[0], rows.shape[0]):
        if cnt[0] > room or _full(meta):
            pos[0] = q
            return False
        _try_enter(T, S, OUT, rows[q], js[q], at, np.int64(-1), np.uint64(0))
        _settle(T, S, rows[q])
        _refresh(T, S, rows[q])
    pos[0] = rows.shape[0]
    return True


@_njit(cache=True, _nrt=False, inline="always")
def _find(aprod, filt, x):  # pragma: no cover - compiled
    """Index of ``x`` in the sorted ``aprod`` (-1: absent); ``filt``: a 2**16-bit filter
    of their low 16 bits, which rejects most absent ones in one load."""
    h = x & 0xFFFF
    if not (filt[h >> 6] >> np.uint64(h & 63)) & np.uint64(1):
        return -1
    return _search(aprod, x)


@_njit(cache=True, _nrt=False)
def _audience_count(cprod, clen, nb, aprod, filt, per):  # pragma: no cover - compiled
    """``per[w]``: catalog blocks remembering product ``aprod[w]``."""
    for b in range(nb):
        for q in range(clen[b]):
            w = _find(aprod, filt, np.int64(cprod[b, q]))
            if w >= 0:
                per[w] += 1


@_njit(cache=True, _nrt=False)
def _audience_fill(cprod, clen, nb, aprod, filt, per, head, nxt, block
                   ):  # pragma: no cover - compiled
    """Per product, the linked list (``head``, ``nxt``) of the blocks remembering it in
    block order, laid out product after product in ``block`` (``per``: the counts, used
    up as fill positions)."""
    k = 0
    for w in range(aprod.shape[0]):
        c = per[w]
        per[w] = k
        if c:
            head[w] = k
            for q in range(k, k + c - 1):
                nxt[q] = q + 1
        k += c
    for b in range(nb):
        for q in range(clen[b]):
            w = _find(aprod, filt, np.int64(cprod[b, q]))
            if w >= 0:
                block[per[w]] = b
                per[w] += 1


@_njit(cache=True, _nrt=False)
def _call_counts(rows, types, prods, view, cart, cslot, aprod, filt, counts
                 ):  # pragma: no cover - compiled
    """Of the views and carts of a product among the events: ``counts[0]`` those of a
    product in ``aprod`` (the audience lists can grow by as many), ``counts[1]`` the
    subscribers with no catalog block yet (marked -3 in ``cslot`` while counted)."""
    n_new = 0
    n_more = 0
    for i in range(rows.shape[0]):
        y = types[i]
        x = prods[i]
        if x == -1 or (y != view and y != cart):
            continue
        if aprod.shape[0] and _find(aprod, filt, x) >= 0:
            n_more += 1
        s = rows[i]
        if cslot[s] == -1:
            cslot[s] = -3
            n_new += 1
    if n_new:
        for i in range(rows.shape[0]):
            if cslot[rows[i]] == -3:
                cslot[rows[i]] = -1
    counts[0] = n_more
    counts[1] = n_new


@_njit(cache=True, _nrt=False)
def _prefilter(sub, times, types, prods, start, n_ids, relevant, type_bits, jtype, prod_type,
               first_seen, seen, next_due, shortest, o_rows, o_times, o_types, o_src, o_bits, o_j,
               o_prod, o_jsrc, o_jty, counts):  # pragma: no cover - compiled
    """One pass over a batch: row ``sub - start`` (``n_ids`` rows; ``sub`` holds rows
    and ``start`` is 0 when ids are not dense); the first event of each known subscriber
    starts inactivity clocks (``shortest`` >= 0: the shortest inactivity, a lower bound of
    the due time after it; ``seen``: a bit per row whose ``first_seen`` is set, kept here);
    events of a known subscriber and a ``relevant`` type are kept:
    row, time, type, index, the bits of the conditions on the type with no ``where``, the
    index among the kept events of a ``jtype`` (-1 otherwise; their batch index and type
    in ``o_jsrc``/``o_jty``) and the product of a ``prod_type`` (-1: none). ``counts``:
    kept, kept of a ``jtype``, whether a product id is 2**31 - 1 or more."""
    n = 0
    nj = 0
    big = 0
    n_types = relevant.shape[0]
    for i in range(sub.shape[0]):
        s = sub[i] - start
        if s < 0 or s >= n_ids:
            continue
        t = times[i]
        if shortest >= 0 and not (seen[s >> 3] >> (s & 7)) & 1 and first_seen[s] == NONE:
            seen[s >> 3] |= np.uint8(1 << (s & 7))
            first_seen[s] = t
            if t + shortest < next_due[s]:
                next_due[s] = t + shortest
        y = types[i]
        if y < 0 or y >= n_types or not relevant[y]:
            continue
        o_rows[n] = s
        o_times[n] = t
        o_types[n] = y
        o_src[n] = i
        o_bits[n] = type_bits[y]
        if jtype[y]:
            o_j[n] = nj
            o_jsrc[nj] = i
            o_jty[nj] = y
            nj += 1
        else:
            o_j[n] = -1
        x = prods[i] if prod_type[y] else -1
        if x < 0:
            x = -1
        elif x >= 2**31 - 1:
            big = 1
        o_prod[n] = x
        n += 1
    counts[0] = n
    counts[1] = nj
    counts[2] = big


_RUN_EVENTS: Any = _run_events
_RUN_UNTIL: Any = _run_until
_ENTER_MANY: Any = _enter_many
_PREFILTER: Any = _prefilter
_CALL_COUNTS: Any = _call_counts
_AUDIENCE_COUNT: Any = _audience_count
_AUDIENCE_FILL: Any = _audience_fill


class FastJourneyCore(FastCore):
    """Fast core for rule sets with journeys (see the module docstring)."""

    _JSTATE = ("jslot", "act", "lapse", "first_seen", "attr_t0", "cslot", "segb",
               "attr_pass")

    def __init__(self, rules: RuleSet, subscribers: pd.DataFrame,
                 policies: Mapping[str, Policy] | None = None, seed: int = 0) -> None:
        super().__init__(rules, subscribers.iloc[:0])
        rl = rules.rules
        self.policies = dict(policies or {})
        self.seed = seed
        self.step_names = step_names(rules)
        self.jrules = [r for r, rule in enumerate(rl) if rule.journey is not None]
        self.programs: dict[int, JourneyProgram] = {r: compile_journey(rl[r]) for r in self.jrules}
        self.keys = {r: _entry_key(rl[r]) for r in self.jrules}
        n_j = len(self.jrules)
        if n_j > 63:
            raise TriggerIdError(f"rules: the fast engine runs at most 63 journeys, got {n_j}")
        self._check_policies()
        # rule table
        # plain rules' per-subscriber columns (journeys keep theirs in the record pool)
        self.plain = [r for r, rule in enumerate(rl) if rule.journey is None]
        self.pcol = [self.plain.index(r) if r in self.plain else -1 for r in range(len(rl))]
        for name in ("pend_entry", "pend_due", "pend_att", "lf_time", "lf_entry", "lf_att"):
            arr = getattr(self, name)
            setattr(self, name, np.zeros((0, len(self.plain)), arr.dtype))
        self.rinfo = np.zeros((len(rl), 9), np.int64)
        for r, rule in enumerate(rl):
            self.rinfo[r] = (self.rtab[r, 1], self.rtab[r, 2], self.rtab[r, 3], self.rtab[r, 4],
                             self.rtab[r, 5], rule.priority,
                             self.jrules.index(r) if r in self.jrules else -1, self.rtab[r, 0],
                             self.pcol[r])
        # journeys, nodes, paths
        self.inact_rules = [r for r in self.jrules if isinstance(rl[r].journey.entry, Inactivity)]  # type: ignore[union-attr]
        self.inact = np.array([(self.jrules.index(r), rl[r].journey.entry.duration)  # type: ignore[union-attr]
                               for r in self.inact_rules], np.int64).reshape(-1, 2)
        self.jinfo = np.zeros((n_j, _J_NCOL), np.int64)
        nrows: list[tuple[int, ...]] = []
        prows: list[tuple[int, int]] = []
        pmask: list[int] = []
        pcum: list[float] = []
        pweight: list[float] = []
        pkey: list[int] = []
        self.seg_tests: list[list[tuple[int, tuple[Predicate, ...]]]] = []
        self.entry_tests: list[list[Predicate]] = []
        for j, r in enumerate(self.jrules):
            prog, entry = self.programs[r], rl[r].journey.entry  # type: ignore[union-attr]
            kind = (_E_EVENT if entry is None else _E_INACTIVE if isinstance(entry, Inactivity)
                    else _E_ATTRIBUTE if isinstance(entry, AttributeEntry) else _E_CATALOG)
            self.jinfo[j, :_J_SEGW] = (
                r, len(nrows), len(prows), kind,
                self.inact_rules.index(r) if r in self.inact_rules else -1,
                entry.viewed if isinstance(entry, CatalogEntry) else 0,
                entry.carted if isinstance(entry, CatalogEntry) else 0)
            for node in range(len(prog)):
                nrows.append((prog.kind[node], prog.arg[node], prog.next[node],
                              prog.first_path[node], prog.n_paths[node], prog.since[node],
                              prog.expire[node], prog.smart_sending[node],
                              -1 if prog.policy[node] is None else 1))
                pkey.append(salt_key(f"{rl[r].id}:{node}"))
            seg_tests: list[tuple[int, tuple[Predicate, ...]]] = []
            entry_tests: list[Predicate] = []
            for k in range(len(prog.path_start)):
                bit = -1
                if prog.path_segment[k]:
                    bit = len(seg_tests)
                    seg_tests.append((k, prog.path_segment[k]))
                m = 0
                for pred in prog.path_entry[k]:
                    m |= 1 << len(entry_tests)
                    entry_tests.append(pred)
                prows.append((prog.path_start[k], bit))
                pmask.append(m)
                w = prog.path_weight
                first = int(prog.first_path[prog.path_node[k]])
                n = int(prog.n_paths[prog.path_node[k]])
                cum = np.cumsum(w[first:first + n])
                pcum.append(float(cum[k - first]) if not np.isnan(w[k]) else np.nan)
                pweight.append(float(w[k]))
            if len(seg_tests) > 64 or len(entry_tests) > 64:
                raise TriggerIdError(f"rules[{r}] {rl[r].id!r}: the fast engine supports 64 "
                                     "branch cases with segment tests and 64 entry tests")
            self.seg_tests.append(seg_tests)
            self.entry_tests.append(entry_tests)
        # the branch cases' segment bits of all journeys packed in uint64 words (a journey's
        # bits in one word: (word, shift) in jinfo)
        words, used = 0, 64
        for j, tests in enumerate(self.seg_tests):
            if not tests:
                continue
            if used + len(tests) > 64:
                words, used = words + 1, 0
            self.jinfo[j, _J_SEGW], self.jinfo[j, _J_SEGS] = words - 1, used
            used += len(tests)
        self.ninfo = np.array(nrows, np.int64).reshape(-1, 9)
        self.pinfo = np.array(prows, np.int64).reshape(-1, 2)
        self.pmask = np.array(pmask, np.uint64)
        self.pcum = np.array(pcum, np.float64)
        self.pweight = np.array(pweight, np.float64)
        self.pkey = np.array(pkey, np.uint64)
        # event lookups
        n_types = self.n_types
        self.act_lut = np.zeros((n_types, len(self.inact_rules)), np.bool_)
        for k, r in enumerate(self.inact_rules):
            for name in rl[r].journey.entry.events:  # type: ignore[union-attr]
                self.act_lut[EVENT_TYPES.code(name), k] = True
        self.late_lut = self.when_lut | self.excl_lut
        for r in self.jrules:
            for name in self.programs[r].event_types:
                code = EVENT_TYPES.code(name)
                self.late_lut[code, r] = True
        self.relevant_lut = np.asarray(self.late_lut.any(axis=1))
        # per event type, which of the event loop's per-rule passes can do anything
        self.type_any = (self.excl_lut.any(axis=1).astype(np.int64) * _TY_EXCL
                         | self.when_lut.any(axis=1).astype(np.int64) * _TY_WHEN
                         | self.act_lut.any(axis=1).astype(np.int64) * _TY_ACT)
        # event types some journey tests (entry, exclude, exits, wait-untils)
        self.jtype_lut = np.zeros(n_types, np.bool_)
        for r in self.jrules:
            rule, prog = rl[r], self.programs[r]
            names = [c.event for c in rule.when] + list(rule.exclude) + [
                x.event for x in rule.journey.exits]  # type: ignore[union-attr]
            for name in names:
                self.jtype_lut[EVENT_TYPES.code(name)] = True
            for node in np.flatnonzero(prog.kind == _N_UNTIL).tolist():
                for c in range(min(64, n_types)):
                    if int(prog.events[node]) >> c & 1:
                        self.jtype_lut[c] = True
        # per type: the bits of the conditions with no ``where`` (the prefilter sets them);
        # the conditions with one are tested vectorized
        self.type_bits = np.zeros(n_types, np.int64)
        self.where_conds = [k for k, (_, c) in enumerate(self.conds) if c.where]
        for k, (_, cond) in enumerate(self.conds):
            if not cond.where:
                self.type_bits[self.cond_codes[k]] |= np.int64(1) << np.int64(k)
        self.xmatch = np.zeros(n_j, np.int64)
        for j, r in enumerate(self.jrules):
            for x, crit in enumerate(rl[r].journey.exits):  # type: ignore[union-attr]
                if crit.match is not None:
                    self.xmatch[j] |= 1 << x
        self.catalog_js = [j for j, r in enumerate(self.jrules)
                           if isinstance(rl[r].journey.entry, CatalogEntry)]  # type: ignore[union-attr]
        self.attr_js = [j for j, r in enumerate(self.jrules)
                        if isinstance(rl[r].journey.entry, AttributeEntry)]  # type: ignore[union-attr]
        st = rules.settings
        smart = [st.smart_sending or 0] + [int(w) for p in self.programs.values()
                                           for w in p.smart_sending]
        codes = (EVENT_TYPES.code("product_view"), EVENT_TYPES.code("add_to_cart"),
                 EVENT_TYPES.code("purchase_completed")) if self.catalog_js else (-1, -1, -1)
        self.jsettings = np.array([*self.settings[:6], st.smart_sending or 0, *codes], np.int64)
        self.product_codes = np.array(codes, np.int64)
        self.product_lut = np.zeros(n_types, np.bool_)  # types whose product is remembered
        self.product_lut[[c for c in codes if c >= 0]] = True
        self.no_product_lut = np.zeros(n_types, np.bool_)
        if max(smart) > 0:
            self.cap_width = max(self.cap_width, len(rl) + 1)
        self.cap = np.zeros((0, self.cap_width), np.int64)
        n_i = len(self.inact_rules)
        self.jslot = np.zeros((0, n_j), np.int32)
        self.act = np.zeros((0, n_i), np.int64)
        self.lapse = np.zeros((0, n_i), np.int64)
        self.first_seen = np.zeros(0, np.int64)
        self.attr_t0 = np.zeros((0, n_i), np.int64)
        self.cslot = np.zeros(0, np.int32)
        self.segb = np.zeros((0, max(1, words)), np.uint64)
        self.attr_pass = np.zeros((0, len(self.attr_js)), np.bool_)
        self.pi = np.zeros((64, len(_PI_NAMES)), np.int64)
        self.pf = np.zeros((64, 3), np.float64)
        self.pu = np.zeros((64, 3), np.uint64)
        self.meta = np.zeros(_M_LEN, np.int64)
        self.meta[[_M_FREE, _M_PFREE]] = -1
        self.pk = np.zeros((64, 6), np.int64)
        self.pki = np.zeros((64, 3), np.int32)
        self.pkf = np.zeros(64, np.float64)
        self._park_div = 8  # the parked pool's next growth: its size / this
        self.cprod = np.zeros((16, CATALOG_MEMORY), np.int32)
        self.big_products: dict[int, int] = {}  # product ids >= 2**31 - 1: codes -2, -3, ...
        self.ctimes = np.zeros((16, CATALOG_MEMORY, 3), np.int32)
        self.cowner = np.zeros(16, np.int32)
        self.clen = np.zeros(16, np.int32)
        self.cgate = np.zeros(16, np.int32)
        self.outp = np.zeros(self.out.shape[0], np.float64)
        self.out = np.zeros((self.out.shape[0], 9), np.int64)
        self.cnt = np.zeros(1, np.int64)
        # rows one event or subscriber step may write: every journey through all of its
        # nodes twice (a run and a resume), plain rules twice
        self.room_need = 2 * len(rl) + 2 * sum(len(p) + 2 for p in self.programs.values()) + 8
        self._ensure_out(max(65536, 4 * self.room_need))
        self.update_subscribers(subscribers)

    _STATE = (*FastCore._STATE, *_JSTATE)

    def _check_policies(self) -> None:
        from policies.triggers._reference_journeys import JourneyCore

        JourneyCore._check_policies(self)  # type: ignore[arg-type]

    # -- state ----------------------------------------------------------------------

    @staticmethod
    def _fill(name: str, arr: np.ndarray) -> Any:
        """As :meth:`FastCore._fill`; no record and no catalog block yet (-1)."""
        return -1 if name in ("jslot", "cslot") else FastCore._fill(name, arr)

    def update_subscribers(self, df: pd.DataFrame) -> Any:
        """Insert or replace attributes (and every journey bit that reads them); returns
        the rows and whether they passed each attribute entry before."""
        if not hasattr(self, "jinfo"):  # FastCore.__init__, before the journey tables
            return FastCore.update_subscribers(self, df)
        ids = df.index.to_numpy(np.int64)
        before = self.rows_of(ids)
        old_pass = np.zeros((len(ids), len(self.attr_js)), bool)
        known = before >= 0
        old_pass[known] = self.attr_pass[before[known]]
        self._insert_rows(df)
        rows = self.rows_of(ids)
        for j in range(len(self.jrules)):
            if not self.seg_tests[j]:
                continue
            w, shift = int(self.jinfo[j, _J_SEGW]), np.uint64(self.jinfo[j, _J_SEGS])
            mask = np.uint64((1 << len(self.seg_tests[j])) - 1) << shift
            bits = np.zeros(len(df), np.uint64)
            for b, (_, tests) in enumerate(self.seg_tests[j]):
                bits |= segment_mask(df, tests).astype(np.uint64) << np.uint64(b)
            self.segb[rows, w] = (self.segb[rows, w] & ~mask) | (bits << shift)
        for a, j in enumerate(self.attr_js):
            entry = self.rules.rules[self.jrules[j]].journey.entry  # type: ignore[union-attr]
            self.attr_pass[rows, a] = segment_mask(df, entry.segment)  # type: ignore[union-attr]
        for k, r in enumerate(self.inact_rules):
            name = self.rules.rules[r].journey.entry.since_attribute  # type: ignore[union-attr]
            t0 = np.full(len(df), NONE, np.int64)
            if name is not None and name in df.columns:
                t0 = _attr_times(df[name])
            self.attr_t0[rows, k] = t0
        for k in range(len(self.inact_rules)):  # a clock may start at the attribute
            t0 = self.attr_t0[rows, k]
            due = np.where(t0 != NONE, t0 + self.inact[k, 1], FAR)
            self.next_due[rows] = np.minimum(self.next_due[rows], due)
        return rows, old_pass

    def _insert_rows(self, df: pd.DataFrame) -> None:
        super()._insert_rows(df)
        if getattr(self, "policies", None):  # not yet set in FastCore.__init__
            attrs = getattr(self, "attrs", None)
            self.attrs = (df.copy() if attrs is None
                          else pd.concat([attrs[~attrs.index.isin(df.index)], df]))

    def update_attributes(self, df: pd.DataFrame, at: int | None = None) -> Decisions:
        """Attribute entries (contract point 9) after ``update_subscribers(df)``."""
        rows, old_pass = self.update_subscribers(df)
        if at is None or not self.attr_js:
            return self._decisions([])
        new_pass = self.attr_pass[rows]
        enter = new_pass & ~old_pass
        ids = self.ids[rows]
        order = np.argsort(ids, kind="stable")
        er, ej = [], []
        for q in order.tolist():
            for a, j in enumerate(self.attr_js):
                if enter[q, a]:
                    er.append(int(rows[q]))
                    ej.append(j)
        er_a, ej_a = np.array(er, np.int64), np.array(ej, np.int64)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        pos = np.zeros(1, np.int64)
        while True:
            self._reserve()
            done = self._call(_ENTER_MANY, er_a, ej_a, np.int64(at), pos,
                              self._rooms()[0])
            parts.append(self._take())
            if done:
                break
        return self._decisions(parts)

    # -- kernels' arguments -------------------------------------------------------

    def _tables(self) -> tuple:
        return (self.rinfo, self.jsettings, self.jinfo, self.ninfo, self.pinfo, self.pmask,
                self.pcum, self.pweight, self.pkey, self.inact, self.ctab, self.when_lut,
                self.excl_lut, self.act_lut, self.xmatch, self.type_any)

    def _state(self) -> tuple:
        return (self.ring, self.last_excl, self.pend_entry, self.pend_due, self.pend_att,
                self.lf_time, self.lf_entry, self.lf_att, self.cap, self.next_due, self.offset,
                self.seg, self.jslot, self.pi, self.pf, self.pu, self.meta, self.act,
                self.lapse, self.first_seen, self.attr_t0, self.cslot, self.cprod, self.segb,
                self.ids, self.stats, self.ctimes, self.cowner, self.clen, self.pk, self.pki,
                self.pkf, self.cgate)

    def _tables_state(self) -> tuple:
        return self._tables(), self._state()

    def _ensure_out(self, n: int) -> None:
        if self.out.shape[0] < n:
            self.out = np.zeros((n, 9), np.int64)
            self.outp = np.zeros(n, np.float64)

    def _rooms(self) -> tuple[int, int]:
        """Output rows and catalog blocks the kernels may fill before returning (the
        record pools' limits are in ``meta``, set by :meth:`_reserve`)."""
        return self.out.shape[0] - self.room_need, self.cprod.shape[0] - 2

    def _reserve(self, blocks: int = 0) -> None:
        """Room for one more step: output rows and pool records (the record pool doubles;
        the parked and catalog pools, as large as the subscribers who ever entered or
        viewed, grow by an eighth), and for ``blocks`` more catalog blocks."""
        if self.cnt[0] > self.out.shape[0] - self.room_need:
            self._ensure_out(2 * self.out.shape[0])
        n_j = len(self.jrules)
        if self.meta[_M_REC] > self.pi.shape[0] - n_j - 1:
            n = max(1024, self.pi.shape[0])
            self.pi = np.concatenate([self.pi, np.zeros((n, self.pi.shape[1]), np.int64)])
            self.pf = np.concatenate([self.pf, np.zeros((n, 3), np.float64)])
            self.pu = np.concatenate([self.pu, np.zeros((n, 3), np.uint64)])
        if self.meta[_M_PARK] > self.pk.shape[0] - n_j - 1:
            # an eighth, then twice as much each time within one call (a fan-out parks
            # many at once: few kernel returns and copies)
            n = max(1024, self.pk.shape[0] // self._park_div)
            self._park_div = max(1, self._park_div // 2)
            self.pk = np.concatenate([self.pk, np.zeros((n, 6), np.int64)])
            self.pki = np.concatenate([self.pki, np.zeros((n, 3), np.int32)])
            self.pkf = np.concatenate([self.pkf, np.zeros(n, np.float64)])
        self.meta[_M_RLIM] = self.pi.shape[0] - n_j - 1
        self.meta[_M_PLIM] = self.pk.shape[0] - n_j - 1
        if self.meta[_M_CAT] + blocks > self.cprod.shape[0] - 2:
            n = max(1024, self.cprod.shape[0] // 8, int(self.meta[_M_CAT]) + blocks + 2
                    - self.cprod.shape[0])
            self.cprod = np.concatenate([self.cprod, np.zeros((n, CATALOG_MEMORY), np.int32)])
            self.ctimes = np.concatenate(
                [self.ctimes, np.zeros((n, CATALOG_MEMORY, 3), np.int32)])
            self.cowner = np.concatenate([self.cowner, np.zeros(n, np.int32)])
            self.clen = np.concatenate([self.clen, np.zeros(n, np.int32)])
            self.cgate = np.concatenate([self.cgate, np.zeros(n, np.int32)])

    def _call(self, kernel: Any, *args: Any) -> bool:
        _LOCAL.chooser = self._choose_policy
        try:
            return bool(kernel(self._tables(), self._state(), (self.out, self.outp, self.cnt),
                               *args))
        finally:
            _LOCAL.chooser = None

    def _take(self) -> tuple[np.ndarray, np.ndarray]:
        n = int(self.cnt[0])
        self.cnt[0] = 0
        return self.out[:n].copy(), self.outp[:n].copy()

    def _choose_policy(self, r: int, row: int, entry: int, node: int) -> tuple[int, float]:
        """Contract point 7 for a policy split (called from the compiled loop)."""
        prog = self.programs[r]
        policy = self.policies[prog.policy[node]]  # type: ignore[index]
        sub = int(self.ids[row])
        rng = np.random.default_rng(
            [self.seed, salt_key(trigger_id(self.rules.ids[r], sub, entry)), node])
        contexts = None
        if getattr(policy, "n_features", None) is not None:
            row_df = self.attrs.loc[[sub]]
            contexts = subscriber_features(pd.DataFrame(row_df.to_dict("records")))
        arms, props = policy.select(contexts, rng, subscribers=np.array([sub], np.int64), n=1)
        return int(arms[0]), float(props[0])

    # -- processing -------------------------------------------------------------------

    def _events(self, batch: EventBatch) -> tuple:
        """The prefiltered events (rows, times, types, condition bits), and for those of a
        type some journey tests (``ev_j`` >= 0: their row in the compact tables) the exit,
        wait-until and entry-test bits and the entry key per journey; products. One
        compiled pass (:func:`_prefilter`) keeps the events of a known subscriber and of a
        type some rule reads, starts inactivity clocks and sets what needs no column;
        ``where`` tests run vectorized on the events of their type only."""
        n_all, n_j = len(batch), len(self.jrules)
        if self.dense_start is not None:
            sub, start = batch.subscriber, np.int64(self.dense_start)
        else:
            sub, start = self.rows_of(batch.subscriber), np.int64(0)
        prods = sub
        prod_type = self.no_product_lut
        if self.catalog_js and "product_id" in batch.columns:
            col = batch.columns["product_id"]
            prods = col if col.dtype == np.int64 else np.where(col >= 0, col, -1).astype(np.int64)
            prod_type = self.product_lut
        out = [np.empty(n_all, np.int64) for _ in range(9)]
        counts = np.zeros(3, np.int64)
        shortest = np.int64(self.inact[:, 1].min()) if self.inact_rules else np.int64(-1)
        # rows seen before, a bit each (50 kB for 400,000 rows: in cache, unlike
        # ``first_seen``, which every event would otherwise read at random)
        seen = (np.packbits(self.first_seen != NONE, bitorder="little") if self.inact_rules
                else np.zeros(0, np.uint8))
        _PREFILTER(sub, batch.time, batch.type, prods, start, np.int64(len(self.ids)),
                   self.relevant_lut, self.type_bits, self.jtype_lut, prod_type,
                   self.first_seen, seen, self.next_due, shortest, *out, counts)
        n, n_sel = int(counts[0]), int(counts[1])
        rows, times, ty, idx, bits, ev_j, ev_prod = (a[:n] for a in out[:7])
        src, jty = out[7][:n_sel], out[8][:n_sel]
        for k in self.where_conds:
            cond = self.conds[k][1]
            sel = np.flatnonzero(ty == self.cond_codes[k])
            if len(sel):
                m = _where(batch, idx[sel], cond.where)
                bits[sel[m]] |= np.int64(1) << np.int64(k)
        ev_x = np.zeros((n_sel, n_j), np.int64)
        ev_wu = np.zeros((n_sel, n_j), np.uint64)
        ev_key = np.full((n_sel, n_j), -1, np.int64)
        ev_eb = np.zeros((n_sel, n_j), np.uint64)
        for j, r in enumerate(self.jrules):
            prog = self.programs[r]
            for x, crit in enumerate(self.rules.rules[r].journey.exits):  # type: ignore[union-attr]
                sel = np.flatnonzero(jty == EVENT_TYPES.code(crit.event))
                if len(sel):
                    m = _where(batch, src[sel], crit.where)
                    ev_x[sel[m], j] |= np.int64(1) << np.int64(x)
            for node in np.flatnonzero(prog.kind == _N_UNTIL).tolist():
                ev_mask = int(prog.events[node])
                sel = np.flatnonzero(np.isin(jty, [c for c in range(64) if ev_mask >> c & 1]))
                if len(sel):
                    m = _where(batch, src[sel], prog.where[node])
                    ev_wu[sel[m], j] |= np.uint64(1) << np.uint64(node)
            key = self.keys[r]
            if key is not None and key in batch.columns and n_sel:
                col = batch.columns[key][src]
                v = np.where(np.isnan(col), -1, col) if col.dtype.kind == "f" else col
                ev_key[:, j] = np.where(np.asarray(v) >= 0, v, -1).astype(np.int64)
            for b, p in enumerate(self.entry_tests[j]):
                m = _where(batch, src, (p,))
                ev_eb[m, j] |= np.uint64(1) << np.uint64(b)
        if counts[2]:  # product ids of 2**31 - 1 and more: their codes
            has = ev_prod != -1
            ev_prod[has] = self._product_codes(ev_prod[has])
        return (rows, times, ty, bits, ev_j, ev_x, ev_wu, ev_key, ev_eb, ev_prod)

    def _catalog(self, cat: CatalogBatch | None) -> tuple:
        if cat is None or not len(cat) or not self.catalog_js:
            z = np.zeros(0, np.int64)
            return (z, z, z, np.zeros((0, len(self.jrules)), np.int64),
                    np.zeros((0, len(self.jrules)), np.uint64))
        n, n_j = len(cat), len(self.jrules)
        old, new = cat.old_price, cat.new_price
        drop = old - new
        is_drop = cat.type == CATALOG_EVENT_TYPES.index("price_drop")
        nan = np.full(n, np.nan)
        frac = drop_fraction(old, new)
        cols = {"product_id": cat.product_id, "new_price": new,
                "old_price": np.where(is_drop, old, nan), "drop": np.where(is_drop, drop, nan),
                "drop_fraction": np.where(is_drop, frac, nan)}
        fake = cast(EventBatch, _Columns(cols))
        rules_mask = np.zeros(n, np.int64)
        keys = np.full((n, n_j), -1, np.int64)
        ebits = np.zeros((n, n_j), np.uint64)
        for j in self.catalog_js:
            r = self.jrules[j]
            entry = cast(CatalogEntry, self.rules.rules[r].journey.entry)  # type: ignore[union-attr]
            m: np.ndarray = cat.type == CATALOG_EVENT_TYPES.index(entry.event)
            for p in entry.where:
                m &= _event_mask(fake, p)
            rules_mask |= m.astype(np.int64) << j
            if self.keys[r] == "product_id":
                keys[:, j] = cat.product_id
            for b, p in enumerate(self.entry_tests[j]):
                ebits[:, j] |= _event_mask(fake, p).astype(np.uint64) << np.uint64(b)
        return (cat.time, rules_mask, self._product_codes(cat.product_id.astype(np.int64)),
                keys, ebits)

    def _product_codes(self, ids: np.ndarray) -> np.ndarray:
        """Product ids as the catalog memory holds them (int32): ids below 2**31 - 1 as
        they are, larger ones by a code -2, -3, ... given at first sight (-1: none)."""
        big = ids >= 2**31 - 1
        if not big.any():
            return ids
        for x in np.unique(ids[big]).tolist():
            self.big_products.setdefault(x, -2 - len(self.big_products))
        out = ids.copy()
        out[big] = [self.big_products[x] for x in ids[big].tolist()]
        return out

    def _audience(self, E: tuple, C: tuple) -> tuple[tuple, tuple, int]:
        """The audience lists of one call: ``C`` gains each catalog event's list index;
        ``A`` = (products, head, next, block, count): per product some catalog event of
        the call is about (sorted), a linked list of the catalog blocks remembering it
        (in block order), built here from the pool (:func:`_audience_lists`) and extended
        by the kernel when an event brings the product into a block (a block may be
        listed twice: visiting it again decides nothing new, the entry of that second
        being taken or refused already). A catalog event visits its product's list
        instead of every block. Also how many subscribers of the events ``E`` view or
        cart a product with no catalog block yet (the blocks this call can add: one
        growth of the pool per call)."""
        c_rules, c_prod = C[1], C[2]
        aprod = np.unique(c_prod[c_rules != 0]).astype(np.int64)
        c_list = np.searchsorted(aprod, c_prod).clip(0, max(len(aprod) - 1, 0))
        nb = int(self.meta[1])
        filt = np.zeros(1024, np.uint64)  # a 2**16-bit filter of the products' low bits
        low = aprod & 0xFFFF
        np.bitwise_or.at(filt, low >> 6, np.uint64(1) << (low & 63).astype(np.uint64))
        per = np.zeros(len(aprod) + 1, np.int64)
        counts = np.zeros(2, np.int64)
        if self.catalog_js and len(E[0]):
            _CALL_COUNTS(E[0], E[2], E[9], self.jsettings[_S_VIEW], self.jsettings[_S_CART],
                         self.cslot, aprod, filt, counts)
        m = 0
        if len(aprod):
            _AUDIENCE_COUNT(self.cprod, self.clen, nb, aprod, filt, per)
            m = int(per.sum())
        more = int(counts[0])
        block = np.zeros(m + more, np.int64)
        nxt = np.full(m + more, -1, np.int64)
        head = np.full(len(aprod), -1, np.int64)
        if m:
            _AUDIENCE_FILL(self.cprod, self.clen, nb, aprod, filt, per, head, nxt, block)
        A = (aprod, head, nxt, block, np.array([m], np.int64))
        return (*C, c_list.astype(np.int64)), A, int(counts[1])

    def process(self, batch: EventBatch, until: int | None,
                catalog: CatalogBatch | None = None) -> Decisions:
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        self._park_div = 8
        E = self._events(batch)
        C = self._catalog(catalog)
        if len(E[0]) or len(C[0]):
            C, A, new_blocks = self._audience(E, C)
            self._reserve(new_blocks)
            pos = np.zeros(3, np.int64)
            while True:
                self._reserve()
                done = self._call(_RUN_EVENTS, E, C, A, pos, *self._rooms())
                parts.append(self._take())
                if done:
                    break
        if until is not None:
            rows = self._due_rows(until)
            pos = np.zeros(1, np.int64)
            while True:
                self._reserve()
                done = self._call(_RUN_UNTIL, rows, pos, np.int64(until), self._rooms()[0])
                parts.append(self._take())
                if done:
                    break
        return self._decisions(parts)

    def _decisions(self, parts: Sequence[Any]) -> Decisions:
        if parts:
            rows = np.concatenate([p[0] for p in parts])
            props = np.concatenate([p[1] for p in parts])
        else:
            rows, props = np.zeros((0, 9), np.int64), np.zeros(0, np.float64)
        subs = self.ids[rows[:, 0]] if len(rows) else np.zeros(0, np.int64)
        # columns as views of ``rows``: sorting gathers them into arrays of their own
        return Decisions(
            subs, rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], self.rules.ids,
            rows[:, 6], rows[:, 7], props, self.step_names, rows[:, 8]).sorted()

    # -- failures -----------------------------------------------------------------------

    def failure_targets(self, ids: list[str]) -> list[tuple[Any, ...]]:
        """As :meth:`JourneyCore.failure_targets` (rows hold the state row, not the id)."""
        targets: list[tuple[Any, ...]] = []
        rule_ids = self.rules.ids
        for tid in ids:
            rule_id, sub, entry, node = parse_journey_trigger_id(tid)
            if rule_id not in rule_ids:
                raise TriggerIdError(f"trigger_id {tid!r}: unknown rule {rule_id!r}")
            r = rule_ids.index(rule_id)
            s = int(self.rows_of(np.array([sub], np.int64))[0])
            pc = self.pcol[r]
            if r not in self.programs:
                if node >= 0:
                    raise TriggerIdError(f"trigger_id {tid!r}: rule {rule_id!r} has no steps")
                if s < 0 or self.lf_time[s, pc] == NONE or self.lf_entry[s, pc] != entry:
                    raise TriggerIdError(
                        f"trigger_id {tid!r}: not the latest send of rule {rule_id!r} "
                        f"to subscriber {sub}")
                targets.append((r, s, entry, int(self.lf_att[s, pc]), int(self.lf_time[s, pc]),
                                -1, 1.0, -1))
                continue
            j = self.jrules.index(r)
            last = self._latest_send(s, j) if s >= 0 else None
            if last is None or last[:2] != (entry, node):
                raise TriggerIdError(f"trigger_id {tid!r}: not the latest send of rule "
                                     f"{rule_id!r} to subscriber {sub}")
            _, _, att, failed, time, prop, key = last
            targets.append((r, s, entry, -att if failed else att, time, node, prop, key))
        return targets

    def report_failures(self, targets: Sequence[tuple[Any, ...]], now: int) -> Decisions:
        """As :meth:`JourneyCore.report_failures`."""
        rows_out: list[tuple[int, ...]] = []
        props: list[float] = []
        retry = self.rules.settings.retry
        superseded: set[tuple[int, ...]] = set()
        for r, s, entry, attempt, time, node, prop, key in targets:
            pc = self.pcol[r]
            if node < 0:  # a plain rule: FastCore's logic
                if self.lf_entry[s, pc] != entry:
                    if attempt < 0 or (r, s, entry) in superseded:
                        continue
                    superseded.add((r, s, entry))
                    self.stats[r, _ST_FAILED] += 1
                    self._uncap(s, time)
                    rows_out.append((s, r, 1, now, entry, attempt, -1, -1, -1))
                    props.append(1.0)
                    self.stats[r, 2] += 1
                    continue
                k = int(self.lf_att[s, pc])
                if k < 0:
                    continue
                self.lf_att[s, pc] = -k
                self.stats[r, _ST_FAILED] += 1
                self._uncap(s, int(self.lf_time[s, pc]))
                if k >= retry.max_attempts or self.pend_entry[s, pc] != NONE:
                    rows_out.append((s, r, 1, now, entry, k, -1, -1, -1))
                    props.append(1.0)
                    self.stats[r, 2] += 1
                else:
                    self.pend_entry[s, pc] = entry
                    self.pend_due[s, pc] = now + retry.backoff * k
                    self.pend_att[s, pc] = k + 1
                    self.next_due[s] = min(self.next_due[s], self.pend_due[s, pc])
                    self.stats[r, _ST_RETRIED] += 1
                continue
            j = self.jrules.index(r)
            p = self._record(s, j)
            pi = self.pi
            if (pi[p, S_ENTRY], pi[p, S_NODE]) != (entry, node):
                if attempt < 0 or (r, s, entry, node) in superseded:
                    continue
                superseded.add((r, s, entry, node))
                self.stats[r, _ST_FAILED] += 1
                self._uncap(s, time)
                rows_out.append((s, r, 1, now, entry, attempt, node, -1, key))
                props.append(prop)
                self.stats[r, 2] += 1
                continue
            if pi[p, S_FAILED]:
                continue
            pi[p, S_FAILED] = 1
            self.stats[r, _ST_FAILED] += 1
            self._uncap(s, int(pi[p, S_TIME]))
            k = int(pi[p, S_ATT])
            if k >= retry.max_attempts or pi[p, R_NODE] >= 0:
                rows_out.append((s, r, 1, now, entry, k, node, -1, int(pi[p, S_KEY])))
                props.append(float(self.pf[p, _PF_S]))
                self.stats[r, 2] += 1
            else:
                pi[p, R_NODE], pi[p, R_ENTRY] = node, entry
                pi[p, R_DUE], pi[p, R_ATT] = now + retry.backoff * k, k + 1
                pi[p, R_REACHED], pi[p, R_KEY] = pi[p, S_REACHED], pi[p, S_KEY]
                self.pf[p, _PF_R] = self.pf[p, _PF_S]
                self.next_due[s] = min(self.next_due[s], pi[p, R_DUE])
                self.stats[r, _ST_RETRIED] += 1
        rows = np.array(rows_out, np.int64).reshape(-1, 9)
        return self._decisions([(rows, np.array(props, np.float64))])

    def _latest_send(self, s: int, j: int
                     ) -> tuple[int, int, int, bool, int, float, int] | None:
        """(entry, node, attempt, failed, time, propensity, entry key) of row ``s``'s latest send of
        journey ``j`` (None: none), from its record or its parked record."""
        p = int(self.jslot[s, j])
        if p == -1:
            return None
        if p >= 0:
            pi = self.pi[p]
            last = (int(pi[S_ENTRY]), int(pi[S_NODE]), int(pi[S_ATT]), bool(pi[S_FAILED]),
                    int(pi[S_TIME]), float(self.pf[p, _PF_S]), int(pi[S_KEY]))
        else:
            q = -2 - p
            pk, pki = self.pk[q], self.pki[q]
            last = (int(pk[K_SENTRY]), int(pki[KI_SNODE]), int(pki[KI_SATT]),
                    bool(pki[KI_SFAILED]), int(pk[K_STIME]), float(self.pkf[q]),
                    int(pk[K_SKEY]))
        return None if last[1] < 0 else last

    def _record(self, s: int, j: int) -> int:
        """Row ``s``'s record of entered journey ``j``, taken out of the parked pool if
        parked (as the kernels' ``_unpark``)."""
        p = int(self.jslot[s, j])
        if p >= 0:
            return p
        self._reserve()
        q = -2 - p
        meta = self.meta
        p = int(meta[_M_FREE])
        if p >= 0:
            meta[_M_FREE] = self.pi[p, C_DUE]
        else:
            p = int(meta[_M_REC])
            meta[_M_REC] = p + 1
        self.pi[p] = NONE
        self.pi[p, [C_NODE, R_NODE]] = -1
        self.pf[p] = 1.0
        self.pu[p] = 0
        self.pi[p, [L_ENTRY, ENDED, S_ENTRY, S_TIME, S_REACHED, S_KEY]] = self.pk[q]
        self.pi[p, [S_NODE, S_ATT, S_FAILED]] = self.pki[q]
        self.pf[p, _PF_S] = self.pkf[q]
        self.pk[q, 0] = meta[_M_PFREE]
        meta[_M_PFREE] = q
        self.jslot[s, j] = p
        return p

    # -- counters ------------------------------------------------------------------------

    def count_late(self, batch: EventBatch) -> None:
        self.n_late += len(batch)
        types = batch.type[batch.type < self.n_types]
        self.stats[:, _ST_LATE] += self.late_lut[types].sum(axis=0)

    def _journey_pending(self) -> np.ndarray:
        pending = np.zeros(len(self.rules.rules), np.int64)
        used = self.pi[:self.meta[0]]
        for j, r in enumerate(self.jrules):
            p = self.jslot[:, j]
            p = p[p >= 0]
            pending[r] = int((used[p, C_NODE] >= 0).sum() + (used[p, R_NODE] >= 0).sum())
        return pending

    def n_pending(self) -> int:
        return super().n_pending() + int(self._journey_pending().sum())

    def stats_array(self) -> np.ndarray:
        pending = self._journey_pending()
        pending[self.plain] += np.count_nonzero(self.pend_entry != NONE, axis=0)
        return np.insert(self.stats, _ST_FAILED, pending, axis=1)

    def state_nbytes(self) -> int:
        """Bytes of per-subscriber state and of the record and catalog pools (as
        allocated)."""
        pools = sum(getattr(self, n).nbytes for n in (
            "pi", "pf", "pu", "pk", "pki", "pkf", "cprod", "ctimes", "cowner", "clen", "cgate"))
        return super().state_nbytes() + pools


def _where(batch: EventBatch, rows: np.ndarray, tests: Sequence[Predicate]) -> np.ndarray:
    """Which of ``batch``'s events ``rows`` pass every test (vectorized ``matches``)."""
    m = np.ones(len(rows), bool)
    if tests:
        fake = cast(EventBatch, _Columns({p.column: batch.columns[p.column][rows]
                                          for p in tests if p.column in batch.columns}))
        for p in tests:
            m &= _event_mask(fake, p) if p.column in batch.columns else False
    return m


class _Columns:
    """Named columns standing in for an EventBatch in :func:`_event_mask`."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.columns = dict(columns)


def _attr_times(column: pd.Series) -> np.ndarray:
    """:func:`_attr_time` of every cell of ``column``, int64 (n,): vectorized for integer
    and finite-or-NaN float columns (the subscriber table's ``last_engaged_at``), cell by
    cell otherwise."""
    v = column.to_numpy()
    kind = v.dtype.kind
    if kind == "i":
        return np.clip(v.astype(np.int64), -(2**61), 2**61)
    if kind == "u":
        return np.minimum(v, np.uint64(2**61)).astype(np.int64)
    if kind == "f":
        nan = np.isnan(v)
        if np.isfinite(v[~nan]).all():
            out = np.clip(np.trunc(np.where(nan, 0.0, v)), -(2.0**61), 2.0**61).astype(np.int64)
            return np.where(nan, np.int64(NONE), out)
    return np.array([_attr_time(x) for x in column.tolist()], np.int64)


def _attr_time(value: Any) -> int:
    """An inactivity clock's start from an attribute (epoch seconds; NONE if missing or
    not a number), clipped to +-2**61 s (beyond MAX_TIME either way)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return int(NONE)
    if value != value:
        return int(NONE)
    return int(max(-(2**61), min(2**61, int(value))))
