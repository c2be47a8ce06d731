"""The pieces a shard is made of (outbox, campaign schedule, messages), the executor
protocol, the run fan-out and internal errors."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from conftest import small_config

from actors import CampaignConfig, InternalError, ShardCore, map_runs
from actors.campaign import CampaignSchedule
from actors.emails import email_id
from actors.executors import Executor, InlineExecutor, RayExecutor
from actors.learner import LearnerCore
from actors.messages import Arms, Choices, Rewards, TickOutput
from actors.outbox import Outbox
from policies.errors import SpecError
from sim.clock import DAY


def test_outbox_numbers_emails_per_subscriber_and_hands_out_choices():
    box = Outbox(100, 110, context_dim=None)
    sub = np.array([105, 101, 105, 105], np.int64)
    due = np.array([30, 20, 10, 30], np.int64)
    src = np.array([2, 0, 1, 0], np.int64)
    box.enqueue(sub, due, src, decided=True, tick=3)
    # sorted by (due, subscriber, source); subscriber 105 gets seq 0, 1, 2
    np.testing.assert_array_equal(box.cols["subscriber"], [105, 101, 105, 105])
    np.testing.assert_array_equal(box.cols["email_id"],
                                  email_id(np.array([105, 101, 105, 105]),
                                           np.array([0, 0, 1, 2])))
    assert box.seq[5] == 3 and box.seq[1] == 1 and len(box) == 4
    ch = box.choices(3, with_context=False)
    assert isinstance(ch, Choices) and len(ch) == 4 and ch.context is None
    assert len(box.choices(2, with_context=False)) == 0
    # nothing leaves before its arms arrive
    assert box.take_ready(1000, fixed_before=3) is None
    arms = Arms(ch.email_id[::-1].copy(), np.array([1, 0, 1, 0]), np.full(4, 0.5))
    box.apply_arms(arms, 3, t0=900, send_hours=None,
                   utc_offset_minutes=np.zeros(10, np.int64))
    go = box.take_ready(900, fixed_before=3)
    assert go is not None and len(box) == 0
    np.testing.assert_array_equal(go["arm"], [0, 1, 0, 1])
    np.testing.assert_array_equal(go["deliver_at"], np.full(4, 900))


def test_outbox_missing_arms_is_an_internal_error():
    box = Outbox(0, 10, context_dim=None)
    box.enqueue(np.array([3], np.int64), np.array([5], np.int64), np.array([0], np.int64),
                decided=True, tick=0)
    tz = np.zeros(10, np.int64)
    with pytest.raises(InternalError, match=r"awaits arms for 1 emails, got none"):
        box.apply_arms(None, 0, 900, None, tz)
    with pytest.raises(InternalError, match=r"missing arms for emails of shard \[0, 10\)"):
        box.apply_arms(Arms.empty(), 0, 900, None, tz)


def test_undecided_emails_leave_after_the_lag():
    box = Outbox(0, 10, context_dim=2)
    box.enqueue(np.array([1, 2], np.int64), np.array([5, 6], np.int64),
                np.array([1, 1], np.int64), decided=False, tick=4,
                contexts=lambda rows: np.ones((len(rows), 2)) * rows[:, None])
    assert box.take_ready(1800, fixed_before=3) is None
    go = box.take_ready(1800, fixed_before=4)
    assert go is not None
    np.testing.assert_array_equal(go["context"], [[1, 1], [2, 2]])
    np.testing.assert_array_equal(go["arm"], [-1, -1])


def test_campaign_schedule_sends_at_local_hour_every_n_days():
    start = 1_767_571_200  # a UTC midnight
    offsets = np.array([0, -60, 120], np.int64)  # minutes
    sched = CampaignSchedule(CampaignConfig(every_days=2, local_hour=10), start, offsets)
    subscribed = np.array([True, True, False])
    sends = []
    for t0 in range(start, start + 4 * DAY, 900):
        for rows, times in sched.due(t0, t0 + 900, subscribed):
            assert np.all((times > t0) & (times <= t0 + 900))
            sends.extend(zip(rows.tolist(), times.tolist(), strict=True))
    assert sorted(sends) == sorted(
        (r, start + d * DAY + 10 * 3600 - int(offsets[r]) * 60)
        for d in (0, 2) for r in (0, 1))


def test_messages_pickle_as_plain_arrays():
    z = np.arange(5, dtype=np.int64)
    out = TickOutput(7, Choices(z, z, z, z), Rewards(z, z, z, z, z * 0.5), 3, 2)
    back = pickle.loads(pickle.dumps(out, protocol=5))
    assert back.tick == 7 and back.n_events == 3 and len(back.choices) == 5
    np.testing.assert_array_equal(back.rewards.reward, z * 0.5)
    both = Choices.concat([out.choices, out.choices])
    assert len(both) == 10 and both.context is None
    assert len(Arms.empty()) == 0


def test_shard_outputs_are_typed_and_ticks_in_order():
    cfg = small_config(subscribers=300, record_events=False)
    core = ShardCore(cfg, 0, 300)
    out = core.step(0, None)
    assert isinstance(out, TickOutput) and isinstance(out.rewards, Rewards)
    arms = LearnerCore(cfg).decide(0, [out])
    assert isinstance(arms, Arms) and len(arms) == len(out.choices)
    with pytest.raises(InternalError, match=r"tick: expected 1 .*got 5"):
        core.step(5, None)
    with pytest.raises(InternalError, match=r"arms: expected 2 learner outputs, got 1"):
        core.steps(1, 2, [arms])


@pytest.mark.parametrize("cls", [InlineExecutor, RayExecutor])
def test_executors_implement_the_protocol(cls):
    members = {name for name, _ in inspect.getmembers(Executor)
               if not name.startswith("_")} | set(Executor.__annotations__)
    for name in members:
        assert hasattr(cls, name) or name in ("learner_cpu_s",), (cls.__name__, name)
    assert isinstance(cls.recovers, bool)
    for name, fn in inspect.getmembers(Executor, inspect.isfunction):
        if name.startswith("_"):
            continue
        want = list(inspect.signature(fn).parameters)
        got = list(inspect.signature(getattr(cls, name)).parameters)
        assert got[:len(want)] == want, (cls.__name__, name, got, want)


def _square(x: int) -> int:
    return x * x


def test_map_runs_inline_keeps_order_and_reports_progress():
    events: list[tuple[str, int]] = []
    out = map_runs(_square, [3, 1, 2], "inline",
                   on_start=lambda i: events.append(("start", i)),
                   on_done=lambda i: events.append(("done", i)))
    assert out == [9, 1, 4]
    assert events == [("start", 0), ("done", 0), ("start", 1), ("done", 1),
                      ("start", 2), ("done", 2)]
    with pytest.raises(SpecError, match=r"executor: expected one of inline, ray, got 'dask'"):
        map_runs(_square, [1], "dask")


@pytest.mark.ray
def test_map_runs_on_ray_returns_results_in_item_order(ray_session):
    from actors.emails import source_of  # a function the workers can import

    done: list[int] = []
    out = map_runs(source_of, [257, 3, 512], "ray", on_done=done.append)
    assert [int(x) for x in out] == [1, 3, 0]
    assert sorted(done) == [0, 1, 2]
