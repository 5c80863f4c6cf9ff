"""Worker behaviour on every broker: handlers, payload checks, retries, timeouts, results."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable

import pytest

from bananas import (
    Bananas,
    ConfigurationError,
    Context,
    JobFailed,
    JobStatus,
    PayloadError,
    PayloadTooLarge,
    PermanentError,
    Priority,
    ResultTimeout,
    RetryPolicy,
)
from bananas.job import Job
from bananas.testing import running_worker

FAST = RetryPolicy(base_s=0.02, max_s=0.1)

MakeApp = Callable[..., Bananas]


async def test_async_and_sync_handlers_return_results(make_app: MakeApp) -> None:
    app = make_app()

    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    @app.task
    def shout(word: str, times: int = 2) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return "!".join([word.upper()] * times)

    client = app.async_client()
    async with running_worker(app):
        assert await client.submit_and_wait("add", {"a": 2, "b": 3}, timeout=10) == 5
        assert await client.submit_and_wait("shout", {"word": "hi"}, timeout=10) == "HI!HI"
    job_id = await client.submit("add", {"a": 1, "b": 1})
    job = await client.get_job(job_id)
    assert job is not None and job.status is JobStatus.PENDING and job.payload == {"a": 1, "b": 1}
    await client.close()


async def test_context_injection_and_progress(make_app: MakeApp) -> None:
    app = make_app()
    seen: dict[str, object] = {}

    @app.task
    async def work(ctx: Context, n: int) -> str:
        seen.update(job_id=ctx.job_id, attempt=ctx.attempt, rk=ctx.routing_key, cancelled=ctx.cancelled)
        ctx.progress(0.5)
        ctx.logger.info("halfway")
        return "done"

    client = app.async_client()
    async with running_worker(app):
        job_id = await client.submit("work", {"n": 1})
        job = await client.wait(job_id, 10)
    assert job.status is JobStatus.COMPLETED
    assert seen == {"job_id": job_id, "attempt": 1, "rk": "default", "cancelled": False}
    after = await client.get_job(job_id)
    assert after is not None and after.progress == 0.5
    await client.close()


async def test_payload_that_does_not_fit_is_dead_lettered_never_retried(make_app: MakeApp) -> None:
    app = make_app()

    @app.task(max_retries=5)
    async def resize(url: str, width: int) -> None:
        raise AssertionError("must not run")

    knowing = app.async_client()
    with pytest.raises(PayloadError, match=r"Expected `int`, got `str` - at `\$.width`"):
        await knowing.submit("resize", {"url": "u", "width": "wide"})
    with pytest.raises(PayloadError, match="unknown field `height`"):
        await knowing.submit("resize", {"url": "u", "width": 1, "height": 2})
    with pytest.raises(PayloadError, match="missing required field `url`"):
        await knowing.submit("resize", {"width": 1})
    from bananas import AsyncClient

    blind = AsyncClient(app.url)  # does not know the handler: the worker must catch it
    job_id = await blind.submit("resize", {"url": "u", "width": "wide"})
    async with running_worker(app):
        job = await knowing.wait(job_id, 10)
    assert job.status is JobStatus.FAILED and job.reason == "invalid_payload" and job.attempts == 1
    assert job.error is not None and "Expected `int`, got `str`" in job.error
    await blind.close()
    await knowing.close()


async def test_retries_with_backoff_then_success(make_app: MakeApp) -> None:
    app = make_app()
    attempts: list[tuple[int, float]] = []

    @app.task(retry=RetryPolicy(base_s=0.05, max_s=1, jitter=0))
    def flaky(ctx: Context) -> str:
        attempts.append((ctx.attempt, time.monotonic()))
        if ctx.attempt < 3:
            raise RuntimeError(f"fail {ctx.attempt}")
        return "ok"

    client = app.async_client()
    async with running_worker(app):
        assert await client.submit_and_wait("flaky", {}, timeout=10) == "ok"
    assert [a for a, _ in attempts] == [1, 2, 3]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.1 * 0.95 and gaps[1] >= 0.2 * 0.95  # 0.05 * 2^attempt
    await client.close()


async def test_exhausted_retries_dead_letter_with_error_and_traceback(make_app: MakeApp) -> None:
    app = make_app()

    @app.task(max_retries=2, retry=FAST)
    def broken() -> None:
        raise ValueError("always broken")

    client = app.async_client()
    async with running_worker(app):
        with pytest.raises(JobFailed, match="always broken") as info:
            await client.submit_and_wait("broken", {}, timeout=10)
    job = info.value.job
    assert isinstance(job, Job)
    assert job.status is JobStatus.FAILED and job.attempts == 3 and job.reason == "max_retries"
    assert job.error is not None and job.error.startswith("ValueError: always broken")
    assert job.traceback is not None and 'raise ValueError("always broken")' in job.traceback
    dead = await client.dead_jobs()
    assert [j.id for j in dead] == [job.id]
    await client.close()


async def test_permanent_error_dead_letters_at_once(make_app: MakeApp) -> None:
    app = make_app()
    runs = []

    @app.task(max_retries=5, retry=FAST)
    async def refuse() -> None:
        runs.append(1)
        raise PermanentError("card declined")

    client = app.async_client()
    async with running_worker(app):
        job = await client.wait(await client.submit("refuse", {}), 10)
    assert job.status is JobStatus.FAILED and job.reason == "permanent_error" and runs == [1]
    assert job.error == "PermanentError: card declined"
    await client.close()


async def test_timeouts_fail_the_attempt_for_async_and_sync_handlers(make_app: MakeApp) -> None:
    app = make_app()
    release = threading.Event()
    sync_finished = threading.Event()

    @app.task(timeout=0.2, max_retries=0)
    async def slow_async() -> None:
        await asyncio.sleep(30)

    @app.task(timeout=0.2, max_retries=0)
    def slow_sync() -> str:
        release.wait(10)
        sync_finished.set()
        return "late"

    client = app.async_client()
    async with running_worker(app):
        t0 = time.monotonic()
        a = await client.wait(await client.submit("slow_async", {}), 10)
        b = await client.wait(await client.submit("slow_sync", {}), 10)
        assert time.monotonic() - t0 < 3
        release.set()
        await asyncio.to_thread(sync_finished.wait, 10)
    assert a.status is JobStatus.FAILED and a.error is not None and "timed out after 0.2 s" in a.error
    assert b.status is JobStatus.FAILED and b.error is not None and "timed out after 0.2 s" in b.error
    after = await client.get_job(b.id)
    assert after is not None and after.result is None and after.status is JobStatus.FAILED  # late result discarded
    await client.close()


async def test_unknown_job_name_is_dead_lettered(make_app: MakeApp) -> None:
    app = make_app()
    client = app.async_client()
    async with running_worker(app):
        job = await client.wait(await client.submit("nobody_home", {"x": 1}), 10)
    assert job.status is JobStatus.FAILED and job.reason == "no_handler"
    assert job.error == "no handler registered for 'nobody_home'"
    await client.close()


async def test_higher_priority_runs_first_fifo_within_priority(make_app: MakeApp) -> None:
    app = make_app()
    order: list[str] = []

    @app.task
    async def record(tag: str) -> None:
        order.append(tag)

    client = app.async_client()
    ids = []
    cases: list[tuple[str, str | int]] = [
        ("low-1", "low"), ("normal-1", Priority.NORMAL), ("high-1", "high"), ("low-2", 10),
        ("high-2", 90), ("urgent", 100), ("normal-2", "normal"),
    ]  # fmt: skip
    for tag, prio in cases:
        ids.append(await client.submit("record", {"tag": tag}, priority=prio))
    async with running_worker(app, concurrency=1):
        for job_id in ids:
            await client.wait(job_id, 10)
    assert order == ["urgent", "high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"]
    await client.close()


async def test_worker_serves_only_its_routing_keys(make_app: MakeApp) -> None:
    app = make_app()
    ran: list[str] = []

    @app.task
    async def tagged(tag: str) -> None:
        ran.append(tag)

    client = app.async_client()
    other = await client.submit("tagged", {"tag": "other"}, routing_key="other")
    mine = [await client.submit("tagged", {"tag": rk}, routing_key=rk) for rk in ("b", "a")]
    async with running_worker(app, routing_keys=("a", "b"), concurrency=1):
        for job_id in mine:
            await client.wait(job_id, 10)
    assert sorted(ran) == ["a", "b"]
    job = await client.get_job(other)
    assert job is not None and job.status is JobStatus.PENDING
    await client.close()


async def test_routing_keys_served_in_the_order_given(make_app: MakeApp) -> None:
    app = make_app()
    ran: list[str] = []

    @app.task
    async def tagged(tag: str) -> None:
        ran.append(tag)

    client = app.async_client()
    ids = [await client.submit("tagged", {"tag": rk}, routing_key=rk) for rk in ("low", "low", "high", "high")]
    async with running_worker(app, routing_keys=("high", "low"), concurrency=1):
        for job_id in ids:
            await client.wait(job_id, 10)
    assert ran == ["high", "high", "low", "low"]
    await client.close()


async def test_delayed_jobs_run_no_earlier_than_asked_and_within_a_second(make_app: MakeApp) -> None:
    app = make_app()
    started: dict[str, float] = {}

    @app.task
    async def stamp(ctx: Context) -> None:
        started[ctx.job_id] = time.time()

    client = app.async_client()
    async with running_worker(app):
        t0 = time.time()
        by_delay = await client.submit("stamp", {}, delay=0.5)
        from datetime import UTC, datetime, timedelta

        by_at = await client.submit("stamp", {}, at=datetime.now(UTC) + timedelta(seconds=1.0))
        await client.wait(by_delay, 10)
        await client.wait(by_at, 10)
    assert 0.5 <= started[by_delay] - t0 < 1.5
    assert 1.0 <= started[by_at] - t0 < 2.0
    await client.close()


async def test_submit_and_wait_timeout_and_cancel(make_app: MakeApp) -> None:
    app = make_app()
    ran = []

    @app.task
    async def job() -> None:
        ran.append(1)

    client = app.async_client()
    with pytest.raises(ResultTimeout):
        await client.submit_and_wait("job", {}, timeout=0.2)  # no worker runs
    queued = await client.submit("job", {})
    later = await client.submit("job", {}, delay=0.2)
    assert await client.cancel(queued) and await client.cancel(later)
    async with running_worker(app):
        assert await client.submit_and_wait("job", {}, timeout=10) is None
        await asyncio.sleep(0.4)  # let the cancelled delayed job's due time pass under a running scheduler
        done = await client.wait(queued, 1)
    assert done.status is JobStatus.CANCELLED
    later_job = await client.get_job(later)
    assert later_job is not None and later_job.status is JobStatus.CANCELLED
    assert len(ran) == 2  # the timed-out one and the last one; never the cancelled two
    await client.close()


async def test_concurrency_caps_running_jobs_and_prefetch(make_app: MakeApp) -> None:
    app = make_app()
    running = 0
    peak = 0
    gate = asyncio.Event()
    two_running = asyncio.Event()

    @app.task
    async def hold() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            two_running.set()
        await gate.wait()
        running -= 1

    client = app.async_client()
    ids = [await client.submit("hold", {}) for _ in range(6)]
    async with running_worker(app, concurrency=2):
        await asyncio.wait_for(two_running.wait(), 10)
        [stats] = await client.queue_stats()
        assert stats.processing == 2 and stats.ready == 4  # never holds more than its free slots
        gate.set()
        for job_id in ids:
            await client.wait(job_id, 10)
    assert peak == 2
    await client.close()


async def test_bad_submit_input_gets_precise_errors(make_app: MakeApp) -> None:
    app = make_app()
    client = app.async_client()
    with pytest.raises(PayloadTooLarge, match="over the limit of 1048576 bytes"):
        await client.submit("x", {"blob": "a" * (1024 * 1024)})
    with pytest.raises(ConfigurationError, match=r"unknown priority 'urgent'"):
        await client.submit("x", {}, priority="urgent")
    with pytest.raises(ConfigurationError, match=r"outside 0\.\.100"):
        await client.submit("x", {}, priority=101)
    with pytest.raises(ConfigurationError, match="delay must be >= 0"):
        await client.submit("x", {}, delay=-1)
    with pytest.raises(ConfigurationError, match="illegal routing key 'a b'"):
        await client.submit("x", {}, routing_key="a b")
    with pytest.raises(PayloadError, match="not JSON-serialisable"):
        await client.submit("x", {"obj": object()})
    with pytest.raises(PayloadError, match="payload must be a JSON object"):
        await client.submit("x", [1, 2])  # type: ignore[arg-type]
    assert await client.list_jobs() == []
    await client.close()


async def test_submit_many_and_sync_client(make_app: MakeApp) -> None:
    app = make_app()

    @app.task
    async def double(n: int) -> int:
        return n * 2

    client = app.async_client()
    ids = await client.submit_many([("double", {"n": i}) for i in range(50)])
    assert len(set(ids)) == 50
    async with running_worker(app, concurrency=20):
        jobs = [await client.wait(i, 10) for i in ids]
        assert [j.result for j in jobs] == [i * 2 for i in range(50)]
        sync_result = await asyncio.to_thread(double.submit_and_wait, n=21, timeout=10)
    assert sync_result == 42
    await client.close()
    app.client.close()


def test_sync_client_outside_any_loop(make_app: MakeApp) -> None:
    app = make_app()

    @app.task
    async def echo(text: str) -> str:
        return text

    job_id = echo.submit(text="hello")
    job = app.client.get_job(job_id)
    assert job is not None and job.name == "echo" and job.status is JobStatus.PENDING
    with pytest.raises(PayloadError):
        echo.submit(text=5)  # type: ignore[arg-type]  # also refused at run time
    app.client.close()
