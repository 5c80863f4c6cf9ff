"""The worker's hot-path script calls (dequeue, ack) on connections of their own: they
reload a flushed script and ride over a killed connection."""

from __future__ import annotations

import time

import pytest

from bananas import BrokerUnavailable
from bananas.brokers.base import Outcome
from bananas.brokers.redis.broker import RedisBroker
from bananas.job import Job, new_id
from bananas.testing import RedisServer
from bananas.wire import encode_job

pytestmark = pytest.mark.redis


def _job(name: str = "noop") -> tuple[Job, bytes]:
    job = Job(id=new_id(), name=name, payload={}, routing_key="default", created_at=time.time())
    return job, encode_job(job)


async def _dequeue_and_ack(broker: RedisBroker) -> list[bool]:
    got = await broker.dequeue(["default"], 1, 30, "w1")
    assert len(got) == 1
    d = got[0]
    return await broker.ack([Outcome(d.id, d.routing_key, d.token, "completed", 1)], (60, 60))


async def test_a_flushed_script_is_loaded_again(redis_server: RedisServer, redis_url: str) -> None:
    broker = RedisBroker(redis_url)
    try:
        await broker.enqueue([_job()])
        assert await _dequeue_and_ack(broker) == [True]
        redis_server.client().script_flush()
        await broker.enqueue([_job()])
        assert await _dequeue_and_ack(broker) == [True]
    finally:
        await broker.close()


async def test_a_killed_connection_is_replaced_within_the_same_call(redis_server: RedisServer, redis_url: str) -> None:
    broker = RedisBroker(redis_url)
    try:
        await broker.enqueue([_job()])
        assert await _dequeue_and_ack(broker) == [True]
        admin = redis_server.client()
        killed = admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        await broker.enqueue([_job()])
        assert await _dequeue_and_ack(broker) == [True]  # no BrokerUnavailable in between
    finally:
        await broker.close()


def test_tls_without_certificate_checks_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="bananas.brokers.redis.store"):
        RedisBroker("rediss://:pw@127.0.0.1:1/0?ssl_cert_reqs=none").clone()  # a clone: no second warning
        RedisBroker("rediss://127.0.0.1:1/0")
    warned = [r.getMessage() for r in caplog.records if "certificate checks are off" in r.getMessage()]
    assert len(warned) == 1 and "pw" not in warned[0] and "ssl_ca_certs" in warned[0]


async def test_a_server_that_stops_answering_fails_the_call_within_the_timeout(fresh_redis: RedisServer) -> None:
    broker = RedisBroker(fresh_redis.url, timeout_s=0.5)
    fresh = RedisBroker(fresh_redis.url, timeout_s=0.5)  # no connection yet: the handshake must time out too
    try:
        await broker.enqueue([_job(), _job()])
        assert await _dequeue_and_ack(broker) == [True]
        fresh_redis.pause()
        try:
            for b in (broker, fresh):
                started = time.monotonic()
                with pytest.raises(BrokerUnavailable, match="no reply"):
                    await b.dequeue(["default"], 1, 30, "w1")
                assert time.monotonic() - started < 2.5
        finally:
            fresh_redis.resume()
        # The late replies of the calls that timed out are not read as answers to new calls.
        got = await broker.dequeue(["default"], 10, 30, "w1")
        assert len(got) <= 1 and all(d.routing_key == "default" for d in got)
        assert await broker.ack([Outcome(d.id, d.routing_key, d.token, "completed", 1) for d in got], (60, 60)) == [
            True
        ] * len(got)
    finally:
        await broker.close()
        await fresh.close()
