"""Run one scenario for one peer; prints one JSON object. Runs inside the compare venv:

BENCH_REDIS_URL=redis://... .venv/bin/python -m benchmarks.compare.peer rq drain --jobs 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import redis

from benchmarks.compare.peers._common import DONE, LAT, URL


async def call(fn: Any, *args: Any) -> None:
    res = fn(*args)
    if inspect.isawaitable(res):
        await res


@contextlib.contextmanager
def workers(peer: ModuleType, config: str | None = None) -> Iterator[None]:
    env = {**os.environ, "BENCH_REDIS_URL": URL}
    commands = peer.worker_commands() if config is None else peer.worker_commands(config)
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for cmd in commands]  # fmt: skip
    try:
        yield
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


async def enqueue(peer: ModuleType, r: redis.Redis, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    for _ in range(n):
        await call(peer.submit_noop)
    out: dict[str, Any] = {"one_at_a_time_per_s": n / (time.perf_counter() - t0)}
    r.flushall()
    if hasattr(peer, "submit_batch"):
        t0 = time.perf_counter()
        peer.submit_batch(n * 5)
        out["batch_per_s"] = n * 5 / (time.perf_counter() - t0)
    return out


def wait_count(r: redis.Redis, n: int, timeout_s: float) -> tuple[float, float]:
    """(time the first job finished, time the n-th did), polling the done counter."""
    deadline = time.monotonic() + timeout_s
    first = 0.0
    while True:
        count = int(r.get(DONE) or 0)
        now = time.perf_counter()
        if count >= 1 and not first:
            first = now
        if count >= n:
            return first, now
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count} of {n} jobs finished in {timeout_s:g} s")
        time.sleep(0.001 if not first else 0.01)


async def drain_one(peer: ModuleType, r: redis.Redis, n: int, config: str | None) -> float:
    r.flushall()
    if hasattr(peer, "submit_batch"):
        peer.submit_batch(n)
    else:
        for _ in range(n):
            await call(peer.submit_noop)
    with workers(peer, config):
        first, last = wait_count(r, n, 120 + n / 100)
    return (n - 1) / (last - first)


async def drain(peer: ModuleType, r: redis.Redis, n: int) -> dict[str, Any]:
    """Each of the peer's 2-core configurations in turn; the best one is ``per_s``."""
    configs: dict[str, float] = {}
    for config in getattr(peer, "CONFIGS", (None,)):
        configs[config or peer.CONFIG] = await drain_one(peer, r, n, config)
    best = max(configs, key=lambda k: configs[k])
    return {"per_s": configs[best], "best_config": best, "configs": configs}


async def latency(peer: ModuleType, r: redis.Redis, rate: float, seconds: float) -> dict[str, Any]:
    with workers(peer):
        await call(peer.submit_noop)
        wait_count(r, 1, 60)
        await asyncio.sleep(1.0)
        n = int(rate * seconds)
        t_next = time.perf_counter()
        for _ in range(n):
            t_next += 1.0 / rate
            await call(peer.submit_stamp, time.time())
            pause = t_next - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        deadline = time.monotonic() + 60
        while r.llen(LAT) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    v = sorted(float(x) * 1000 for x in r.lrange(LAT, 0, -1))
    if not v:
        return {"samples": 0}
    pick = lambda q: v[min(len(v) - 1, int(len(v) * q))]  # noqa: E731
    return {"p50_ms": statistics.median(v), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": v[-1],
            "samples": len(v)}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    peer = importlib.import_module(f"benchmarks.compare.peers.{args.peer}_peer")
    r = redis.Redis.from_url(URL)
    r.flushall()
    if hasattr(peer, "open"):
        await peer.open()
    try:
        if args.scenario == "enqueue":
            return await enqueue(peer, r, args.jobs)
        if args.scenario == "drain":
            return await drain(peer, r, args.jobs)
        return await latency(peer, r, args.rate, args.seconds)
    finally:
        if hasattr(peer, "close"):
            await peer.close()
        r.flushall()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer")
    parser.add_argument("scenario", choices=("enqueue", "drain", "latency"))
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
