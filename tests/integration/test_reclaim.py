"""Every worker's dequeue does the scheduler's duties for its routing keys (``Reclaim``):
a dead worker's jobs and due delayed jobs come back with no leader and no tick, on every
broker (conftest BROKERS)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bananas import wire
from bananas.brokers import Broker, Outcome, from_url
from bananas.brokers.base import JobFilter, Reclaim
from bananas.job import Job, JobStatus, new_id

RECLAIM = Reclaim(max_deliveries=3, failed_ttl_s=86400)
TTL = (3600.0, 86400.0)


@pytest.fixture
async def broker(broker_url: str) -> AsyncIterator[Broker]:
    b = from_url(broker_url)
    yield b
    await b.close()


@pytest.fixture
async def second(broker_url: str) -> AsyncIterator[Broker]:
    """Another worker's broker (each does the duties at most every DUTY_EVERY_S on Redis)."""
    b = from_url(broker_url)
    yield b
    await b.close()


def make_job(*, at: float | None = None, name: str = "t") -> tuple[Job, bytes]:
    job = Job(id=new_id(), name=name, payload={}, created_at=time.time(), scheduled_for=at)
    return job, wire.encode_job(job)


async def test_an_expired_lease_comes_back_to_the_next_dequeue_without_a_tick(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    [first] = await broker.dequeue(["default"], 1, 0.2, "dead-worker")
    assert await broker.dequeue(["default"], 1, 30, "other", reclaim=RECLAIM) == []  # still leased
    started = time.monotonic()
    await broker.wait_for_work(["default"], 5.0)  # returns when the lease runs out, not after 5 s
    assert time.monotonic() - started < 2.0
    batch = await broker.dequeue(["default"], 1, 30, "other", reclaim=RECLAIM)
    assert (list(batch), batch.isolate) == ([], True)  # back as a suspect, for this worker to run alone
    again = await broker.dequeue_alone(["default"], 30, "other")
    assert again is not None and (again.id, first.token, again.token) == (job[0].id, 1, 2)


async def test_a_due_delayed_job_is_taken_by_the_next_dequeue_without_a_tick(broker: Broker) -> None:
    job = make_job(at=time.time() + 0.3)
    await broker.enqueue([job])
    assert await broker.dequeue(["default"], 1, 30, "w", reclaim=RECLAIM) == []
    started = time.monotonic()
    await broker.wait_for_work(["default"], 5.0)
    assert time.monotonic() - started < 2.0
    [d] = await broker.dequeue(["default"], 1, 30, "w", reclaim=RECLAIM)
    assert d.id == job[0].id


async def test_a_delayed_job_submitted_while_a_worker_waits_wakes_it_by_its_time(broker: Broker) -> None:
    assert await broker.dequeue(["default"], 1, 30, "w", reclaim=RECLAIM) == []
    waiting = asyncio.create_task(broker.wait_for_work(["default"], 5.0))
    await asyncio.sleep(0.05)  # the wait is in place before the submit: the order is under test
    started = time.monotonic()
    job = make_job(at=time.time() + 0.3)
    await broker.enqueue([job])
    for _ in range(3):  # woken by the submit, then by the due time
        await waiting
        got = await broker.dequeue(["default"], 1, 30, "w", reclaim=RECLAIM)
        if got:
            break
        waiting = asyncio.create_task(broker.wait_for_work(["default"], 5.0))
    assert [d.id for d in got] == [job[0].id]
    assert time.monotonic() - started < 2.0


async def test_a_filtered_dequeue_reclaims_too_and_runs_the_suspects_of_its_names(
    broker: Broker, second: Broker
) -> None:
    mine, other = make_job(name="only"), make_job(name="else")
    await broker.enqueue([mine, other])
    await broker.dequeue(["default"], 2, 0.05, "dead-worker")
    await asyncio.sleep(0.08)  # the 50 ms lease lapses: wall-clock time is what is under test
    batch = await broker.dequeue(["default"], 1, 30, "w", JobFilter(names=("only",)), reclaim=RECLAIM)
    assert batch.isolate
    got = await broker.dequeue_alone(["default"], 30, "w", ("only",))
    assert got is not None and (got.id, got.token) == (mine[0].id, 2)
    await broker.ack([Outcome(got.id, "default", got.token, "completed", 1)], TTL)
    assert await broker.dequeue_alone(["default"], 30, "w", ("only",)) is None  # "else" is not its to run
    assert (await second.dequeue(["default"], 1, 30, "any", reclaim=RECLAIM)).isolate  # the duty passed on
    d = await second.dequeue_alone(["default"], 30, "any")
    assert d is not None and d.id == other[0].id


async def test_reclaim_dead_letters_worker_lost_after_max_deliveries_once_it_ran_alone(broker: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    tokens = []
    for _ in range(4):
        batch = await broker.dequeue(["default"], 1, 0.05, "w", reclaim=RECLAIM)
        got = [d for d in [await broker.dequeue_alone(["default"], 0.05, "w")] if d] if batch.isolate else batch
        tokens += [d.token for d in got]
        # The lease lapses, and so does the Redis broker's pause between duties (0.1 s):
        # wall-clock time is what is under test.
        await asyncio.sleep(0.11)
    assert tokens == [1, 2, 3]
    seen = await broker.get_job(job[0].id)
    assert seen is not None and seen.status is JobStatus.FAILED and seen.reason == "worker_lost"


async def test_a_dead_workers_jobs_come_back_at_once_and_the_lost_ones_name_the_death(broker: Broker) -> None:
    first, other = make_job(), make_job()
    await broker.enqueue([first])
    await broker.enqueue([other])
    [taken] = await broker.dequeue(["default"], 1, 30, "h:1:dead")
    [kept] = await broker.dequeue(["default"], 1, 30, "h:12:alive")  # "h:1:" is not its prefix
    two = Reclaim(max_deliveries=2, failed_ttl_s=86400)
    assert await broker.release_dead("h:1:", ["default", "email"], "signal SIGKILL", two) == (1, 0)
    assert (await broker.dequeue(["default"], 1, 30, "h:3:next", reclaim=two)).isolate  # back at once
    again = await broker.dequeue_alone(["default"], 30, "h:3:next")
    assert again is not None and (again.id, again.token) == (taken.id, 2)
    assert await broker.release_dead("h:3:", ["default"], "exit code 1", two) == (0, 1)
    lost = await broker.get_job(taken.id)
    assert lost is not None and lost.status is JobStatus.FAILED and lost.reason == "worker_lost"
    assert lost.error == "worker_lost: delivered 2 times without an outcome (its worker died: exit code 1)"
    alive = await broker.get_job(kept.id)
    assert alive is not None and alive.status is JobStatus.PROCESSING and kept.id == other[0].id


async def test_a_dead_isolating_workers_duty_passes_on_at_once(broker: Broker, second: Broker) -> None:
    job = make_job()
    await broker.enqueue([job])
    await broker.dequeue(["default"], 1, 30, "h:1:dead")
    assert await broker.release_dead("h:1:", ["default"], "signal SIGKILL", RECLAIM) == (1, 0)
    assert (await broker.dequeue(["default"], 1, 30, "h:2:isolating", reclaim=RECLAIM)).isolate
    assert not (await second.dequeue(["default"], 1, 30, "h:3:next", reclaim=RECLAIM)).isolate
    assert await broker.release_dead("h:2:", ["default"], "signal SIGKILL", RECLAIM) == (0, 0)
    third = second.clone()
    assert (await third.dequeue(["default"], 1, 30, "h:3:next", reclaim=RECLAIM)).isolate
    await third.close()
