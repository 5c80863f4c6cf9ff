"""A job that kills its process is blamed alone (issue 11, point 1): the jobs that shared
the process with it come back as suspects, each runs alone once, and only the poison job
is dead-lettered, after exactly max_deliveries (3) deliveries, naming the death."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bananas import Client, JobStatus
from tests.e2e.conftest import WorkerProcess

SpawnWorker = Callable[..., WorkerProcess]


@pytest.mark.parametrize("processes", [1, 2])
def test_one_poison_job_among_1000_takes_no_innocent_job_down(
    broker_url: str, spawn_worker: SpawnWorker, processes: int
) -> None:
    client = Client(broker_url)
    ids = client.submit_many([("noop", {})] * 500 + [("crash_worker", {})] + [("noop", {})] * 500)
    poison, innocent = ids[500], ids[:500] + ids[501:]
    supervisor = spawn_worker(broker_url, "--processes", str(processes))  # default concurrency and lease
    job = client.wait(poison, 90)
    assert job.status is JobStatus.FAILED and job.reason == "worker_lost", job
    assert job.deliveries == 3, job
    assert job.error == "worker_lost: delivered 3 times without an outcome (its worker died: signal SIGKILL)", job
    outcomes = [client.wait(i, 60) for i in innocent]
    failed = [j for j in outcomes if j.status is not JobStatus.COMPLETED]
    assert not failed, failed[:3]
    assert len(outcomes) == 1000
    deaths = sum(
        "supervisor: worker process" in line and " died (" in line for line in supervisor.output().splitlines()
    )
    assert deaths == 3, supervisor.output()  # one per delivery of the poison job, none for the others
    print(f"{processes} process(es): {sum(j.deliveries > 1 for j in outcomes)} innocent jobs ran again alone")
    client.close()
