"""BANANAS_SIGNING_KEYS through the command line: a worker process and ``bananas submit``
that share a key run the job; a submit without the key is dead-lettered unrun."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bananas.testing import wait_until
from tests.e2e.conftest import WorkerProcess
from tests.e2e.test_cli import bananas

KEY = "0123456789abcdef" * 4


def submit(url: str, name: str, env: dict[str, str] | None = None) -> str:
    done = bananas("submit", name, "--url", url, env=env)
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout + done.stderr
    return done.stdout.strip()


def finished(url: str, job_id: str) -> dict[str, Any] | None:
    shown = bananas("job", job_id, "--json", "--url", url)
    assert shown.returncode == 0, shown.stderr
    record: dict[str, Any] = json.loads(shown.stdout)
    return record if record["status"] in ("completed", "failed") else None


def test_a_worker_with_signing_keys_runs_signed_submits_and_refuses_unsigned_ones(
    broker_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    env = {"BANANAS_SIGNING_KEYS": KEY}
    worker = spawn_worker(broker_url, env=env)
    signed, unsigned = submit(broker_url, "pid", env), submit(broker_url, "noop")
    ran = wait_until(lambda: finished(broker_url, signed), timeout=20, what="the signed job")
    refused = wait_until(lambda: finished(broker_url, unsigned), timeout=20, what="the unsigned job")
    assert ran is not None and refused is not None
    assert ran["status"] == "completed" and ran["result"] == worker.pid, worker.output()[-2000:]
    assert refused["status"] == "failed" and refused["reason"] == "signature_invalid" and refused["attempts"] == 1
    assert "job is not signed" in refused["error"]
    assert KEY not in worker.output() and worker.alive()
