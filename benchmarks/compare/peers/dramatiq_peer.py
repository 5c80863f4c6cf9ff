"""Dramatiq, Redis broker, 2 processes x 8 threads."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.compare.peers._common import BIN, URL, done, started

GUARANTEE = "at-least-once: unacked messages of a dead worker are requeued after its heartbeat times out"
CONFIG = "`dramatiq --processes 2 --threads 8`"

dramatiq.set_broker(RedisBroker(url=URL))


@dramatiq.actor(max_retries=0)
def noop() -> None:
    done()


@dramatiq.actor(max_retries=0)
def stamp(t: float) -> None:
    started(t)


def submit_noop() -> None:
    noop.send()


def submit_stamp(t: float) -> None:
    stamp.send(t)


#: 2-core configurations tried for the I/O drain (its default is 8 threads per process).
CONFIGS = ("2 processes x 8 threads", "2 processes x 32 threads")


def worker_commands(config: str = CONFIGS[0]) -> list[list[str]]:
    threads = config.split(" x ")[1].split(maxsplit=1)[0]
    return [[f"{BIN}/dramatiq", __name__, "--processes", "2", "--threads", threads]]
