"""Huey, RedisHuey (blocking dequeue), 2 worker processes, results off."""

from __future__ import annotations

from huey import RedisHuey

from benchmarks.compare.peers._common import BIN, URL, done, started

GUARANTEE = "at-most-once: a task is popped off the list before it runs; a crash loses it"
CONFIG = "`huey_consumer -k process -w 2`, blocking BRPOP dequeue, results off"

huey = RedisHuey("bench", url=URL, blocking=True, results=False)


@huey.task()
def noop() -> None:
    done()


@huey.task()
def stamp(t: float) -> None:
    started(t)


def submit_noop() -> None:
    noop()


def submit_stamp(t: float) -> None:
    stamp(t)


#: 2-core configurations tried for the I/O drain.
CONFIGS = ("2 processes", "32 threads")


def worker_commands(config: str = CONFIGS[0]) -> list[list[str]]:
    kind, workers = ("process", "2") if config == CONFIGS[0] else ("thread", "32")
    return [[f"{BIN}/huey_consumer", f"{__name__}.huey", "-k", kind, "-w", workers, "-q"]]
