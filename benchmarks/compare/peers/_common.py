"""What every adapter shares: the URL, and completion recording for handlers."""

from __future__ import annotations

import os
import sys
import time

import redis
import redis.asyncio as aioredis

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PY = sys.executable
BIN = os.path.dirname(PY)
DONE, LAT = "bench:done", "bench:lat"

_sync: redis.Redis | None = None
_async: aioredis.Redis | None = None


def _r() -> redis.Redis:
    global _sync  # noqa: PLW0603 - one connection per worker process
    if _sync is None:
        _sync = redis.Redis.from_url(URL)
    return _sync


def _ar() -> aioredis.Redis:
    global _async  # noqa: PLW0603 - one connection per worker process
    if _async is None:
        _async = aioredis.Redis.from_url(URL)
    return _async


def done() -> None:
    """Count one finished no-op job."""
    _r().incr(DONE)


def started(t: float) -> None:
    """Record submit -> start for one stamp job."""
    _r().rpush(LAT, time.time() - t)


async def adone() -> None:
    """``done`` for async handlers."""
    await _ar().incr(DONE)


async def astarted(t: float) -> None:
    """``started`` for async handlers."""
    await _ar().rpush(LAT, time.time() - t)
