"""``TaskHooks``: ``@app.task(on_success=fn, on_failure=fn)``, called once a job's outcome
is stored. An exception in a hook is logged with the job id; it never changes the
outcome, and the worker goes on. Plain hooks run one at a time on a thread of their own
(a slow one delays the next hooks, never a job); ``async def`` hooks run on the loop.
Costs nothing when no task declares a hook."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Mapping
from typing import Any

from bananas import wire
from bananas.brokers.base import Outcome
from bananas.errors import PayloadError
from bananas.job import Job
from bananas.registry import OutcomeHook, TaskDefinition
from bananas.worker.threads import DaemonPool

logger = logging.getLogger(__name__)


class TaskHooks:
    """The outcome hooks of ``tasks``, for outcomes stored on ``loop``."""

    def __init__(self, tasks: Mapping[str, TaskDefinition], loop: asyncio.AbstractEventLoop) -> None:
        self._hooks = {name: t for name, t in tasks.items() if t.on_success is not None or t.on_failure is not None}
        self._loop = loop
        self._pool: DaemonPool | None = None
        self._running: set[asyncio.Future[Any]] = set()

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def stored(self, outcome: Outcome, body: bytes) -> None:
        """An outcome of a job with this ``body`` was stored: call its task's hook, if any
        (a retry calls none: the job has not ended). Never raises."""
        if outcome.kind == "retry":
            return
        try:
            job = wire.decode_job(body)
        except PayloadError:
            return  # dead-lettered as malformed: there is no task to ask
        task = self._hooks.get(job.name)
        if task is None:
            return
        if outcome.kind == "completed":
            hook, arg = task.on_success, wire.decode(outcome.result)
        else:
            hook, arg = task.on_failure, {"error": outcome.error, "reason": outcome.reason, "job_id": outcome.id}
        if hook is None:
            return
        try:
            self._start(hook, job, arg)
        except Exception as exc:  # noqa: BLE001 - a hook never stops the worker storing outcomes
            _log_failure(hook, job, exc)

    def _start(self, hook: OutcomeHook, job: Job, arg: Any) -> None:
        if is_async(hook):
            future: asyncio.Future[Any] = self._loop.create_task(hook(job, arg))
        else:
            if self._pool is None:
                self._pool = DaemonPool(1, self._loop, name="bananas-hooks")
            future = self._pool.submit(_call, {"hook": hook, "job": job, "arg": arg})
        self._running.add(future)
        future.add_done_callback(lambda f: self._done(f, hook, job))

    def _done(self, future: asyncio.Future[Any], hook: OutcomeHook, job: Job) -> None:
        self._running.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            _log_failure(hook, job, exc)

    async def drain(self, timeout_s: float) -> None:
        """Wait for the hooks still running, at most ``timeout_s``; cancel the ``async``
        ones left (a plain one left runs on, on its daemon thread) and log how many."""
        if self._running:
            _, left = await asyncio.wait(list(self._running), timeout=max(0.0, timeout_s))
            if left:
                logger.warning("%d outcome hooks still running at exit: not waited for", len(left),
                               extra={"component": "worker"})  # fmt: skip
                for future in left:
                    future.cancel()
        if self._pool is not None:
            self._pool.shutdown()


def is_async(hook: OutcomeHook) -> bool:
    """Whether calling ``hook`` returns a coroutine (an ``async def``, or an object whose
    ``__call__`` is one)."""
    call = type(hook).__call__ if not inspect.isfunction(hook) and not inspect.ismethod(hook) else None
    return inspect.iscoroutinefunction(hook) or (call is not None and inspect.iscoroutinefunction(call))


def _call(hook: OutcomeHook, job: Job, arg: Any) -> Any:
    return hook(job, arg)


def _log_failure(hook: OutcomeHook, job: Job, exc: BaseException) -> None:
    logger.error(
        "hook %s of job %s (%s) raised: %s", getattr(hook, "__qualname__", hook), job.id, job.name, exc,
        exc_info=exc, extra={"job_id": job.id, "job_name": job.name, "component": "worker"},
    )  # fmt: skip
