"""The task catalogue across processes: a worker process serving only ``email`` publishes
its tasks; a client in another process submits by name with the task's defaults, and
``bananas tasks`` lists them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bananas import Client, JobStatus, PayloadError
from bananas.testing import wait_until
from tests.e2e.conftest import WorkerProcess
from tests.e2e.test_cli import bananas


@pytest.mark.parametrize("broker", ["redis", "sqlite"])
def test_a_service_without_the_handlers_reaches_the_email_worker(
    broker: str, request: pytest.FixtureRequest, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    url = request.getfixturevalue("redis_server").url if broker == "redis" else f"sqlite:///{tmp_path}/b.db"
    if broker == "redis":
        request.getfixturevalue("redis_server").client().flushall()
    worker = spawn_worker(url, "--routing-keys", "email", "--concurrency", "2")
    with Client(url) as client:
        wait_until(lambda: any(t.name == "send_email" and t.workers for t in client.tasks()), 20, "the catalogue")
        job = client.wait(client.submit("send_email", {"to": "a@b.c", "subject": "hi"}), 20)
        assert (job.status, job.routing_key, job.priority, job.max_retries, job.timeout) == (
            JobStatus.COMPLETED, "email", 90, 5, 30.0,
        )  # fmt: skip
        assert job.result == {"to": "a@b.c", "subject": "hi"}
        with pytest.raises(PayloadError) as caught:
            client.submit("send_email", {"to": "a@b.c", "subject": 3})
        assert caught.value.field == "subject"
    listed = bananas("tasks", "--url", url)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith("send_email"))
    assert line.split()[:6] == ["send_email", "email", "high", "5", "30", "s"]
    assert "Send an email (pretend)." in line
    as_json = {t["name"]: t for t in json.loads(bananas("tasks", "--json", "--url", url).stdout)}
    assert as_json["send_email"]["routing_key"] == "email" and len(as_json["send_email"]["workers"]) == 1
    assert worker.alive()
