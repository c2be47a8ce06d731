"""Email ids and the email store, against a plain-Python reference."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.emails import EmailStore, campaign_code, email_id, email_id_of, source_of


def test_ids_round_trip_through_campaign_code():
    sub = np.array([0, 7, 2_000_000_000], np.int64)
    seq = np.array([0, 300, 16_000_000], np.int64)
    src = np.array([0, 3, 255], np.int64)
    camp = campaign_code(seq, src)
    np.testing.assert_array_equal(email_id_of(sub, camp), email_id(sub, seq))
    np.testing.assert_array_equal(source_of(camp), src)
    assert email_id(np.array([7]), np.array([300]))[0] == (7 << 24) + 300
    # the low 16 bits (which key the email's random numbers) hold source and seq & 0xFF
    assert campaign_code(np.array([0x1234]), np.array([5]))[0] & 0xFFFF == (0x34 << 8) | 5


ops = st.lists(st.tuples(st.sampled_from(["append", "pop", "pickle"]),
                         st.integers(0, 40), st.integers(0, 5), st.integers(0, 7)),
               max_size=40)
START, STOP = 100, 108


@settings(max_examples=80, deadline=None)
@given(ops)
def test_store_matches_reference(program):
    """Appends (several emails of a subscriber in one batch too), pops and pickling give
    the emails and the id look-ups of a plain list in delivery order."""
    store = EmailStore({"email_id": (np.int64, ()), "time": (np.int64, ()),
                        "value": (np.float64, (2,))}, START, STOP)
    ref: list[tuple[int, int, float]] = []  # (id, time, value) in delivery order
    seq = np.zeros(STOP - START, np.int64)
    now = 0
    gone: list[int] = []
    for op, m, dt, spread in program:
        if op == "append":
            now += dt
            subs = START + (np.arange(m, dtype=np.int64) * 5 + dt) % (spread + 1)
            ids = np.empty(m, np.int64)
            for i, u in enumerate(subs.tolist()):
                ids[i] = email_id(np.int64(u), seq[u - START])
                seq[u - START] += 1
            vals = ids.astype(float) / 2
            store.append({"email_id": ids, "time": np.full(m, now, np.int64),
                          "value": np.column_stack([vals, -vals])})
            ref.extend((int(i), now, float(v)) for i, v in zip(ids, vals, strict=True))
        elif op == "pop":
            limit = now - dt
            out = store.pop_until(limit)
            expect = [r for r in ref if r[1] <= limit]
            ref = [r for r in ref if r[1] > limit]
            gone.extend(r[0] for r in expect)
            assert out["email_id"].tolist() == [r[0] for r in expect]
            assert out["value"][:, 0].tolist() == [r[2] for r in expect]
        else:
            store = pickle.loads(pickle.dumps(store))
        assert len(store) == len(ref)
        never = [int(email_id(np.int64(START), np.int64(10**6))),
                 int(email_id(np.int64(STOP + 3), np.int64(0))), 0]
        probe = np.array([r[0] for r in ref] + gone + never, np.int64)
        pos = store.positions(probe)
        assert (pos[len(ref):] == -1).all()
        if ref:
            got = store.cols["value"][pos[:len(ref)], 0]
            assert got.tolist() == [r[2] for r in ref]


def test_store_refuses_emails_of_other_subscribers():
    store = EmailStore({"email_id": (np.int64, ()), "time": (np.int64, ())}, START, STOP)
    with pytest.raises(ValueError, match=r"outside \[100, 108\)"):
        store.append({"email_id": email_id(np.array([STOP]), np.array([0])),
                      "time": np.zeros(1, np.int64)})


def test_store_keeps_narrow_columns_exactly():
    store = EmailStore({"email_id": (np.int64, ()), "time": (np.int64, ()),
                        "arm": (np.int64, ())}, START, STOP, storage={"arm": np.int16})
    ids = email_id(np.array([START, START]), np.array([0, 1]))
    store.append({"email_id": ids, "time": np.zeros(2, np.int64), "arm": np.array([-1, 300])})
    assert store.cols["arm"].dtype == np.int16
    out = store.pop_until(0)
    assert out["arm"].dtype == np.int64 and out["arm"].tolist() == [-1, 300]
    with pytest.raises(ValueError, match="arm: values outside int16"):
        store.append({"email_id": ids, "time": np.ones(2, np.int64),
                      "arm": np.array([0, 2**20])})
    with pytest.raises(ValueError, match="storage: unknown columns"):
        EmailStore({"email_id": (np.int64, ()), "time": (np.int64, ())}, 0, 1,
                   storage={"nope": np.int8})
