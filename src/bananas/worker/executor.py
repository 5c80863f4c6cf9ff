"""Run one delivery: decode, find the handler, check the payload, call it, judge the outcome."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bananas import wire
from bananas.brokers.base import Delivery, Outcome
from bananas.context import Context
from bananas.errors import PayloadError, PermanentError
from bananas.job import DeadReason, Job
from bananas.middleware import MiddlewareChain
from bananas.registry import TaskDefinition
from bananas.settings import JobDefaults
from bananas.signing import Signer
from bananas.sources import resolve, source_nodes
from bananas.worker.deadlines import Deadlines, JobCancelled
from bananas.worker.threads import DaemonPool

logger = logging.getLogger(__name__)

#: Reads the stored results of workflow nodes (``WorkflowStore.workflow_results``).
ResultReader = Callable[[str, Sequence[str]], Awaitable[dict[str, bytes]]]

#: Longest traceback stored on a job.
MAX_TRACEBACK_CHARS = 16_384


class Executor:
    """Turns a ``Delivery`` into an ``Outcome``; never raises except ``CancelledError``."""

    def __init__(
        self,
        tasks: Mapping[str, TaskDefinition],
        pool: DaemonPool,
        worker_id: str,
        report_progress: Callable[[str, str, float], None],
        middleware: MiddlewareChain | None = None,
        defaults: JobDefaults | None = None,
        signer: Signer | None = None,
        results: ResultReader | None = None,
    ) -> None:
        self._tasks = tasks
        self._results = results  # a workflow node's inputs: its parents' stored results
        self._signer = signer  # BANANAS_SIGNING_KEYS: bodies are checked before decoding
        # What a job that carries no timeout or max_retries of its own gets (after its task's).
        self._defaults = defaults or JobDefaults()
        self._pool = pool
        self._deadlines = Deadlines()
        self._worker_id = worker_id
        self._report_progress = report_progress
        self._mw = MiddlewareChain.for_hooks(
            middleware, "before_execute", "after_execute", "after_retry", "after_dead_letter"
        )
        #: Execute a delivery; ``ctx_box`` receives its ``Context``, when one is made (the
        #: handler takes one, or middleware watches), so the lease keeper can flag
        #: cancellation. One coroutine layer less when no middleware watches.
        self.run: Callable[[Delivery, list[Context]], Coroutine[Any, Any, Outcome]] = (
            self._run if self._mw is None else self._observed
        )

    def context_for(self, d: Delivery, job: Job) -> Context:
        """A fresh ``Context`` for this delivery."""
        return Context(
            d.id, job.name, d.attempts + 1, d.routing_key,
            lambda value: self._report_progress(d.id, d.routing_key, value),
            priority=job.priority, headers=job.headers, worker_id=self._worker_id,
            ready_at=max(job.created_at, job.scheduled_for or 0.0), delivery=d.token,
        )  # fmt: skip

    async def _observed(self, d: Delivery, ctx_box: list[Context]) -> Outcome:
        """``run`` when middleware watches executions: times the attempt for it."""
        assert self._mw is not None
        started = time.perf_counter()
        outcome = await self._run(d, ctx_box)
        self._mw.after_execute(ctx_box[0] if ctx_box else None, d, outcome, time.perf_counter() - started)
        return outcome

    def _decode(self, d: Delivery) -> Job | Outcome:
        """The job, or the outcome of a body that is not one (or not signed right), or of a
        job that expired before it started."""
        if self._signer is not None and (refused := self._signer.check(d.body)) is not None:
            return self._dead(d, d.attempts + 1, DeadReason.SIGNATURE_INVALID, refused)
        try:
            job = wire.decode_job(d.body)
        except PayloadError as exc:
            return self._dead(d, d.attempts + 1, DeadReason.MALFORMED, str(exc))
        return job if job.expires_at is None else self._unexpired(d, job)

    async def _fill_inputs(self, d: Delivery, job: Job) -> Outcome | None:
        """A workflow node: put its parents' results into its payload (``None``), or the
        outcome of a node whose input is missing."""
        link = job.workflow
        if self._results is None or link is None:
            return self._dead(d, d.attempts + 1, DeadReason.PAYLOAD, "workflow inputs cannot be read here", job=job)
        got = await self._results(link.id, sorted({n for i in link.inputs for n in source_nodes(i.source)}))
        try:
            for i in link.inputs:
                job.payload[i.param] = resolve(i.source, got)
        except LookupError as exc:
            return self._dead(d, d.attempts + 1, DeadReason.PAYLOAD, f"workflow input: {exc}", job=job)
        return None

    def _prepare(
        self, d: Delivery, job: Job, ctx_box: list[Context]
    ) -> tuple[Job, TaskDefinition, dict[str, Any]] | Outcome:
        """Find the job's task and check its payload: the handler's keyword arguments, or
        the outcome of a job that cannot run."""
        attempt = d.attempts + 1
        # A Context only for a handler that takes one or middleware that watches.
        ctx = self.context_for(d, job) if self._mw is not None else None
        if ctx is not None:
            ctx_box.append(ctx)
        task = self._tasks.get(job.name)
        if task is None:
            return self._dead(d, attempt, DeadReason.NO_HANDLER, f"no handler registered for '{job.name}'", job=job)
        try:
            kwargs = task.spec.check(job.payload)
        except PayloadError as exc:
            return self._dead(d, attempt, DeadReason.PAYLOAD, str(exc), job=job)
        if task.spec.context_param:
            if ctx is None:
                ctx = self.context_for(d, job)
                ctx_box.append(ctx)
            kwargs[task.spec.context_param] = ctx
        if self._mw is not None and ctx is not None:
            self._mw.before_execute(ctx)
        return job, task, kwargs

    async def _run(self, d: Delivery, ctx_box: list[Context]) -> Outcome:
        decoded = self._decode(d)
        if isinstance(decoded, Job) and decoded.workflow is not None and decoded.workflow.inputs:
            decoded = await self._fill_inputs(d, decoded) or decoded
        prepared = decoded if isinstance(decoded, Outcome) else self._prepare(d, decoded, ctx_box)
        if isinstance(prepared, Outcome):
            return prepared
        job, task, kwargs = prepared
        attempt = d.attempts + 1
        debug = logger.isEnabledFor(logging.DEBUG)  # build log fields only when they are used
        if debug:
            wait_ms = (time.time() - max(job.created_at, job.scheduled_for or 0.0)) * 1e3
            extra = {**self._fields(d, job, attempt), "queue_wait_ms": round(wait_ms, 3)}
            logger.debug("job %s started (waited %.1f ms)", d.id, wait_ms, extra=extra)
        started = time.perf_counter()
        try:
            timeout_s = self._timeout_s(job, task)
            if task.spec.is_async:
                result = await self._deadlines.run(task.fn(**kwargs), timeout_s)
            else:
                result = await self._call_sync(task, kwargs, timeout_s)
        except asyncio.CancelledError:
            raise
        except JobCancelled:
            return self.cancelled(d, "cancelled", "cancelled while running", attempt)
        except PermanentError as exc:
            ran = _ms_since(started)
            return self._dead(d, attempt, DeadReason.PERMANENT, _describe(exc), traceback.format_exc(), job=job,
                              duration_ms=ran)  # fmt: skip
        except TimeoutError as exc:
            message = str(exc) if str(exc).startswith("timed out") else _describe(exc)
            ran = _ms_since(started)
            return self._failed_attempt(d, job, task, attempt, message, traceback.format_exc(), ran)
        except BaseException as exc:  # noqa: BLE001 - no handler exception may kill the worker
            ran = _ms_since(started)
            return self._failed_attempt(d, job, task, attempt, _describe(exc), traceback.format_exc(), ran)
        try:
            data = wire.encode(result)
        except PayloadError as exc:
            return self._dead(
                d, attempt, DeadReason.RESULT_SERIALIZATION, f"handler returned a value that {exc}", job=job
            )
        if debug:
            ms = _ms_since(started)
            logger.debug("job %s done in %.1f ms", d.id, ms, extra={**extra, "duration_ms": ms})
        return Outcome(d.id, d.routing_key, d.token, "completed", attempt, result=data)

    def _unexpired(self, d: Delivery, job: Job) -> Job | Outcome:
        """The job, or its outcome when it expired before its first delivery (``expires``)."""
        if job.expires_at is None or d.attempts > 0 or d.token > 1 or time.time() < job.expires_at:
            return job
        return self.cancelled(d, "expired", f"expired: not started by {_iso(job.expires_at)}")

    def cancelled(self, d: Delivery, reason: str, error: str, attempt: int | None = None) -> Outcome:
        """The outcome of a job that ends ``cancelled`` (``expired`` before it started, or
        ``cancelled`` while running)."""
        logger.info("job %s %s: %s", d.id, reason, error,
                    extra={"job_id": d.id, "routing_key": d.routing_key, "reason": reason})  # fmt: skip
        return Outcome(d.id, d.routing_key, d.token, "cancelled", attempt or d.attempts, error=error, reason=reason)

    def cancel(self, slot: asyncio.Task[Any]) -> bool:
        """Stop the ``async`` handler ``slot`` runs (``client.cancel`` of a running job): it
        ends ``cancelled``. False when it runs none (a plain handler only sees
        ``ctx.cancelled``)."""
        return self._deadlines.cancel(slot)

    def internal_error(self, d: Delivery, exc: BaseException) -> Outcome:
        """The outcome of an attempt that failed inside Bananas rather than in the handler:
        retried after 1 s up to this worker's ``MAX_RETRIES``, then dead-lettered."""
        attempt = d.attempts + 1
        error, tb = f"internal error: {_describe(exc)}", traceback.format_exc()[-MAX_TRACEBACK_CHARS:]
        if attempt > self._defaults.max_retries:
            return self._dead(d, attempt, DeadReason.MAX_RETRIES, f"{error} (gave up after {attempt} attempts)", tb)
        retry_at = time.time() + 1
        return Outcome(d.id, d.routing_key, d.token, "retry", attempt, error=error, traceback=tb, retry_at=retry_at)

    def blocked(self, d: Delivery, ran_s: float, grace_s: float) -> Outcome | None:
        """The outcome of an async job that has held the event loop for ``ran_s``: a
        timeout judged by its retry policy once ``ran_s`` passed its timeout plus
        ``grace_s``, else ``None`` (called from the loop watch's thread while the loop
        is blocked)."""
        try:
            job = wire.decode_job(d.body)
        except PayloadError:
            return None
        task = self._tasks.get(job.name)
        if task is None or not task.spec.is_async or ran_s < (timeout_s := self._timeout_s(job, task)) + grace_s:
            return None
        error = f"timed out after {timeout_s:g} s (the handler blocked the event loop for {ran_s:.1f} s)"
        return self._failed_attempt(d, job, task, d.attempts + 1, error, "", round(ran_s * 1e3, 3))

    async def _call_sync(self, task: TaskDefinition, kwargs: dict[str, Any], timeout_s: float) -> Any:
        future = self._pool.submit(task.fn, kwargs)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            if not future.cancelled():
                raise  # the handler itself raised TimeoutError: its thread is free again
            self._pool.abandon()  # the thread runs on; its late result is discarded
            raise TimeoutError(f"timed out after {timeout_s:g} s (sync handler abandoned)") from None

    def _timeout_s(self, job: Job, task: TaskDefinition) -> float:
        """The job's own timeout, else its task's, else this worker's JOB_TIMEOUT."""
        if job.timeout is not None:
            return job.timeout
        return task.timeout_s if task.timeout_s is not None else self._defaults.timeout_s

    def _max_retries(self, job: Job, task: TaskDefinition) -> int:
        """The job's own max_retries, else its task's, else this worker's MAX_RETRIES."""
        if job.max_retries is not None:
            return job.max_retries
        return task.max_retries if task.max_retries is not None else self._defaults.max_retries

    def _failed_attempt(
        self, d: Delivery, job: Job, task: TaskDefinition, attempt: int, error: str, tb: str, duration_ms: float
    ) -> Outcome:
        tb = tb[-MAX_TRACEBACK_CHARS:]
        if attempt > self._max_retries(job, task):
            message = f"{error} (gave up after {attempt} attempts)"
            return self._dead(d, attempt, DeadReason.MAX_RETRIES, message, tb, job=job, duration_ms=duration_ms)
        delay = task.retry.delay_s(attempt, random.random())
        logger.info(
            "job %s attempt %d failed, retry in %.2f s: %s", d.id, attempt, delay, error,
            extra={**self._fields(d, job, attempt), "error": error, "traceback": tb, "retry_delay_s": round(delay, 3),
                   "duration_ms": duration_ms},
        )  # fmt: skip
        return Outcome(
            d.id, d.routing_key, d.token, "retry", attempt,
            error=error, traceback=tb, retry_at=time.time() + delay,
        )  # fmt: skip

    def _fields(self, d: Delivery, job: Job | None, attempt: int) -> dict[str, object]:
        fields: dict[str, object] = {
            "job_id": d.id, "attempt": attempt, "routing_key": d.routing_key, "worker_id": self._worker_id,
            "component": "worker",
        }  # fmt: skip
        if job is not None:
            fields.update(job_name=job.name, priority=job.priority)
        return fields

    def _dead(
        self,
        d: Delivery,
        attempt: int,
        reason: DeadReason,
        error: str,
        tb: str = "",
        *,
        job: Job | None = None,
        duration_ms: float | None = None,
    ) -> Outcome:
        extra = {**self._fields(d, job, attempt), "reason": reason.value, "error": error, "traceback": tb}
        if duration_ms is not None:  # the handler ran
            extra["duration_ms"] = duration_ms
        logger.warning("job %s dead-lettered (%s): %s", d.id, reason.value, error, extra=extra)
        return Outcome(
            d.id, d.routing_key, d.token, "failed", attempt,
            error=error, traceback=tb[-MAX_TRACEBACK_CHARS:], reason=reason.value,
        )  # fmt: skip


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _ms_since(started: float) -> float:
    """Milliseconds since ``perf_counter()`` read ``started``, to the microsecond."""
    return round((time.perf_counter() - started) * 1e3, 3)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
