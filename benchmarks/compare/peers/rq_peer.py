"""RQ, two SimpleWorker processes (no fork per job)."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from benchmarks.compare.peers._common import BIN, URL, done, started

GUARANTEE = "at-least-once-ish: a job of a dead worker is moved to the failed registry (not retried) by default"
CONFIG = "2 x `rq worker --worker-class rq.worker.SimpleWorker` (no fork per job)"

queue = Queue("default", connection=Redis.from_url(URL))


def noop() -> None:
    done()


def stamp(t: float) -> None:
    started(t)


def submit_noop() -> None:
    queue.enqueue(noop)


def submit_stamp(t: float) -> None:
    queue.enqueue(stamp, t)


def submit_batch(n: int) -> None:
    for start in range(0, n, 1000):
        queue.enqueue_many([Queue.prepare_data(noop) for _ in range(min(1000, n - start))])


def worker_commands() -> list[list[str]]:
    cmd = [f"{BIN}/rq", "worker", "-u", URL, "--worker-class", "rq.worker.SimpleWorker", "-q", "default"]
    return [cmd, cmd]
