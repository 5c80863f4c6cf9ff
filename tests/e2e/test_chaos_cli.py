"""Chaos through the command line: a file in BANANAS_CHAOS injects faults into real
worker processes, and is refused loudly where BANANAS_ENV does not allow it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bananas import Client, JobStatus
from tests.e2e.conftest import ROOT, WorkerProcess


@pytest.mark.parametrize("processes", [[], ["--processes", "1"]])
def test_a_worker_refuses_chaos_outside_its_environments(tmp_path: Path, processes: list[str]) -> None:
    chaos = tmp_path / "chaos.toml"
    chaos.write_text('environments = ["staging"]\ncrash_rate = 1.0\n')
    env = {"BANANAS_CHAOS": str(chaos), "BANANAS_ENV": "production", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bananas", "worker", "--app", "tests.e2e.app:app", "--url", "memory://", *processes],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert time.monotonic() - started < 5
    assert "chaos is configured for staging but BANANAS_ENV is 'production': refusing" in done.stderr
    assert done.stderr.count("refusing") == 1  # said once, by the process that was asked (no restart loop)


def test_injected_crashes_kill_worker_processes_and_the_job_is_dead_lettered_naming_the_signal(
    broker_url: str, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    chaos = tmp_path / "chaos.toml"
    chaos.write_text('environments = ["test"]\ncrash_rate = 1.0\n')
    sup = spawn_worker(broker_url, "--processes", "1", env={"BANANAS_CHAOS": str(chaos), "BANANAS_ENV": "test"})
    with Client(broker_url) as client:
        job = client.wait(client.submit("noop", {}), 60)
    assert job.status is JobStatus.FAILED and job.reason == "worker_lost" and job.deliveries == 3, job
    assert job.error is not None and "its worker died: signal SIGKILL" in job.error
    assert "chaos: crashing worker process" in sup.output()
