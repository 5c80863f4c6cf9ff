"""Real worker processes started through the ``bananas`` command line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None


def eventually(check: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Poll a cross-process condition (no event crosses the process boundary)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def spawn(url: str, *args: str, env: dict[str, str] | None = None, app: str = "tests.e2e.app:app") -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        full_env = {
            **os.environ,
            "BANANAS_TEST_DIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "BANANAS_SCHEDULER_LEADER_TTL": "2",  # a SIGKILLed leader is replaced within 2 s
            **(env or {}),
        }
        cmd = [sys.executable, "-m", "bananas", "worker", "--app", app, "--url", url, *args]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_path, start_new_session=True
            )
        wp = WorkerProcess(proc, log)
        started.append(wp)
        return wp

    yield spawn
    for wp in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(wp.pid, signal.SIGKILL)  # the worker and any supervised children
        wp.wait(10)
