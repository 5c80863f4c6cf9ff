"""Fixtures: a real redis-server for the run, broker URLs for the contract suite, workers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bananas import Bananas
from bananas.brokers.redis import RedisBroker
from bananas.settings import JobDefaults, SchedulerSettings, Settings, WorkerSettings
from bananas.testing import RedisServer
from bananas.worker import Worker

BROKERS = ["redis", "sqlite"]


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def require_redis() -> None:
    """Skip without redis-server, except under CI=true where that is a failure."""
    if not redis_available():
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing and CI=true: install it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        prefixes = (
            "WORKER_",
            "SCHEDULER_",
            "ENABLE_",
            "JOB_",
            "MAX_RETRIES",
            "LOG_",
            "OTEL_",
            "BANANAS_METRICS",
            "BANANAS_DASHBOARD",
            "BANANAS_SCHEDULER_",
            "BANANAS_COMPLETED_TTL",
            "BANANAS_FAILED_TTL",
            "CRON_SCHEDULER_",
        )
        if name in ("BANANAS_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "BANANAS_TRACING") or name.startswith(
            prefixes
        ):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def redis_broker(redis_server: RedisServer) -> AsyncIterator[RedisBroker]:
    """A ``RedisBroker`` on the session's redis-server, emptied first."""
    redis_server.client().flushall()
    broker = RedisBroker(redis_server.url)
    yield broker
    await broker.close()


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (persistent AOF), for fault tests."""
    require_redis()
    server = RedisServer(tmp_path, persistent=True)
    server.start()
    yield server
    server.kill()


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = server.client()
        client.flushall()
        client.close()
        return server.url
    return f"sqlite:///{tmp_path}/bananas.db"


def make_settings(url: str, **worker: Any) -> Settings:
    """Test settings: short leases and leader TTL so recovery happens in seconds."""
    base = WorkerSettings(lease_s=2.0, grace_s=5.0)
    return Settings(
        url=url,
        worker=dataclasses.replace(base, **worker),
        scheduler=SchedulerSettings(leader_ttl_s=3.0),
        jobs=JobDefaults(),
    )


@pytest.fixture
def make_app(broker_url: str) -> Callable[..., Bananas]:
    def make(**worker: Any) -> Bananas:
        return Bananas(settings=make_settings(broker_url, **worker))

    return make


@contextlib.asynccontextmanager
async def running_worker(app: Bananas, **worker: Any) -> AsyncIterator[Worker]:
    """Run an in-process worker for the duration of the block."""
    settings = dataclasses.replace(app.settings, worker=dataclasses.replace(app.settings.worker, **worker))
    w = Worker(app, settings)
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        w.stop()
        await asyncio.wait_for(task, 30)
