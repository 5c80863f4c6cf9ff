"""Hand-off on Redis: a worker with free slots and nothing ready offers to take the next
job, and submit leases it to that worker and pushes it onto the worker's inbox, which the
worker is blocked on, so submit -> start needs no dequeue round trip. Delivery stays at
least once: handed jobs are leased like dequeued ones, fenced, recovered when the lease
runs out and given back when the worker stops."""

from __future__ import annotations

import asyncio
import time

from bananas import Bananas, Client, wire
from bananas.brokers.base import Lease, Offer, Outcome, Reclaim
from bananas.brokers.redis import RedisBroker
from bananas.job import Job, JobStatus, new_id
from bananas.testing import RedisServer, running_worker, wait_until_async
from tests.conftest import make_settings

RK = "default"
IDLE = "bananas:{default}:idle"


def job(name: str = "t") -> tuple[Job, bytes]:
    j = Job(id=new_id(), name=name, payload={}, created_at=time.time())
    return j, wire.encode_job(j)


async def offer_and_enqueue(broker: RedisBroker, offer: Offer, *jobs: tuple[Job, bytes]) -> None:
    assert await broker.dequeue([RK], 10, offer.lease_s, offer.worker_id, offer=offer) == []
    await broker.enqueue(list(jobs))


async def test_an_offer_takes_the_next_submit_leased(redis_broker: RedisBroker, redis_server: RedisServer) -> None:
    offer = Offer("w1", 30.0)
    first, second = job(), job()
    await offer_and_enqueue(redis_broker, offer, first, second)
    [handed] = await redis_broker.wait_for_work([RK], 1.0, offer)
    assert (handed.id, handed.token, handed.attempts, handed.body) == (first[0].id, 1, 0, first[1])
    seen = await redis_broker.get_job(first[0].id)
    assert seen is not None and seen.status is JobStatus.PROCESSING and seen.worker == "w1"
    r = redis_server.client()
    assert r.zscore("bananas:{default}:leases", first[0].id) is not None
    assert r.zrange("bananas:{default}:ready", 0, -1) == [second[0].id.encode()]  # one offer, one job
    assert r.llen("bananas:{default}:signal") == 1  # only the job left ready wakes anyone
    done = Outcome(handed.id, RK, handed.token, "completed", 1, result=b"1")
    assert await redis_broker.ack([done], (60, 60)) == [True]


async def test_the_next_dequeue_takes_handed_jobs_first(redis_broker: RedisBroker) -> None:
    offer = Offer("w1", 30.0)
    handed, ready = job(), job()
    await offer_and_enqueue(redis_broker, offer, handed)
    await redis_broker.enqueue([ready])
    got = await redis_broker.dequeue([RK], 10, 30.0, "w1", offer=offer)
    assert [(d.id, d.token) for d in got] == [(handed[0].id, 1), (ready[0].id, 1)]


async def test_a_handed_job_whose_lease_ran_out_is_recovered_not_run_twice(redis_broker: RedisBroker) -> None:
    offer = Offer("w1", 0.05)
    handed = job()
    await offer_and_enqueue(redis_broker, offer, handed)
    await asyncio.sleep(0.1)  # the lease (50 ms) runs out: what is under test is time
    assert (await redis_broker.tick(3, 60)).recovered == 1
    # The stale inbox entry is dropped; the job comes back from `ready` as delivery 2.
    [again] = await redis_broker.dequeue([RK], 10, 30.0, "w1", offer=offer)
    assert (again.id, again.token) == (handed[0].id, 2)


async def test_a_lapsed_offer_is_not_used(redis_broker: RedisBroker, redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.zadd(IDLE, {"30000|dead-worker": int(time.time() * 1000) - 1})  # a worker that died while idle
    j = job()
    await redis_broker.enqueue([j])
    assert r.zrange("bananas:{default}:ready", 0, -1) == [j[0].id.encode()]
    assert r.zcard(IDLE) == 0


async def test_withdraw_returns_what_was_handed_for_requeue(
    redis_broker: RedisBroker, redis_server: RedisServer
) -> None:
    offer = Offer("w1", 30.0)
    handed = job()
    await offer_and_enqueue(redis_broker, offer, handed)
    [back] = await redis_broker.withdraw([RK], offer)
    assert (back.id, back.token) == (handed[0].id, 1)
    assert await redis_broker.requeue([Lease(back.id, RK, back.token)]) == 1
    assert redis_server.client().zcard(IDLE) == 0
    later = job()
    await redis_broker.enqueue([later])  # no offer left: it goes to `ready`
    got = await redis_broker.dequeue([RK], 10, 30.0, "w2")
    assert [d.id for d in got] == [handed[0].id, later[0].id]


async def test_a_worker_runs_handed_jobs_and_withdraws_when_it_stops(redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    app = Bananas(settings=make_settings(redis_server.url))

    @app.task
    async def hello() -> str:
        return "hi"

    client = Client(redis_server.url)
    r = redis_server.client()
    async with running_worker(app) as worker:
        await wait_until_async(lambda: r.zcard(IDLE), 10, "the idle worker's offer")
        job_id = client.submit("hello", {})
        done = await asyncio.to_thread(client.wait, job_id, 10)
        assert done.result == "hi" and done.deliveries == 1 and done.worker == worker.id
    assert r.zcard(IDLE) == 0 and not r.keys("bananas:{default}:inbox:*")
    client.close()


async def test_a_stopping_worker_gives_back_a_handed_job_at_once_not_after_its_grace(
    redis_server: RedisServer,
) -> None:
    redis_server.client().flushall()
    app = Bananas(settings=make_settings(redis_server.url, concurrency=2, grace_s=10))
    release = asyncio.Event()

    @app.task
    async def long() -> str:
        await release.wait()
        return "done"

    @app.task
    async def hello() -> str:
        return "hi"

    client = Client(redis_server.url)
    r = redis_server.client()
    async with running_worker(app) as worker:
        first = client.submit("long", {})
        await wait_until_async(lambda: r.zcard(IDLE), 10, "the offer of the worker's free slot")
        worker.stop()  # draining now: the long job runs on, within its 10 s of grace
        second = client.submit("hello", {})  # may be handed to the stopping worker's offer
        # Run by the stopping worker (it had it before the stop took effect) or given back
        # at once: not held until the grace period ends, nor stranded until its lease does.
        await wait_until_async(
            lambda: (j := client.get_job(second)) is not None and j.status.value in ("pending", "completed"), 2,
            "the second job run or back in its queue while the first still runs",
        )  # fmt: skip
        job = client.get_job(first)
        assert job is not None and job.status.value == "processing"
        release.set()
    assert client.get_job(first).result == "done"  # type: ignore[union-attr]
    client.close()


async def test_a_job_handed_to_a_worker_that_never_took_it_is_not_charged(
    redis_broker: RedisBroker, redis_server: RedisServer
) -> None:
    r = redis_server.client()
    reclaim = Reclaim(max_deliveries=3, failed_ttl_s=60)
    ghost, taker = Offer("ghost", 0.05), Offer("taker", 0.05)
    untouched, taken = job(), job()
    await offer_and_enqueue(redis_broker, ghost, untouched)  # ghost dies before its BLPOP
    await offer_and_enqueue(redis_broker, taker, taken)
    assert [d.id for d in await redis_broker.wait_for_work([RK], 1.0, taker)] == [taken[0].id]  # then dies
    await asyncio.sleep(0.1)  # both leases (50 ms) run out: what is under test is time
    isolating = await redis_broker.dequeue([RK], 10, 30.0, "rescuer", reclaim=reclaim)
    assert isolating.isolate  # the job taken by a worker that died is a suspect
    alone = await redis_broker.dequeue_alone([RK], 30.0, "rescuer")
    assert alone is not None and (alone.id, alone.token) == (taken[0].id, 2)
    got = await redis_broker.dequeue([RK], 10, 30.0, "rescuer")  # the untouched one is simply ready
    assert [(d.id, d.token) for d in got] == [(untouched[0].id, 2)]
    unacked = {i: int(r.hget(f"bananas:{{default}}:job:{i}", "unacked") or 0) for i in (untouched[0].id, taken[0].id)}
    assert unacked == {untouched[0].id: 1, taken[0].id: 2}  # only the delivery that was taken counts
    assert r.llen("bananas:{default}:inbox:ghost") == 0
