"""The broker contract: every backend passes these same tests (see conftest BROKERS)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bananas import wire
from bananas.brokers import Broker, Lease, Outcome, from_url
from bananas.brokers.base import JobFilter, LeaderLock, Reclaim
from bananas.job import Job, JobStatus, new_id

TTL = (3600.0, 86400.0)


@pytest.fixture
async def broker(broker_url: str) -> AsyncIterator[Broker]:
    b = from_url(broker_url)
    yield b
    await b.close()


def make_job(name: str = "t", *, priority: int = 50, rk: str = "default", at: float | None = None) -> tuple[Job, bytes]:
    job = Job(id=new_id(), name=name, payload={"n": 1}, priority=priority, routing_key=rk,
              created_at=time.time(), scheduled_for=at)  # fmt: skip
    return job, wire.encode_job(job)


async def test_priority_order_and_fifo_within_priority(broker: Broker) -> None:
    jobs = [make_job("low1", priority=10), make_job("high1", priority=90), make_job("mid", priority=50),
            make_job("high2", priority=90), make_job("low2", priority=10), make_job("top", priority=100)]  # fmt: skip
    await broker.enqueue(jobs)
    got = await broker.dequeue(["default"], 10, 30, "w")
    names = [wire.decode_job(d.body).name for d in got]
    assert names == ["top", "high1", "high2", "mid", "low1", "low2"]


async def test_a_large_mixed_batch_keeps_priority_fifo_and_name_order(broker: Broker) -> None:
    # More jobs than one batched ZADD takes, in two names and two priorities.
    jobs = [make_job(f"n{i % 2}", priority=90 if i % 3 == 0 else 10) for i in range(1300)]
    await broker.enqueue(jobs)
    expected = [j.id for j, _ in jobs if j.priority == 90] + [j.id for j, _ in jobs if j.priority == 10]
    only_n1 = await broker.dequeue(["default"], 100, 30, "w", JobFilter(names=("n1",)))
    assert [d.id for d in only_n1] == [i for i in expected if i in {j.id for j, _ in jobs if j.name == "n1"}][:100]
    taken = {d.id for d in only_n1}
    rest = await broker.dequeue(["default"], 2000, 30, "w")
    assert [d.id for d in rest] == [i for i in expected if i not in taken]


async def test_fifo_across_separate_enqueues(broker: Broker) -> None:
    ids = []
    for _ in range(20):
        job = make_job()
        await broker.enqueue([job])
        ids.append(job[0].id)
    got = await broker.dequeue(["default"], 50, 30, "w")
    assert [d.id for d in got] == ids


async def test_dequeue_respects_count_and_routing_key_order(broker: Broker) -> None:
    await broker.enqueue([make_job(rk="b") for _ in range(3)])
    await broker.enqueue([make_job(rk="a") for _ in range(2)])
    await broker.enqueue([make_job(rk="c")])
    got = await broker.dequeue(["a", "b"], 4, 30, "w")
    assert [d.routing_key for d in got] == ["a", "a", "b", "b"]
    rest = await broker.dequeue(["a", "b"], 10, 30, "w")
    assert [d.routing_key for d in rest] == ["b"]
    assert await broker.dequeue(["a", "b"], 10, 30, "w") == []


async def test_dequeue_leases_and_sets_processing(broker: Broker) -> None:
    job, body = make_job()
    await broker.enqueue([(job, body)])
    [d] = await broker.dequeue(["default"], 1, 30, "worker-1")
    assert d.id == job.id and d.body == body and d.token == 1 and d.attempts == 0
    seen = await broker.get_job(job.id)
    assert seen is not None and seen.status is JobStatus.PROCESSING and seen.worker == "worker-1"
    assert await broker.dequeue(["default"], 1, 30, "worker-2") == []


async def test_ack_completed_stores_result_and_wakes_waiter(broker: Broker) -> None:
    job, body = make_job()
    await broker.enqueue([(job, body)], watch=True)
    other = broker.clone()
    waiter = asyncio.create_task(other.wait_job(job.id, 10))
    [d] = await broker.dequeue(["default"], 1, 30, "w")
    ok = await broker.ack([Outcome(d.id, d.routing_key, d.token, "completed", 1, result=b'{"x": 1}')], TTL)
    assert ok == [True]
    t0 = time.monotonic()
    done = await asyncio.wait_for(waiter, 5)
    assert time.monotonic() - t0 < 2
    assert done is not None and done.status is JobStatus.COMPLETED and done.result == {"x": 1}
    assert done.attempts == 1 and done.finished_at is not None
    await other.close()


async def test_wait_job_times_out_on_unfinished_job(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    t0 = time.monotonic()
    seen = await broker.wait_job(job[0].id, 0.3)
    assert 0.25 <= time.monotonic() - t0 < 3
    assert seen is not None and seen.status is JobStatus.PENDING


async def test_stale_token_is_refused(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    [d] = await broker.dequeue(["default"], 1, 30, "w")
    stale = Outcome(d.id, d.routing_key, d.token + 1, "completed", 1)
    assert await broker.ack([stale], TTL) == [False]
    good = Outcome(d.id, d.routing_key, d.token, "completed", 1)
    assert await broker.ack([good], TTL) == [True]
    assert await broker.ack([good], TTL) == [False]  # a second outcome is a duplicate


async def test_retry_goes_to_scheduled_then_ready_when_due(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    [d] = await broker.dequeue(["default"], 1, 30, "w")
    retry_at = time.time() + 0.3
    await broker.ack([Outcome(d.id, "default", d.token, "retry", 1, error="boom", retry_at=retry_at)], TTL)
    seen = await broker.get_job(d.id)
    assert seen is not None and seen.status is JobStatus.SCHEDULED and seen.error == "boom" and seen.attempts == 1
    report = await broker.tick(3, 86400)
    assert report.moved == 0 and report.next_due is not None and abs(report.next_due - retry_at) < 0.01
    assert await broker.dequeue(["default"], 1, 30, "w") == []
    await asyncio.sleep(max(0.0, retry_at - time.time()) + 0.01)  # time itself is the condition here
    assert (await broker.tick(3, 86400)).moved == 1
    [again] = await broker.dequeue(["default"], 1, 30, "w")
    assert again.id == d.id and again.attempts == 1 and again.token == 2


async def test_delayed_job_waits_until_due(broker: Broker) -> None:
    job = make_job(at=time.time() + 0.4)
    await broker.enqueue([job])
    seen = await broker.get_job(job[0].id)
    assert seen is not None and seen.status is JobStatus.SCHEDULED
    await broker.tick(3, 86400)
    assert await broker.dequeue(["default"], 1, 30, "w") == []
    await asyncio.sleep(0.45)  # the delay is wall-clock time: let it pass
    await broker.tick(3, 86400)
    assert [d.id for d in await broker.dequeue(["default"], 1, 30, "w")] == [job[0].id]


async def test_failed_goes_to_dead_letter_and_can_be_retried_or_purged(broker: Broker) -> None:
    jobs = [make_job() for _ in range(3)]
    await broker.enqueue(jobs)
    ds = await broker.dequeue(["default"], 3, 30, "w")
    await broker.ack(
        [Outcome(d.id, "default", d.token, "failed", 1, error="bad", reason="permanent_error", traceback="tb")
         for d in ds], TTL,
    )  # fmt: skip
    dead = await broker.list_jobs("failed")
    assert {j.id for j in dead} == {d.id for d in ds}
    assert all(j.reason == "permanent_error" and j.error == "bad" and j.traceback == "tb" for j in dead)
    [stats] = await broker.queue_stats()
    assert stats.dead == 3 and stats.ready == 0
    assert await broker.retry_dead([ds[0].id]) == 1
    again = await broker.dequeue(["default"], 5, 30, "w")
    assert [d.id for d in again] == [ds[0].id]
    assert await broker.purge_dead() == 2
    assert await broker.list_jobs("failed") == []
    assert await broker.get_job(ds[1].id) is None


async def test_retry_all_dead(broker: Broker) -> None:
    await broker.enqueue([make_job() for _ in range(2)])
    ds = await broker.dequeue(["default"], 2, 30, "w")
    await broker.ack([Outcome(d.id, "default", d.token, "failed", 1, error="x", reason="max_retries") for d in ds], TTL)
    assert await broker.retry_dead(None) == 2
    assert len(await broker.dequeue(["default"], 5, 30, "w")) == 2


async def test_a_retried_dead_letter_starts_clean(broker: Broker) -> None:
    """No cancel request and no outcome notification of the earlier life carry over."""
    job = make_job()
    await broker.enqueue([job], watch=True)
    [d] = await broker.dequeue(["default"], 1, 30, "w")
    assert await broker.cancel(d.id) == "processing"  # cancel asked while it runs, then it fails
    await broker.ack([Outcome(d.id, "default", d.token, "failed", 1, error="x", reason="permanent_error")], TTL)
    assert await broker.retry_dead([d.id]) == 1  # nobody waited for the failure
    [again] = await broker.dequeue(["default"], 1, 30, "w")
    assert await broker.renew([Lease(again.id, "default", again.token)], 30) == ["ok"]
    started = time.monotonic()
    waited = await broker.wait_job(again.id, 0.3)
    assert waited is not None and waited.status is JobStatus.PROCESSING
    assert time.monotonic() - started >= 0.29  # the old failure's notification did not end this wait


async def test_an_expired_lease_makes_suspects_and_only_a_death_alone_is_charged(broker: Broker) -> None:
    poison, innocent = make_job(), make_job()
    await broker.enqueue([poison, innocent])
    assert len(await broker.dequeue(["default"], 2, 0.05, "w")) == 2  # both in one process, which dies
    await asyncio.sleep(0.08)  # let the lease lapse: wall-clock time is what is under test
    assert (await broker.tick(1, 86400)).recovered == 2  # max 1 delivery, but neither ran alone
    assert await broker.dequeue(["default"], 2, 30, "x") == []  # suspects are not ready jobs
    [stats] = await broker.queue_stats()
    assert (stats.suspects, stats.ready, stats.processing) == (2, 0, 0)
    assert {j.id for j in await broker.list_jobs("pending")} == {poison[0].id, innocent[0].id}
    tokens = []
    while (d := await broker.dequeue_alone(["default"], 0.05, "w")) is not None:
        if d.id == innocent[0].id:
            assert await broker.ack([Outcome(d.id, "default", d.token, "completed", 1)], TTL) == [True]
            continue
        tokens.append(d.token)
        await asyncio.sleep(0.08)  # its process dies while it runs alone
        report = await broker.tick(3, 86400)
        assert report.recovered + report.lost == 1
    assert tokens == [2, 3]  # delivered 3 times in all, the last 2 alone
    seen = await broker.get_job(poison[0].id)
    assert seen is not None and seen.status is JobStatus.FAILED and seen.reason == "worker_lost"
    assert seen.error == "worker_lost: delivered 3 times without an outcome (lease expired)"
    assert await broker.ack([Outcome(poison[0].id, "default", 3, "completed", 1)], TTL) == [False]
    done = await broker.get_job(innocent[0].id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.deliveries == 2


async def test_one_worker_at_a_time_is_given_the_suspects_and_a_cancelled_one_never_runs(broker: Broker) -> None:
    kept, cancelled = make_job(), make_job()
    await broker.enqueue([kept, cancelled])
    await broker.dequeue(["default"], 2, 0.05, "h:1:a")
    await asyncio.sleep(0.08)  # let the lease lapse: wall-clock time is what is under test
    reclaim = Reclaim(3, 86400)
    first = await broker.dequeue(["default"], 5, 30, "h:2:b", reclaim=reclaim)
    assert (list(first), first.isolate) == ([], True)
    other = await broker.dequeue(["default"], 5, 30, "h:3:c", reclaim=reclaim)
    assert (list(other), other.isolate) == ([], False)  # one isolating worker is enough
    filtered = await broker.dequeue(["default"], 5, 30, "h:4:d", JobFilter(names=("t",)), reclaim=reclaim)
    assert not filtered.isolate
    assert await broker.cancel(cancelled[0].id) == "pending"
    d = await broker.dequeue_alone(["default"], 30, "h:2:b")
    assert d is not None and (d.id, d.token) == (kept[0].id, 2)
    assert await broker.dequeue_alone(["default"], 30, "h:2:b") is None  # the cancelled one is gone
    again = await broker.dequeue(["default"], 5, 30, "h:3:c", reclaim=reclaim)
    assert not again.isolate  # no suspect left, no duty


async def test_renew_keeps_lease_and_reports_loss_and_cancel(broker: Broker) -> None:
    await broker.enqueue([make_job(), make_job()])
    a, b = await broker.dequeue(["default"], 2, 0.2, "w")
    assert await broker.renew([Lease(a.id, "default", a.token), Lease(b.id, "default", b.token)], 30) == ["ok", "ok"]
    await asyncio.sleep(0.25)  # past the first lease (0.2 s): time is what is under test
    assert (await broker.tick(3, 86400)).recovered == 0
    assert await broker.cancel(a.id) == "processing"
    states = await broker.renew([Lease(a.id, "default", a.token), Lease(b.id, "default", b.token + 5)], 30)
    assert states == ["cancel", "lost"]


async def test_requeue_gives_jobs_back_without_counting_delivery(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    [d] = await broker.dequeue(["default"], 1, 30, "w")
    assert await broker.requeue([Lease(d.id, "default", d.token)]) == 1
    assert await broker.requeue([Lease(d.id, "default", d.token)]) == 0  # no longer held
    seen = await broker.get_job(d.id)
    assert seen is not None and seen.status is JobStatus.PENDING
    for _ in range(3):  # requeued deliveries never count towards max_deliveries
        [d] = await broker.dequeue(["default"], 1, 30, "w")
        await broker.requeue([Lease(d.id, "default", d.token)])
    [d] = await broker.dequeue(["default"], 1, 0.01, "w")
    await asyncio.sleep(0.03)  # the 10 ms lease lapses: time is what is under test
    assert (await broker.tick(3, 86400)).recovered == 1


async def test_cancel_pending_and_scheduled_jobs_never_run(broker: Broker) -> None:
    pending, scheduled = make_job(), make_job(at=time.time() + 0.05)
    await broker.enqueue([pending, scheduled])
    assert await broker.cancel(pending[0].id) == "pending"
    assert await broker.cancel(scheduled[0].id) == "scheduled"
    await asyncio.sleep(0.06)  # past the cancelled job's due time: time is what is under test
    await broker.tick(3, 86400)
    assert await broker.dequeue(["default"], 10, 30, "w") == []
    seen = await broker.get_job(pending[0].id)
    assert seen is not None and seen.status is JobStatus.CANCELLED
    assert await broker.cancel(pending[0].id) == "cancelled"
    assert await broker.cancel(new_id()) is None


async def test_wait_for_work_wakes_on_enqueue(broker: Broker) -> None:
    assert await broker.dequeue(["default"], 1, 30, "w") == []
    other = broker.clone()
    waiter = asyncio.create_task(broker.wait_for_work(["default"], 5))
    # Time is what is checked here: with nothing ready, the waiter must still block after 50 ms.
    assert not (await asyncio.wait({waiter}, timeout=0.05))[0]
    t0 = time.monotonic()
    await other.enqueue([make_job()])
    await asyncio.wait_for(waiter, 5)
    assert time.monotonic() - t0 < 1.0
    await other.close()


async def test_queue_stats_by_priority(broker: Broker) -> None:
    await broker.enqueue([make_job(priority=90), make_job(priority=90), make_job(priority=10)])
    soon = time.time() + 60
    await broker.enqueue([make_job(rk="email", at=soon + 30), make_job(rk="email", at=soon)])
    stats = {s.routing_key: s for s in await broker.queue_stats()}
    assert stats["default"].ready_by_priority == {90: 2, 10: 1} and stats["default"].next_scheduled_at is None
    assert stats["email"].scheduled == 2 and stats["email"].ready == 0
    due = stats["email"].next_scheduled_at
    assert due is not None and abs(due - soon) < 0.01
    await broker.dequeue(["default"], 1, 30, "w")
    stats = {s.routing_key: s for s in await broker.queue_stats()}
    assert stats["default"].processing == 1 and stats["default"].ready_by_priority == {90: 1, 10: 1}


async def test_list_jobs_filters_by_status_and_name(broker: Broker) -> None:
    await broker.enqueue([make_job("a"), make_job("b"), make_job("a", at=time.time() + 60)])
    assert {j.name for j in await broker.list_jobs("pending")} == {"a", "b"}
    assert [j.name for j in await broker.list_jobs("scheduled")] == ["a"]
    assert len(await broker.list_jobs(None, "a")) == 2


async def test_leader_lock_is_exclusive_with_increasing_tokens(broker: Broker) -> None:
    t1 = (await broker.acquire_leader("one", 0.3)).token
    assert t1 is not None
    held = await broker.acquire_leader("two", 0.3)
    assert held.token is None and 0 < held.expires_in_s <= 0.3  # a follower learns how long to wait
    assert await broker.acquire_leader("one", 0.3) == LeaderLock(t1, 0.3)
    await broker.release_leader("one")
    t2 = (await broker.acquire_leader("two", 0.1)).token
    assert t2 is not None and t2 > t1
    await asyncio.sleep(0.15)  # the 0.1 s leader lock expires: time is what is under test
    t3 = (await broker.acquire_leader("one", 1)).token
    assert t3 is not None and t3 > t2


async def test_malformed_body_is_handed_out_for_the_worker_to_dead_letter(broker: Broker) -> None:
    job, _ = make_job()
    await broker.enqueue([(job, b"{not json")])
    [d] = await broker.dequeue(["default"], 1, 30, "w")
    assert d.body == b"{not json"
    seen = await broker.get_job(job.id)
    assert seen is not None and seen.status is JobStatus.PROCESSING


async def test_submitting_the_same_id_twice_is_idempotent(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    await broker.enqueue([job])
    assert len(await broker.dequeue(["default"], 10, 30, "w")) == 1


async def test_finished_records_expire_after_their_ttl(broker: Broker) -> None:
    await broker.enqueue([make_job(), make_job()])
    done, dead = await broker.dequeue(["default"], 2, 30, "w")
    await broker.ack(
        [Outcome(done.id, "default", done.token, "completed", 1, result=b"1"),
         Outcome(dead.id, "default", dead.token, "failed", 1, error="x", reason="permanent_error")],
        (0.2, 0.5),
    )  # fmt: skip
    assert (await broker.get_job(done.id)) is not None
    await asyncio.sleep(0.3)  # the TTL is wall-clock time
    assert await broker.get_job(done.id) is None
    kept = await broker.get_job(dead.id)
    assert kept is not None and kept.status is JobStatus.FAILED
    await asyncio.sleep(0.3)  # the failed TTL too
    assert await broker.get_job(dead.id) is None


# --- specialized dequeue: priority bands and job types, without pop-and-put-back ------


async def test_dequeue_by_priority_band_leaves_other_jobs_alone(broker: Broker) -> None:
    jobs = [make_job("low", priority=10), make_job("high", priority=90), make_job("mid", priority=50),
            make_job("top", priority=100)]  # fmt: skip
    await broker.enqueue(jobs)
    high = JobFilter(priorities=((67, 100),))
    got = await broker.dequeue(["default"], 10, 30, "w", high)
    assert [wire.decode_job(d.body).name for d in got] == ["top", "high"]
    assert await broker.dequeue(["default"], 10, 30, "w", high) == []
    low = JobFilter(priorities=((0, 33),))
    assert [wire.decode_job(d.body).name for d in await broker.dequeue(["default"], 10, 30, "w", low)] == ["low"]
    [mid] = await broker.dequeue(["default"], 10, 30, "w")
    assert wire.decode_job(mid.body).name == "mid" and mid.token == 1  # never handed out before


async def test_dequeue_by_job_type_leaves_other_jobs_alone(broker: Broker) -> None:

    jobs = [make_job("a"), make_job("b"), make_job("c", priority=90), make_job("a"), make_job("b")]
    await broker.enqueue(jobs)
    only = JobFilter(names=("a", "c"))
    got = await broker.dequeue(["default"], 10, 30, "w", only)
    assert [wire.decode_job(d.body).name for d in got] == ["c", "a", "a"]
    rest = await broker.dequeue(["default"], 10, 30, "w")
    assert [wire.decode_job(d.body).name for d in rest] == ["b", "b"] and {d.token for d in rest} == {1}
    stats = await broker.queue_stats()
    assert sum(s.ready for s in stats) == 0


async def test_job_type_filter_reaches_past_many_other_jobs(broker: Broker) -> None:
    await broker.enqueue([make_job("bulk") for _ in range(1500)])
    mine = [make_job("mine", priority=10), make_job("mine", priority=90)]
    await broker.enqueue(mine)
    got = await broker.dequeue(["default"], 5, 30, "w", JobFilter(names=("mine",)))
    assert [d.id for d in got] == [mine[1][0].id, mine[0][0].id]  # higher priority first
    assert await broker.dequeue(["default"], 5, 30, "w", JobFilter(names=("mine",))) == []
    rest = await broker.dequeue(["default"], 2000, 30, "w")
    assert len(rest) == 1500 and all(wire.decode_job(d.body).name == "bulk" for d in rest)


async def test_job_type_index_follows_requeue_cancel_and_retry(broker: Broker) -> None:
    a, b = make_job("mine"), make_job("mine")
    await broker.enqueue([a, b])
    only = JobFilter(names=("mine",))
    assert await broker.cancel(a[0].id) == "pending"
    [d] = await broker.dequeue(["default"], 5, 30, "w", only)
    assert d.id == b[0].id
    await broker.requeue([Lease(d.id, "default", d.token)])
    [again] = await broker.dequeue(["default"], 5, 30, "w", only)
    assert again.id == b[0].id
    await broker.ack([Outcome(again.id, "default", again.token, "failed", 1, error="x", reason="max_retries")], TTL)
    assert await broker.retry_dead([again.id]) == 1
    [third] = await broker.dequeue(["default"], 5, 30, "w", only)
    assert third.id == b[0].id
    assert await broker.dequeue(["default"], 5, 30, "w") == []


async def test_task_catalogue_keeps_definitions_and_who_serves_them(broker: Broker) -> None:
    assert await broker.task_catalogue(90) == []
    await broker.publish_tasks("w1", {"send": b'{"name":"send"}', "resize": b'{"name":"resize"}'}, 90)
    await broker.publish_tasks("w2", {"send": b'{"name":"send","summary":"v2"}'}, 90)
    found = {r.name: r for r in await broker.task_catalogue(90)}
    assert sorted(found) == ["resize", "send"]
    assert found["send"].definition == b'{"name":"send","summary":"v2"}'  # the latest publish wins
    assert set(found["send"].workers) == {"w1", "w2"} and set(found["resize"].workers) == {"w1"}
    assert all(abs(seen - time.time()) < 5 for seen in found["send"].workers.values())
    await broker.unpublish_tasks("w1", ["send", "resize"])
    found = {r.name: r for r in await broker.task_catalogue(90)}
    assert set(found["send"].workers) == {"w2"} and found["resize"].workers == {}  # definitions stay


async def test_task_catalogue_forgets_workers_not_seen_lately(broker: Broker) -> None:
    await broker.publish_tasks("old", {"t": b"{}"}, 90)
    await asyncio.sleep(0.03)  # lets "old" age (time passing, not synchronisation)
    assert (await broker.task_catalogue(0.01))[0].workers == {}  # outside the window read
    assert set((await broker.task_catalogue(90))[0].workers) == {"old"}  # still stored
    await broker.publish_tasks("new", {"t": b"{}"}, 0.01)  # prunes what is older than the window
    assert set((await broker.task_catalogue(90))[0].workers) == {"new"}
