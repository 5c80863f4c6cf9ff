"""Fixtures: broker URLs for the contract suite, test settings.

The redis-server of the run (``redis_server``, ``redis_url``) comes from the project's own
pytest plugin, ``bananas.testing.plugin``; ``pytester`` tests that plugin."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bananas import Bananas
from bananas.brokers.redis import RedisBroker
from bananas.brokers.sqlite import SQLiteBroker  # noqa: F401  (imported before a test starts threads: see below)
from bananas.job import new_id
from bananas.settings import JobDefaults, SchedulerSettings, Settings, WorkerSettings
from bananas.testing import RedisServer
from bananas.testing.plugin import require_redis_server

pytest_plugins = ["pytester"]

BROKERS = ["redis", "sqlite"]


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
    require_redis_server()
    server = RedisServer(tmp_path, persistent=True)
    server.start()
    yield server
    server.kill()


@pytest.fixture(params=["memory", "redis"])
def memory_or_redis_url(request: pytest.FixtureRequest) -> str:
    """A private ``memory://`` broker, or the session's redis-server (flushed)."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return f"memory://{new_id()}"


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
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
