"""Concurrent AsyncClient submits share round trips, and errors reach every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bananas import AsyncClient, BrokerUnavailable, Job, JobStatus
from bananas.testing import free_port


async def test_concurrent_submits_are_batched_and_all_stored(broker_url: str) -> None:
    client = AsyncClient(broker_url)
    calls = 0
    enqueue = client.broker.enqueue

    async def counting(jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        nonlocal calls
        calls += 1
        await enqueue(jobs, watch=watch)

    client.broker.enqueue = counting  # type: ignore[method-assign]
    ids = await asyncio.gather(*(client.submit("noop", {"n": i}) for i in range(200)))
    assert len(set(ids)) == 200
    assert calls <= 5, f"{calls} enqueue calls for 200 concurrent submits"
    for job_id in ids[::40]:
        job = await client.get_job(job_id)
        assert job is not None and job.status is JobStatus.PENDING
    await client.close()


async def test_a_failed_batch_raises_in_every_caller() -> None:
    client = AsyncClient(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    results = await asyncio.gather(*(client.submit("noop", {}) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, BrokerUnavailable) for r in results), results
    await client.close()


async def test_a_cancelled_caller_does_not_cancel_the_batch(broker_url: str) -> None:
    client = AsyncClient(broker_url)
    victim = asyncio.ensure_future(client.submit("noop", {"who": "victim"}))
    others = [asyncio.ensure_future(client.submit("noop", {"who": i})) for i in range(5)]
    await asyncio.sleep(0)  # all six are queued in the same batch now
    victim.cancel()
    ids = await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await victim
    for job_id in ids:
        assert await client.get_job(job_id) is not None
    await client.close()
