"""Latency at a steady submit rate, and dequeue cost against queue depth."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis

from bananas import AsyncClient, Client, JobSpec
from bananas.bench.procs import WorkerProcess

#: Most ``wait`` calls sampled per second (each is a few round trips of its own).
WAIT_SAMPLES_PER_S = 200


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of a list of milliseconds."""
    if not values_ms:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "samples": 0}
    v = sorted(values_ms)

    def pick(q: float) -> float:
        return v[min(len(v) - 1, int(len(v) * q))]

    return {"p50_ms": statistics.median(v), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": v[-1],
            "samples": len(v)}  # fmt: skip


def _visible_after(client: Client, job_id: str) -> float:
    job = client.wait(job_id, 30)
    return (time.time() - job.created_at) * 1000


def _paced(client: Client, rate: float, seconds: float, on_submit: Callable[[str], None] | None = None) -> list[str]:
    """Submit ``stamp`` jobs at ``rate`` per second; their ids."""
    ids: list[str] = []
    interval = 1.0 / rate
    t_next = time.perf_counter()
    for _ in range(int(rate * seconds)):
        t_next += interval
        ids.append(client.submit("stamp", {}))
        if on_submit is not None:
            on_submit(ids[-1])
        pause = t_next - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return ids


def steady(client: Client, rate: float, seconds: float) -> dict[str, Any]:
    """Two passes of ``stamp`` jobs at ``rate`` per second for ``seconds``: submit->start
    with nothing else running in this process, then submit->visible to ``wait`` with
    waiting threads (at most 200 per second) beside the submitter. The waiters would
    otherwise delay the submitter (GIL, CPU) between a job's ``created_at`` and its
    send, and the start figures would measure the benchmark rather than the queue."""
    started = []
    for job_id in _paced(client, rate, seconds):
        job = client.wait(job_id, 30)
        started.append((job.result - job.created_at) * 1000)
    every = max(1, round(rate / WAIT_SAMPLES_PER_S))
    submitted = itertools.count()
    waits: list[Future[float]] = []
    with ThreadPoolExecutor(16) as pool:

        def sample(job_id: str) -> None:
            if next(submitted) % every == 0:
                waits.append(pool.submit(_visible_after, client, job_id))

        _paced(client, rate, seconds, sample)
        visible = [w.result() for w in waits]
    return {"rate_per_s": rate, "submit_to_start": percentiles(started), "submit_to_visible": percentiles(visible)}


def run_latency(client: Client, url: str, rates: tuple[float, ...], seconds: float) -> dict[str, Any]:
    """One worker (1 process x 100); each rate in turn."""
    out: dict[str, Any] = {}
    with WorkerProcess(url, 100):
        client.submit_and_wait("noop", {}, timeout=60)
        time.sleep(0.5)
        for rate in rates:
            out[f"{rate:g}_per_s"] = steady(client, rate, seconds)
    return out


def _fill(r: redis.Redis, depth: int) -> None:
    """``depth`` filler ids at the lowest priority of the ready queue."""
    key = "bananas:{default}:ready"
    for start in range(0, depth, 10_000):
        count = min(10_000, depth - start)
        r.zadd(key, {f"filler{start + i:020d}": 99e13 + start + i for i in range(count)})


async def _dequeue_each(url: str, n: int) -> float:
    async with AsyncClient(url) as client:
        broker = client.broker
        await broker.ping()
        t0 = time.perf_counter()
        for _ in range(n):
            got = await broker.dequeue(["default"], 1, 30.0, "bench")
            assert got, "the measured jobs ran out"
        return (time.perf_counter() - t0) / n * 1e6


def run_depth(client: Client, url: str, depths: tuple[int, ...], measured: int, flush: Any) -> dict[str, Any]:
    """Dequeue one job at a time with ``depth`` others waiting behind it: µs per call in
    the client and inside Redis (the sorted set keeps this O(log n))."""
    r = redis.Redis.from_url(url)
    out: dict[str, Any] = {}
    try:
        for depth in depths:
            flush()
            _fill(r, depth)
            client.submit_many([JobSpec("noop", {}, priority="high") for _ in range(measured)])
            r.config_resetstat()
            client_us = asyncio.run(_dequeue_each(url, measured))
            stats = r.info("commandstats").get("cmdstat_evalsha", {})
            out[str(depth)] = {"client_us": client_us, "server_us": float(stats.get("usec_per_call", 0.0))}
    finally:
        r.close()
    return out
