"""SIGTERM: stop fetching, finish running jobs within the grace period, requeue the rest."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from bananas import Client, JobStatus
from bananas.testing import wait_until
from tests.e2e.conftest import WorkerProcess

SpawnWorker = Callable[..., WorkerProcess]


def test_sigterm_finishes_short_jobs_and_requeues_long_ones(broker_url: str, spawn_worker: SpawnWorker) -> None:
    client = Client(broker_url)
    short = client.submit("sleepy", {"seconds": 0.5})
    long = client.submit("sleepy", {"seconds": 30})
    queued = client.submit("sleepy", {"seconds": 0.1})
    worker = spawn_worker(broker_url, "--concurrency", "2", "--grace", "1.5")

    def both_running() -> bool:
        jobs = [client.get_job(short), client.get_job(long)]
        return all(j is not None and j.status is JobStatus.PROCESSING for j in jobs)

    wait_until(both_running, what="two jobs processing")
    t0 = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert time.monotonic() - t0 < 5
    done = client.get_job(short)
    assert done is not None and done.status is JobStatus.COMPLETED
    back = client.get_job(long)
    assert back is not None and back.status is JobStatus.PENDING  # requeued at once, not after the lease
    still = client.get_job(queued)
    assert still is not None and still.status is JobStatus.PENDING
    assert "stopped" in worker.output()
    client.close()
