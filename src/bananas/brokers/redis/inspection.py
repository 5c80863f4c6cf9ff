"""The Redis broker's inspection and administration: jobs by id or status, cancelling,
dead letters and queue depths."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

from bananas.brokers.base import CANCELLED_TTL_S, QueueStats
from bananas.brokers.redis import layout
from bananas.brokers.redis.guard import guard
from bananas.brokers.redis.layout import ms, prefix
from bananas.brokers.redis.store import MAX_BLOCK_S, RedisStore
from bananas.job import Job, check_routing_key


class RedisInspection(RedisStore):
    """``RedisBroker``'s reads and administration of jobs, whatever their routing key."""

    async def _find(self, job_id: str) -> tuple[str, dict[bytes, bytes]] | None:
        rks = await self._routing_keys()
        async with self._r.pipeline(transaction=False) as pipe:
            for rk in rks:
                pipe.hgetall(prefix(rk) + "job:" + job_id)
            found = await pipe.execute()
        for rk, fields in zip(rks, found, strict=True):
            if fields:
                return rk, fields
        return None

    @guard("get job")
    async def get_job(self, job_id: str) -> Job | None:
        hit = await self._find(job_id)
        return None if hit is None else layout.job_from_hash(job_id, hit[0], hit[1])

    @guard("wait for job")
    async def wait_job(self, job_id: str, timeout_s: float) -> Job | None:
        deadline = time.monotonic() + timeout_s
        hit = await self._find(job_id)
        if hit is None:
            return None
        p = prefix(hit[0])
        notify = p + "notify:" + job_id
        while True:
            status = (await self._s["watch"]([p + "job:" + job_id], [])).decode()
            if status in ("", "completed", "failed", "cancelled"):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if await self._rb.blpop([notify], timeout=max(0.01, min(left, MAX_BLOCK_S))):
                break
        # The routing key is known by now: read the record directly rather than search again.
        fields = cast("dict[bytes, bytes]", await self._r.hgetall(p + "job:" + job_id))
        return layout.job_from_hash(job_id, hit[0], fields) if fields else None

    @guard("cancel")
    async def cancel(self, job_id: str) -> str | None:
        hit = await self._find(job_id)
        if hit is None:
            return None
        p = prefix(hit[0])
        status = await self._s["cancel"](
            [p + "ready", p + "scheduled", p + "finished"], [p, job_id, ms(time.time()), int(CANCELLED_TTL_S)]
        )
        return status.decode() if status else None

    @guard("list jobs")
    async def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        index = {
            "pending": ("ready", False),
            "suspect": ("suspects", False),
            "scheduled": ("scheduled", False),
            "processing": ("leases", False),
            "failed": ("dead", True),
            "completed": ("finished", True),
            "cancelled": ("finished", True),
        }
        wanted = ([status, "suspect"] if status == "pending" else [status]) if status else list(index)
        rks = await self._routing_keys()
        ids: list[tuple[str, bytes]] = []
        async with self._r.pipeline(transaction=False) as pipe:
            slots = sorted({index[s] for s in wanted})
            for rk in rks:
                for key, newest_first in slots:
                    fetch = pipe.zrevrange if newest_first else pipe.zrange
                    fetch(prefix(rk) + key, 0, max(limit * 4, 1000) - 1)
            lists = await pipe.execute()
        pos = 0
        for rk in rks:
            for _ in slots:
                ids.extend((rk, m) for m in lists[pos])
                pos += 1
        async with self._r.pipeline(transaction=False) as pipe:
            for rk, member in ids:
                pipe.hgetall(prefix(rk) + "job:" + member.decode())
            bodies = await pipe.execute()
        jobs: list[Job] = []
        for (rk, member), fields in zip(ids, bodies, strict=True):
            if not fields:
                continue
            job = layout.job_from_hash(member.decode(), rk, fields)
            if (status is None or job.status.value == status) and (name is None or job.name == name):
                jobs.append(job)
        jobs.sort(key=lambda j: j.finished_at or j.created_at, reverse=True)
        return jobs[:limit]

    @guard("retry dead jobs")
    async def retry_dead(self, job_ids: Sequence[str] | None) -> int:
        now_ms = ms(time.time())
        total = 0
        for rk in await self._routing_keys():
            p = prefix(rk)
            if job_ids is not None:
                present = [i for i in job_ids if await self._r.zscore(p + "dead", i) is not None]
                if not present:
                    continue
            else:
                present = []
            total += await self._s["retry_dead"]([p + "ready", p + "dead", p + "signal"], [p, now_ms, *present])
        return int(total)

    @guard("purge dead jobs")
    async def purge_dead(self) -> int:
        total = 0
        for rk in await self._routing_keys():
            p = prefix(rk)
            total += await self._s["purge_dead"]([p + "dead"], [p])
        return int(total)

    @guard("queue stats")
    async def queue_stats(self) -> list[QueueStats]:
        rks = await self._routing_keys()
        keys = ("ready", "scheduled", "leases", "dead", "suspects", "paused")
        results = await self._calls("stats", [([prefix(rk) + k for k in keys], ()) for rk in rks])
        stats = []
        for rk, res in zip(rks, results, strict=True):
            by_prio = {int(res[i]): int(res[i + 1]) for i in range(7, len(res), 2)}
            oldest = int(res[3]) / 1000 if int(res[3]) >= 0 else None
            due = int(res[4]) / 1000 if int(res[4]) >= 0 else None
            stats.append(QueueStats(rk, by_prio, int(res[0]), int(res[1]), int(res[2]), oldest, due, int(res[5]),
                                    paused=res[6] == 1))  # fmt: skip
        return stats

    @guard("pause routing key")
    async def pause(self, routing_key: str, paused: bool = True) -> bool:
        p = prefix(check_routing_key(routing_key))
        changed = await self._s["pause"](
            [p + "paused", p + "idle", p + "signal"], ["1" if paused else "0", routing_key]
        )
        return bool(changed)
