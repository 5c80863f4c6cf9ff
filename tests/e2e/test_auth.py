"""A broker that refuses the credentials: every process exits non-zero within 5 s with
one clear line, and the password shows up nowhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bananas import BrokerAuthenticationError, Client
from bananas.testing import RedisServer, wait_until
from bananas.testing.plugin import require_redis_server
from tests.e2e.conftest import ROOT, WorkerProcess

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-right"
WRONG = "n0t-the-password"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("locked"), password=PASSWORD)
    server.start()
    yield server
    server.kill()


def _wrong_url(server: RedisServer) -> str:
    return f"redis://:{WRONG}@127.0.0.1:{server.port}/0"


@pytest.mark.parametrize("extra", [[], ["--processes", "2"], ["--mode", "scheduler-only"]],
                         ids=["worker", "supervisor", "scheduler-only"])  # fmt: skip
def test_a_worker_with_a_wrong_password_exits_within_5_s(
    locked: RedisServer, spawn_worker: Callable[..., WorkerProcess], extra: list[str]
) -> None:
    started = time.monotonic()
    worker = spawn_worker(_wrong_url(locked), *extra)
    code = worker.wait(10)
    took = time.monotonic() - started
    out = worker.output()
    assert code != 0, out
    assert took < 5, f"took {took:.1f} s"
    assert "refused the credentials" in out, out
    assert WRONG not in out and PASSWORD not in out
    assert "Traceback" not in out


def test_a_cli_command_with_a_wrong_password_says_so_in_one_line(locked: RedisServer, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bananas", "submit", "noop", "--payload", "{}", "--url", _wrong_url(locked)],
        capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused the credentials" in lines[0], done.stderr
    assert WRONG not in done.stdout + done.stderr


def test_the_right_password_works_and_the_wrong_one_raises_at_once(locked: RedisServer) -> None:
    with Client(locked.url) as client:
        job_id = client.submit("noop", {})
        job = client.get_job(job_id)
        assert job is not None and job.name == "noop"
    started = time.monotonic()
    with Client(_wrong_url(locked)) as client, pytest.raises(BrokerAuthenticationError) as raised:
        client.submit("noop", {})
    assert time.monotonic() - started < 5
    assert WRONG not in str(raised.value)


def _acl_line() -> str:
    page = (ROOT / "docs" / "SECURITY.md").read_text()
    lines = [line for line in page.splitlines() if line.startswith("ACL SETUSER bananas ")]
    assert len(lines) == 1, "docs/SECURITY.md must hold exactly one ACL SETUSER line"
    return lines[0]


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("acl"))
    server.start()
    admin = server.client()
    admin.execute_command(*_acl_line().replace(">CHANGE-ME", ">acl-pass").split())  # type: ignore[no-untyped-call]
    admin.execute_command("ACL", "SETUSER", "default", "off")  # type: ignore[no-untyped-call]  # nothing else can connect
    yield server
    server.kill()


def test_the_documented_acl_user_runs_a_worker_and_every_client_call(
    acl_server: RedisServer, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    url = f"redis://bananas:acl-pass@127.0.0.1:{acl_server.port}/0"
    worker = spawn_worker(url, "--concurrency", "4", "--no-scheduler")
    # The scheduler (leader lock, ticks, cron) in a process of its own, as this user too.
    cron = spawn_worker(url, "--mode", "scheduler-only", app="tests.e2e.cron_app:app")
    with Client(url) as client:
        assert client.submit_and_wait("pid", {}, timeout=20) == worker.pid  # submit, lease, run, ack, wait
        failed = client.wait(client.submit("stall_once", {"tag": "x"}, max_retries=0, timeout=0.2), 20)
        assert failed.status.value == "failed", failed  # a timeout, dead-lettered: the scheduler's scripts
        dead = client.dead_jobs()
        assert [j.id for j in dead if j.name != "beat"] == [failed.id]
        # (cron ticks of the scheduler process land there too: this worker has no `beat`)
        assert all(j.reason == "no_handler" for j in dead if j.name == "beat")
        assert client.retry_dead([failed.id]) == 1
        client.wait(failed.id, 20)
        assert client.purge_dead() >= 0
        later = client.submit("noop", {}, delay=60)
        assert client.cancel(later)
        assert {t.name for t in client.tasks()} >= {"noop", "pid", "send_email"}
        assert any(s.routing_key == "default" for s in client.queue_stats())
        assert client.get_job(later) is not None and client.list_jobs(limit=5)
        try:
            wait_until(lambda: client.list_jobs(name="beat", limit=1), 20, "a cron tick fired through the ACL user")
        except Exception:
            print(cron.output()[-3000:], client.list_jobs(limit=20), client.queue_stats())
            raise
        assert cron.alive(), cron.output()
    assert worker.alive(), worker.output()
    assert "refused the credentials" not in worker.output() and "NOPERM" not in worker.output()
