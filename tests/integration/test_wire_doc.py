"""docs/WIRE.md is true: a client written from that page alone (redis-py, the Lua files
read as text, nothing imported from bananas) submits, dequeues, acks, waits, cancels and
takes hand-offs; and it agrees with the Python client and worker in both directions.

``PlainRedis`` below is that client. Only the cross-check test imports bananas, inside
the test, to run the real client and worker against it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import redis.asyncio as aioredis

SCRIPTS = Path(__file__).resolve().parents[2] / "src" / "bananas" / "brokers" / "redis" / "scripts"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ROUTING_KEYS = "bananas:routing_keys"
LEASE_MS = 30_000
COMPLETED_TTL_MS = 3_600_000
FAILED_TTL_MS = 86_400_000
TERMINAL = ("completed", "failed", "cancelled")
#: The fields every job object carries (WIRE.md, "The job object").
JOB_FIELDS = {
    "id", "name", "payload", "priority", "routing_key", "status", "attempts", "max_retries", "timeout",
    "created_at", "scheduled_for", "description", "headers", "error", "result", "v",
}  # fmt: skip

Delivery = tuple[str, bytes, int, int]  # id, body, attempts, token


class Server(Protocol):
    """What this module uses of the suite's ``redis_server`` fixture: where it listens."""

    url: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ulid() -> str:
    """48 bits of unix ms and 80 random bits, 26 Crockford base-32 characters."""
    value = now_ms() << 80 | secrets.randbits(80)
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def key(rk: str, name: str) -> str:
    return f"bananas:{{{rk}}}:{name}"


def job_object(
    name: str, payload: dict[str, Any], *, priority: int = 50, rk: str = "default", **fields: Any
) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": ulid(), "name": name, "payload": payload, "priority": priority, "routing_key": rk,
        "status": "pending", "attempts": 0, "max_retries": 3, "timeout": 30.0, "created_at": time.time(),
        "scheduled_for": None, "description": "", "headers": {}, "error": None, "result": None, "v": 1,
    }  # fmt: skip
    job.update(fields)
    return job


def as_int(value: int | bytes) -> int:
    return value if isinstance(value, int) else int(value)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PlainRedis:
    """A Bananas client written from docs/WIRE.md only."""

    def __init__(self, url: str) -> None:
        self.r = aioredis.Redis.from_url(url)
        lib = (SCRIPTS / "_lib.lua").read_text()  # every script runs as _lib.lua + its own text
        names = ("submit", "dequeue", "ack", "renew", "requeue", "withdraw", "watch", "cancel")
        self.scripts = {n: self.r.register_script(lib + (SCRIPTS / f"{n}.lua").read_text()) for n in names}

    async def call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.scripts[script](keys=list(keys), args=list(args))

    async def submit(
        self, rk: str, jobs: Sequence[tuple[dict[str, Any], int]], *, watch: bool = False, now: int | None = None
    ) -> int:
        """Submit (job object, run_at ms or 0) pairs of one routing key, in runs."""
        p = key(rk, "")
        runs: list[list[Any]] = []
        for job, run_at in jobs:
            head = [job["priority"], run_at, job["name"]]
            if not runs or runs[-1][1:4] != head:
                runs.append([0, *head])
            runs[-1] += [job["id"], json.dumps(job)]
            runs[-1][0] += 1
        args: list[Any] = [p, rk, now_ms() if now is None else now, int(watch)]
        for run in runs:
            args += run
        keys = [p + "ready", p + "scheduled", p + "signal", ROUTING_KEYS, p + "idle", p + "leases"]
        return int(await self.call("submit", keys, args))

    async def dequeue(
        self, rk: str, count: int, worker: str, *, offer: str | None = None, now: int | None = None
    ) -> list[Delivery]:
        p, at = key(rk, ""), now_ms() if now is None else now
        keys = [p + "ready", p + "leases", p + "signal"]
        args: list[Any] = [p, count, at, at + LEASE_MS, worker]
        if offer is not None:
            keys += [p + "idle", p + "inbox:" + offer.split("|", 1)[1]]
            args += [offer, at + 6000]
        raw = await self.call("dequeue", keys, args)
        return [(raw[i].decode(), raw[i + 1], as_int(raw[i + 2]), as_int(raw[i + 3])) for i in range(0, len(raw), 4)]

    async def ack(
        self, rk: str, completed: Sequence[tuple[str, int, int, str]], others: Sequence[Any] = ()
    ) -> list[int]:
        """``completed``: (id, token, attempts, result JSON); ``others``: the 8 fields each."""
        p = key(rk, "")
        args: list[Any] = [p, now_ms(), COMPLETED_TTL_MS, FAILED_TTL_MS, len(completed)]
        for outcome in [*completed, *others]:
            args += outcome
        keys = [p + "leases", p + "scheduled", p + "dead", p + "finished"]
        return [int(x) for x in await self.call("ack", keys, args)]

    async def read_job(self, rk: str, job_id: str) -> dict[str, Any] | None:
        """The job object as WIRE.md says to read it: the body, overlaid with the record."""
        rec = {text(k): text(v) for k, v in (await self.r.hgetall(key(rk, "job:" + job_id))).items()}
        if not rec:
            return None
        job: dict[str, Any] = json.loads(rec["body"])
        job["status"] = rec.get("status", "pending")
        job["attempts"] = int(rec.get("attempts", 0))
        job["deliveries"] = int(rec.get("deliveries", 0))
        for name in ("error", "traceback", "reason", "worker"):
            if rec.get(name):
                job[name] = rec[name]
        if "result" in rec:
            job["result"] = json.loads(rec["result"])
        for name in ("started_at", "finished_at"):
            job[name] = int(rec[name]) / 1000 if rec.get(name) else None
        if rec.get("scheduled_for"):
            job["scheduled_for"] = int(rec["scheduled_for"]) / 1000
        job["progress"] = float(rec["progress"]) if rec.get("progress") else None
        return job

    async def wait(self, rk: str, job_id: str, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while True:
            status = (await self.call("watch", [key(rk, "job:" + job_id)], [])).decode()
            if status in ("", *TERMINAL) or time.monotonic() > deadline:
                return await self.read_job(rk, job_id)
            await self.r.blpop([key(rk, "notify:" + job_id)], timeout=2)

    async def close(self) -> None:
        await self.r.aclose()


async def plain(server: Server) -> PlainRedis:
    client = PlainRedis(server.url)
    await client.r.flushall()
    return client


async def test_submit_dequeue_ack_and_read_back_from_the_doc_alone(redis_server: Server) -> None:
    c = await plain(redis_server)
    rk, now = "default", now_ms()
    low = job_object("wire.add", {"a": 1, "b": 2}, priority=10)
    high = job_object("wire.add", {"a": 2, "b": 3}, priority=90, headers={"traceparent": "00-ab-cd-01"})
    assert await c.submit(rk, [(low, 0), (high, 0)], watch=True, now=now) == 2  # two runs, both ready
    assert await c.r.zscore(key(rk, "ready"), high["id"]) == (100 - 90) * 10**13 + now
    assert await c.r.zscore(key(rk, "ready"), low["id"]) == (100 - 10) * 10**13 + now
    assert await c.r.sismember(ROUTING_KEYS, rk)
    record = await c.r.hgetall(key(rk, "job:" + high["id"]))
    assert record[b"body"] == json.dumps(high).encode()
    assert [record[f] for f in (b"status", b"prio", b"name", b"watch")] == [b"pending", b"90", b"wire.add", b"1"]

    [(job_id, body, attempts, token)] = await c.dequeue(rk, 1, "w-plain", now=now)
    assert (job_id, json.loads(body), attempts, token) == (high["id"], high, 0, 1)  # higher priority first
    assert await c.r.zscore(key(rk, "leases"), job_id) == now + LEASE_MS
    running = await c.read_job(rk, job_id)
    assert running is not None and (running["status"], running["deliveries"], running["worker"]) == (
        "processing", 1, "w-plain",
    )  # fmt: skip

    assert await c.ack(rk, [(job_id, token, attempts + 1, '{"sum": 5}')]) == [1]
    assert await c.ack(rk, [(job_id, token, attempts + 1, '{"sum": 5}')]) == [0]  # a second outcome is refused
    assert await c.r.blpop([key(rk, "notify:" + job_id)], timeout=5) == (key(rk, "notify:" + job_id).encode(), b"1")
    done = await c.read_job(rk, job_id)
    assert done is not None
    assert (done["status"], done["attempts"], done["result"]) == ("completed", 1, {"sum": 5})
    assert (done["payload"], done["headers"]) == (high["payload"], {"traceparent": "00-ab-cd-01"})
    assert done["finished_at"] >= now / 1000
    assert 0 < await c.r.pttl(key(rk, "job:" + job_id)) <= COMPLETED_TTL_MS
    assert await c.r.zscore(key(rk, "finished"), job_id) is not None
    assert await c.r.zcard(key(rk, "leases")) == 0  # the lease is released

    [(low_id, _, low_attempts, low_token)] = await c.dequeue(rk, 5, "w-plain")
    failed = [low_id, low_token, "failed", low_attempts + 1, "PermanentError: no", "tb", "permanent_error", 0]
    assert await c.ack(rk, [], [[low_id, low_token + 1, *failed[2:]]]) == [0]  # stale token: fenced off
    assert await c.ack(rk, [], [failed]) == [1]
    dead = await c.read_job(rk, low_id)
    assert dead is not None
    assert (dead["status"], dead["reason"], dead["error"], dead["attempts"]) == (
        "failed", "permanent_error", "PermanentError: no", 1,
    )  # fmt: skip
    assert await c.r.zscore(key(rk, "dead"), low_id) is not None
    assert COMPLETED_TTL_MS < await c.r.pttl(key(rk, "job:" + low_id)) <= FAILED_TTL_MS
    assert await c.r.llen(key(rk, "notify:" + low_id)) == 1
    assert await c.r.zcard(key(rk, "leases")) == 0
    await c.close()


async def test_hand_off_to_an_offer_then_withdraw_and_requeue(redis_server: Server) -> None:
    c = await plain(redis_server)
    rk, offer = "default", f"{LEASE_MS}|w-plain"
    inbox = key(rk, "inbox:w-plain")
    assert await c.dequeue(rk, 1, "w-plain", offer=offer) == []  # nothing ready: the offer is registered
    assert await c.r.zscore(key(rk, "idle"), offer) is not None
    job, now = job_object("wire.add", {"a": 1, "b": 1}), now_ms()
    assert await c.submit(rk, [(job, 0)], now=now) == 0  # handed over, not made ready
    assert await c.r.zcard(key(rk, "ready")) == 0 and await c.r.llen(key(rk, "signal")) == 0
    got = await c.r.blpop([inbox, key(rk, "signal")], timeout=5)
    assert got is not None and got[0] == inbox.encode()
    deadline, id_len, rest = cast("tuple[bytes, bytes]", got)[1].split(b"|", 2)
    job_id, body = rest[: int(id_len)].decode(), rest[int(id_len) :]
    assert (int(deadline), job_id, json.loads(body)) == (now + LEASE_MS, job["id"], job)
    assert await c.r.zscore(key(rk, "leases"), job_id) == now + LEASE_MS
    handed = await c.read_job(rk, job_id)
    assert handed is not None and (handed["status"], handed["deliveries"], handed["worker"]) == (
        "processing", 1, "w-plain",
    )  # fmt: skip
    assert await c.ack(rk, [(job_id, 1, 1, "2")]) == [1]  # a handed job: attempts 0, token 1

    assert await c.dequeue(rk, 1, "w-plain", offer=offer) == []
    second = job_object("wire.add", {"a": 2, "b": 2})
    assert await c.submit(rk, [(second, 0)]) == 0
    [entry] = await c.call("withdraw", [key(rk, "idle"), inbox], [offer])  # a stopping worker
    assert second["id"].encode() + json.dumps(second).encode() in entry
    assert await c.r.zcard(key(rk, "idle")) == 0 and not await c.r.exists(inbox)
    p = key(rk, "")
    assert await c.call("requeue", [p + "ready", p + "leases", p + "signal"], [p, now_ms(), second["id"], 1]) == 1
    assert await c.dequeue(rk, 5, "w-other") == [(second["id"], json.dumps(second).encode(), 0, 2)]
    await c.close()


async def test_watch_cancel_and_renew(redis_server: Server) -> None:
    c = await plain(redis_server)
    rk, p = "default", key("default", "")
    queued, running = job_object("wire.add", {"a": 1, "b": 1}), job_object("wire.add", {"a": 2, "b": 2})
    await c.submit(rk, [(running, 0)])
    [(run_id, _, _, token)] = await c.dequeue(rk, 1, "w-plain")
    later = now_ms() + 60_000
    await c.submit(rk, [(queued, later)])
    assert await c.r.zscore(p + "scheduled", queued["id"]) == later
    scheduled = await c.read_job(rk, queued["id"])
    assert scheduled is not None and (scheduled["status"], scheduled["scheduled_for"]) == ("scheduled", later / 1000)

    assert await c.call("watch", [p + "job:" + queued["id"]], []) == b"scheduled"
    cancel_keys = [p + "ready", p + "scheduled", p + "finished"]
    assert await c.call("cancel", cancel_keys, [p, queued["id"], now_ms(), 3600]) == b"scheduled"
    assert await c.r.blpop([p + "notify:" + queued["id"]], timeout=5) is not None
    cancelled = await c.wait(rk, queued["id"], 5)
    assert cancelled is not None and cancelled["status"] == "cancelled"
    assert 0 < await c.r.ttl(p + "job:" + queued["id"]) <= 3600
    assert await c.r.zcard(p + "scheduled") == 0 and await c.r.zscore(p + "finished", queued["id"]) is not None

    assert await c.call("renew", [p + "leases"], [p, now_ms() + LEASE_MS, run_id, token]) == [1]
    assert await c.call("cancel", cancel_keys, [p, run_id, now_ms(), 3600]) == b"processing"
    assert await c.call("renew", [p + "leases"], [p, now_ms() + LEASE_MS, run_id, token, run_id, token + 1]) == [2, 0]
    assert await c.ack(rk, [(run_id, token, 1, "null")]) == [1]  # the outcome decides the status
    finished = await c.read_job(rk, run_id)
    assert finished is not None and (finished["status"], finished["result"]) == ("completed", None)
    assert await c.call("cancel", cancel_keys, [p, "no-such-job", now_ms(), 3600]) is None
    assert await c.call("watch", [p + "job:no-such-job"], []) == b""
    await c.close()


async def test_the_doc_and_the_python_client_and_worker_agree(redis_server: Server) -> None:
    from bananas import Bananas, JobStatus
    from bananas.testing import running_worker
    from tests.conftest import make_settings

    c = await plain(redis_server)
    app = Bananas(settings=make_settings(redis_server.url))

    @app.task(name="wire.add")
    async def add(a: int, b: int) -> int:
        return a + b

    # The Python client submits; the plain path finds, dequeues, decodes and acks it.
    client = app.async_client()
    before = now_ms()
    job_id = await client.submit(
        "wire.add", {"a": 2, "b": 3}, priority="high", routing_key="wire", description="d",
        headers={"traceparent": "00-ab-cd-01"},
    )  # fmt: skip
    score = await c.r.zscore(key("wire", "ready"), job_id)
    assert score is not None and before <= score - (100 - 90) * 10**13 <= now_ms()
    [(got_id, body, attempts, token)] = await c.dequeue("wire", 10, "w-plain")
    job = json.loads(body)
    assert got_id == job_id and attempts == 0 and token == 1
    assert set(job) >= JOB_FIELDS
    assert len(job["id"]) == 26 and set(job["id"]) <= set(CROCKFORD)
    assert (job["name"], job["payload"], job["priority"], job["routing_key"], job["status"]) == (
        "wire.add", {"a": 2, "b": 3}, 90, "wire", "pending",
    )  # fmt: skip
    assert (job["attempts"], job["v"], job["description"]) == (0, 1, "d")
    assert job["headers"] == {"traceparent": "00-ab-cd-01"}
    assert job["max_retries"] is None and job["timeout"] is None  # the worker's (task's, else its settings')
    assert isinstance(job["created_at"], float) and abs(job["created_at"] - before / 1000) < 5
    assert job["scheduled_for"] is None and job["error"] is None and job["result"] is None
    assert await c.ack("wire", [(got_id, token, 1, "5")]) == [1]
    read = await client.get_job(job_id)
    assert read is not None and (read.status, read.result, read.attempts) == (JobStatus.COMPLETED, 5, 1)

    # The plain path submits (now, delayed, and one of a newer format); a real worker runs them.
    now_job, later_job = job_object("wire.add", {"a": 2, "b": 3}), job_object("wire.add", {"a": 4, "b": 5})
    future = job_object("wire.add", {"a": 1, "b": 1}, v=2)
    await c.submit("default", [(now_job, 0), (later_job, now_ms() + 300), (future, 0)], watch=True)
    async with running_worker(app):
        outcomes = [await c.wait("default", j["id"], 15) for j in (now_job, later_job, future)]
    ran, delayed, malformed = outcomes
    assert ran is not None and (ran["status"], ran["result"], ran["attempts"]) == ("completed", 5, 1)
    assert delayed is not None and (delayed["status"], delayed["result"]) == ("completed", 9)
    assert delayed["started_at"] >= delayed["scheduled_for"]
    assert malformed is not None and (malformed["status"], malformed["reason"]) == ("failed", "malformed")
    assert "unknown job envelope version 2" in malformed["error"]
    assert await c.r.zcard(key("default", "idle")) == 0  # the stopped worker withdrew its offer
    await client.close()
    await c.close()
