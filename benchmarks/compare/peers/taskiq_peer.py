"""taskiq with taskiq-redis ListQueueBroker, 2 worker processes."""

from __future__ import annotations

from taskiq_redis import ListQueueBroker

from benchmarks.compare.peers._common import BIN, URL, adone, astarted

GUARANTEE = "at-most-once: ListQueueBroker pops the message (BRPOP); a crash loses it"
CONFIG = "`taskiq worker --workers 2 --max-async-tasks 100`, ListQueueBroker, no result backend"

broker = ListQueueBroker(URL)


@broker.task(task_name="noop")
async def noop() -> None:
    await adone()


@broker.task(task_name="stamp")
async def stamp(t: float) -> None:
    await astarted(t)


async def open() -> None:
    await broker.startup()


async def close() -> None:
    await broker.shutdown()


async def submit_noop() -> None:
    await noop.kiq()


async def submit_stamp(t: float) -> None:
    await stamp.kiq(t)


def worker_commands() -> list[list[str]]:
    return [[f"{BIN}/taskiq", "worker", f"{__name__}:broker", "--workers", "2", "--max-async-tasks", "100"]]
