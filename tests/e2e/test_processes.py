"""``--processes`` supervision and the standalone ``bananas scheduler``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bananas import Client, JobStatus
from bananas.testing import wait_until
from tests.e2e.conftest import ROOT, WorkerProcess

SpawnWorker = Callable[..., WorkerProcess]


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_supervisor_restarts_a_dead_child_and_stops_cleanly(broker_url: str, spawn_worker: SpawnWorker) -> None:
    supervisor = spawn_worker(broker_url, "--processes", "2", "--concurrency", "4")
    first = wait_until(lambda: children(supervisor.pid) if len(children(supervisor.pid)) == 2 else None,
                       what="two worker processes")  # fmt: skip
    assert isinstance(first, set)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(children(supervisor.pid) - {victim}) == 2, what="a replacement child")
    client = Client(broker_url)
    pids = {client.submit_and_wait("pid", {}, timeout=20) for _ in range(10)}
    assert victim not in pids and pids <= children(supervisor.pid)
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0
    assert "restart" in supervisor.output()
    client.close()


def test_standalone_scheduler_moves_delayed_jobs(broker_url: str, spawn_worker: SpawnWorker, tmp_path: Path) -> None:
    spawn_worker(broker_url, "--no-scheduler")
    client = Client(broker_url)
    # A worker with no scheduler anywhere still runs delayed jobs on time: its fetches move them.
    delayed = client.submit("noop", {}, delay=0.3)
    job = client.wait(delayed, 10)
    assert job.status is JobStatus.COMPLETED and job.started_at is not None
    assert job.started_at - job.created_at < 0.3 + 2.0
    # Jobs of a routing key no worker serves are moved by the standalone scheduler.
    unserved = client.submit("noop", {}, delay=0.3, routing_key="unserved")
    time.sleep(0.6)  # past the delay: with no scheduler and no worker for it, the job must still wait
    seen = client.get_job(unserved)
    # On SQLite (one database) a worker's fetch moves the due jobs of every routing key.
    expected = JobStatus.SCHEDULED if broker_url.startswith("redis") else JobStatus.PENDING
    assert seen is not None and seen.status is expected
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BANANAS_SCHEDULER_LEADER_TTL": "2"}
    with (tmp_path / "scheduler.log").open("wb") as log:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "bananas", "scheduler", "--url", broker_url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until(lambda: (j := client.get_job(unserved)) is not None and j.status is JobStatus.PENDING,
                   timeout=10, what="the scheduler to make the unserved job ready")  # fmt: skip
        wait_until(lambda: b"is now leader" in (tmp_path / "scheduler.log").read_bytes(), what="the scheduler to lead")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(20) == 0
    client.close()
