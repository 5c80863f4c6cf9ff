"""Real worker processes started through the ``bananas`` command line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
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
