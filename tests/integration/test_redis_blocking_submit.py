"""``Client.submit`` on Redis goes through ``BlockingScript`` (one connection per thread,
no redis-py command machinery): it must survive flushed scripts, killed connections and
many threads, and report a dead server as ``BrokerUnavailable``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bananas import BrokerUnavailable, Client, JobSpec
from bananas.testing import RedisServer
from bananas.testing.plugin import require_redis_server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def ready_ids(server: RedisServer) -> set[str]:
    members: list[bytes] = server.client().zrange("bananas:{default}:ready", 0, -1)  # type: ignore[assignment]
    return {m.decode() for m in members}


def test_submit_reloads_a_flushed_script(own_redis: RedisServer) -> None:
    with Client(own_redis.url) as client:
        first = client.submit("t", {})
        own_redis.client().script_flush()
        second = client.submit("t", {})
        assert ready_ids(own_redis) == {first, second}


def test_submit_reconnects_after_its_connection_is_killed(own_redis: RedisServer) -> None:
    with Client(own_redis.url) as client:
        first = client.submit("t", {})
        admin = own_redis.client()
        killed = admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        second = client.submit("t", {})
        assert ready_ids(own_redis) == {first, second}


def test_resent_batch_stores_each_job_once(own_redis: RedisServer) -> None:
    with Client(own_redis.url) as client:
        core = client._core()
        built = [core.build(JobSpec("t", {})) for _ in range(3)]
        core.broker.enqueue_blocking(built)
        core.broker.enqueue_blocking(built)  # what a retry after a lost reply sends
        assert ready_ids(own_redis) == {job.id for job, _ in built}
        assert own_redis.client().llen("bananas:{default}:signal") == 3


def test_threads_submit_on_connections_of_their_own(own_redis: RedisServer) -> None:
    ids: list[str] = []
    lock = threading.Lock()
    with Client(own_redis.url) as client:

        def submit_some() -> None:
            for _ in range(50):
                job_id = client.submit("t", {})
                with lock:
                    ids.append(job_id)

        threads = [threading.Thread(target=submit_some) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ready_ids(own_redis) == set(ids) and len(ids) == 400


def test_dead_server_raises_broker_unavailable_within_the_timeout(own_redis: RedisServer) -> None:
    client = Client(own_redis.url, timeout_s=0.5)
    client.submit("t", {})
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="during submit"):
        client.submit("t", {})
    assert time.monotonic() - started < 2.0
    client.close()
