"""``RedisBroker``: the reference backend. Key layout and scripts: docs/WIRE.md."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar, cast

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bananas.brokers.base import (
    CANCELLED_TTL_S,
    SCHEDULE_FIELDS,
    TICK_KEY_TTL_S,
    Broker,
    Delivery,
    Fire,
    JobFilter,
    Lease,
    LeaseState,
    Offer,
    Outcome,
    QueueStats,
    ScheduleState,
    TickReport,
)
from bananas.brokers.redis import layout
from bananas.brokers.redis.connection import BlockingScript, connection_class
from bananas.brokers.redis.layout import EPOCH, LEADER, ROUTING_KEYS, SCHEDULES, WAKE, ms, prefix
from bananas.errors import BrokerError, BrokerUnavailable
from bananas.job import Job

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Longest single blocking command; longer waits loop, so a silent server is noticed.
MAX_BLOCK_S = 5.0
#: How long the scheduler reuses the routing-key list between wake-ups.
RK_CACHE_S = 30.0
#: Most ready ids a specialized (filtered) dequeue looks at per priority band.
FILTER_SCAN = 1000
#: Most jobs one scheduler tick moves per routing key and kind.
TICK_LIMIT = 1000
#: An idle worker's offer outlives its longest blocking wait by this much (then it is
#: renewed by the next dequeue, or it lapses: a worker that died while idle is handed at
#: most one job, which returns to its queue when the lease runs out).
OFFER_SLACK_S = 1.0

_SCRIPT_DIR = resources.files("bananas.brokers.redis").joinpath("scripts")
_SCRIPTS = (
    "submit", "dequeue", "ack", "renew", "requeue", "tick", "cancel", "watch",
    "retry_dead", "purge_dead", "stats", "leader", "release_leader", "fire", "dequeue_filtered", "withdraw",
)  # fmt: skip


def _translate(op: str, url: str, exc: Exception) -> Exception:
    if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError):
        return BrokerUnavailable(f"redis broker {url} unreachable during {op}: {exc}")
    return BrokerError(f"redis broker error during {op}: {exc}")


def _guard(op: str) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Turn redis-py connection errors into ``BrokerUnavailable`` naming the operation."""

    def wrap(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await fn(*args, **kwargs)
            except (rexc.RedisError, OSError) as exc:
                raise _translate(op, getattr(args[0], "safe_url", "redis"), exc) from None

        return inner

    return wrap


class RedisBroker(Broker):
    """Jobs in Redis: sorted sets per routing key, job hashes, Lua for every state change.

    Args:
        url: ``redis://[:password@]host:port/db`` or ``rediss://...``.
        timeout_s: connect and command timeout; a down server raises
            ``BrokerUnavailable`` within it.
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.safe_url = url.rsplit("@", maxsplit=1)[-1] if "@" in url else url
        self._timeout_s = timeout_s
        common: dict[str, Any] = {
            "socket_connect_timeout": timeout_s,
            # One immediate retry on a broken connection (a pooled connection to a server
            # that restarted); none on timeouts, so a frozen server fails within timeout_s.
            "retry": Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,)),
            "health_check_interval": 0,
        }
        packer = connection_class(url)
        if packer is not None:
            common["connection_class"] = packer
        self._r = aioredis.Redis.from_url(url, socket_timeout=timeout_s, **common)
        # Blocking commands get their own pool with a socket timeout above MAX_BLOCK_S.
        self._rb = aioredis.Redis.from_url(url, socket_timeout=MAX_BLOCK_S + timeout_s, **common)
        lib = _SCRIPT_DIR.joinpath("_lib.lua").read_text()
        self._sources = {name: lib + _SCRIPT_DIR.joinpath(f"{name}.lua").read_text() for name in _SCRIPTS}
        self._s = {name: self._r.register_script(text) for name, text in self._sources.items()}
        self._sync_submit: BlockingScript | None = None
        self._sync_lock = threading.Lock()
        self._tick_rks: tuple[float, list[str]] | None = None

    def clone(self) -> RedisBroker:
        return RedisBroker(self.url, timeout_s=self._timeout_s)

    async def _calls(self, name: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run script ``name`` once per ``(keys, args)`` in one round trip; the replies.

        redis-py's pipelined scripts send ``SCRIPT EXISTS`` before every batch (a command
        per call for an idle scheduler); here EVALSHA goes out as is, and only a call
        refused with NOSCRIPT (a restarted or flushed server) is sent again once the
        script is loaded.
        """
        script = self._s[name]
        if not calls:
            return []
        if len(calls) == 1:
            return [await script(*calls[0])]
        async with self._r.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, r in enumerate(results) if isinstance(r, rexc.NoScriptError)]
        for i in missing:
            results[i] = await script(*calls[i])
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    @_guard("ping")
    async def ping(self) -> None:
        await self._r.ping()

    async def close(self) -> None:
        await self._r.aclose()
        await self._rb.aclose()
        if self._sync_submit is not None:
            self._sync_submit.close()

    # --- producing -------------------------------------------------------------
    @_guard("submit")
    async def enqueue(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        await self._calls("submit", layout.submit_calls(jobs, watch))

    def enqueue_blocking(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        if self._sync_submit is None:
            with self._sync_lock:
                if self._sync_submit is None:
                    self._sync_submit = BlockingScript(self.url, self._sources["submit"], self._timeout_s)
        try:
            self._sync_submit(layout.submit_calls(jobs, watch))
        except (rexc.RedisError, OSError) as exc:
            raise _translate("submit", self.safe_url, exc) from None

    # --- consuming -------------------------------------------------------------
    @_guard("dequeue")
    async def dequeue(
        self,
        routing_keys: Sequence[str],
        count: int,
        lease_s: float,
        worker_id: str,
        only: JobFilter | None = None,
        offer: Offer | None = None,
    ) -> list[Delivery]:
        if only is not None and (only.priorities or only.names):
            return await self._dequeue_filtered(routing_keys, count, lease_s, worker_id, only)
        out: list[Delivery] = []
        for rk in routing_keys:
            want = count - len(out)
            if want <= 0:
                break
            now = time.time()
            p = prefix(rk)
            keys = [p + "ready", p + "leases", p + "signal"]
            args: list[Any] = [p, want, ms(now), ms(now + lease_s), worker_id]
            if offer is not None:
                keys += (p + "idle", f"{p}inbox:{offer.worker_id}")
                args += (layout.offer_member(offer), ms(now + MAX_BLOCK_S + OFFER_SLACK_S))
            raw = await self._s["dequeue"](keys, args)
            for i in range(0, len(raw), 4):
                out.append(Delivery(raw[i].decode(), rk, raw[i + 1], int(raw[i + 2]), int(raw[i + 3])))
        return out

    async def _dequeue_filtered(
        self, routing_keys: Sequence[str], count: int, lease_s: float, worker_id: str, only: JobFilter
    ) -> list[Delivery]:
        bands: list[Any] = []
        for low, high in only.priorities:  # ready score = (100 - priority) * 1e13 + ms
            bands += [(100 - high) * 10**13, f"({(101 - low) * 10**13}"]
        out: list[Delivery] = []
        for rk in routing_keys:
            want = count - len(out)
            if want <= 0:
                break
            now, p = time.time(), prefix(rk)
            raw = await self._s["dequeue_filtered"](
                [p + "ready", p + "leases", p + "signal"],
                [p, want, ms(now), ms(now + lease_s), worker_id, FILTER_SCAN, len(only.priorities), *bands,
                 *only.names],
            )  # fmt: skip
            for i in range(0, len(raw), 4):
                out.append(Delivery(raw[i].decode(), rk, raw[i + 1], int(raw[i + 2]), int(raw[i + 3])))
        return out

    @_guard("wait for work")
    async def wait_for_work(
        self, routing_keys: Sequence[str], timeout_s: float, offer: Offer | None = None
    ) -> list[Delivery]:
        keys = [prefix(rk) + "signal" for rk in routing_keys]
        inboxes = {} if offer is None else {f"{prefix(rk)}inbox:{offer.worker_id}": rk for rk in routing_keys}
        got = cast(
            "tuple[bytes, bytes] | None",
            await self._rb.blpop([*inboxes, *keys], timeout=max(0.01, min(timeout_s, MAX_BLOCK_S))),
        )
        rk = None if got is None else inboxes.get(got[0].decode())
        if got is None or rk is None:
            return []
        deadline, delivery = layout.handed(rk, got[1])
        if deadline <= ms(time.time()):  # its lease ran out first: the scheduler gives it back
            logger.warning("job %s was handed over after its lease ended; leaving it to the scheduler", delivery.id)
            return []
        return [delivery]

    @_guard("withdraw")
    async def withdraw(self, routing_keys: Sequence[str], offer: Offer) -> list[Delivery]:
        member = layout.offer_member(offer)
        out = []
        for rk in routing_keys:
            p = prefix(rk)
            for raw in await self._s["withdraw"]([p + "idle", f"{p}inbox:{offer.worker_id}"], [member]):
                out.append(layout.handed(rk, raw)[1])
        return out

    @_guard("ack")
    async def ack(self, outcomes: Sequence[Outcome], ttl: tuple[float, float]) -> list[bool]:
        by_rk: dict[str, tuple[list[Outcome], list[Outcome]]] = {}
        for o in outcomes:  # completed outcomes travel in a compact form of their own
            done, other = by_rk.setdefault(o.routing_key, ([], []))
            (done if o.kind == "completed" else other).append(o)
        now_ms = ms(time.time())
        accepted: dict[int, bool] = {}
        for rk, (done, other) in by_rk.items():
            p = prefix(rk)
            args: list[Any] = [p, now_ms, max(1, ms(ttl[0])), max(1, ms(ttl[1])), len(done)]
            for o in done:
                args += (o.id, o.token, o.attempts, o.result)
            for o in other:
                args += (o.id, o.token, o.kind, o.attempts, o.error, o.traceback, o.reason, ms(o.retry_at))
            res = await self._s["ack"]([p + "leases", p + "scheduled", p + "dead", p + "finished", WAKE], args)
            for o, ok in zip([*done, *other], res, strict=True):
                accepted[id(o)] = bool(ok)
        return [accepted[id(o)] for o in outcomes]

    @_guard("renew leases")
    async def renew(self, leases: Sequence[Lease], lease_s: float) -> list[LeaseState]:
        deadline = ms(time.time() + lease_s)
        states: dict[int, LeaseState] = {}
        for rk, group in layout.group(leases).items():
            p = prefix(rk)
            args: list[Any] = [p, deadline]
            for lease in group:
                args += (lease.id, lease.token)
            res = await self._s["renew"]([p + "leases"], args)
            for lease, code in zip(group, res, strict=True):
                states[id(lease)] = "ok" if code == 1 else "cancel" if code == 2 else "lost"
        return [states[id(lease)] for lease in leases]

    @_guard("requeue")
    async def requeue(self, leases: Sequence[Lease]) -> int:
        now_ms = ms(time.time())
        total = 0
        for rk, group in layout.group(leases).items():
            p = prefix(rk)
            args: list[Any] = [p, now_ms]
            for lease in group:
                args += (lease.id, lease.token)
            total += await self._s["requeue"]([p + "ready", p + "leases", p + "signal"], args)
        return int(total)

    @_guard("set progress")
    async def set_progress(self, items: Sequence[tuple[str, str, float]]) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            for job_id, rk, value in items:
                pipe.hset(prefix(rk) + "job:" + job_id, "progress", repr(float(value)))
            await pipe.execute()

    # --- scheduler duties ------------------------------------------------------
    @_guard("scheduler tick")
    async def tick(self, max_deliveries: int, failed_ttl_s: float, completed_ttl_s: float = 3600.0) -> TickReport:
        now = time.monotonic()
        if self._tick_rks is None or now - self._tick_rks[0] > RK_CACHE_S:
            self._tick_rks = (now, await self._routing_keys())
        rks = self._tick_rks[1]
        report = TickReport()
        if not rks:
            return report
        now_ms = ms(time.time())
        finished_ttl_ms = ms(max(completed_ttl_s, CANCELLED_TTL_S))  # the finished index holds both
        args = [now_ms, TICK_LIMIT, max_deliveries, max(1, ms(failed_ttl_s)), finished_ttl_ms]
        calls: list[tuple[list[str], list[Any]]] = []
        for rk in rks:
            p = prefix(rk)
            calls.append(([p + k for k in ("ready", "scheduled", "leases", "dead", "signal", "finished")], [p, *args]))
        results = await self._calls("tick", calls)
        for moved, recovered, lost, next_due in results:
            report.moved += moved
            report.recovered += recovered
            report.lost += lost
            due = int(next_due)
            if due >= 0 and (report.next_due is None or due / 1000 < report.next_due):
                report.next_due = due / 1000
        return report

    @_guard("wait for schedule")
    async def wait_for_schedule(self, timeout_s: float) -> None:
        if await self._rb.blpop([WAKE], timeout=max(0.01, min(timeout_s, MAX_BLOCK_S))):
            self._tick_rks = None  # a submit woke us: it may have used a new routing key

    @_guard("acquire scheduler lock")
    async def acquire_leader(self, holder: str, ttl_s: float) -> int | None:
        token = await self._s["leader"]([LEADER, EPOCH], [holder, ms(ttl_s)])
        return int(token) if token else None

    @_guard("release scheduler lock")
    async def release_leader(self, holder: str) -> None:
        await self._s["release_leader"]([LEADER], [holder])

    # --- cron schedules ---------------------------------------------------------
    @_guard("fire schedule")
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

    @_guard("read schedules")
    async def schedule_states(self) -> list[ScheduleState]:
        ids = sorted(m.decode() if isinstance(m, bytes) else m for m in await self._r.smembers(SCHEDULES))
        async with self._r.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hgetall(layout.schedule_key(sid))
            found = await pipe.execute()
        return [layout.schedule_state(sid, fields) for sid, fields in zip(ids, found, strict=True) if fields]

    @_guard("update schedule")
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

    @_guard("delete schedule")
    async def delete_schedule(self, schedule_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.srem(SCHEDULES, schedule_id)
            pipe.delete(layout.schedule_key(schedule_id))
            await pipe.execute()

    # --- inspecting ------------------------------------------------------------
    async def _routing_keys(self) -> list[str]:
        members = await self._r.smembers(ROUTING_KEYS)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

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

    @_guard("get job")
    async def get_job(self, job_id: str) -> Job | None:
        hit = await self._find(job_id)
        return None if hit is None else layout.job_from_hash(job_id, hit[0], hit[1])

    @_guard("wait for job")
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

    @_guard("cancel")
    async def cancel(self, job_id: str) -> str | None:
        hit = await self._find(job_id)
        if hit is None:
            return None
        p = prefix(hit[0])
        status = await self._s["cancel"](
            [p + "ready", p + "scheduled", p + "finished"], [p, job_id, ms(time.time()), int(CANCELLED_TTL_S)]
        )
        return status.decode() if status else None

    @_guard("list jobs")
    async def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        index = {
            "pending": ("ready", False),
            "scheduled": ("scheduled", False),
            "processing": ("leases", False),
            "failed": ("dead", True),
            "completed": ("finished", True),
            "cancelled": ("finished", True),
        }
        wanted = [status] if status else list(index)
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

    @_guard("retry dead jobs")
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

    @_guard("purge dead jobs")
    async def purge_dead(self) -> int:
        total = 0
        for rk in await self._routing_keys():
            p = prefix(rk)
            total += await self._s["purge_dead"]([p + "dead"], [p])
        return int(total)

    @_guard("queue stats")
    async def queue_stats(self) -> list[QueueStats]:
        rks = await self._routing_keys()
        keys = ("ready", "scheduled", "leases", "dead")
        results = await self._calls("stats", [([prefix(rk) + k for k in keys], ()) for rk in rks])
        stats = []
        for rk, res in zip(rks, results, strict=True):
            by_prio = {int(res[i]): int(res[i + 1]) for i in range(4, len(res), 2)}
            oldest = int(res[3]) / 1000 if int(res[3]) >= 0 else None
            stats.append(QueueStats(rk, by_prio, int(res[0]), int(res[1]), int(res[2]), oldest))
        return stats
