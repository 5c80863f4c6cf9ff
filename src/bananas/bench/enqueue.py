"""Enqueue scenarios: one at a time, ``submit_many``, ``AsyncClient`` with concurrent submitters."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping
from typing import Any

from bananas import AsyncClient, Client, JobSpec


def submit_one_at_a_time(client: Client, n: int, name: str = "noop", payload: Mapping[str, Any] | None = None) -> float:
    """``Client.submit`` in a loop: jobs/s."""
    body = dict(payload or {})
    t0 = time.perf_counter()
    for _ in range(n):
        client.submit(name, body)
    return n / (time.perf_counter() - t0)


def submit_unique_one_at_a_time(client: Client, n: int) -> float:
    """``Client.submit`` with a fresh ``unique_key`` per job, in a loop: jobs/s."""
    tag = time.time_ns()
    t0 = time.perf_counter()
    for i in range(n):
        client.submit("noop", {}, unique_key=f"bench:{tag}:{i}")
    return n / (time.perf_counter() - t0)


def submit_in_batches(
    client: Client, n: int, batch: int = 1000, name: str = "noop", payload: Mapping[str, Any] | None = None
) -> float:
    """``Client.submit_many`` with ``batch`` jobs per call: jobs/s."""
    body = dict(payload or {})
    rounds = max(1, n // batch)
    t0 = time.perf_counter()
    for _ in range(rounds):
        client.submit_many([JobSpec(name, body) for _ in range(batch)])
    return rounds * batch / (time.perf_counter() - t0)


async def _submit_concurrently(url: str, n: int, submitters: int) -> float:
    async with AsyncClient(url) as client:
        await client.submit("noop", {})  # connect before the clock starts

        async def one(count: int) -> None:
            for _ in range(count):
                await client.submit("noop", {})

        each = max(1, n // submitters)
        t0 = time.perf_counter()
        await asyncio.gather(*(one(each) for _ in range(submitters)))
        return each * submitters / (time.perf_counter() - t0)


def submit_async(url: str, n: int, submitters: int = 100) -> float:
    """``AsyncClient.submit`` from ``submitters`` concurrent coroutines: jobs/s."""
    return asyncio.run(_submit_concurrently(url, n, submitters))


def run_enqueue(client: Client, url: str, jobs: int, flush: Any) -> dict[str, Any]:
    """The enqueue scenario; ``flush()`` empties the broker between parts."""
    out: dict[str, Any] = {"one_at_a_time_per_s": submit_one_at_a_time(client, jobs)}
    flush()
    plain, unique = [out["one_at_a_time_per_s"]], []
    for _ in range(2):  # alternately, in this run (noisy machine): medians of 3 and 2
        unique.append(submit_unique_one_at_a_time(client, jobs))
        flush()
        plain.append(submit_one_at_a_time(client, jobs))
        flush()
    out["unique_one_at_a_time_per_s"] = statistics.median(unique)
    out["unique_vs_plain_submit"] = statistics.median(unique) / statistics.median(plain)
    out["submit_many_per_s"] = submit_in_batches(client, jobs * 5)
    flush()
    out["async_100_submitters_per_s"] = submit_async(url, jobs)
    flush()
    return out
