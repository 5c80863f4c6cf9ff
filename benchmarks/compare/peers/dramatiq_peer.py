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


def worker_commands() -> list[list[str]]:
    return [[f"{BIN}/dramatiq", __name__, "--processes", "2", "--threads", "8"]]
