"""``bananas.testing.eager``: every submit path runs the handler in-process and stores the
outcome, on the embedded broker and on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bananas import AsyncClient, Bananas, Client, ConfigurationError, Context, JobFailed, JobStatus, PermanentError
from bananas.client import JobSpec
from bananas.settings import Settings
from bananas.testing import EagerRunner, eager
from bananas.testing.eager import HandlerTraceback


@pytest.fixture
def url(memory_or_redis_url: str) -> str:
    return memory_or_redis_url


def make_app(url: str) -> Bananas:
    """An app with the handlers these tests submit (they record what ran)."""
    app = Bananas(settings=Settings(url=url))

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(max_retries=3)
    async def flaky(ctx: Context, fail_times: int) -> int:
        if ctx.attempt <= fail_times:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return ctx.attempt

    @app.task
    def refuse(why: str) -> None:
        raise PermanentError(why)

    @app.task(timeout=0.05, max_retries=0)
    async def hang() -> None:
        await asyncio.Event().wait()  # never set: the timeout ends it

    @app.task
    def outer_sync(n: int) -> int:
        add.submit(n, 1)
        return add.submit_and_wait(a=n, b=1)

    @app.task
    async def outer_async(n: int) -> int:
        add.submit(n, 2)
        async with app.async_client() as client:
            result: int = await client.submit_and_wait("add", {"a": n, "b": 2})
        return result

    return app


@pytest.fixture
def app(url: str) -> Iterator[Bananas]:
    app = make_app(url)
    yield app
    app.close()


def status(client: Client, job_id: str) -> tuple[JobStatus, object]:
    job = client.get_job(job_id)
    assert job is not None
    return job.status, job.result


def check_sync_paths(app: Bananas) -> None:
    """Every synchronous submit path, checked through the app's broker."""
    add = app.tasks["add"]
    reader = app.client
    assert status(reader, add.submit(1, 2)) == (JobStatus.COMPLETED, 3)
    assert status(reader, add.options(priority="high", delay=60).submit(a=2, b=3)) == (JobStatus.COMPLETED, 5)
    assert add.submit_and_wait(a=1, b=1) == 2
    assert add.options(routing_key="other").submit_and_wait(2, 2) == 4
    with Client(app.url, app=app) as client:
        assert status(reader, client.submit("add", {"a": 5, "b": 5})) == (JobStatus.COMPLETED, 10)
        ids = client.submit_many([("add", {"a": 1, "b": 0}), JobSpec("add", {"a": 2, "b": 0}, delay=30)])
        assert [status(reader, i) for i in ids] == [(JobStatus.COMPLETED, 1), (JobStatus.COMPLETED, 2)]
        assert client.submit_and_wait("add", {"a": 3, "b": 4}) == 7
        assert client.wait(ids[1], 1).status is JobStatus.COMPLETED
    assert app.tasks["outer_sync"].submit_and_wait(n=1) == 2  # a handler that submits: no deadlock


def test_every_sync_submit_path_runs_the_handler(app: Bananas) -> None:
    with eager(app):
        check_sync_paths(app)


async def test_every_submit_path_inside_an_event_loop(app: Bananas) -> None:
    with eager(app):
        check_sync_paths(app)  # the sync paths, called from a running loop, must not block it
        async with AsyncClient(app.url, app=app) as client:
            job = await client.wait(await client.submit("add", {"a": 1, "b": 1}), 1)
            assert (job.status, job.result) == (JobStatus.COMPLETED, 2)
            ids = await client.submit_many([("add", {"a": 2, "b": 2}), ("add", {"a": 3, "b": 3})])
            assert [(await client.wait(i, 1)).result for i in ids] == [4, 6]
            assert await client.submit_and_wait("add", {"a": 4, "b": 4}) == 8
            assert await client.submit_and_wait("outer_async", {"n": 1}) == 3
            assert await client.submit_and_wait("outer_sync", {"n": 5}) == 6


def test_retries_follow_the_policy_at_once(app: Bananas) -> None:
    with eager(app):
        job_id = app.tasks["flaky"].submit(fail_times=2)
    job = app.client.get_job(job_id)
    assert job is not None and (job.status, job.result, job.attempts) == (JobStatus.COMPLETED, 3, 3)


def test_failures_propagate_by_default_and_are_stored(app: Bananas) -> None:
    with eager(app), pytest.raises(JobFailed, match="gave up after 4 attempts") as caught:
        app.tasks["flaky"].submit(fail_times=10)
    stored = caught.value.job
    assert stored is not None and stored.status is JobStatus.FAILED and stored.attempts == 4  # type: ignore[attr-defined]
    assert isinstance(caught.value.__cause__, HandlerTraceback) and "attempt 4 fails" in str(caught.value.__cause__)
    with eager(app), pytest.raises(JobFailed, match="PermanentError: no way"):
        app.tasks["refuse"].submit(why="no way")


def test_without_propagate_the_submit_returns_and_the_job_shows_the_failure(app: Bananas) -> None:
    with eager(app, propagate=False) as runner:
        assert isinstance(runner, EagerRunner)
        refused = app.tasks["refuse"].submit(why="no way")
        hung = app.tasks["hang"].submit()
    job = app.client.get_job(refused)
    assert job is not None and job.status is JobStatus.FAILED and job.reason == "permanent_error" and job.attempts == 1
    job = app.client.get_job(hung)
    assert job is not None and job.status is JobStatus.FAILED and "timed out after 0.05 s" in (job.error or "")


def test_unknown_task_names_are_a_clear_error(app: Bananas) -> None:
    with eager(app), pytest.raises(ConfigurationError, match="no task named 'nope'"):
        app.client.submit("nope", {})
    with eager(app), pytest.raises(ConfigurationError, match="no task named 'nope'"):
        app.client.submit_many([("add", {"a": 1, "b": 1}), ("nope", {})])


def test_leaving_eager_mode_restores_queueing(app: Bananas) -> None:
    with eager(app):
        pass
    job_id = app.tasks["add"].submit(1, 1)
    assert status(app.client, job_id) == (JobStatus.PENDING, None)
    assert app.registry.eager is None
