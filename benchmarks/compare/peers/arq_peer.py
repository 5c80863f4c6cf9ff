"""arq, two worker processes, 100 concurrent jobs each, 10 ms poll delay."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from benchmarks.compare.peers._common import BIN, URL, adone, astarted

GUARANTEE = "at-least-once via an in-progress key with expiry (job re-runs after its timeout if the worker dies)"
CONFIG = "2 x `arq` worker processes, max_jobs 100, poll_delay 0.01 s (default 0.5 s), results kept 1 s"

_pool: ArqRedis | None = None


async def noop(ctx: dict[str, Any]) -> None:
    await adone()


async def stamp(ctx: dict[str, Any], t: float) -> None:
    await astarted(t)


class WorkerSettings:
    functions = [noop, stamp]  # noqa: RUF012 - arq reads class attributes
    redis_settings = RedisSettings.from_dsn(URL)
    max_jobs = 100
    poll_delay = 0.01
    keep_result = 1


async def open() -> None:
    global _pool  # noqa: PLW0603 - one connection per worker process
    _pool = await create_pool(RedisSettings.from_dsn(URL))


async def close() -> None:
    if _pool is not None:
        await _pool.aclose()


async def submit_noop() -> None:
    assert _pool is not None
    await _pool.enqueue_job("noop")


async def submit_stamp(t: float) -> None:
    assert _pool is not None
    await _pool.enqueue_job("stamp", t)


def worker_commands() -> list[list[str]]:
    cmd = [f"{BIN}/arq", f"{__name__}.WorkerSettings"]
    return [cmd, cmd]
