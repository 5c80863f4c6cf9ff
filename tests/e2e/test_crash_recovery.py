"""Leases: SIGKILLed workers lose nothing; poison jobs dead-letter as worker_lost."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from bananas import Client, JobStatus
from bananas.testing import wait_until
from tests.e2e.conftest import WorkerProcess

SpawnWorker = Callable[..., WorkerProcess]


def test_sigkilled_worker_job_runs_again_elsewhere(broker_url: str, spawn_worker: SpawnWorker, tmp_path: Path) -> None:
    client = Client(broker_url)
    job_id = client.submit("stall_once", {"tag": "k"})
    quick = [client.submit("noop", {}) for _ in range(5)]
    first = spawn_worker(broker_url, "--lease", "1", "--concurrency", "10")
    wait_until((tmp_path / "k.started").exists, what="the job to start on the first worker")
    for q in quick:
        assert client.wait(q, 10).status is JobStatus.COMPLETED
    first.signal(signal.SIGKILL)
    first.wait(10)
    killed_at = time.monotonic()
    second = spawn_worker(broker_url, "--lease", "1")
    job = client.wait(job_id, 20)
    assert job.status is JobStatus.COMPLETED, job
    assert job.result == f"finished by {second.pid}"
    assert job.deliveries == 2
    assert time.monotonic() - killed_at < 10
    client.close()


def test_job_that_kills_its_worker_is_dead_lettered_as_worker_lost(broker_url: str, spawn_worker: SpawnWorker) -> None:
    client = Client(broker_url)
    poison = client.submit("crash_worker", {})
    after = client.submit("noop", {})
    supervisor = spawn_worker(broker_url, "--lease", "0.5", "--processes", "1", "--concurrency", "1")
    job = client.wait(poison, 30)
    assert job.status is JobStatus.FAILED and job.reason == "worker_lost", job
    assert job.deliveries == 3
    assert client.wait(after, 20).status is JobStatus.COMPLETED  # the supervisor kept a child running
    assert supervisor.alive()
    client.close()


def test_leases_are_renewed_while_a_handler_blocks_the_event_loop(broker_url: str, spawn_worker: SpawnWorker) -> None:
    client = Client(broker_url)
    # The other worker leads the scheduler and would reclaim a lease that lapsed.
    spawn_worker(broker_url, "--lease", "1")
    blocker = spawn_worker(broker_url, "--lease", "1", "--no-scheduler", "--routing-keys", "blocking")
    job_id = client.submit("block_loop", {"seconds": 3.5}, routing_key="blocking")
    job = client.wait(job_id, 20)
    assert job.status is JobStatus.COMPLETED and job.deliveries == 1, job
    assert job.result == blocker.pid
    client.close()
