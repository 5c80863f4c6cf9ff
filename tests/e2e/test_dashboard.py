"""``bananas dashboard`` as a real process against a real redis-server: every endpoint,
broker loss and recovery on /ready, ``bananas health --endpoint``, and the errors for a
port in use and a missing extra."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bananas import Client
from bananas.testing import RedisServer, free_port, wait_until
from tests.e2e.conftest import ROOT
from tests.e2e.test_observability import get

Dashboard = Callable[..., tuple[subprocess.Popen[bytes], str]]


def bananas(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "bananas", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=60)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        log = tmp_path / f"dashboard-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bananas", "dashboard", "--port", str(port), "--url", url],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(f"{base}/health")[0] == 200 or proc.poll() is not None, 20, "the dashboard")
        assert proc.poll() is None, log.read_text()
        return proc, base

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_dashboard_endpoints_follow_the_broker(dashboard: Dashboard, fresh_redis: RedisServer) -> None:
    with Client(fresh_redis.url) as client:
        ids = [client.submit("noop", {"n": i}, priority="high") for i in range(3)]
        client.submit("noop", {}, routing_key="email", delay=60)
    proc, base = dashboard(fresh_redis.url)

    status, body = get(f"{base}/ready")
    assert status == 200 and json.loads(body)["broker"] == "ok"
    status, text = get(f"{base}/metrics")
    assert status == 200 and 'bananas_queue_depth{priority="90",routing_key="default"} 3.0' in text, text
    assert 'bananas_scheduled_jobs{routing_key="email"} 1.0' in text
    status, body = get(f"{base}/api/queues")
    queues = {q["routing_key"]: q for q in json.loads(body)["queues"]}
    assert status == 200 and queues["default"]["ready"] == 3 and queues["email"]["scheduled"] == 1
    status, body = get(f"{base}/api/jobs/{ids[1]}")
    job = json.loads(body)
    assert status == 200 and (job["id"], job["name"], job["status"], job["payload"]) == (
        ids[1],
        "noop",
        "pending",
        {"n": 1},
    )
    status, body = get(f"{base}/api/jobs/01UNKNOWNJOBID")
    assert status == 404 and json.loads(body)["error"] == "not_found"
    assert bananas("health", "--endpoint", base, "--timeout", "3").returncode == 0

    fresh_redis.kill()
    wait_until(lambda: get(f"{base}/ready")[0] == 503, 5, "/ready reports the broker loss")
    assert json.loads(get(f"{base}/ready")[1])["broker"] == "unreachable"
    assert get(f"{base}/health")[0] == 200  # alive all the same
    assert bananas("health", "--endpoint", base, "--timeout", "3").returncode == 1
    fresh_redis.start()
    wait_until(lambda: get(f"{base}/ready")[0] == 200, 5, "/ready reports the recovery")
    assert bananas("health", "--endpoint", base, "--timeout", "3").returncode == 0

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0  # a clean stop: uvicorn's graceful shutdown, then our finally blocks


def test_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = bananas("dashboard", "--port", str(port), "--url", "redis://127.0.0.1:1/0")
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        f"error: cannot serve the dashboard on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("blocked", ["starlette", "uvicorn"])
def test_missing_extra_names_the_install_command(blocked: str) -> None:
    code = f"import sys; sys.modules[{blocked!r}] = None; from bananas.cli import main; main()"
    done = bananas("dashboard", "--port", "0", code=code)
    assert done.returncode == 2, done.stderr
    assert 'pip install "bananas[dashboard]"' in done.stderr and "Traceback" not in done.stderr
