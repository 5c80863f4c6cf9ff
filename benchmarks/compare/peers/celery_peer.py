"""Celery 5, Redis broker, prefork pool with 2 children, results ignored."""

from __future__ import annotations

from celery import Celery

from benchmarks.compare.peers._common import BIN, URL, done, started

GUARANTEE = "at-most-once on a worker crash (acks on receipt; acks_late off by default), no leases"
CONFIG = "prefork, 2 child processes, prefetch multiplier 64, results ignored, no gossip/mingle/heartbeat"

app = Celery("bench", broker=URL)
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=64, broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False)  # fmt: skip


@app.task(name="noop")
def noop() -> None:
    done()


@app.task(name="stamp")
def stamp(t: float) -> None:
    started(t)


def submit_noop() -> None:
    noop.delay()


def submit_stamp(t: float) -> None:
    stamp.delay(t)


#: 2-core configurations tried for the I/O drain.
CONFIGS = ("prefork x 2", "threads x 32")


def worker_commands(config: str = CONFIGS[0]) -> list[list[str]]:
    pool, n = ("prefork", "2") if config == CONFIGS[0] else ("threads", "32")
    return [[f"{BIN}/celery", "-A", __name__, "worker", "-P", pool, "-c", n, "-l", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"]]  # fmt: skip
