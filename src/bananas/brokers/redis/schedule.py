"""The Redis broker's cron-schedule operations (state per schedule, fired ticks); the
rules are in ``scripts/fire.lua``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bananas.brokers.base import SCHEDULE_FIELDS, TICK_KEY_TTL_S, Fire, ScheduleState
from bananas.brokers.redis import layout
from bananas.brokers.redis.guard import guard
from bananas.brokers.redis.layout import EPOCH, ROUTING_KEYS, SCHEDULES, ms, prefix
from bananas.brokers.redis.store import RedisStore


class RedisSchedules(RedisStore):
    """``RedisBroker``'s cron schedules: fire ticks, read and change their state."""

    @guard("fire schedule")
    async def fire_schedule(self, fires: Sequence[Fire], token: int | None) -> list[bool]:
        out: list[bool] = []
        for f in fires:
            p, sk = prefix(f.job.routing_key), layout.schedule_key(f.schedule_id)
            keys = [p + "ready", p + "signal", ROUTING_KEYS, EPOCH, SCHEDULES, sk, f"{sk}:tick:{ms(f.tick)}"]
            args: list[Any] = [p, f.job.routing_key, ms(time.time()), "" if token is None else token, f.job.id, f.body,
                    f.job.priority, ms(f.tick), "" if f.next_run is None else ms(f.next_run),
                    ms(TICK_KEY_TTL_S), f.schedule_id, f.job.name]  # fmt: skip
            code = int(await self._s["fire"](keys, args))
            out.append(code == 1)
            if code < 0:  # fenced off: a newer leader exists, so none of the rest may fire
                out += [False] * (len(fires) - len(out))
                break
        return out

    @guard("read schedules")
    async def schedule_states(self) -> list[ScheduleState]:
        ids = sorted(m.decode() if isinstance(m, bytes) else m for m in await self._r.smembers(SCHEDULES))
        async with self._r.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hgetall(layout.schedule_key(sid))
            found = await pipe.execute()
        return [layout.schedule_state(sid, fields) for sid, fields in zip(ids, found, strict=True) if fields]

    @guard("update schedule")
    async def update_schedule(self, schedule_id: str, fields: dict[str, str | bytes | float | int | None]) -> None:
        sets: dict[Any, Any] = {}
        clears: list[str] = []
        for name, value in fields.items():
            if name not in SCHEDULE_FIELDS:
                raise ValueError(f"unknown schedule field {name!r}")
            if value is None:
                clears.append(name)
            elif name == "enabled":
                sets[name] = "1" if value else "0"
            elif name in ("next_run", "last_success"):
                sets[name] = str(ms(float(value)))
            else:
                sets[name] = value if isinstance(value, str | bytes) else str(value)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.sadd(SCHEDULES, schedule_id)
            if sets:
                pipe.hset(layout.schedule_key(schedule_id), mapping=sets)
            if clears:
                pipe.hdel(layout.schedule_key(schedule_id), *clears)
            await pipe.execute()

    @guard("delete schedule")
    async def delete_schedule(self, schedule_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.srem(SCHEDULES, schedule_id)
            pipe.delete(layout.schedule_key(schedule_id))
            await pipe.execute()
