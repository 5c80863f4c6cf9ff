"""The pytest plugin (entry point ``pytest11``: ``bananas``), loaded by pytest itself.

Fixtures:

- ``bananas_app``: an application on a private ``memory://`` broker. Override it in your
  ``conftest.py`` to return your own app pointed at one (see docs/TESTING.md).
- ``bananas_eager``: ``bananas_app`` in eager mode (submits run their jobs at once).
- ``bananas_worker``: a worker running ``bananas_app``'s tasks on the test's event loop
  (an async fixture: needs pytest-asyncio).
- ``redis_server``: a throwaway ``redis-server`` on a free port for the whole session
  (``RedisServer``); skipped when the binary is missing, a failure under ``CI=true``.
- ``redis_url``: the URL of that server, flushed for each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

from bananas.app import Bananas
from bananas.job import new_id
from bananas.settings import Settings
from bananas.testing.eager import EagerRunner, eager
from bananas.testing.server import RedisServer
from bananas.testing.workers import running_worker
from bananas.worker import Worker

F = TypeVar("F", bound=Callable[..., Any])

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - bananas_worker then tells the user what is missing
    pytest_asyncio = None  # type: ignore[assignment]


def _async_fixture(fn: F) -> F:
    """An async fixture in pytest-asyncio's strict mode as in auto mode."""
    if pytest_asyncio is None:  # pragma: no cover
        return cast(F, pytest.fixture(fn))
    return cast(F, pytest_asyncio.fixture(fn))


def require_redis_server() -> None:
    """Skip the test when there is no ``redis-server`` binary; fail instead under
    ``CI=true``, so that CI can never go green by skipping."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing and CI=true: install it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")


@pytest.fixture
def bananas_app() -> Iterator[Bananas]:
    """An application on a ``memory://`` broker of its own, closed after the test."""
    app = Bananas(settings=Settings(url=f"memory://bananas-test-{new_id()}"))
    yield app
    app.close()


@pytest.fixture
def bananas_eager(bananas_app: Bananas) -> Iterator[EagerRunner]:
    """``bananas_app`` in eager mode for the test (``propagate=True``)."""
    with eager(bananas_app) as runner:
        yield runner


@_async_fixture
async def bananas_worker(bananas_app: Bananas) -> AsyncIterator[Worker]:
    """A worker running ``bananas_app``'s tasks (those declared during the test too) on
    the test's event loop, stopped gracefully after it."""
    async with running_worker(bananas_app) as worker:
        yield worker


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A ``redis-server`` on a free port for the session (tests may kill and restart it)."""
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server URL, its data flushed first (running it again if a test killed it)."""
    if redis_server.proc is None:
        redis_server.start()
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
