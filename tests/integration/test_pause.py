"""Pausing a routing key on every broker: workers take none of its jobs while running
ones finish, the pause outlives the worker and the broker connection, and resuming lets
the jobs run (docs/FLOW_CONTROL.md)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bananas import Bananas, ConfigurationError, JobStatus
from bananas.testing import join, running_worker
from tests.integration.test_workflows import MakeApp


class App:
    def __init__(self, app: Bananas) -> None:
        self.app = app
        self.ran: list[str] = []
        self.release = threading.Event()
        self.holding = threading.Event()
        ran = self.ran

        @app.task(routing_key="reports")
        def report(tag: str) -> str:
            ran.append(tag)
            return tag

        @app.task(routing_key="email")
        def email(tag: str) -> str:
            ran.append(tag)
            return tag

        @app.task(routing_key="reports")
        def slow(tag: str) -> str:
            self.holding.set()
            self.release.wait(20)
            ran.append(tag)
            return tag


@pytest.fixture
def t(make_app: MakeApp) -> Iterator[App]:
    app = App(make_app(routing_keys=("reports", "email")))
    yield app
    app.app.close()


async def test_a_paused_key_runs_nothing_until_resumed(t: App) -> None:
    async with t.app.async_client() as client:
        assert await client.pause("reports") is True
        assert await client.pause("reports") is False  # already paused
        held = [await client.submit("report", {"tag": f"r{i}"}) for i in range(3)]
        async with running_worker(t.app, concurrency=4):
            other = await client.submit("email", {"tag": "e"})  # the other key flows meanwhile
            assert (await client.wait(other, timeout=20)).status is JobStatus.COMPLETED
            stats = {s.routing_key: s for s in await client.queue_stats()}
            assert stats["reports"].paused and stats["reports"].ready == 3 and not stats["email"].paused
            assert [(await client.get_job(i)).status for i in held] == [JobStatus.PENDING] * 3  # type: ignore[union-attr]
            assert await client.resume("reports") is True
            assert await client.resume("reports") is False
            await join(t.app, timeout=20)
        assert sorted(t.ran) == ["e", "r0", "r1", "r2"]


async def test_running_jobs_finish_and_the_pause_outlives_the_worker(t: App) -> None:
    async with t.app.async_client() as client:
        running = await client.submit("slow", {"tag": "running"})
        async with running_worker(t.app, concurrency=4):
            assert await asyncio.to_thread(t.holding.wait, 20)
            await client.pause("reports")
            later = await client.submit("report", {"tag": "later"})
            t.release.set()
            assert (await client.wait(running, timeout=20)).status is JobStatus.COMPLETED
        # A new worker, a new connection: still paused.
    async with t.app.async_client() as fresh:
        assert {s.routing_key: s.paused for s in await fresh.queue_stats()}["reports"] is True
        async with running_worker(t.app, concurrency=4):
            probe = await fresh.submit("email", {"tag": "probe"})
            assert (await fresh.wait(probe, timeout=20)).status is JobStatus.COMPLETED
            assert (await fresh.get_job(later)).status is JobStatus.PENDING  # type: ignore[union-attr]
            await fresh.resume("reports")
            assert (await fresh.wait(later, timeout=20)).result == "later"
    assert t.ran == ["running", "probe", "later"]


async def test_delayed_jobs_become_ready_while_paused(t: App) -> None:
    async with t.app.async_client() as client:
        await client.pause("reports")
        delayed = await client.submit("report", {"tag": "delayed"}, delay=0.2)
        async with running_worker(t.app, concurrency=2):

            async def ready() -> int:
                return {s.routing_key: s for s in await client.queue_stats()}["reports"].ready

            async def became_ready() -> None:
                while await ready() != 1:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(became_ready(), 20)  # the scheduler moved it: due, not run
            probe = await client.submit("email", {"tag": "probe"})
            assert (await client.wait(probe, timeout=20)).status is JobStatus.COMPLETED
            assert (await client.get_job(delayed)).status is JobStatus.PENDING  # type: ignore[union-attr]
            await client.resume("reports")
            assert (await client.wait(delayed, timeout=20)).status is JobStatus.COMPLETED


async def test_an_illegal_key_is_refused(t: App) -> None:
    async with t.app.async_client() as client:
        with pytest.raises(ConfigurationError):
            await client.pause("no spaces allowed")
