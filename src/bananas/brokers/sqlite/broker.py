"""``SQLiteBroker``: the embedded backend. One file in WAL mode, several processes on one
machine; or ``memory://``, one in-memory database per process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import math
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from bananas.brokers.base import (
    Batch,
    Broker,
    CatalogueRecord,
    Delivery,
    Fire,
    JobFilter,
    LeaderLock,
    Lease,
    LeaseState,
    Offer,
    Outcome,
    QueueStats,
    Reclaim,
    ScheduleState,
    TickReport,
    UniqueJobs,
)
from bananas.brokers.sqlite import catalogue, inspection, ops, schedules, suspects, unique, workflows
from bananas.brokers.sqlite.engine import Engine, Session
from bananas.brokers.sqlite.hub import RECHECK_S, SCHEDULE_TOPIC, Target, Waiter, job_topic, parse_url, work_topic
from bananas.brokers.workflow import WorkflowRecord, WorkflowSummary
from bananas.errors import BananasError
from bananas.job import Job, check_routing_key

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _ScheduleProbe:
    """True once a job is scheduled earlier than ``baseline``, the earliest due time the
    waiting worker's last fetch saw (so a job delayed between that fetch and the wait
    still wakes it)."""

    def __init__(self, baseline: float | None) -> None:
        self.baseline = baseline

    def __call__(self, s: Session) -> bool:
        current = ops.earliest_scheduled(s)
        return current is not None and (self.baseline is None or current < self.baseline)


class _WorkProbe:
    """True once a job is ready (``ready``), one is scheduled earlier than known
    (``sooner``), or suspects of ``routing_keys`` wait that no worker claimed."""

    def __init__(self, ready: Callable[[Session], bool], sooner: _ScheduleProbe, routing_keys: list[str]) -> None:
        self.ready = ready
        self.sooner = sooner
        self.routing_keys = routing_keys

    def __call__(self, s: Session) -> bool:
        return self.ready(s) or self.sooner(s) or suspects.unclaimed(s, self.routing_keys)


class SQLiteBroker(Broker):
    """Jobs in SQLite: one table, partial indexes as queues, one transaction per batch.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, or
            ``memory://[name]`` for an in-memory database shared by the brokers of this
            process with the same URL (it lives while any of them is open).
        timeout_s: how long to wait for another process holding the write lock before
            raising ``BrokerUnavailable``.

    Raises:
        ConfigurationError: the URL is not a SQLite or memory URL.
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self._setup(url, parse_url(url), timeout_s)

    def _setup(self, url: str, target: Target, timeout_s: float) -> None:
        self.url = url
        self._target = target
        self._timeout_s = timeout_s
        self._engine: Engine | None = None
        self._finalizer: weakref.finalize[[], SQLiteBroker] | None = None
        self._due: float | None = None  # when the next delayed job or lease falls due (last reclaim)
        self._reclaims = False  # the last dequeue did the scheduler's duties
        self._open()

    def _open(self) -> Engine:
        engine = Engine(self._target, self._timeout_s)
        self._finalizer = weakref.finalize(self, engine.shutdown)
        self._engine = engine
        return engine

    async def _run(self, op: str, fn: Callable[[Session], T]) -> T:
        return await (self._engine or self._open()).run(op, fn)

    def clone(self) -> SQLiteBroker:
        # The resolved target, not the URL: a relative path must not follow a chdir.
        other: SQLiteBroker = object.__new__(SQLiteBroker)
        other._setup(self.url, self._target, self._timeout_s)
        return other

    async def ping(self) -> None:
        await self._run("ping", Session.ping)

    async def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        finalizer, self._finalizer, self._engine = self._finalizer, None, None
        fut: concurrent.futures.Future[None] | None = finalizer() if finalizer is not None else None
        if fut is not None:
            await asyncio.wrap_future(fut)

    # --- producing -------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        # ``watch`` needs no preparation: every terminal transition wakes waiters.
        if jobs:
            await self._run("submit", functools.partial(ops.enqueue, jobs=list(jobs)))

    def enqueue_blocking(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        if jobs:
            engine = self._engine or self._open()
            engine.submit("submit", functools.partial(ops.enqueue, jobs=list(jobs))).result()

    async def enqueue_unique(self, jobs: UniqueJobs, *, watch: bool = False) -> list[str]:
        if not jobs:
            return []
        held: list[str] = await self._run("submit", functools.partial(unique.enqueue_unique, jobs=list(jobs)))
        return held

    def enqueue_unique_blocking(self, jobs: UniqueJobs, *, watch: bool = False) -> list[str]:
        if not jobs:
            return []
        engine = self._engine or self._open()
        held: list[str] = engine.submit("submit", functools.partial(unique.enqueue_unique, jobs=list(jobs))).result()
        return held

    # --- consuming -------------------------------------------------------------
    async def dequeue(
        self,
        routing_keys: Sequence[str],
        count: int,
        lease_s: float,
        worker_id: str,
        only: JobFilter | None = None,
        offer: Offer | None = None,  # no hand-off here: offers are ignored
        reclaim: Reclaim | None = None,
    ) -> Batch:
        if count <= 0 or not routing_keys:
            return Batch()
        engine = self._engine or self._open()
        fn = functools.partial(ops.dequeue, routing_keys=list(routing_keys), count=count, lease_s=lease_s,
                               worker=worker_id, only=only, reclaim=reclaim)  # fmt: skip
        cf = engine.submit("dequeue", fn)
        try:
            out, due = await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            # The caller is gone but the transaction may still commit: hand those jobs
            # straight back rather than leave them leased to nobody.
            cf.add_done_callback(functools.partial(_give_back, engine))
            raise
        self._reclaims = reclaim is not None
        if reclaim is not None:
            self._due = due
        return out

    async def dequeue_alone(
        self, routing_keys: Sequence[str], lease_s: float, worker_id: str, names: Sequence[str] = ()
    ) -> Delivery | None:
        fn = functools.partial(suspects.dequeue_alone, routing_keys=list(routing_keys), lease_s=lease_s,
                               worker=worker_id, names=list(names))  # fmt: skip
        got: Delivery | None = await self._run("dequeue a suspect", fn)
        return got

    async def wait_for_work(
        self, routing_keys: Sequence[str], timeout_s: float, offer: Offer | None = None
    ) -> list[Delivery]:
        keys = list(routing_keys)
        topics = [work_topic(rk) for rk in keys]
        probe: Callable[[Session], bool] = functools.partial(ops.has_work, routing_keys=keys)
        if self._reclaims:  # also wake when something falls due
            timeout_s = min(timeout_s, max(0.0, (self._due or math.inf) - time.time()))
            probe = _WorkProbe(probe, _ScheduleProbe(self._due), keys)
            topics.append(SCHEDULE_TOPIC)
        await self._wait("wait for work", topics, probe, timeout_s)
        return []  # no hand-off: a woken worker dequeues

    async def wake(self, worker_id: str, routing_keys: Sequence[str]) -> bool:
        return False  # no hand-off: a cancelled wait loses nothing

    async def withdraw(self, routing_keys: Sequence[str], offer: Offer) -> list[Delivery]:
        return []

    async def ack(self, outcomes: Sequence[Outcome], ttl: tuple[float, float]) -> list[bool]:
        if not outcomes:
            return []
        return await self._run("ack", functools.partial(ops.ack, outcomes=list(outcomes), ttl=ttl))

    async def renew(self, leases: Sequence[Lease], lease_s: float) -> list[LeaseState]:
        if not leases:
            return []
        return await self._run("renew leases", functools.partial(ops.renew, leases=list(leases), lease_s=lease_s))

    async def requeue(self, leases: Sequence[Lease]) -> int:
        if not leases:
            return 0
        count: int = await self._run("requeue", functools.partial(ops.requeue, leases=list(leases)))
        return count

    async def release_dead(
        self, worker_prefix: str, routing_keys: Sequence[str], how: str, reclaim: Reclaim
    ) -> tuple[int, int]:
        fn = functools.partial(ops.release_dead, worker_prefix=worker_prefix, routing_keys=list(routing_keys),
                               how=how, reclaim=reclaim)  # fmt: skip
        done: tuple[int, int] = await self._run("release a dead worker's jobs", fn)
        return done

    async def set_progress(self, items: Sequence[tuple[str, str, float]]) -> None:
        if items:
            await self._run("set progress", functools.partial(ops.set_progress, items=list(items)))

    # --- scheduler duties ------------------------------------------------------
    async def tick(self, max_deliveries: int, failed_ttl_s: float, completed_ttl_s: float = 3600.0) -> TickReport:
        # Records carry their own expiry (expires_at, set from the TTLs at the outcome).
        fn = functools.partial(ops.tick, max_deliveries=max_deliveries, failed_ttl_s=failed_ttl_s)
        report: TickReport = await self._run("scheduler tick", fn)
        return report

    async def acquire_leader(self, holder: str, ttl_s: float) -> LeaderLock:
        fn = functools.partial(ops.acquire_leader, holder=holder, ttl_s=ttl_s)
        return await self._run("acquire scheduler lock", fn)

    async def release_leader(self, holder: str) -> None:
        await self._run("release scheduler lock", functools.partial(ops.release_leader, holder=holder))

    # --- cron schedules ---------------------------------------------------------
    async def fire_schedule(self, fires: Sequence[Fire], token: int | None) -> list[bool]:
        if not fires:
            return []
        return await self._run("fire schedule", functools.partial(schedules.fire, fires=list(fires), token=token))

    async def schedule_states(self) -> list[ScheduleState]:
        return await self._run("read schedules", schedules.states)

    async def update_schedule(self, schedule_id: str, fields: dict[str, str | bytes | float | int | None]) -> None:
        fn = functools.partial(schedules.update, schedule_id=schedule_id, fields=dict(fields))
        await self._run("update schedule", fn)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._run("delete schedule", functools.partial(schedules.delete, schedule_id=schedule_id))

    # --- task catalogue ---------------------------------------------------------
    async def publish_tasks(self, worker_id: str, definitions: Mapping[str, bytes], stale_after_s: float) -> None:
        if definitions:
            fn = functools.partial(catalogue.publish, worker_id=worker_id, definitions=dict(definitions),
                                   stale_after_s=stale_after_s)  # fmt: skip
            await self._run("publish tasks", fn)

    async def unpublish_tasks(self, worker_id: str, names: Sequence[str]) -> None:
        if names:
            fn = functools.partial(catalogue.unpublish, worker_id=worker_id, names=list(names))
            await self._run("unpublish tasks", fn)

    async def task_catalogue(self, stale_after_s: float) -> list[CatalogueRecord]:
        fn = functools.partial(catalogue.records, stale_after_s=stale_after_s)
        return await self._run("read the task catalogue", fn)

    # --- inspecting ------------------------------------------------------------
    async def get_job(self, job_id: str) -> Job | None:
        return await self._run("get job", functools.partial(inspection.get_job, job_id=job_id))

    async def wait_job(self, job_id: str, timeout_s: float) -> Job | None:
        if await self._run("wait for job", functools.partial(inspection.job_state, job_id=job_id)) == "":
            return None
        probe = functools.partial(inspection.is_settled, job_id=job_id)
        await self._wait("wait for job", [job_topic(job_id)], probe, timeout_s)
        return await self.get_job(job_id)

    async def cancel(self, job_id: str) -> str | None:
        return await self._run("cancel", functools.partial(inspection.cancel, job_id=job_id))

    async def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        return await self._run(
            "list jobs", functools.partial(inspection.list_jobs, status=status, name=name, limit=limit)
        )

    async def retry_dead(self, job_ids: Sequence[str] | None) -> int:
        ids = None if job_ids is None else list(job_ids)
        return await self._run("retry dead jobs", functools.partial(inspection.retry_dead, job_ids=ids))

    async def purge_dead(self) -> int:
        return await self._run("purge dead jobs", inspection.purge_dead)

    async def queue_stats(self) -> list[QueueStats]:
        return await self._run("queue stats", inspection.queue_stats)

    async def pause(self, routing_key: str, paused: bool = True) -> bool:
        fn = functools.partial(ops.pause, routing_key=check_routing_key(routing_key), paused=paused)
        changed: bool = await self._run("pause routing key", fn)
        return changed

    # --- workflows ---------------------------------------------------------------
    async def submit_workflow(self, record: WorkflowRecord) -> None:
        await self._run("submit workflow", functools.partial(workflows.submit, record=record))

    async def get_workflow(self, workflow_id: str, jobs: bool = True) -> WorkflowRecord | None:
        return await self._run("get workflow", functools.partial(workflows.get, workflow_id=workflow_id, jobs=jobs))

    async def workflow_results(self, workflow_id: str, node_ids: Sequence[str]) -> dict[str, bytes]:
        fn = functools.partial(workflows.results, workflow_id=workflow_id, node_ids=list(node_ids))
        return await self._run("read workflow results", fn)

    async def wait_workflow(self, workflow_id: str, timeout_s: float) -> str | None:
        probe = functools.partial(workflows.is_settled, workflow_id=workflow_id)
        await self._wait("wait for workflow", [workflows.topic(workflow_id)], probe, timeout_s)
        state = await self._run("wait for workflow", functools.partial(workflows.state, workflow_id=workflow_id))
        return state or None

    async def cancel_workflow(self, workflow_id: str) -> str | None:
        return await self._run("cancel workflow", functools.partial(workflows.cancel, workflow_id=workflow_id))

    async def retry_workflow(self, workflow_id: str) -> int:
        return await self._run("retry workflow", functools.partial(workflows.retry, workflow_id=workflow_id))

    async def list_workflows(self, limit: int = 100) -> list[WorkflowSummary]:
        return await self._run("list workflows", functools.partial(workflows.listing, limit=limit))

    # --- waiting -----------------------------------------------------------------
    async def _wait(self, op: str, topics: list[str], probe: Callable[[Session], bool], timeout_s: float) -> None:
        """Return once ``probe`` holds, or after ``timeout_s``.

        The probe runs at once, then whenever a commit of this process wakes one of
        ``topics`` or the hub's watcher sees another process commit (and every
        ``RECHECK_S`` as a safety net); the database is not touched in between.
        """
        engine = self._engine or self._open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        waiter = Waiter(loop)
        engine.hub.subscribe(topics, waiter)  # before the first probe: no lost wake-up
        try:
            while True:
                waiter.woken = False
                hit = await engine.run(op, probe)
                left = deadline - loop.time()
                if hit or left <= 0:
                    return
                await waiter.wait(min(left, RECHECK_S))
        finally:
            engine.hub.unsubscribe(topics, waiter)


def _give_back(engine: Engine, cf: concurrent.futures.Future[tuple[list[Delivery], float | None]]) -> None:
    """Requeue the deliveries of a dequeue whose caller was cancelled."""
    if cf.cancelled() or cf.exception() is not None:
        return
    leases = [Lease(d.id, d.routing_key, d.token) for d in cf.result()[0]]
    if not leases:
        return
    try:
        engine.submit("requeue", functools.partial(ops.requeue, leases=leases))
    except BananasError:
        logger.warning("%d jobs dequeued for a cancelled fetch stay leased until their leases expire", len(leases))
