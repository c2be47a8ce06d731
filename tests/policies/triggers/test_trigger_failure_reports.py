"""``report_failures`` (contract point 5) when deciding what is due by ``now`` changes
which send is the latest: a bad id changes nothing (no decision lost), and a send that
a newer send of its rule supersedes in between is cancelled. Found by hypothesis in
``test_trigger_extremes.py``: the reference and fast engines both raised after deciding
(and losing) the newer send."""

from __future__ import annotations

import pickle

import pytest
from trigger_helpers import HOUR, T0, events, subscribers

from policies.triggers import TriggerEngine, load_rules
from policies.triggers.decisions import TriggerIdError

ENGINES = ("reference", "fast")


def _rules(delay: str = "0s", cap: int = 0) -> object:
    settings: dict = {"retry": {"max_attempts": 3, "backoff": "30m"}}
    if cap:
        settings["frequency_cap"] = {"max": cap, "per": "24h"}
    return load_rules({"rules": [{
        "id": "cart", "type": "cart_abandonment",
        "when": [{"event": "add_to_cart", "within": "1s"}],
        "delay": delay, "expire": "1d"}], "settings": settings})


def _engine(name: str, **kw: object) -> TriggerEngine:
    return TriggerEngine(_rules(**kw), subscribers=subscribers({7: {}, 8: {}}), engine=name)


def _rows(d) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [tuple(r) for r in d.to_pandas()[["trigger_id", "kind", "time", "attempt"]]
            .itertuples(index=False)]


def _identity(e: TriggerEngine) -> None:
    s = e.stats().loc["cart"]
    assert s.entered + s.failed == s.fired + s.cancelled + s.expired + s.suppressed + s.pending


@pytest.mark.parametrize("name", ENGINES)
def test_a_send_superseded_while_deciding_is_cancelled_not_an_error(name: str) -> None:
    e = _engine(name)
    first = e.process(events((7, T0, "add_to_cart"), (7, T0 + 1, "add_to_cart")), until=None)
    assert _rows(first) == [(f"cart:7:{T0}", "fire", T0, 1)]
    # the entry at T0 + 1 is pending (due T0 + 1); the failure is reported at T0 + 1 h
    out = e.report_failures([f"cart:7:{T0}"], T0 + HOUR)
    assert _rows(out) == [(f"cart:7:{T0 + 1}", "fire", T0 + 1, 1),
                          (f"cart:7:{T0}", "cancel", T0 + HOUR, 1)]
    _identity(e)
    # the newer send can fail in turn and is retried as usual
    again = e.report_failures([f"cart:7:{T0 + 1}"], T0 + HOUR)
    assert _rows(again) == []
    assert e.n_pending() == 1
    _identity(e)
    # the superseded id is no longer the latest send: an error, nothing changes
    with pytest.raises(TriggerIdError, match="not the latest send"):
        e.report_failures([f"cart:7:{T0}"], T0 + HOUR)


BAD_IDS = [
    ("unknown rule", "nope:7:{T0}", "unknown rule 'nope'"),
    ("unknown subscriber", "cart:99:{T0}", "not the latest send"),
    ("never entered then", "cart:7:{T1}", "not the latest send"),
    ("malformed", "cart-7", "expected '<rule>:<subscriber>:<entered_at>'"),
    ("non-integer entry", "cart:7:soon", "expected '<rule>:<subscriber>:<entered_at>'"),
]


@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize("case, tid, message", BAD_IDS, ids=[c[0] for c in BAD_IDS])
def test_a_bad_id_changes_nothing_and_loses_no_decision(name: str, case: str, tid: str,
                                                         message: str) -> None:
    e = _engine(name, delay="1h")
    e.process(events((7, T0, "add_to_cart")), until=T0 + HOUR)          # fired at T0 + 1 h
    e.process(events((8, T0 + HOUR, "add_to_cart")), until=None)        # 8 due at T0 + 2 h
    before = pickle.dumps(e.state_dict())
    good = f"cart:7:{T0}"
    with pytest.raises(TriggerIdError, match=message):
        e.report_failures([good, tid.format(T0=T0, T1=T0 + 5)], T0 + 3 * HOUR)
    assert pickle.dumps(e.state_dict()) == before
    # the send due at T0 + 2 h is still decided, and the good report still works
    out = e.report_failures([good], T0 + 3 * HOUR)
    assert _rows(out) == [(f"cart:8:{T0 + HOUR}", "fire", T0 + 2 * HOUR, 1)]
    assert e.n_pending() == 1                                          # 7's retry
    _identity(e)


@pytest.mark.parametrize("name", ENGINES)
def test_a_superseded_failed_send_frees_its_cap_slot(name: str) -> None:
    # cap 2 a day: both sends fill it; the older one then turns out to have failed and
    # is superseded -- its slot is freed, so a third entry is sent, not suppressed
    e = _engine(name, cap=2)
    e.process(events((7, T0, "add_to_cart"), (7, T0 + 1, "add_to_cart")), until=None)
    out = e.report_failures([f"cart:7:{T0}"], T0 + HOUR)
    assert [r[1] for r in _rows(out)] == ["fire", "cancel"]
    third = e.process(events((7, T0 + 2 * HOUR, "add_to_cart")), until=T0 + 2 * HOUR)
    assert _rows(third) == [(f"cart:7:{T0 + 2 * HOUR}", "fire", T0 + 2 * HOUR, 1)]
    _identity(e)
