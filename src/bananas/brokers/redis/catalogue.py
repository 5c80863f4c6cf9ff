"""The Redis broker's task catalogue (``bananas:{catalogue}:*``, one cluster slot).

``tasks`` is the set of published names, ``task:<name>`` a definition (expires after
``CATALOGUE_TTL_S`` unless published again) and ``workers:<name>`` a sorted set of the
workers that serve it, scored by when they last published it (unix ms). Publishing is
one script call (``publish_tasks.lua``), so a worker's heartbeat costs one command.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from bananas.brokers.base import CATALOGUE_TTL_S, CatalogueRecord
from bananas.brokers.redis.guard import guard
from bananas.brokers.redis.layout import CATALOGUE, ms
from bananas.brokers.redis.store import RedisStore


class RedisCatalogue(RedisStore):
    """``RedisBroker``'s task catalogue."""

    @guard("publish tasks")
    async def publish_tasks(self, worker_id: str, definitions: Mapping[str, bytes], stale_after_s: float) -> None:
        if not definitions:
            return
        now = time.time()
        keys: list[str] = [CATALOGUE + "tasks"]
        args: list[Any] = [worker_id, ms(now), ms(now - stale_after_s), int(CATALOGUE_TTL_S)]
        for name, definition in definitions.items():
            keys += [CATALOGUE + "task:" + name, CATALOGUE + "workers:" + name]
            args += [name, definition]
        await self._s["publish_tasks"](keys, args)  # one command, however many tasks

    @guard("unpublish tasks")
    async def unpublish_tasks(self, worker_id: str, names: Sequence[str]) -> None:
        if not names:
            return
        async with self._r.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.zrem(CATALOGUE + "workers:" + name, worker_id)
            await pipe.execute()

    @guard("read the task catalogue")
    async def task_catalogue(self, stale_after_s: float) -> list[CatalogueRecord]:
        names = sorted(n.decode() if isinstance(n, bytes) else n for n in await self._r.smembers(CATALOGUE + "tasks"))
        if not names:
            return []
        since = ms(time.time() - stale_after_s)
        async with self._r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(CATALOGUE + "task:" + name)
                pipe.zrangebyscore(CATALOGUE + "workers:" + name, since, "+inf", withscores=True)
            found = await pipe.execute()
        records, gone = [], []
        for i, name in enumerate(names):
            definition, workers = found[2 * i], found[2 * i + 1]
            if definition is None:
                gone.append(name)
                continue
            seen = {w.decode(): score / 1000 for w, score in workers}
            records.append(CatalogueRecord(name, definition, seen))
        if gone:  # definitions that expired: forget their names too
            await self._r.srem(CATALOGUE + "tasks", *gone)
        return records
