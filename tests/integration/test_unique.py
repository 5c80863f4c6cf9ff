"""Unique jobs on every broker: a duplicate submit gets the id of the job holding the key,
until that job is done (or started, per mode), dead-lettered, or the key's TTL passed;
duplicates inside one submit_many behave the same (docs/FLOW_CONTROL.md)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bananas import Bananas, ConfigurationError, JobSpec, JobStatus, PayloadError, PermanentError
from bananas.testing import join, running_worker
from tests.integration.test_workflows import MakeApp


class App:
    def __init__(self, app: Bananas) -> None:
        self.app = app
        self.ran: list[Any] = []
        self.release = threading.Event()
        self.holding = threading.Event()
        ran = self.ran

        @app.task
        def invoice(id: int) -> int:
            ran.append(id)
            return id

        @app.task(unique_key=lambda p: f"report:{p['day']}", unique_ttl=60)
        def report(day: str) -> str:
            ran.append(day)
            return day

        @app.task
        def slow(tag: str) -> str:
            self.holding.set()
            self.release.wait(20)
            ran.append(tag)
            return tag

        @app.task
        def broken(tag: str) -> None:
            raise PermanentError("no")


@pytest.fixture
def t(make_app: MakeApp) -> Iterator[App]:
    app = App(make_app())
    yield app
    app.app.close()


async def test_a_duplicate_gets_the_first_id_until_the_first_is_done(t: App) -> None:
    async with t.app.async_client() as client:
        first = await client.submit("invoice", {"id": 42}, unique_key="invoice:42")
        assert await client.submit("invoice", {"id": 42}, unique_key="invoice:42") == first
        other = await client.submit("invoice", {"id": 43}, unique_key="invoice:43")
        assert other != first
        async with running_worker(t.app, concurrency=2):
            await join(t.app, timeout=20)
            again = await client.submit("invoice", {"id": 42}, unique_key="invoice:42")  # the first is done
            assert again != first
            await join(t.app, timeout=20)
        assert sorted(t.ran) == [42, 42, 43]


async def test_submit_many_with_duplicates_in_one_batch(t: App) -> None:
    async with t.app.async_client() as client:
        ids = await client.submit_many([
            JobSpec("invoice", {"id": 1}, unique_key="i:1"), JobSpec("invoice", {"id": 2}),
            JobSpec("invoice", {"id": 1}, unique_key="i:1"), JobSpec("invoice", {"id": 3}, unique_key="i:3"),
        ])  # fmt: skip
        assert ids[0] == ids[2] and len(set(ids)) == 3
        assert await client.submit_many([JobSpec("invoice", {"id": 1}, unique_key="i:1")]) == [ids[0]]
        async with running_worker(t.app, concurrency=2):
            await join(t.app, timeout=20)
        assert sorted(t.ran) == [1, 2, 3]


def test_the_sync_client_and_the_task_s_unique_key(t: App) -> None:
    client = t.app.client
    first = client.submit("report", {"day": "2026-12-07"})
    assert client.submit("report", {"day": "2026-12-07"}) == first  # the task's unique_key function
    assert client.submit("report", {"day": "2026-12-08"}) != first
    assert client.submit_many([("report", {"day": "2026-12-07"})]) == [first]
    assert client.submit("report", {"day": "2026-12-07"}, unique_key="mine") != first  # the submit's key wins


async def test_until_started_frees_the_key_once_the_job_runs(t: App) -> None:
    async with t.app.async_client() as client:
        first = await client.submit("slow", {"tag": "a"}, unique_key="s", unique_mode="until_started")
        assert await client.submit("slow", {"tag": "b"}, unique_key="s", unique_mode="until_started") == first
        async with running_worker(t.app, concurrency=2):
            assert await asyncio.to_thread(t.holding.wait, 20)  # running: started, not done
            second = await client.submit("slow", {"tag": "c"}, unique_key="s", unique_mode="until_started")
            assert second != first
            done_key = await client.submit("slow", {"tag": "d"}, unique_key="d")
            t.release.set()
            await join(t.app, timeout=20)
        assert (await client.get_job(done_key)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_until_done_holds_while_running_and_a_dead_letter_frees_it(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        first = await client.submit("slow", {"tag": "a"}, unique_key="k")
        assert await asyncio.to_thread(t.holding.wait, 20)
        assert await client.submit("slow", {"tag": "b"}, unique_key="k") == first  # running holds it
        t.release.set()
        await join(t.app, timeout=20)
        dead = await client.submit("broken", {"tag": "x"}, unique_key="b")
        assert (await client.wait(dead, timeout=20)).status is JobStatus.FAILED
        assert await client.submit("broken", {"tag": "y"}, unique_key="b") != dead  # dead-lettered: freed
        await join(t.app, timeout=20)


async def test_the_key_is_freed_after_its_ttl(t: App) -> None:
    async with t.app.async_client() as client:
        first = await client.submit("invoice", {"id": 7}, unique_key="ttl", unique_ttl=0.2)
        assert await client.submit("invoice", {"id": 7}, unique_key="ttl", unique_ttl=0.2) == first
        end = time.time() + 0.3
        while time.time() < end:  # (no worker runs: only the TTL has to pass)
            await asyncio.sleep(0.05)
        assert await client.submit("invoice", {"id": 7}, unique_key="ttl") != first


async def test_bad_unique_options_are_refused(t: App, make_app: MakeApp) -> None:
    async with t.app.async_client() as client:
        with pytest.raises(ConfigurationError, match="unique_mode must be one of"):
            await client.submit("invoice", {"id": 1}, unique_key="x", unique_mode="forever")
        with pytest.raises(ConfigurationError, match="need a unique_key"):
            await client.submit("invoice", {"id": 1}, unique_ttl=5)
        with pytest.raises(ConfigurationError, match="unique_ttl must be > 0"):
            await client.submit("invoice", {"id": 1}, unique_key="x", unique_ttl=0)
        with pytest.raises(ConfigurationError, match="unique_key must be a string"):
            await client.submit("invoice", {"id": 1}, unique_key="")
        with pytest.raises(ConfigurationError, match="submit_and_wait does not take unique keys"):
            await client.submit_and_wait("report", {"day": "x"})  # the task's unique_key is not dropped
        with pytest.raises(ConfigurationError, match="callbacks cannot have a unique key"):
            await client.submit("invoice", {"id": 1}, unique_key="x", on_success=t.app.tasks["invoice"].s())
        other = make_app()

        @other.task(unique_key=lambda p: p["missing"])
        def keyed(x: int) -> int:
            return x

        async with other.async_client() as own:
            with pytest.raises(PayloadError, match="unique_key function raised"):
                await own.submit("keyed", {"x": 1})
        other.close()
