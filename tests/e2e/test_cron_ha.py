"""Acceptance: two schedulers and an every-second schedule; the leader is SIGKILLed and
later SIGSTOPped for longer than its lease. Every tick fires exactly once, and ticks during
a failover fire late by at most lease TTL + 2 s."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable

import pytest

from bananas.brokers import from_url
from bananas.job import Job
from bananas.settings import SchedulerSettings
from bananas.testing import wait_until
from bananas.testing.plugin import require_redis_server
from tests.e2e.conftest import WorkerProcess

LEADER_TTL_S = 2.0


def leader_pid(url: str) -> int | None:
    if url.startswith("redis"):
        import redis

        r = redis.Redis.from_url(url)
        try:
            value = r.get("bananas:scheduler:leader")
        finally:
            r.close()
        holder = value.decode().split("|")[0] if isinstance(value, bytes) else None
    else:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            row = conn.execute("SELECT holder, expires_at FROM leader").fetchone()
        except sqlite3.OperationalError:
            row = None
        finally:
            conn.close()
        holder = row[0] if row and row[1] > time.time() else None
    return int(holder.split(":")[1]) if holder else None


def fired_jobs(url: str) -> list[Job]:
    async def read() -> list[Job]:
        b = from_url(url)
        try:
            return await b.list_jobs(status="pending", limit=10_000)
        finally:
            await b.close()

    return asyncio.run(read())


@pytest.mark.slow
@pytest.mark.parametrize(("broker", "scale"), [("redis", 1.0), ("sqlite", 0.5)])
def test_every_tick_fires_once_through_kill_and_pause(
    broker: str, scale: float, request: pytest.FixtureRequest, tmp_path: object,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:  # fmt: skip
    if broker == "redis":
        require_redis_server()
        server = request.getfixturevalue("redis_server")
        client = server.client()
        client.flushall()
        client.close()
        url: str = server.url
    else:
        url = f"sqlite:///{tmp_path}/bananas.db"
    env = {"BANANAS_SCHEDULER_LEADER_TTL": str(LEADER_TTL_S), "CRON_SCHEDULER_INTERVAL": "1"}

    def start() -> WorkerProcess:
        return spawn_worker(url, "--mode", "scheduler-only", "--app", "tests.e2e.cron_app:app", env=env)

    procs = {p.pid: p for p in (start(), start())}
    t0 = time.time()
    duration, kill_at, stop_at, stop_for = 60 * scale, 20 * scale, 40 * scale, 10 * scale

    def until(t: float) -> None:
        time.sleep(max(0.0, t0 + t - time.time()))  # the test follows a wall-clock timeline

    def current_leader() -> int:
        pid = wait_until(lambda: leader_pid(url), timeout=10, what="a scheduler leader")
        assert isinstance(pid, int) and pid in procs
        return pid

    until(kill_at)
    killed = current_leader()
    procs[killed].signal(signal.SIGKILL)
    replacement = start()  # as a supervisor or Kubernetes would
    procs[replacement.pid] = replacement
    until(stop_at)
    paused = current_leader()
    procs[paused].signal(signal.SIGSTOP)
    until(stop_at + stop_for)
    procs[paused].signal(signal.SIGCONT)
    until(duration)
    assert leader_pid(url) in procs

    jobs = [j for j in fired_jobs(url) if j.headers.get("bananas-schedule") == "every-second"]
    ticks = Counter(float(j.headers["bananas-tick"]) for j in jobs)
    duplicates = {t: n for t, n in ticks.items() if n > 1}
    assert not duplicates, f"ticks fired more than once: {duplicates}"
    first, last = min(ticks), max(ticks)
    assert first <= t0 + 5 and last >= t0 + duration - 2
    missing = [t for t in range(int(first), int(last) + 1) if float(t) not in ticks]
    assert not missing, f"ticks never fired: {missing}"
    lateness = max(j.created_at - float(j.headers["bananas-tick"]) for j in jobs)
    assert lateness <= LEADER_TTL_S + 2.0, f"a tick fired {lateness:.2f} s late"
    for p in procs.values():
        if p.pid != killed:
            assert p.alive(), p.output()[-2000:]


def test_schedules_cli_list_disable_enable_run_now(broker_url: str, spawn_worker: Callable[..., WorkerProcess]) -> None:
    import json
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT

    def cli(*args: str) -> str:
        cmd = [sys.executable, "-m", "bananas", "schedules", *args, "--url", broker_url]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, timeout=60)
        return proc.stdout

    w = spawn_worker(broker_url, "--mode", "thin", "--app", "tests.e2e.cron_app:app")

    def state() -> dict[str, object]:
        rows = json.loads(cli("list", "--json"))
        return rows[0] if rows else {}

    wait_until(lambda: int(state().get("run_count", 0)) >= 2, 20, "the schedule to fire")  # type: ignore[call-overload]
    assert state()["cron"] == "*/1 * * * * *" and state()["enabled"] is True
    wait_until(lambda: state().get("last_success"), 20, "a fired job to complete")
    assert "every-second" in cli("disable", "every-second")
    count = int(state()["run_count"])  # type: ignore[call-overload]
    time.sleep(2.5)  # wall-clock time is the thing under test: nothing fires while disabled
    assert int(state()["run_count"]) <= count + 1  # type: ignore[call-overload]  # one fire may have been in flight
    job_id = cli("run-now", "every-second").strip()
    assert len(job_id) == 26
    cli("enable", "every-second")
    wait_until(lambda: int(state()["run_count"]) >= count + 4, 20, "firing to resume")  # type: ignore[call-overload]
    assert w.alive()


@pytest.mark.slow
def test_with_default_settings_a_tick_missed_by_a_sigkilled_leader_fires_within_10_s(
    broker_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    env = {"BANANAS_SCHEDULER_LEADER_TTL": f"{SchedulerSettings.leader_ttl_s:g}"}  # the default, not the suite's

    def start() -> WorkerProcess:
        return spawn_worker(broker_url, "--mode", "scheduler-only", "--app", "tests.e2e.cron_app:app", env=env)

    procs = {p.pid: p for p in (start(), start())}
    leader = wait_until(lambda: leader_pid(broker_url), timeout=10, what="a scheduler leader")
    assert isinstance(leader, int) and leader in procs
    wait_until(lambda: fired_jobs(broker_url), timeout=10, what="the leader's first tick")
    killed_at = time.time()
    procs[leader].signal(signal.SIGKILL)
    procs[leader].wait(5)
    survivor = next(p for pid, p in procs.items() if pid != leader)
    horizon = killed_at + SchedulerSettings.leader_ttl_s + 2

    def fired_past_horizon() -> list[Job]:
        jobs = fired_jobs(broker_url)
        return jobs if any(float(j.headers["bananas-tick"]) >= horizon for j in jobs) else []

    jobs = wait_until(fired_past_horizon, timeout=30, what="ticks after the failover")
    ticks = {float(j.headers["bananas-tick"]): j for j in jobs}
    owed = list(range(int(killed_at) + 1, int(horizon) + 1))
    assert not [t for t in owed if float(t) not in ticks], f"ticks never fired: {sorted(ticks)}"
    late = {t: round(ticks[float(t)].created_at - t, 2) for t in owed}
    assert max(late.values()) <= 10.0, f"ticks fired late by more than 10 s: {late}"
    assert max(late.values()) > 1.0, f"the failover should have delayed some tick: {late}"  # the kill was real
    assert survivor.alive() and "is now leader" in survivor.output()
    print(f"worst lateness after the leader died: {max(late.values()):.2f} s")
