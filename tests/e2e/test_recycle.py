"""--max-jobs-per-child and --max-memory-per-child: a worker process past its limit
finishes its job, exits and is replaced at once; nothing is lost, and it is counted."""

from __future__ import annotations

import itertools
import urllib.request
from collections.abc import Callable

import pytest

from bananas import Client, JobStatus
from bananas.testing import free_port
from tests.e2e.conftest import WorkerProcess

pytestmark = pytest.mark.redis


def test_a_child_is_replaced_after_max_jobs_for_sync_and_async_handlers(
    redis_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    port = free_port()
    sup = spawn_worker(redis_url, "--processes", "1", "--concurrency", "1", "--max-jobs-per-child", "4",
                       "--metrics-port", str(port))  # fmt: skip
    pids: list[int] = []
    with Client(redis_url) as client:
        for i in range(12):
            pids.append(client.submit_and_wait("pid" if i % 2 else "apid", {}, timeout=30))
    runs = [len(list(group)) for _, group in itertools.groupby(pids)]
    # A process stops fetching at its 4th outcome; a job handed to it just before runs
    # too (at most one more, with --concurrency 1), so each ran 4 or 5, then a new one took over.
    assert all(n in (4, 5) for n in runs[:-1]) and runs[-1] <= 5, str(pids)
    assert len(set(pids)) == len(runs) >= 3, str(pids)
    out = sup.output()
    assert out.count("recycled") >= 2 and "died" not in out, out
    assert "--max-jobs-per-child 4" in out
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counter = 'bananas_worker_recycled_total{reason="max_jobs"}'
    recycled = [line for line in text.splitlines() if line.startswith(counter)]
    assert recycled and float(recycled[0].split()[-1]) >= 2, recycled


def test_a_child_is_replaced_once_its_memory_passes_the_limit(
    redis_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    sup = spawn_worker(redis_url, "--processes", "1", "--concurrency", "1", "--max-memory-per-child", "90")
    with Client(redis_url) as client:
        pids = [client.submit_and_wait("hog", {"mib": 25}, timeout=30) for _ in range(6)]
    assert len(set(pids)) >= 2, pids  # ~40 MiB at start + 25 MiB a job: over 90 within 3 jobs
    assert pids[0] == pids[1], pids  # not replaced before it is over the limit
    out = sup.output()
    assert "--max-memory-per-child 90" in out and "died" not in out, out


def test_a_handler_far_past_the_memory_limit_has_its_process_killed_and_is_alone_blamed(
    redis_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    sup = spawn_worker(redis_url, "--processes", "1", "--concurrency", "4", "--max-memory-per-child", "90")
    with Client(redis_url) as client:
        balloon = client.submit("balloon", {"mib": 400})
        others = [client.submit("sleepy", {"seconds": 0.5}) for _ in range(6)]
        job = client.wait(balloon, 60)
        assert job.status is JobStatus.FAILED and job.reason == "worker_lost" and job.deliveries == 3, job
        assert job.error is not None and "its worker died: killed by its supervisor at" in job.error, job
        assert "past the 180 MiB ceiling" in job.error, job  # twice --max-memory-per-child
        for other in (client.wait(o, 30) for o in others):
            assert other.status is JobStatus.COMPLETED, other
    lines = sup.output().splitlines()
    assert sum("supervisor: worker process" in line and " died (" in line for line in lines) == 3, sup.output()
