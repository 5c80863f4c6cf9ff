"""The no-op tasks every benchmark scenario runs (``--app bananas.bench.tasks:app``)."""

from __future__ import annotations

import os
import time
from typing import Any

import redis.asyncio as aioredis

from bananas import Bananas

app = Bananas()
_io: aioredis.Redis | None = None


@app.task
async def noop() -> None:
    """Do nothing: the queue's own cost is what is measured."""
    return None


@app.task
async def sink(data: str = "") -> None:
    """Do nothing with a payload (the payload scenarios)."""
    return None


@app.task
async def stamp() -> float:
    """Return the wall-clock time the handler started (submit -> start latency)."""
    return time.time()


@app.task
async def io() -> None:
    """One Redis round trip (``INCR``) with ``redis.asyncio``: the I/O scenario's body.

    The server is ``BENCH_IO_URL`` (the benchmark's redis-server), one connection pool
    per worker process.
    """
    global _io  # noqa: PLW0603 - one pool per worker process, made on first use
    if _io is None:
        _io = aioredis.Redis.from_url(os.environ["BENCH_IO_URL"], max_connections=200)
    await _io.incr("bench:io")


@app.task
async def relay(value: Any = None) -> dict[str, float]:
    """A chain step: when the handler started and ended (wall clock), so that the gap
    between one step's end and the next one's start is the workflow's own cost."""
    return {"start": time.time(), "end": time.time()}


@app.task
async def count(values: list[Any]) -> int:
    """A chord callback: how many results it received."""
    return len(values)
