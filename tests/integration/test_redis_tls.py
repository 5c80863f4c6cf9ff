"""``rediss://`` with a private CA and client certificates, against a redis-server that
serves TLS only (certificates made by openssl for the test)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bananas import Bananas, BrokerUnavailable, Client
from bananas.testing import RedisServer, TlsFiles, make_tls_files, running_worker
from bananas.testing.plugin import require_redis_server
from tests.conftest import make_settings

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(  # under CI a missing openssl fails the tests instead
        shutil.which("openssl") is None and os.environ.get("CI") != "true", reason="openssl is not installed"
    ),
]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("tls-redis"), tls=tls_files, client_certs=True)
    server.start()
    yield server
    server.kill()


async def test_a_worker_and_a_client_run_over_tls_with_client_certificates(tls_server: RedisServer) -> None:
    assert tls_server.url.startswith("rediss://") and "ssl_certfile=" in tls_server.url
    app = Bananas(settings=make_settings(tls_server.url))

    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    client = app.async_client()
    async with running_worker(app):
        assert await client.submit_and_wait("add", {"a": 2, "b": 3}, timeout=10) == 5
    await client.close()


def test_without_a_client_certificate_the_server_refuses(tls_server: RedisServer, tls_files: TlsFiles) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0?{tls_files.query()}"  # the CA only, no certificate
    with Client(url) as client, pytest.raises(BrokerUnavailable):
        client.submit("add", {"a": 1, "b": 1})


def test_a_server_certificate_from_another_ca_is_refused(tls_server: RedisServer, tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other", name="other")
    url = f"rediss://127.0.0.1:{tls_server.port}/0?{other.query(client_cert=True)}"
    with Client(url) as client, pytest.raises(BrokerUnavailable, match=r"(?i)certificate"):
        client.submit("add", {"a": 1, "b": 1})


def test_a_plain_url_against_the_tls_port_says_to_use_rediss(tls_server: RedisServer) -> None:
    with Client(f"redis://127.0.0.1:{tls_server.port}/0") as client, pytest.raises(BrokerUnavailable) as raised:
        client.submit("add", {"a": 1, "b": 1})
    assert "use rediss://" in str(raised.value)
