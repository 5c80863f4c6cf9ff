"""Worker processes, their memory and CPU, and a wait-until helper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping

#: The app every benchmark worker runs.
APP = "bananas.bench.tasks:app"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerProcess:
    """A real ``bananas worker`` process (a supervisor when ``processes`` is given)."""

    def __init__(
        self, url: str, concurrency: int, processes: int | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        env = {**os.environ, "LOG_LEVEL": "WARNING", "BENCH_IO_URL": url, **(env or {})}
        cmd = [sys.executable, "-m", "bananas", "worker", "--app", APP, "--url", url, "--concurrency", str(concurrency)]
        if processes is not None:
            cmd += ["--processes", str(processes)]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    @property
    def pid(self) -> int:
        """The worker's (or supervisor's) process id."""
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL the whole group if it takes over 30 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.02) -> None:
    """Poll a cross-process condition (nothing signals across the process boundary).

    Raises:
        TimeoutError: the condition did not hold within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)
