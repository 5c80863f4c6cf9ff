"""``bananas.testing.join`` and the worker helpers, on the embedded broker and a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from bananas import Bananas, JobStatus, JoinTimeout, RetryPolicy, WaitTimeout
from bananas.settings import Settings
from bananas.testing import WorkerThread, join, join_blocking, running_worker, wait_until, wait_until_async


@pytest.fixture
def url(memory_or_redis_url: str) -> str:
    return memory_or_redis_url


def make_app(url: str) -> Bananas:
    return Bananas(settings=Settings(url=url))


async def test_join_returns_only_once_every_outcome_is_stored(url: str) -> None:
    app = make_app(url)

    @app.task
    async def slow(n: int) -> int:
        await asyncio.sleep(0.2)  # the handler's own work: join must outwait it
        return n * 10

    async with app.async_client() as client, running_worker(app, concurrency=2) as worker:
        ids = [await client.submit("slow", {"n": n}) for n in range(3)]
        started = time.monotonic()
        await join(worker)
        assert time.monotonic() - started >= 0.2  # at least one full run
        jobs = [await client.get_job(i) for i in ids]
        assert [(j.status, j.result) for j in jobs if j is not None] == [
            (JobStatus.COMPLETED, n * 10) for n in range(3)
        ]
        assert worker.processed == 3


async def test_join_on_an_app_and_routing_key_waits_for_a_retry_due_soon(url: str) -> None:
    app = make_app(url)
    attempts: list[int] = []

    @app.task(routing_key="email", max_retries=2, retry=RetryPolicy(base_s=0.05, jitter=0))
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return "sent"

    async with app.async_client() as client, running_worker(app, routing_keys=("email",)):
        job_id = await client.submit("flaky", {})
        await join(app, "email", timeout=10)
        job = await client.get_job(job_id)
        assert job is not None and (job.status, job.result, job.attempts) == (JobStatus.COMPLETED, "sent", 2)


async def test_join_times_out_on_a_job_that_never_finishes_and_says_what_is_pending(url: str) -> None:
    app = make_app(url)
    release = asyncio.Event()

    @app.task(timeout=60)
    async def stuck() -> None:
        await release.wait()

    async with app.async_client() as client, running_worker(app) as worker:
        job_id = await client.submit("stuck", {})
        with pytest.raises(JoinTimeout, match=r"'default': 1 running or awaiting their outcome"):
            await join(worker, timeout=0.3)
        release.set()
        await join(worker)
        job = await client.get_job(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED


async def test_join_without_a_worker_reports_ready_jobs(url: str) -> None:
    app = make_app(url)

    @app.task(routing_key="nobody")
    def unserved() -> None: ...

    async with app.async_client() as client:
        await client.submit("unserved", {})
        await client.submit("unserved", {}, delay=3600)  # due long after the deadline: not waited for
        with pytest.raises(JoinTimeout, match=r"'nobody': 1 ready$"):
            await join(client, "nobody", timeout=0.2)
        await join(client, "default", timeout=1)  # nothing there


def test_a_worker_thread_and_join_blocking_in_a_sync_test(url: str) -> None:
    app = make_app(url)

    @app.task
    def double(n: int) -> int:
        time.sleep(0.05)  # the handler's own work
        return 2 * n

    with WorkerThread(app, concurrency=2) as worker:
        ids = [double.submit(n) for n in range(4)]
        worker.join(timeout=10)
        assert [app.client.get_job(i).result for i in ids] == [0, 2, 4, 6]  # type: ignore[union-attr]
        ids.append(double.submit(5))
        join_blocking(app, timeout=10)
        job = app.client.get_job(ids[-1])
        assert job is not None and job.result == 10
    assert worker.worker.stopping
    app.close()


def test_wait_until_returns_the_value_or_says_what_it_waited_for() -> None:
    values = iter([0, None, "", "ok"])
    assert wait_until(lambda: next(values), 1, "a value") == "ok"
    with pytest.raises(WaitTimeout, match=r"timed out after 0\.05 s waiting for the moon"):
        wait_until(lambda: False, 0.05, "the moon")


async def test_wait_until_async_lets_the_loop_run() -> None:
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, done.set)
    assert await wait_until_async(done.is_set, 1, "the timer") is True
    with pytest.raises(WaitTimeout, match="waiting for nothing"):
        await wait_until_async(lambda: 0, 0.05, "nothing")
