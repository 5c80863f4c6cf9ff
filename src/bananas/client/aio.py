"""``AsyncClient``: submit jobs, read them back and wait for results from asyncio code."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Unpack

from bananas import brokers, catalogue
from bananas.brokers.base import Broker, QueueStats
from bananas.brokers.workflow import WorkflowRecord, WorkflowSummary
from bananas.catalogue import WORKER_TTL_S, Catalogue, TaskInfo
from bananas.chaos import ChaosConfig, arm, chaos_broker
from bananas.client.options import SubmitOptions, WaitedJobOptions, job_spec, split_callbacks
from bananas.client.workflows import AsyncWorkflowHandle
from bananas.coalescer import SubmitCoalescer
from bananas.durations import Duration
from bananas.errors import BananasError, ConfigurationError, JobFailed, JobNotFound, ResultTimeout
from bananas.job import Job, JobStatus, UniqueLock, to_seconds
from bananas.middleware import Middleware, MiddlewareChain
from bananas.observability.snapshot import MetricsSnapshot, collect_snapshot
from bananas.registry import HasRegistry, InlineRunner, Registry
from bananas.settings import Settings
from bananas.submission import JobBuilder, JobSpec
from bananas.workflows import WorkflowBuilder
from bananas.workflows.canvas import Canvas, Signature, task_names

logger = logging.getLogger(__name__)


def result_of(done: Job) -> Any:
    """A finished job's result.

    Raises:
        JobFailed: the job failed (dead-lettered) or was cancelled.
    """
    if done.status is not JobStatus.COMPLETED:
        raise JobFailed(f"job {done.id} ({done.name}) {done.status.value}: {done.error or ''}".rstrip(": "), done)
    return done.result


async def store_unique(
    client: AsyncClient, built: Sequence[tuple[Job, bytes]], locks: Sequence[UniqueLock | None]
) -> list[str]:
    """Store built jobs, those with a unique key through ``enqueue_unique``; per job, the
    id that holds its key (its own when stored, or a plain job's)."""
    plain, unique = split_unique(built, locks)
    if plain:
        await client.broker.enqueue(plain)
    return merge_unique(client.builder, built, locks, await client.broker.enqueue_unique(unique))


def split_unique(
    built: Sequence[tuple[Job, bytes]], locks: Sequence[UniqueLock | None]
) -> tuple[list[tuple[Job, bytes]], list[tuple[Job, bytes, UniqueLock]]]:
    """The jobs without a unique key, and those with one (with it)."""
    plain = [b for b, lock in zip(built, locks, strict=True) if lock is None]
    unique = [(job, body, lock) for (job, body), lock in zip(built, locks, strict=True) if lock is not None]
    return plain, unique


def merge_unique(
    builder: JobBuilder, built: Sequence[tuple[Job, bytes]], locks: Sequence[UniqueLock | None], holders: list[str]
) -> list[str]:
    """Per job, its id or the id holding its key (``holders``, in order); the middleware
    hears of the jobs stored."""
    given = iter(holders)
    ids = [job.id if lock is None else next(given) for (job, _), lock in zip(built, locks, strict=True)]
    builder.submitted([b for b, got in zip(built, ids, strict=True) if got == b[0].id])
    return ids


def default_settings(app: HasRegistry | None) -> Settings:
    """The app's settings, else the environment's (the same lookup as ``Bananas()``)."""
    return app.registry.settings if app is not None else Settings.from_env(os.environ)


class AsyncClient:
    """Submit and inspect jobs from asyncio code.

    Args:
        url: broker URL (default: the settings' URL; without settings or app, the
            environment's: BANANAS_URL, else REDIS_URL, else the embedded broker).
        broker: an existing broker to use instead of ``url``.
        settings: defaults for jobs (default: the app's, else the environment's).
        app: an application (``Bananas``) or its ``Registry``: submits are checked
            against its handlers and get its tasks' defaults.
        timeout_s: broker connect/command timeout.
        middleware: hooks around submits (default: the app's).
        chaos: faults to inject (default: those of the file ``BANANAS_CHAOS`` names, if any).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        broker: Broker | None = None,
        settings: Settings | None = None,
        app: HasRegistry | None = None,
        timeout_s: float = 5.0,
        middleware: Sequence[Middleware] | None = None,
        chaos: ChaosConfig | None = None,
    ) -> None:
        registry: Registry | None = app.registry if app is not None else None
        self.settings = settings or default_settings(app)
        self.url = url or (broker.url if broker else self.settings.url)
        #: the fault injector, when chaos is configured and allowed here (``bananas.chaos``).
        self.chaos = arm(chaos)
        self.broker = chaos_broker(self.chaos, broker or brokers.from_url(self.url, timeout_s=timeout_s))
        self._coalescer = SubmitCoalescer(self.broker)
        self.registry = registry
        chosen = middleware if middleware is not None else registry.middleware if registry else ()
        self.middleware = MiddlewareChain.of(chosen)
        #: this client's copy of the task catalogue (``tasks()`` and submits refresh it).
        self.catalogue = Catalogue()
        self._refreshing: asyncio.Task[list[TaskInfo]] | None = None
        self.builder = JobBuilder(self.settings, registry.tasks if registry else None, self.middleware, self.catalogue)
        self.started_at = time.time()

    async def close(self) -> None:
        """Close broker connections."""
        await self.broker.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- submitting --------------------------------------------------------------
    def build(self, spec: JobSpec) -> tuple[Job, bytes]:
        """Validate one job and encode it (no I/O); see ``JobBuilder.build``."""
        return self.builder.build(spec)

    async def submit(
        self, name: str, payload: Mapping[str, Any] | None = None, **options: Unpack[SubmitOptions]
    ) -> str:
        """Submit one job and return its id.

        Args:
            name: the task name.
            payload: a JSON object, passed to the handler as keyword arguments.
            priority: ``"high" | "normal" | "low"``, a ``Priority`` or an int 0..100.
            routing_key: queue name (default: the task's, else ``"default"``).
            delay: run no earlier than this many seconds from now.
            at: run no earlier than this aware datetime.
            unique_key: while a job holding this key is pending or running (per
                ``unique_mode``, at most ``unique_ttl``), store nothing and return that
                job's id (docs/FLOW_CONTROL.md).
            description: free text shown by ``bananas job``.
            max_retries: retries after the first attempt (default: task, then settings).
            timeout: seconds one attempt may run.
            headers: string headers carried with the job (trace context and the like).
            expires: seconds from now, or an aware datetime: a job not started by then
                never runs and ends ``cancelled`` with reason ``expired``.
            on_success: a Signature (or a list) enqueued, in the same atomic step as the
                job's outcome, when the job completes; it receives the result in its
                first unset parameter (docs/WORKFLOWS.md, "Callbacks").
            on_failure: the same, when the job fails for good (dead-lettered or
                cancelled); it receives ``{"error", "reason", "job_id"}``.
            on_complete: the same, whatever the outcome (the result or the error object).

        Raises:
            PayloadError: the payload does not fit the handler (when this client knows it).
            PayloadTooLarge: the encoded job is over the size limit.
            ConfigurationError: unknown priority, illegal routing key, negative delay.
            WorkflowError: a callback is invalid (unknown task, payload that does not fit).
            BrokerUnavailable: the broker could not be reached within the timeout.
        """
        options, callbacks = split_callbacks(options)
        if callbacks:
            return await self._submit_with_callbacks(job_spec(name, payload, options), callbacks)
        eager = self._eager((name,))
        if eager is None and self.catalogue.stale(time.time()) and self.builder.needs_catalogue((name,)):
            await self._refresh_catalogue()
        spec = job_spec(name, payload, options)
        job, body = self.builder.build(spec)
        lock = self.builder.unique_lock(spec, job)
        if lock is not None and eager is None:
            return (await store_unique(self, [(job, body)], [lock]))[0]
        await (eager.run(self.broker, [(job, body)]) if eager is not None else self._coalescer.enqueue((job, body)))
        self.builder.submitted([(job, body)])
        return job.id

    async def _submit_with_callbacks(self, spec: JobSpec, callbacks: Mapping[str, Sequence[Signature]]) -> str:
        """``submit`` of a job with callbacks: stored as a workflow of kind ``callbacks``."""
        if self._eager(()) is not None:
            raise ConfigurationError("callbacks do not run in eager mode (use a worker: bananas.testing.join)")
        names = [spec.name, *(s.name for sigs in callbacks.values() for s in sigs if isinstance(s, Signature))]
        if self.catalogue.stale(time.time()) and self.builder.needs_catalogue(names):
            await self._refresh_catalogue()
        builder = WorkflowBuilder(self.builder)
        record = builder.callbacks(spec, callbacks)
        await self.broker.submit_workflow(record)
        self.builder.submitted(builder.built)
        return record.nodes[0].job_id

    def _eager(self, names: Iterable[str]) -> InlineRunner | None:
        """The app's eager runner when eager mode is on, after checking it knows ``names``."""
        eager = self.registry.eager if self.registry is not None else None
        if eager is not None:
            eager.check(names)
        return eager

    async def submit_many(self, specs: Iterable[JobSpec | tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Submit many jobs in one round trip per routing key; return their ids in order.

        Raises:
            PayloadError, ConfigurationError: any job is invalid (nothing is submitted).
        """
        given = [s if isinstance(s, JobSpec) else JobSpec(s[0], s[1]) for s in specs]
        eager = self._eager(s.name for s in given)
        if eager is None and self.catalogue.stale(time.time()) and self.builder.needs_catalogue(s.name for s in given):
            await self._refresh_catalogue()
        built = [self.builder.build(s) for s in given]
        locks = [self.builder.unique_lock(s, job) for s, (job, _) in zip(given, built, strict=True)]
        if eager is None and any(locks):
            return await store_unique(self, built, locks)
        if built:
            await (eager.run(self.broker, built) if eager is not None else self.broker.enqueue(built))
            self.builder.submitted(built)
        return [job.id for job, _ in built]

    # --- workflows -------------------------------------------------------------------
    async def submit_workflow(
        self, canvas: Canvas, *, on_failure: str = "fail_fast", name: str | None = None
    ) -> AsyncWorkflowHandle:
        """Submit a chain, group, chord, DAG (or one signature) as one durable workflow.

        Everything is checked before anything is stored: cycles, unknown or duplicate
        nodes, unknown tasks, payloads that do not fit (docs/WORKFLOWS.md).

        Args:
            canvas: what to run.
            on_failure: ``fail_fast`` (a failed node cancels the nodes not started) or
                ``continue`` (its dependents are skipped, other branches go on).
            name: shown by ``bananas workflows`` (default: the DAG's name, else the kind).

        Raises:
            WorkflowError: the workflow is invalid, naming the node.
            BrokerUnavailable: the broker could not be reached within the timeout.
        """
        if self._eager(()) is not None:
            raise ConfigurationError("workflows do not run in eager mode (use a worker: bananas.testing.join)")
        names = task_names(canvas)
        if self.catalogue.stale(time.time()) and self.builder.needs_catalogue(names):
            await self._refresh_catalogue()
        builder = WorkflowBuilder(self.builder)
        record = builder.build(canvas, on_failure=on_failure, name=name)
        await self.broker.submit_workflow(record)
        self.builder.submitted(builder.built)
        return AsyncWorkflowHandle(self.broker, record.id)

    def workflow(self, workflow_id: str) -> AsyncWorkflowHandle:
        """A handle on a workflow submitted earlier (no I/O)."""
        return AsyncWorkflowHandle(self.broker, workflow_id)

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The workflow with every node's status, job id and job record, or None."""
        return await self.broker.get_workflow(workflow_id)

    async def list_workflows(self, limit: int = 100) -> list[WorkflowSummary]:
        """Workflows, newest first."""
        return await self.broker.list_workflows(limit)

    # --- the task catalogue --------------------------------------------------------
    async def tasks(self) -> list[TaskInfo]:
        """The task catalogue: every task a worker published, with its defaults, payload
        and result schemas, and the workers serving it (seen within ``WORKER_TTL_S``)."""
        records = await self.broker.task_catalogue(WORKER_TTL_S)
        entries = [info for r in records if (info := catalogue.decode(r.definition, r.workers)) is not None]
        self.catalogue.replace(entries, time.time())
        return entries

    async def _refresh_catalogue(self) -> None:
        """Read the catalogue: the first time before the submit that needs it, later in
        the background (submits go on with the copy they have)."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read_catalogue())
            self._refreshing.add_done_callback(self._refreshed)
        if self.catalogue.read_at is None:
            await asyncio.shield(self._refreshing)

    async def _read_catalogue(self) -> list[TaskInfo]:
        try:
            return await self.tasks()
        except BananasError as exc:  # the submit itself reports a broker that is down
            logger.debug("could not read the task catalogue: %s", exc)
            self.catalogue.mark_read(time.time())
            return []

    def _refreshed(self, task: asyncio.Task[list[TaskInfo]]) -> None:
        self._refreshing = None

    # --- reading -------------------------------------------------------------------
    async def get_job(self, job_id: str) -> Job | None:
        """The job with its current status and result, or None if unknown/expired."""
        return await self.broker.get_job(job_id)

    async def wait(self, job_id: str, timeout: Duration = 30.0) -> Job:
        """Block until the job is completed, failed or cancelled (no polling).

        Raises:
            JobNotFound: no such job.
            ResultTimeout: still not finished after ``timeout``.
        """
        timeout_s = to_seconds(timeout, "timeout") or 0.0
        job = await self.broker.wait_job(job_id, timeout_s)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} (unknown, or its record expired)")
        if not job.is_terminal:
            raise ResultTimeout(f"job {job_id} still {job.status.value} after {timeout_s:g} s")
        return job

    async def submit_and_wait(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: Duration = 30.0,
        **options: Unpack[WaitedJobOptions],
    ) -> Any:
        """Submit, wait for the outcome and return the handler's return value.

        ``timeout`` is how long to wait; the job runs with its task's timeout. The other
        options are those of ``submit``.

        Raises:
            ResultTimeout: no outcome within ``timeout``.
            JobFailed: the job failed (dead-lettered) or was cancelled.
        """
        eager = self._eager((name,))
        if eager is None and self.catalogue.stale(time.time()) and self.builder.needs_catalogue((name,)):
            await self._refresh_catalogue()
        spec = job_spec(name, payload, options)
        job, body = self.builder.build(spec)
        if self.builder.unique_lock(spec, job) is not None:
            raise ConfigurationError("submit_and_wait does not take unique keys yet: submit, then wait on the id")
        if eager is not None:
            await eager.run(self.broker, [(job, body)])
        else:
            await self.broker.enqueue([(job, body)], watch=True)
        self.builder.submitted([(job, body)])
        return result_of(await self.wait(job.id, timeout))

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job. A pending or scheduled job never runs; a running one sees
        ``ctx.cancelled``. Returns False when the job is unknown or already finished."""
        status = await self.broker.cancel(job_id)
        return status in ("pending", "scheduled", "processing")

    async def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs with a status (any when None), newest first."""
        if status is not None and status not in {s.value for s in JobStatus}:
            raise ConfigurationError(f"unknown status {status!r}: use one of {', '.join(s.value for s in JobStatus)}")
        return await self.broker.list_jobs(status, name, limit)

    async def dead_jobs(self, limit: int = 100) -> list[Job]:
        """Dead-lettered jobs, newest first."""
        return await self.broker.list_jobs("failed", None, limit)

    async def retry_dead(self, job_ids: Sequence[str] | None = None) -> int:
        """Send dead-lettered jobs (all when None) back to their queue."""
        return await self.broker.retry_dead(job_ids)

    async def purge_dead(self) -> int:
        """Delete every dead-lettered job."""
        return await self.broker.purge_dead()

    async def queue_stats(self) -> list[QueueStats]:
        """Depth of every routing key (and whether it is paused)."""
        return await self.broker.queue_stats()

    async def pause(self, routing_key: str) -> bool:
        """Pause a routing key: workers take none of its jobs (running ones finish;
        submits, delays and retries go on), across restarts, until ``resume``. Returns
        False when it was paused already (docs/FLOW_CONTROL.md)."""
        return await self.broker.pause(routing_key, True)

    async def resume(self, routing_key: str) -> bool:
        """Resume a paused routing key; False when it was not paused."""
        return await self.broker.pause(routing_key, False)

    async def metrics(self) -> MetricsSnapshot:
        """A typed snapshot: queue depths, recent counts, durations and error rate, uptime.

        See ``MetricsSnapshot`` for what is exact and what is sampled.
        """
        workers = self.registry.workers if self.registry is not None else ()
        return await collect_snapshot(self.broker, started_at=self.started_at, workers=workers)
