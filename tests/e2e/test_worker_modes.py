"""Each worker mode as a real ``bananas worker`` process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from bananas import Client, JobStatus
from bananas.testing import wait_until
from tests.e2e.conftest import ROOT, WorkerProcess


def status(client: Client, job_id: str) -> JobStatus | None:
    job = client.get_job(job_id)
    return None if job is None else job.status


def completed(client: Client, job_id: str, timeout: float = 20) -> bool:
    """Wait for the job's outcome (the broker notifies ``wait``: no polling)."""
    return client.wait(job_id, timeout).status is JobStatus.COMPLETED


def test_thin_and_default_modes_run_everything(broker_url: str, spawn_worker: Callable[..., WorkerProcess]) -> None:
    with Client(broker_url) as client:
        for mode, concurrency in (("thin", "2"), ("default", "20")):
            w = spawn_worker(broker_url, "--mode", mode, "--concurrency", concurrency)
            ids = [client.submit("noop", priority=p) for p in ("high", "low")]
            for job_id in ids:
                assert completed(client, job_id), f"{mode} worker to run {job_id}"
            w.signal(15)
            assert w.wait(30) == 0, w.output()


def test_specialized_mode_takes_only_its_priorities(
    broker_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    with Client(broker_url) as client:
        low = client.submit("noop", priority="low")
        high = client.submit("noop", priority="high")
        spawn_worker(broker_url, "--mode", "specialized", "--priorities", "high")
        assert completed(client, high)
        later = client.submit("noop", priority=95)
        assert completed(client, later)
        job = client.get_job(low)
        assert job is not None and job.status is JobStatus.PENDING and job.deliveries == 0


def test_job_specialized_mode_takes_only_its_job_types(
    broker_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    with Client(broker_url) as client:
        other = client.submit("noop")
        mine = client.submit("pid")
        spawn_worker(broker_url, env={"WORKER_MODE": "job-specialized", "WORKER_JOB_TYPES": "pid,sleepy"})
        assert completed(client, mine)
        job = client.get_job(other)
        assert job is not None and job.status is JobStatus.PENDING and job.deliveries == 0


def test_scheduler_only_mode_runs_no_jobs(broker_url: str, spawn_worker: Callable[..., WorkerProcess]) -> None:
    with Client(broker_url) as client:
        spawn_worker(broker_url, "--mode", "scheduler-only")
        delayed = client.submit("noop", delay=0.3)
        wait_until(lambda: status(client, delayed) is JobStatus.PENDING, 20, "the scheduler to move the delayed job")
        job = client.get_job(delayed)
        assert job is not None and job.deliveries == 0


def test_bad_mode_combination_is_a_clear_error(broker_url: str) -> None:
    cmd = [sys.executable, "-m", "bananas", "worker", "--app", "tests.e2e.app:app", "--url", broker_url,
           "--mode", "specialized"]  # fmt: skip
    env = {"PATH": "/usr/bin"}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)
    assert proc.returncode == 2
    assert "WORKER_MODE=specialized needs WORKER_PRIORITIES" in proc.stderr
