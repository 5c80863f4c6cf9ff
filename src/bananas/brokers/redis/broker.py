"""``RedisBroker``: the reference backend. Key layout and scripts: docs/WIRE.md."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

from redis import exceptions as rexc

from bananas.brokers.base import (
    CANCELLED_TTL_S,
    Batch,
    Broker,
    Delivery,
    JobFilter,
    LeaderLock,
    Lease,
    LeaseState,
    Offer,
    Outcome,
    Reclaim,
    TickReport,
    UniqueJobs,
)
from bananas.brokers.redis import layout
from bananas.brokers.redis.catalogue import RedisCatalogue
from bananas.brokers.redis.connection import BlockingScript
from bananas.brokers.redis.guard import guard, translate
from bananas.brokers.redis.inspection import RedisInspection
from bananas.brokers.redis.layout import EPOCH, LEADER, ms, prefix
from bananas.brokers.redis.schedule import RedisSchedules
from bananas.brokers.redis.store import MAX_BLOCK_S
from bananas.brokers.redis.workflows import RedisWorkflows
from bananas.job import Job

logger = logging.getLogger(__name__)

#: How long the scheduler reuses the routing-key list between wake-ups.
RK_CACHE_S = 30.0
#: What ``wake`` pushes onto a worker's inbox: an empty entry, no job.
WAKE_MARK = b""
#: Most ready ids a specialized (filtered) dequeue looks at per priority band.
FILTER_SCAN = 1000
#: Most jobs one scheduler tick moves per routing key and kind.
TICK_LIMIT = 1000
#: An idle worker's offer outlives its longest blocking wait by this much (then it is
#: renewed by the next dequeue, or it lapses: a worker that died while idle is handed at
#: most one job, which returns to its queue when the lease runs out).
OFFER_SLACK_S = 1.0
#: A worker waiting for a due time wakes this much after it (so the job is due by then).
DUE_SLACK_S = 0.005
#: Longest a busy worker fetches without doing the scheduler duties (due jobs, expired leases).
DUTY_EVERY_S = 0.1


class RedisBroker(RedisInspection, RedisSchedules, RedisCatalogue, RedisWorkflows, Broker):
    """Jobs in Redis: sorted sets per routing key, job hashes, Lua for every state change.

    Args:
        url: ``redis://[:password@]host:port/db`` or ``rediss://...``.
        timeout_s: connect and command timeout; a down server raises
            ``BrokerUnavailable`` within it.
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        super().__init__(url, timeout_s=timeout_s)
        self._sync_submit: BlockingScript | None = None
        self._sync_unique: BlockingScript | None = None
        self._sync_lock = threading.Lock()
        self._tick_rks: tuple[float, list[str]] | None = None
        #: when the next delayed job or lease of the keys this broker dequeues from falls due.
        self._due: float | None = None
        self._duties_at = 0.0  # monotonic time after which a fetch does the duties again

    def clone(self) -> RedisBroker:
        return RedisBroker(self.url, timeout_s=self._timeout_s)

    @guard("ping")
    async def ping(self) -> None:
        await self._r.ping()

    async def close(self) -> None:
        await self._r.aclose()
        await self._rb.aclose()
        await self._lean.close()
        for script in (self._sync_submit, self._sync_unique):
            if script is not None:
                script.close()

    # --- producing -------------------------------------------------------------
    @guard("submit")
    async def enqueue(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        await self._calls("submit", layout.submit_calls(jobs, watch))

    @guard("submit")
    async def enqueue_unique(self, jobs: UniqueJobs, *, watch: bool = False) -> list[str]:
        rks, calls = layout.submit_unique_calls(jobs, watch)
        replies = [await self._s["submit_unique"](keys, args) for keys, args in calls]
        return layout.unique_holders(jobs, rks, replies)

    def enqueue_unique_blocking(self, jobs: UniqueJobs, *, watch: bool = False) -> list[str]:
        if self._sync_unique is None:
            with self._sync_lock:
                if self._sync_unique is None:
                    self._sync_unique = BlockingScript(self.url, self._sources["submit_unique"], self._timeout_s)
        rks, calls = layout.submit_unique_calls(jobs, watch)
        try:
            return layout.unique_holders(jobs, rks, self._sync_unique(calls))
        except (rexc.RedisError, OSError) as exc:
            raise translate("submit", self.safe_url, exc) from None

    def enqueue_blocking(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        if self._sync_submit is None:
            with self._sync_lock:
                if self._sync_submit is None:
                    self._sync_submit = BlockingScript(self.url, self._sources["submit"], self._timeout_s)
        try:
            self._sync_submit(layout.submit_calls(jobs, watch))
        except (rexc.RedisError, OSError) as exc:
            raise translate("submit", self.safe_url, exc) from None

    # --- consuming -------------------------------------------------------------
    @guard("dequeue")
    async def dequeue(
        self,
        routing_keys: Sequence[str],
        count: int,
        lease_s: float,
        worker_id: str,
        only: JobFilter | None = None,
        offer: Offer | None = None,
        reclaim: Reclaim | None = None,
    ) -> Batch:
        reclaim = reclaim if reclaim is not None and self._duties_due() else None
        if only is not None and (only.priorities or only.names):
            return await self._dequeue_filtered(routing_keys, count, lease_s, worker_id, only, reclaim)
        out = Batch()
        due: list[int] = []
        for rk in routing_keys:
            want = count - len(out)
            if want <= 0:
                break
            now = time.time()
            p = prefix(rk)
            keys = [p + "ready", p + "leases", p + "signal", p + "idle", f"{p}inbox:{worker_id}"]
            args: list[Any] = [p, want, ms(now), ms(now + lease_s), worker_id]
            if offer is not None:
                args += (layout.offer_member(offer), ms(now + MAX_BLOCK_S + OFFER_SLACK_S))
            if reclaim is not None:
                keys += (p + "scheduled", p + "dead")
                if offer is None:
                    args += ("", "")
                args += layout.duty_args(reclaim)
            raw = await self._hot("dequeue", keys, args)
            if reclaim is not None:
                next_due, isolate = layout.duty_reply(raw)
                due.append(next_due)
                out.isolate = out.isolate or isolate
            out += layout.deliveries(rk, raw)
            if out.isolate:
                break
        if reclaim is not None:
            self._due = layout.earliest_due(due)
        return out

    def _duties_due(self) -> bool:
        """Whether this fetch does the scheduler duties: when something it knows of fell
        due, else at most every ``DUTY_EVERY_S`` (a busy worker fetches far more often)."""
        now = time.monotonic()
        if now < self._duties_at and (self._due is None or self._due > time.time()):
            return False
        self._duties_at = now + DUTY_EVERY_S
        return True

    async def _dequeue_filtered(
        self,
        routing_keys: Sequence[str],
        count: int,
        lease_s: float,
        worker_id: str,
        only: JobFilter,
        reclaim: Reclaim | None,
    ) -> Batch:
        bands: list[Any] = []
        due: list[int] = []
        for low, high in only.priorities:  # ready score = (100 - priority) * 1e13 + ms
            bands += [(100 - high) * 10**13, f"({(101 - low) * 10**13}"]
        out = Batch()
        for rk in routing_keys:
            want = count - len(out)
            if want <= 0:
                break
            now, p = time.time(), prefix(rk)
            duties = ("", 0) if reclaim is None else layout.duty_args(reclaim)
            raw = await self._s["dequeue_filtered"](
                [p + "ready", p + "leases", p + "signal", p + "scheduled", p + "dead"],
                [p, want, ms(now), ms(now + lease_s), worker_id, FILTER_SCAN, *duties, len(only.priorities),
                 *bands, *only.names],
            )  # fmt: skip
            if reclaim is not None:
                next_due, isolate = layout.duty_reply(raw)
                due.append(next_due)
                out.isolate = out.isolate or isolate
            out += layout.deliveries(rk, raw)
            if out.isolate:
                break
        if reclaim is not None:
            self._due = layout.earliest_due(due)
        return out

    @guard("dequeue a suspect")
    async def dequeue_alone(
        self, routing_keys: Sequence[str], lease_s: float, worker_id: str, names: Sequence[str] = ()
    ) -> Delivery | None:
        for rk in routing_keys:
            p, now = prefix(rk), time.time()
            keys = [p + "suspects", p + "leases", p + "isolator", p + "signal"]
            args: list[Any] = [p, ms(now), ms(now + lease_s), worker_id, max(1, ms(lease_s)), *names]
            raw = await self._s["dequeue_alone"](keys, args)
            if raw:
                return layout.deliveries(rk, raw)[0]
        return None

    @guard("wait for work")
    async def wait_for_work(
        self, routing_keys: Sequence[str], timeout_s: float, offer: Offer | None = None
    ) -> list[Delivery]:
        keys = [prefix(rk) + "signal" for rk in routing_keys]
        if self._due is not None:  # wake when the next delayed job or lease falls due
            timeout_s = min(timeout_s, self._due - time.time() + DUE_SLACK_S)
        inboxes = {} if offer is None else {f"{prefix(rk)}inbox:{offer.worker_id}": rk for rk in routing_keys}
        got = cast(
            "tuple[bytes, bytes] | None",
            await self._rb.blpop([*inboxes, *keys], timeout=max(0.01, min(timeout_s, MAX_BLOCK_S))),
        )
        if got is not None:
            self._duties_at = 0.0  # woken: something changed, so the next fetch does the duties
        rk = None if got is None else inboxes.get(got[0].decode())
        if got is None or rk is None or got[1] == WAKE_MARK:
            return []
        deadline, delivery = layout.handed(rk, got[1])
        if deadline <= ms(time.time()):  # its lease ran out first: the scheduler gives it back
            logger.warning("job %s was handed over after its lease ended; leaving it to the scheduler", delivery.id)
            return []
        return [delivery]

    @guard("wake")
    async def wake(self, worker_id: str, routing_keys: Sequence[str]) -> bool:
        async with self._r.pipeline(transaction=False) as pipe:
            for rk in routing_keys:
                inbox = f"{prefix(rk)}inbox:{worker_id}"
                pipe.lpush(inbox, WAKE_MARK)
                pipe.pexpire(inbox, ms(MAX_BLOCK_S + OFFER_SLACK_S))
            await pipe.execute()
        return True

    @guard("withdraw")
    async def withdraw(self, routing_keys: Sequence[str], offer: Offer) -> list[Delivery]:
        member = layout.offer_member(offer)
        out = []
        for rk in routing_keys:
            p = prefix(rk)
            for raw in await self._s["withdraw"]([p + "idle", f"{p}inbox:{offer.worker_id}"], [member]):
                if raw != WAKE_MARK:
                    out.append(layout.handed(rk, raw)[1])
        return out

    @guard("ack")
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
            res = await self._hot("ack", [p + "leases", p + "scheduled", p + "dead", p + "finished"], args)
            for o, ok in zip([*done, *other], res, strict=True):
                accepted[id(o)] = bool(ok)
        return [accepted[id(o)] for o in outcomes]

    @guard("renew leases")
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

    @guard("requeue")
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

    @guard("release a dead worker's jobs")
    async def release_dead(
        self, worker_prefix: str, routing_keys: Sequence[str], how: str, reclaim: Reclaim
    ) -> tuple[int, int]:
        recovered = lost = 0
        for rk in routing_keys:
            p = prefix(rk)
            keys = [p + "ready", p + "leases", p + "dead", p + "signal", p + "isolator"]
            back, dead = await self._s["release_dead"](keys, [p, ms(time.time()), worker_prefix, how,
                                                              *layout.duty_args(reclaim)])  # fmt: skip
            recovered, lost = recovered + int(back), lost + int(dead)
        return recovered, lost

    @guard("set progress")
    async def set_progress(self, items: Sequence[tuple[str, str, float]]) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            for job_id, rk, value in items:
                pipe.hset(prefix(rk) + "job:" + job_id, "progress", repr(float(value)))
            await pipe.execute()

    # --- scheduler duties ------------------------------------------------------
    @guard("scheduler tick")
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

    @guard("acquire scheduler lock")
    async def acquire_leader(self, holder: str, ttl_s: float) -> LeaderLock:
        token, left_ms = await self._s["leader"]([LEADER, EPOCH], [holder, ms(ttl_s)])
        return LeaderLock(int(token) or None, max(0, int(left_ms)) / 1000)

    @guard("release scheduler lock")
    async def release_leader(self, holder: str) -> None:
        await self._s["release_leader"]([LEADER], [holder])
