"""Redis going away: clients fail fast with BrokerUnavailable; workers survive and resume."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from bananas import BrokerUnavailable, Client, JobStatus
from bananas.settings import SchedulerSettings
from bananas.testing import RedisServer, free_port, wait_until
from tests.e2e.conftest import WorkerProcess

SpawnWorker = Callable[..., WorkerProcess]


def test_client_with_no_server_raises_broker_unavailable_quickly() -> None:
    client = Client(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="unreachable during submit"):
        client.submit("noop", {})
    with pytest.raises(BrokerUnavailable, match="unreachable during get job"):
        client.get_job("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert time.monotonic() - t0 < 2.5
    client.close()


def test_client_with_a_frozen_server_raises_within_its_timeout(fresh_redis: RedisServer) -> None:
    client = Client(fresh_redis.url, timeout_s=1.0)
    client.submit("noop", {})  # connected and working
    fresh_redis.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="during submit"):
            client.submit("noop", {})
        assert time.monotonic() - t0 < 2.0
    finally:
        fresh_redis.resume()
    client.close()


def test_worker_survives_redis_restart_and_resumes(fresh_redis: RedisServer, spawn_worker: SpawnWorker) -> None:
    client = Client(fresh_redis.url, timeout_s=1.0)
    before = [client.submit("noop", {}) for _ in range(20)]
    worker = spawn_worker(fresh_redis.url, "--lease", "2")
    for job_id in before:
        assert client.wait(job_id, 10).status is JobStatus.COMPLETED
    fresh_redis.kill()
    time.sleep(2)  # the outage itself: the worker must ride it out
    assert worker.alive()
    fresh_redis.start()
    restarted = time.monotonic()
    after = client.submit("noop", {})
    assert client.wait(after, 10).status is JobStatus.COMPLETED
    assert time.monotonic() - restarted < 5
    for job_id in before:  # acknowledged outcomes survived (AOF, fsync always)
        job = client.get_job(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED
    assert worker.alive()
    assert "broker trouble" in worker.output()
    client.close()


def test_idle_worker_sends_at_most_one_command_per_second(fresh_redis: RedisServer, spawn_worker: SpawnWorker) -> None:
    ttl = SchedulerSettings.leader_ttl_s  # the default, not the suite's short one
    spawn_worker(fresh_redis.url, env={"BANANAS_SCHEDULER_LEADER_TTL": f"{ttl:g}"})
    probe = redis.Redis(port=fresh_redis.port, socket_timeout=None)  # quiet gaps exceed redis-py's 5 s default
    client = Client(fresh_redis.url)
    assert client.submit_and_wait("noop", {}, timeout=10) is None  # the worker is up and idle now
    client.close()
    wait_until(lambda: probe.get("bananas:scheduler:leader"), what="scheduler leadership")
    window = ttl + 4.0  # longer than the lock lives: its renewals are part of the cost
    sent: list[str] = []
    with probe.monitor() as monitor:  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + window
        while True:
            entry = monitor.next_command()  # blocks; the worker's own traffic keeps it moving
            if time.monotonic() > deadline:
                break
            if entry["client_type"] != "lua":  # count round trips, not commands inside scripts
                sent.append(entry["command"].split()[0])
    rate = len(sent) / window
    assert rate <= 1.0, f"idle worker sent {rate:.2f} commands/s: {sent}"
    assert probe.pttl("bananas:scheduler:leader") > ttl * 1000 / 3, "the leader stopped renewing its lock"
    print(f"idle worker: {rate:.2f} commands/s ({len(sent)} in {window:g} s)")
    probe.close()
