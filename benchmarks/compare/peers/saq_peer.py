"""SAQ, 2 worker processes, concurrency 100 each."""

from __future__ import annotations

from typing import Any

from saq import Queue

from benchmarks.compare.peers._common import BIN, URL, adone, astarted

GUARANTEE = "at-least-once via job timeouts and heartbeats swept by workers"
CONFIG = "`saq --workers 2`, concurrency 100"

queue = Queue.from_url(URL)


async def noop(ctx: dict[str, Any]) -> None:
    await adone()


async def stamp(ctx: dict[str, Any], *, t: float) -> None:
    await astarted(t)


settings = {"queue": queue, "functions": [noop, stamp], "concurrency": 100}


async def open() -> None:
    await queue.connect()


async def close() -> None:
    await queue.disconnect()


async def submit_noop() -> None:
    await queue.enqueue("noop")


async def submit_stamp(t: float) -> None:
    await queue.enqueue("stamp", t=t)


def worker_commands() -> list[list[str]]:
    return [[f"{BIN}/saq", f"{__name__}.settings", "--workers", "2"]]
