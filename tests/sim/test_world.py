"""The shard loop: sharding bit for bit, common random numbers, ordering, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.world as world_module
from policies.errors import LateEventError, SpecError
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from sim import DAY, EmailBatch, Population, SimClock, World
from sim.world import subscriber_parts

CODE = {n: EVENT_TYPES.code(n) for n in EVENT_TYPES.names}
SEED = 77


def _emails(world: World, now: int) -> EmailBatch | None:
    """A deterministic per-subscriber sending policy: a campaign at 15:00 UTC on day 1
    (styles by id), and a cart reminder 1-2 h after a cart was left."""
    p = world.population
    parts = []
    if now % DAY == 15 * 3600 and (now - p.time) // DAY == 1:
        ids = p.ids[p.subscribed]
        parts.append(EmailBatch.make(ids, now, campaign=1, subject_style=ids % 6,
                                     urgency=ids % 5 == 0, personalization=ids % 2))
    age = now - p.cart_time
    due = p.subscribed & (p.cart_value > 0) & (age > 3600) & (age <= 3600 + 900)
    if due.any():
        parts.append(EmailBatch.make(p.ids[due], now, campaign=100 + (now - p.time) // DAY,
                                     kind="cart_abandonment"))
    return EmailBatch.concat(parts) if parts else None


def _run(worlds: list[World], days: float, tick: int = 900) -> list[list[EventBatch]]:
    clock = SimClock(worlds[0].now, tick)
    out: list[list[EventBatch]] = [[] for _ in worlds]
    for _ in range(int(days * DAY / tick)):
        for w in worlds:
            e = _emails(w, clock.now)
            if e is not None:
                w.send(e)
        t0, t1 = clock.advance()
        for w, acc in zip(worlds, out, strict=True):
            acc.append(w.step(t0, t1))
    return out


def _canonical(batches: list[EventBatch]) -> EventBatch:
    b = EventBatch.concat(batches)
    return b[np.lexsort((b.subscriber, b.time))]


def test_sharding_is_bit_for_bit() -> None:
    n = 3001
    whole = World(Population.generate(n, seed=SEED), seed=SEED)
    left = World(Population.generate(n // 2, seed=SEED), seed=SEED)
    right = World(Population.generate(n - n // 2, seed=SEED, start=n // 2), seed=SEED)
    w, a, b = _run([whole, left, right], days=3)
    n_events = 0
    for tick, (x, y, z) in enumerate(zip(w, a, b, strict=True)):
        merged = _canonical([y, z])
        assert merged.equals(x), f"tick {tick}"
        n_events += len(x)
    assert n_events > 3000
    assert Population.concat([left.population, right.population]).equals(whole.population)
    all_events = EventBatch.concat(w)
    types = set(all_events.type_names())
    assert {"email_open", "email_click", "add_to_cart", "purchase_completed",
            "product_view"} <= types
    assert whole.stats()["emails_sent"] == left.stats()["emails_sent"] + \
        right.stats()["emails_sent"] > 1000


def test_events_are_in_order_across_steps_and_in_their_interval() -> None:
    world = World(Population.generate(2000, seed=3), seed=3)
    clock = SimClock(world.now, 600)  # a different step length works too
    last = -1
    for _ in range(3 * 144):
        e = _emails(world, clock.now)
        if e is not None:
            world.send(e)
        t0, t1 = clock.advance()
        ev = world.step(t0, t1)
        assert ((ev.time > t0) & (ev.time <= t1)).all()
        if len(ev):
            assert ev.time[0] >= last
            assert np.all(np.diff(ev.time) >= 0)
            last = int(ev.time[-1])
    assert world.pending() > 0  # organic returns and late responses are still buffered


def test_common_random_numbers() -> None:
    """Same seed, emails only in run B: organic behavior is identical up to the first
    divergence an email causes, and stays close afterwards."""
    n = 4000
    a = World(Population.generate(n, seed=SEED), seed=SEED)
    b = World(Population.generate(n, seed=SEED), seed=SEED)
    targets = np.arange(0, n, 3)
    send_at = a.now + DAY + 15 * 3600
    clock = SimClock(a.now, 900)
    ev_a, ev_b = [], []
    for _ in range(6 * 96):
        if clock.now == send_at:
            b.send(EmailBatch.make(targets, send_at, campaign=5, subject_style="dont_miss",
                                   urgency=True))
        t0, t1 = clock.advance()
        ev_a.append(a.step(t0, t1))
        ev_b.append(b.step(t0, t1))
    A, B = EventBatch.concat(ev_a), EventBatch.concat(ev_b)
    assert (A.column("campaign_id") == -1).all()
    emailed = np.isin(B.subscriber, targets)
    # never-emailed subscribers: identical streams, bit for bit
    assert A[~np.isin(A.subscriber, targets)].equals(B[~emailed])
    # emailed subscribers: identical until their first response (or the next midnight,
    # when the fatigue change reaches the daily update)
    resp = B[emailed & (B.column("campaign_id") >= 0)]
    first = {int(s): int(t) for s, t in zip(resp.subscriber[::-1], resp.time[::-1],
                                             strict=True)}
    cutoff_default = send_at - send_at % DAY + DAY
    def before(batch: EventBatch) -> EventBatch:
        cut = np.array([min(first.get(int(s), cutoff_default), cutoff_default)
                        for s in batch.subscriber], np.int64)
        keep = np.isin(batch.subscriber, targets) & (batch.time < cut)
        return batch[keep & (batch.column("campaign_id") == -1)]
    pa, pb = before(A), before(B)
    assert len(pa) > 500
    assert pa.equals(pb)
    # afterwards the organic streams stay close (shared random numbers, low variance)
    after_a = A[np.isin(A.subscriber, targets) & (A.time >= cutoff_default)]
    after_b = B[emailed & (B.time >= cutoff_default) & (B.column("campaign_id") == -1)]
    views_a = int((after_a.type == CODE["page_view"]).sum())
    views_b = int((after_b.type == CODE["page_view"]).sum())
    assert abs(views_a - views_b) < 0.05 * views_a


def test_pickle_round_trip_continues_identically() -> None:
    world = World(Population.generate(3000, seed=4), seed=4)
    _run([world], days=1.5)
    blob = pickle.dumps(world)
    assert len(blob) / 3000 <= 300
    # the future-event buffer (many chunks) is packed into one set of columns
    chunks = world._buffer.chunks()
    buffers: list[pickle.PickleBuffer] = []
    pickle.dumps(world, protocol=5, buffer_callback=buffers.append)
    assert chunks >= 5 and len(buffers) < 60   # unpacked: >= 14 arrays per chunk
    clone = pickle.loads(blob)
    assert world.pending() == clone.pending() > 0
    x, y = _run([world, clone], days=1)
    for p, q in zip(x, y, strict=True):
        assert p.equals(q)
    assert world.population.equals(clone.population)


def test_expected_is_the_truth_and_draws_nothing() -> None:
    world = World(Population.generate(2000, seed=6), seed=6)
    _run([world], days=1)
    before = world.population.copy()
    emails = EmailBatch.make(np.arange(2000), world.now, kind="campaign")
    truth = world.expected(emails)
    assert world.population.equals(before)
    assert list(truth.columns[:3]) == ["subscriber", "time", "campaign"]
    for col in ("p_open", "p_click", "p_purchase", "p_unsubscribe", "p_machine_open"):
        assert truth[col].between(0, 1).all()
    assert (truth.p_click <= truth.p_open).all() and (truth.p_purchase <= truth.p_click).all()
    assert 0.15 < truth.p_open.mean() < 0.35
    np.testing.assert_allclose(truth.expected_revenue, truth.p_purchase * truth.order_value)
    subs = world.subscribers()
    assert subs.index.name == "subscriber" and len(subs) == 2000


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda w: w.step(w.now + 1, w.now + 900), LateEventError,
         r"t0: expected the end of the previous step"),
        (lambda w: w.step(w.now, w.now), SpecError, r"t1: expected a time after t0"),
        (lambda w: w.step(float(w.now), w.now + 900), SpecError,
         r"t0: expected int seconds since the epoch"),
        (lambda w: w.send(EmailBatch.make([1], w.now - 1)), LateEventError,
         r"emails.time: expected times >= now=\d+, got \d+"),
        (lambda w: w.send(EmailBatch.make([5000], w.now)), SpecError,
         r"subscriber: expected ids in \[0, 100\), got 5000"),
        (lambda w: w.send([1, 2]), SpecError, r"emails: expected an EmailBatch, got list"),
        (lambda w: World(object(), seed=1), SpecError,  # type: ignore[arg-type]
         r"population: expected a Population, got object"),
        (lambda w: World(Population.generate(3, seed=1), seed=1, bucket_seconds=0),
         SpecError, r"bucket_seconds: expected an int > 0, got 0"),
    ],
)
def test_bad_calls(action, error, message) -> None:
    world = World(Population.generate(100, seed=1), seed=1)
    with pytest.raises(error, match=message):
        action(world)


def test_bucketed_buffer_equals_a_single_sorted_buffer() -> None:
    """The time-bucketed future-event buffer (fast path) behaves like one big buffer."""
    worlds = [World(Population.generate(1500, seed=12), seed=12, bucket_seconds=b)
              for b in (60, 3600, 10**9)]
    runs = _run(worlds, days=2.5)
    for x, y, z in zip(*runs, strict=True):
        assert x.equals(z) and y.equals(z)
    assert sum(len(b) for b in runs[0]) > 1000


def test_cart_reminders_raw_conversion_exceeds_incremental_conversion() -> None:
    """Subscribers whose cart would come back anyway convert on the reminder (raw
    conversion) without buying more (no incremental purchase); the rest buy more."""
    preset = {"return_probability": 0.3}
    n = 40_000
    a = World(Population.generate(n, seed=31, preset=preset), seed=31)
    b = World(Population.generate(n, seed=31, preset=preset), seed=31)
    clock = SimClock(a.now, 900)
    for _ in range(int(1.5 * 96)):
        t0, t1 = clock.advance()
        assert a.step(t0, t1).equals(b.step(t0, t1))
    p = b.population
    now = clock.now
    has_cart = p.subscribed & (p.cart_value > 0) & (now - p.cart_time < 30 * 3600)
    returner = has_cart & (p.return_time > now)
    other = has_cart & ~returner
    assert returner.sum() > 100 and other.sum() > 300
    b.send(EmailBatch.make(p.ids[has_cart], now, campaign=9, kind="cart_abandonment",
                           incentive=0.1))
    ev_a, ev_b = [], []
    for _ in range(6 * 96):
        t0, t1 = clock.advance()
        ev_a.append(a.step(t0, t1))
        ev_b.append(b.step(t0, t1))
    A, B = EventBatch.concat(ev_a), EventBatch.concat(ev_b)

    def bought(batch: EventBatch, group: np.ndarray) -> np.ndarray:
        sel = batch.type == CODE["purchase_completed"]
        return np.isin(np.flatnonzero(group), batch.subscriber[sel])

    email_buy = B.subscriber[(B.type == CODE["purchase_completed"])
                             & (B.column("campaign_id") == 9)]
    raw_r = np.isin(np.flatnonzero(returner), email_buy).mean()
    inc_r = bought(B, returner).mean() - bought(A, returner).mean()
    inc_o = bought(B, other).mean() - bought(A, other).mean()
    assert raw_r > 0.03                    # the reminder "converts" would-be returners...
    assert abs(inc_r) < 0.5 * raw_r        # ...who would have bought anyway
    assert inc_o > max(0.01, inc_r + 0.01)  # it does add purchases among the others
    # no cart is bought twice: an email purchase cancels the organic return
    buys = B[(B.type == CODE["purchase_completed"]) & np.isin(B.subscriber,
                                                               np.flatnonzero(returner))]
    per_sub = np.bincount(buys.subscriber - 0, minlength=n)[np.flatnonzero(returner)]
    assert (per_sub <= 2).all()


def test_simulated_event_columns_are_what_the_world_emits() -> None:
    """``SIMULATED_EVENT_COLUMNS`` (what experiments' rules are checked against) lists, per
    type, exactly the data columns the simulator fills: a rule testing another column of
    a type, or waiting for a type missing there, can never fire in a simulation."""
    from sim import SIMULATED_EVENT_COLUMNS

    world = World(Population.generate(3000, seed=5), seed=5)
    batch = _canonical(_run([world], 4)[0])
    filled: dict[str, set[str]] = {}
    for code in np.unique(batch.type):
        rows = batch.type == code
        filled[EVENT_TYPES.name(int(code))] = {
            name for name, col in batch.columns.items()
            if ((col[rows] >= 0) if col.dtype.kind in "iu" else ~np.isnan(col[rows])).any()}
    assert filled == {k: set(v) for k, v in SIMULATED_EVENT_COLUMNS.items()}


def _check_part(part: EmailBatch, size: int) -> None:
    """A part is larger than ``size`` only by the emails of its last subscriber."""
    last = part.subscriber.max()
    assert len(part) - int((part.subscriber == last).sum()) < size


@st.composite
def _email_batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subscribers (repeats, any order), send offsets (s) and kinds of an email batch."""
    m = draw(st.integers(1, 60))
    subs = draw(st.lists(st.integers(0, 29), min_size=m, max_size=m))
    if draw(st.booleans()):
        subs = sorted(subs)
    offsets = draw(st.lists(st.sampled_from([0, 0, 60, 3600]), min_size=m, max_size=m))
    kinds = draw(st.lists(st.sampled_from(["campaign", "cart_abandonment", "reactivation"]),
                          min_size=m, max_size=m))
    return np.array(subs, np.int64), np.array(offsets, np.int64), np.array(kinds)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=_email_batches(), size=st.integers(1, 8))
def test_a_batch_sent_in_parts_is_the_batch_sent_at_once(batch, size) -> None:
    """:meth:`World.send` draws a large batch in parts by subscriber: the same fatigue
    and the same future events, in the same order, as at once (parts of 1 email up to
    the whole batch; subscribers repeated, unsorted, several emails at one second)."""
    subs, offsets, kinds = batch
    for p in subscriber_parts(EmailBatch.make(subs, 0, kind="campaign"), size):
        _check_part(p, size)
    worlds = [World(Population.generate(30, seed=3), seed=3) for _ in range(2)]
    now = worlds[0].now + 15 * 3600
    emails = EmailBatch.make(subs, now + offsets, campaign=7, kind=kinds,
                             subject_style=subs % 6, urgency=subs % 2 == 0)
    for w in worlds:
        w.step(w.now, now)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(world_module, "SEND_CHUNK", size)
        worlds[1].send(emails)
    worlds[0].send(emails)
    assert worlds[0].population.equals(worlds[1].population)
    for t in range(now, now + 4 * DAY, 6 * 3600):
        a, b = (w.step(t, t + 6 * 3600) for w in worlds)
        assert a.equals(b)
    assert worlds[0].population.equals(worlds[1].population)


def test_parts_keep_each_subscribers_emails_together_and_in_order() -> None:
    rng = np.random.default_rng(5)
    for sorted_ids in (True, False):
        subs = rng.integers(0, 50, 400)
        subs = np.sort(subs) if sorted_ids else subs
        subs[100:160] = 7                               # one subscriber above the size
        emails = EmailBatch.make(subs, 10**9 + np.arange(400), campaign=1)
        parts = list(subscriber_parts(emails, 32))
        assert sum(len(p) for p in parts) == 400
        seen: set[int] = set()
        for p in parts:
            ids = set(np.unique(p.subscriber).tolist())
            assert not ids & seen                       # a subscriber in one part only
            seen |= ids
            _check_part(p, 32)
            for s in ids:                               # its emails in their order
                assert np.array_equal(p.time[p.subscriber == s],
                                      emails.time[emails.subscriber == s])
    assert next(iter(subscriber_parts(emails, 400))) is emails


def test_the_tick_only_batches_the_world() -> None:
    """The world's events do not depend on its tick: hourly steps (the Mesa model's, in
    ``peers --model shop``) give the events of 15-minute steps, a daily campaign
    included."""
    def run(tick: int) -> EventBatch:
        pop = Population.generate(1500, seed=11)
        world = World(pop, seed=11)
        clock, out, end = SimClock(world.now, tick), [], world.now + 3 * DAY
        while clock.now < end:
            if clock.now % DAY == 15 * 3600:
                world.send(EmailBatch.make(pop.ids[pop.subscribed], clock.now, campaign=1))
            t0, t1 = clock.advance()
            out.append(world.step(t0, t1))
        return EventBatch.concat(out)

    quarter, hourly = run(900), run(3600)
    assert len(quarter) > 1000 and (quarter.column("campaign_id") >= 0).any()
    assert quarter.equals(hourly)
