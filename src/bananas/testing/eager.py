"""Eager mode: every submit runs its job in this process, through a worker's executor.

``with eager(app):`` sets an ``EagerRunner`` on the app's registry; the app's clients
(``Task.submit``, ``task.options(...).submit``, ``submit_and_wait``, ``Client`` and
``AsyncClient`` ``submit``/``submit_many``) then hand it the jobs they built instead of
enqueueing them. The runner stores each job, leases it, runs it with the ``Executor`` a
worker uses (payload check, timeout, retries, ``PermanentError``) and stores the outcome,
so ``client.get_job(id)`` and ``client.wait(id)`` show what a worker would have left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Sequence

import msgspec

from bananas import wire
from bananas.brokers.base import Broker, Delivery, JobFilter, Outcome
from bananas.errors import ConfigurationError, JobFailed
from bananas.job import Job, JobStatus, new_id
from bananas.middleware import MiddlewareChain
from bananas.registry import HasRegistry, Registry
from bananas.testing.loops import run_blocking
from bananas.worker.executor import Executor
from bananas.worker.threads import DaemonPool

#: How long an eager run leases its job: longer than any test, so that no scheduler tick
#: gives it to a worker while it runs here.
LEASE_S = 86400.0


class HandlerTraceback(Exception):
    """The traceback a failed job stored: the ``__cause__`` of a propagated ``JobFailed``."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0] if self.args else "")


class EagerRunner:
    """Runs the jobs of one application's tasks as they are submitted (see ``eager``).

    Args:
        registry: the application's registry (its tasks, middleware and job defaults).
        propagate: raise ``JobFailed`` from the submit when a job fails for good.
        wait_timeout_s: how long to wait for a job that a worker took before this runner
            could (a worker running on the same broker during eager mode).
    """

    def __init__(self, registry: Registry, *, propagate: bool = True, wait_timeout_s: float = 30.0) -> None:
        self.registry = registry
        self.propagate = propagate
        self.wait_timeout_s = wait_timeout_s
        self.worker_id = f"eager:{new_id()[-6:]}"

    def check(self, names: Iterable[str]) -> None:
        """Raise ``ConfigurationError`` for a task name this application has no handler for."""
        unknown = sorted({n for n in names if n not in self.registry.tasks})
        if unknown:
            known = ", ".join(sorted(self.registry.tasks)) or "none"
            raise ConfigurationError(
                f"eager mode runs this app's tasks only: no task named {', '.join(map(repr, unknown))} (known: {known})"
            )

    async def run(self, broker: Broker, jobs: Sequence[tuple[Job, bytes]]) -> None:
        """Store the jobs (delays dropped: they run now), run each, store its outcome.

        Raises:
            JobFailed: with ``propagate``, the first job that failed for good; its
                ``__cause__`` carries the handler's traceback.
        """
        due = [_due_now(job, body) for job, body in jobs]
        await broker.enqueue(due, watch=True)
        pool = DaemonPool(1, asyncio.get_running_loop(), name="bananas-eager")
        progress: dict[str, tuple[str, str, float]] = {}

        def report(job_id: str, routing_key: str, value: float) -> None:
            progress[job_id] = (job_id, routing_key, value)

        mw = MiddlewareChain.of(self.registry.middleware)
        executor = Executor(self.registry.tasks, pool, self.worker_id, report, mw, self.registry.settings.jobs)
        try:
            finished = [await self._run_one(broker, executor, mw, job, progress) for job, _ in due]
        finally:
            pool.shutdown()
        failed = [done for done in finished if done is not None and done.status is JobStatus.FAILED]
        if failed and self.propagate:
            job = failed[0]
            raise JobFailed(f"job {job.id} ({job.name}) failed: {job.error or ''}", job) from HandlerTraceback(
                job.traceback or ""
            )

    def run_blocking(self, broker: Broker, jobs: Sequence[tuple[Job, bytes]]) -> None:
        """``run`` for synchronous callers, on a new event loop with a broker of its own
        (see ``loops.run_blocking``: never on a loop this call blocks)."""
        clone = broker.clone()

        async def go() -> None:
            try:
                await self.run(clone, jobs)
            finally:
                await clone.close()

        run_blocking(go)

    async def _run_one(
        self,
        broker: Broker,
        executor: Executor,
        mw: MiddlewareChain | None,
        job: Job,
        progress: dict[str, tuple[str, str, float]],
    ) -> Job | None:
        """Run ready jobs of ``job``'s task and routing key until ``job`` has run (ones
        submitted before it come first, as a worker would take them); return its record."""
        only = JobFilter(names=(job.name,))
        jobs = self.registry.settings.jobs
        while True:
            batch = await broker.dequeue([job.routing_key], 1, LEASE_S, self.worker_id, only)
            if not batch:
                break  # a worker on this broker took it: wait for its outcome below
            d = batch[0]
            outcome = await self._attempts(executor, d)
            if progress:
                await broker.set_progress(list(progress.values()))
                progress.clear()
            [accepted] = await broker.ack([outcome], (jobs.completed_ttl_s, jobs.failed_ttl_s))
            if mw is not None:
                mw.after_ack(outcome, accepted)
            if d.id == job.id:
                break
        return await broker.wait_job(job.id, self.wait_timeout_s)

    @staticmethod
    async def _attempts(executor: Executor, d: Delivery) -> Outcome:
        """Run the delivery until it completes or fails for good: retries follow the
        task's ``max_retries`` but happen at once (the backoff delay is skipped)."""
        while True:
            outcome = await executor.run(d, [])
            if outcome.kind != "retry":
                return outcome
            d = Delivery(d.id, d.routing_key, d.body, outcome.attempts, d.token)


def _due_now(job: Job, body: bytes) -> tuple[Job, bytes]:
    """The job without its delay: eager mode runs delayed jobs at once."""
    if job.scheduled_for is None:
        return job, body
    now = msgspec.structs.replace(job, scheduled_for=None)
    return now, wire.encode_job(now)


@contextlib.contextmanager
def eager(app: HasRegistry, *, propagate: bool = True) -> Iterator[EagerRunner]:
    """Eager mode for ``app`` while the block runs: every submit of one of its tasks runs
    the handler in this process and stores the outcome before it returns.

    Delays (``delay``, ``at``) are dropped and retries happen at once, within the task's
    ``max_retries``; timeouts and ``PermanentError`` behave as on a worker. Submitting a
    task name the app does not know raises ``ConfigurationError``.

    Args:
        app: the application (``Bananas``) or its ``Registry``.
        propagate: when a job fails for good, its submit raises ``JobFailed`` (default),
            with the handler's traceback as its cause; ``False`` returns the id as usual,
            and ``client.get_job(id)`` shows the failure.

    Yields:
        the ``EagerRunner`` in use.
    """
    registry = app.registry
    previous = registry.eager
    runner = EagerRunner(registry, propagate=propagate)
    registry.eager = runner
    try:
        yield runner
    finally:
        registry.eager = previous
