"""The watchdog rebuilds a fetch loop that silently stopped coming back from the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bananas import Bananas
from bananas.brokers.base import Delivery, Offer
from bananas.observability import health as health_module
from bananas.observability.health import worker_live
from bananas.testing import running_worker, wait_until_async
from bananas.worker import worker as worker_module
from tests.conftest import make_settings


async def test_stuck_fetch_loop_is_rebuilt(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "IDLE_BLOCK_S", 0.1)
    monkeypatch.setattr(worker_module, "STALL_S", 0.3)
    app = Bananas(settings=make_settings(broker_url))

    @app.task
    async def hello() -> str:
        return "hi"

    client = app.async_client()
    async with running_worker(app) as worker:
        original = worker.broker.wait_for_work
        hung = asyncio.Event()

        async def wait_for_work(routing_keys: Sequence[str], timeout_s: float, offer: Offer | None) -> list[Delivery]:
            if not hung.is_set():
                hung.set()
                await asyncio.Event().wait()  # a consumer that silently stopped
            return await original(routing_keys, timeout_s, offer)

        monkeypatch.setattr(worker.broker, "wait_for_work", wait_for_work)
        await asyncio.wait_for(hung.wait(), 10)
        await wait_until_async(lambda: worker.fetch_restarts > 0, 10, "the watchdog to rebuild the fetch loop")
        assert await client.submit_and_wait("hello", timeout=10) == "hi"
        assert worker_live(worker).status == 200
    await client.close()


async def test_health_fails_while_the_fetch_loop_is_stuck(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The watchdog is kept from acting (its threshold far away), so the stall lasts: /health
    # turns 503 once the loop made no progress for STALE_FETCH_S, and is 200 again after.
    monkeypatch.setattr(worker_module, "IDLE_BLOCK_S", 0.1)
    monkeypatch.setattr(worker_module, "STALL_S", 3600.0)
    monkeypatch.setattr(health_module, "STALE_FETCH_S", 0.3)
    app = Bananas(settings=make_settings(broker_url))
    async with running_worker(app) as worker:
        original = worker.broker.wait_for_work
        stuck, release = asyncio.Event(), asyncio.Event()

        async def wait_for_work(routing_keys: Sequence[str], timeout_s: float, offer: Offer | None) -> list[Delivery]:
            if not release.is_set():
                stuck.set()
                await release.wait()
            return await original(routing_keys, timeout_s, offer)

        monkeypatch.setattr(worker.broker, "wait_for_work", wait_for_work)
        await asyncio.wait_for(stuck.wait(), 10)
        await wait_until_async(lambda: worker.fetch_stalled_s >= 0.3, 10, "the stall to last 0.3 s")
        sick = worker_live(worker)
        assert sick.status == 503 and worker.fetch_restarts == 0
        release.set()
        await wait_until_async(lambda: worker.fetch_stalled_s < 0.3, 10, "the fetch loop to recover")
        assert worker_live(worker).status == 200
