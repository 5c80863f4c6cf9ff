"""Expiry and cancellation on every broker: a job not started by its ``expires`` never
runs and ends ``cancelled``/``expired``; ``client.cancel`` of a running job cancels an
async handler's task or sets a plain handler's ``ctx.cancelled``, and the job ends
``cancelled``; a cancelled queued job stays cancelled (docs/FLOW_CONTROL.md)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bananas import Bananas, ConfigurationError, Context, JobStatus
from bananas.testing import join, running_worker
from tests.integration.test_workflows import MakeApp


class App:
    def __init__(self, app: Bananas) -> None:
        self.app = app
        self.ran: list[str] = []
        self.started = threading.Event()
        ran, started = self.ran, self.started

        @app.task
        def note(tag: str) -> str:
            ran.append(tag)
            return tag

        @app.task
        async def sleeper(ctx: Context) -> str:
            started.set()
            await asyncio.sleep(30)  # never looks at ctx.cancelled: its task is cancelled
            ran.append("sleeper finished")
            return "slept"

        @app.task
        def spinner(ctx: Context) -> str:
            started.set()
            deadline = time.monotonic() + 30
            while not ctx.cancelled and time.monotonic() < deadline:
                time.sleep(0.01)
            ran.append(f"spinner saw cancelled={ctx.cancelled}")
            return "stopped"


@pytest.fixture
def t(make_app: MakeApp) -> Iterator[App]:
    app = App(make_app())
    yield app
    app.app.close()


async def test_a_job_not_started_by_its_expiry_never_runs(t: App) -> None:
    async with t.app.async_client() as client:
        doomed = await client.submit("note", {"tag": "doomed"}, expires=0.2)
        at = datetime.now(UTC) + timedelta(seconds=0.2)
        doomed_too = await client.submit("note", {"tag": "doomed too"}, expires=at)
        fine = await client.submit("note", {"tag": "fine"}, expires=60)
        while time.time() <= at.timestamp() + 0.05:  # (no worker runs: the expiry just has to pass)
            await asyncio.sleep(0.05)
        async with running_worker(t.app, concurrency=2):
            await join(t.app, timeout=20)
        for job_id in (doomed, doomed_too):
            job = await client.get_job(job_id)
            assert job is not None and job.status is JobStatus.CANCELLED and job.reason == "expired"
            assert job.error is not None and job.error.startswith("expired: not started by ")
        assert (await client.get_job(fine)).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    assert t.ran == ["fine"]


async def test_expiry_must_come_after_the_job_is_due(t: App) -> None:
    async with t.app.async_client() as client:
        with pytest.raises(ConfigurationError, match="expires must be later"):
            await client.submit("note", {"tag": "x"}, delay=10, expires=5)
        with pytest.raises(ConfigurationError, match="expires must be later"):
            await client.submit("note", {"tag": "x"}, expires=-1)
        with pytest.raises(ConfigurationError, match="timezone-aware"):
            await client.submit("note", {"tag": "x"}, expires=datetime.now() + timedelta(seconds=9))


@pytest.mark.parametrize("task", ["sleeper", "spinner"])
async def test_cancelling_a_running_job_ends_it_cancelled(t: App, task: str) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit(task, {})
        assert await asyncio.to_thread(t.started.wait, 20)
        assert await client.cancel(job_id)
        done = await client.wait(job_id, timeout=20)  # well before the handler's 30 s
        after = await client.submit("note", {"tag": "after"})  # the slot is free again
        assert (await client.wait(after, timeout=20)).status is JobStatus.COMPLETED
    assert done.status is JobStatus.CANCELLED and done.reason == "cancelled"
    assert done.error == "cancelled while running"
    expected = [] if task == "sleeper" else ["spinner saw cancelled=True"]
    assert t.ran == [*expected, "after"]


async def test_a_cancelled_queued_job_stays_cancelled_across_restarts(t: App) -> None:
    async with t.app.async_client() as client:
        job_id = await client.submit("note", {"tag": "never"}, delay=0.2)
        assert await client.cancel(job_id)
    async with t.app.async_client() as fresh, running_worker(t.app, concurrency=2):
        while time.time() < (await fresh.get_job(job_id)).created_at + 0.3:  # type: ignore[union-attr]
            await asyncio.sleep(0.05)  # (past the delay it would have run at)
        probe = await fresh.submit("note", {"tag": "probe"})
        await fresh.wait(probe, timeout=20)
        assert (await fresh.get_job(job_id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert t.ran == ["probe"]
