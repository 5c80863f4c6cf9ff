"""The ceiling: the same operations done by a minimal hand-written redis-py + hiredis loop.

Nothing a Python process does through redis-py can beat these on this machine, so every
Bananas figure is also reported as a fraction of one of them.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import redis

#: A job-sized body (what a no-op job encodes to, give or take).
BODY = b'{"id":"01JD0Q6W3M5Z8V2C9XK7T4B1RS","name":"noop","payload":{},"priority":50}'
KEY = "bench:limit"


def push_one_at_a_time(r: redis.Redis, n: int) -> float:
    """LPUSH, one round trip per job: jobs/s."""
    t0 = time.perf_counter()
    for _ in range(n):
        r.lpush(KEY, BODY)
    return n / (time.perf_counter() - t0)


def push_pipelined(r: redis.Redis, n: int, batch: int = 1000) -> float:
    """LPUSH pipelined, one round trip per ``batch`` jobs: jobs/s."""
    rounds = max(1, n // batch)
    t0 = time.perf_counter()
    for _ in range(rounds):
        with r.pipeline(transaction=False) as pipe:
            for _ in range(batch):
                pipe.lpush(KEY, BODY)
            pipe.execute()
    return rounds * batch / (time.perf_counter() - t0)


def pop_one_at_a_time(r: redis.Redis, n: int) -> float:
    """RPOP, one round trip per job: jobs/s (the list must hold ``n`` items)."""
    t0 = time.perf_counter()
    for _ in range(n):
        r.rpop(KEY)
    return n / (time.perf_counter() - t0)


def pop_pipelined(r: redis.Redis, n: int, batch: int = 100) -> float:
    """RPOP pipelined ``batch`` at a time: jobs/s."""
    rounds = max(1, n // batch)
    t0 = time.perf_counter()
    for _ in range(rounds):
        with r.pipeline(transaction=False) as pipe:
            for _ in range(batch):
                pipe.rpop(KEY)
            pipe.execute()
    return rounds * batch / (time.perf_counter() - t0)


def round_trip_us(r: redis.Redis, n: int = 2000) -> float:
    """Median PING round trip in microseconds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r.ping()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def run_limit(url: str, jobs: int) -> dict[str, Any]:
    """Every ceiling, measured in this process."""
    r = redis.Redis.from_url(url)
    try:
        r.delete(KEY)
        out: dict[str, Any] = {"push_one_per_s": push_one_at_a_time(r, jobs)}
        out["pop_one_per_s"] = pop_one_at_a_time(r, jobs)
        r.delete(KEY)
        out["push_pipelined_per_s"] = push_pipelined(r, jobs * 5)
        out["pop_pipelined_per_s"] = pop_pipelined(r, jobs * 5)
        out["round_trip_us"] = round_trip_us(r, min(jobs, 5000))
        r.delete(KEY)
        return out
    finally:
        r.close()
