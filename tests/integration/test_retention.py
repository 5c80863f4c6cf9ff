"""How long finished jobs are kept, on every broker: dead-lettered jobs 7 days and
completed ones 1 hour by default, or BANANAS_FAILED_TTL / BANANAS_COMPLETED_TTL, whether
a worker stored the outcome or the scheduler dead-lettered the job as ``worker_lost``."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time

import pytest
import redis

from bananas import Bananas, JobStatus, PermanentError, wire
from bananas.brokers import Outcome, from_url
from bananas.brokers.redis import RedisBroker
from bananas.brokers.redis.layout import prefix
from bananas.job import Job, new_id
from bananas.scheduler import Scheduler
from bananas.settings import Settings
from bananas.testing import RedisServer, running_worker
from tests.conftest import make_settings

DAY_S = 86400.0


def retention_s(url: str, job_id: str) -> float:
    """Seconds the broker will still keep the job's record, read beside the broker."""
    if url.startswith("redis"):
        client = redis.Redis.from_url(url)
        try:
            ttl_ms = client.pttl(prefix("default") + "job:" + job_id)
        finally:
            client.close()
        assert ttl_ms > 0, f"job {job_id} has no TTL ({ttl_ms})"
        return ttl_ms / 1000
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        (expires_at,) = conn.execute("SELECT expires_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        conn.close()
    assert expires_at is not None, f"job {job_id} never expires"
    return float(expires_at) - time.time()


@pytest.mark.parametrize(
    ("env", "completed_s", "failed_s"),
    [({}, 3600.0, 7 * DAY_S), ({"BANANAS_COMPLETED_TTL": "2h", "BANANAS_FAILED_TTL": "30d"}, 7200.0, 30 * DAY_S)],
    ids=["defaults", "from-env"],
)
async def test_worker_keeps_dead_lettered_jobs_7_days_and_completed_1_hour(
    broker_url: str, env: dict[str, str], completed_s: float, failed_s: float
) -> None:
    settings = dataclasses.replace(make_settings(broker_url), jobs=Settings.from_env(env).jobs)
    app = Bananas(settings=settings)

    @app.task
    def ok() -> str:
        return "fine"

    @app.task
    def doomed() -> None:
        raise PermanentError("no")

    client = app.async_client()
    async with running_worker(app):
        done = await client.wait(await client.submit("ok", {}), 10)
        dead = await client.wait(await client.submit("doomed", {}), 10)
    await client.close()
    assert done.status is JobStatus.COMPLETED and dead.status is JobStatus.FAILED
    assert retention_s(broker_url, done.id) == pytest.approx(completed_s, abs=30)
    assert retention_s(broker_url, dead.id) == pytest.approx(failed_s, abs=30)


async def test_scheduler_keeps_worker_lost_jobs_7_days(broker_url: str) -> None:
    settings = make_settings(broker_url, max_deliveries=1)
    assert settings.jobs.failed_ttl_s == 7 * DAY_S
    broker = from_url(broker_url)
    job = Job(id=new_id(), name="crashy", payload={}, created_at=time.time())
    await broker.enqueue([(job, wire.encode_job(job))])
    # A worker takes it and dies: a lease of 0 s has lapsed by the next tick. It comes back
    # as a suspect, runs alone and dies again: that death is charged.
    [delivery] = await broker.dequeue(["default"], 1, 0.0, "dead-worker")
    assert delivery.id == job.id and (await broker.tick(1, 7 * DAY_S)).recovered == 1
    alone = await broker.dequeue_alone(["default"], 0.0, "dead-worker")
    assert alone is not None and alone.id == job.id
    scheduler = Scheduler(broker, settings, holder="test-scheduler")
    task = asyncio.create_task(scheduler.run())
    try:
        lost = await broker.wait_job(job.id, 10)
    finally:
        await scheduler.stop(task)
        await broker.close()
    assert lost is not None and lost.status is JobStatus.FAILED and lost.reason == "worker_lost"
    assert retention_s(broker_url, job.id) == pytest.approx(7 * DAY_S, abs=30)


async def test_redis_indexes_keep_finished_jobs_as_long_as_their_records(
    redis_broker: RedisBroker, redis_server: RedisServer
) -> None:
    # The dead and finished indexes drop entries by age at every tick; two days old is
    # past the 24 h they once used, but within the 7-day and the configured 3-day TTLs.
    jobs = [Job(id=new_id(), name=n, payload={}, created_at=time.time()) for n in ("done", "dead")]
    await redis_broker.enqueue([(j, wire.encode_job(j)) for j in jobs])
    done, dead = await redis_broker.dequeue(["default"], 2, 30, "w")
    ttl = (3 * DAY_S, 7 * DAY_S)
    await redis_broker.ack(
        [Outcome(done.id, "default", done.token, "completed", 1, result=b"1"),
         Outcome(dead.id, "default", dead.token, "failed", 1, error="x", reason="permanent_error")],
        ttl,
    )  # fmt: skip
    r = redis_server.client()
    two_days_ago_ms = int((time.time() - 2 * DAY_S) * 1000)
    r.zadd(prefix("default") + "finished", {done.id: two_days_ago_ms})
    r.zadd(prefix("default") + "dead", {dead.id: two_days_ago_ms})
    await redis_broker.tick(3, ttl[1], ttl[0])
    assert [j.id for j in await redis_broker.list_jobs("completed")] == [done.id]
    assert [j.id for j in await redis_broker.list_jobs("failed")] == [dead.id]
    await redis_broker.tick(3, ttl[1])  # completed TTL left at its 1 h default: the old entry goes
    assert await redis_broker.list_jobs("completed") == []
    assert [j.id for j in await redis_broker.list_jobs("failed")] == [dead.id]
    r.close()
