"""The per-name ready index on Redis exists only for names a job-specialized worker asked
for: submits of other names write no index, the first filtered dequeue registers the
name and adds the jobs that were ready before (a ZSCAN of ``ready``, a bounded number
per call), and from then on every way into ``ready`` keeps the index."""

from __future__ import annotations

import asyncio
import time

from bananas import wire
from bananas.brokers.base import JobFilter, Lease
from bananas.brokers.redis import RedisBroker
from bananas.job import Job, new_id
from bananas.testing import RedisServer

RK = "default"
INDEXED = "bananas:{default}:indexed"


def job(name: str, priority: int = 50, delay_s: float | None = None) -> tuple[Job, bytes]:
    now = time.time()
    j = Job(id=new_id(), name=name, payload={}, priority=priority, created_at=now,
            scheduled_for=None if delay_s is None else now + delay_s)  # fmt: skip
    return j, wire.encode_job(j)


async def test_names_nobody_filters_on_get_no_index(redis_broker: RedisBroker, redis_server: RedisServer) -> None:
    await redis_broker.enqueue([job("bulk") for _ in range(50)])
    await redis_broker.enqueue([job("single")])
    r = redis_server.client()
    assert r.zcard("bananas:{default}:ready") == 51
    assert r.keys("bananas:{default}:ready:name:*") == [] and not r.exists(INDEXED)


async def test_first_filtered_dequeue_backfills_across_calls_in_priority_order(
    redis_broker: RedisBroker, redis_server: RedisServer
) -> None:
    # 10,000 other jobs are more than one call scans (4,000): the index fills over a few
    # calls; once it is done, the worker's jobs come strictly by priority.
    for _ in range(10):
        await redis_broker.enqueue([job("bulk") for _ in range(1000)])
    mine = [job("mine", priority=10), job("mine", priority=90), job("mine", priority=50)]
    await redis_broker.enqueue(mine)
    r = redis_server.client()
    only = JobFilter(names=("mine",))
    early = await redis_broker.dequeue([RK], 1, 30, "w", only)
    assert r.hget(INDEXED, "mine") not in (None, b"done")  # a ZSCAN cursor: one call scans at most 4,000
    for _ in range(6):
        early += await redis_broker.dequeue([RK], 1, 30, "w", only)
        if r.hget(INDEXED, "mine") == b"done":
            break
    assert r.hget(INDEXED, "mine") == b"done"
    rest = await redis_broker.dequeue([RK], 5, 30, "w", only)
    prio = {j.id: j.priority for j, _ in mine}
    assert [prio[d.id] for d in rest] == sorted((prio[d.id] for d in rest), reverse=True)
    assert sorted(d.id for d in early + rest) == sorted(prio)
    assert await redis_broker.dequeue([RK], 5, 30, "w", only) == []
    assert r.zcard("bananas:{default}:ready") == 10_000 and r.zcard("bananas:{default}:ready:name:mine") == 0
    assert not r.exists("bananas:{default}:ready:name:bulk")


async def test_an_indexed_name_is_kept_by_submit_requeue_and_schedule(
    redis_broker: RedisBroker, redis_server: RedisServer
) -> None:
    only = JobFilter(names=("mine",))
    assert await redis_broker.dequeue([RK], 5, 30, "w", only) == []  # registers "mine"
    r = redis_server.client()
    assert r.hget(INDEXED, "mine") == b"done"
    low, high = job("mine", priority=10), job("mine", priority=90)
    await redis_broker.enqueue([low, job("other"), high])  # a batch of three runs
    await redis_broker.enqueue([job("mine", delay_s=0.05)])
    index = "bananas:{default}:ready:name:mine"
    assert r.zrange(index, 0, -1) == [high[0].id.encode(), low[0].id.encode()]
    [d] = await redis_broker.dequeue([RK], 1, 30, "w", only)
    assert d.id == high[0].id
    await redis_broker.requeue([Lease(d.id, RK, d.token)])
    assert r.zscore(index, high[0].id) is not None
    await asyncio.sleep(0.06)  # the delayed job's time comes; the scheduler's tick makes it ready
    await redis_broker.tick(10, 60)
    assert r.zcard(index) == 3
    got = await redis_broker.dequeue([RK], 5, 30, "w", only)
    assert [wire.decode_job(x.body).name for x in got] == ["mine"] * 3 and got[0].id == high[0].id
    assert [wire.decode_job(x.body).name for x in await redis_broker.dequeue([RK], 5, 30, "w")] == ["other"]
