"""Middleware: no-op ``before_*``/``after_*`` hooks that plugins (metrics, tracing) override.

The shape is dramatiq's ``middleware/middleware.py``: a class whose every hook does
nothing, so a plugin overrides only what it needs. The worker loop and the client call
the hooks through a ``MiddlewareChain``; with no middleware installed they hold ``None``
and pay one attribute test per job.

Hooks run on the thread that triggers them (the client's caller, the worker's event
loop). They must be quick and must not raise: an exception from a hook is logged and
swallowed, so a broken plugin never loses a job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from bananas.brokers.base import Broker, Delivery, Outcome
from bananas.context import Context
from bananas.job import Job
from bananas.settings import Settings

logger = logging.getLogger(__name__)


class SchedulerView(Protocol):
    """What observability reads of a worker's scheduler."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def ticks(self) -> int: ...


class WorkerView(Protocol):
    """What middleware, metrics and health read of a running worker (``Worker`` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def broker(self) -> Broker: ...

    @property
    def started_at(self) -> float: ...

    @property
    def last_fetch(self) -> float: ...

    @property
    def fetch_restarts(self) -> int: ...

    @property
    def fetch_stalled_s(self) -> float: ...

    @property
    def busy(self) -> int: ...

    @property
    def processed(self) -> int: ...

    @property
    def stopping(self) -> bool: ...

    def stop(self) -> None:
        """Begin a graceful stop: fetch nothing more, finish what runs."""

    @property
    def scheduler(self) -> SchedulerView | None: ...


class Middleware:
    """Base class: every hook is a no-op. Subclass and override the ones you need."""

    # --- client side -------------------------------------------------------------
    def before_submit(self, job: Job) -> None:
        """A job was built and is about to be encoded; ``job.headers`` may be changed."""

    def after_submit(self, job: Job) -> None:
        """The broker stored the job."""

    # --- worker side -------------------------------------------------------------
    def worker_start(self, worker: WorkerView) -> None:
        """A worker started (before its first fetch)."""

    def worker_stop(self, worker: WorkerView) -> None:
        """A worker stopped (after its last outcome was stored)."""

    def after_dequeue(self, delivery: Delivery, worker: WorkerView) -> None:
        """A job was leased to this worker."""

    def before_execute(self, ctx: Context) -> None:
        """The handler is about to run, in the task (and context) that runs it."""

    def after_execute(self, ctx: Context | None, delivery: Delivery, outcome: Outcome, duration_s: float) -> None:
        """The attempt ended; ``ctx`` is None when the body could not be decoded."""

    def after_retry(self, ctx: Context | None, outcome: Outcome) -> None:
        """The attempt failed and the job will be retried at ``outcome.retry_at``."""

    def after_dead_letter(self, ctx: Context | None, outcome: Outcome) -> None:
        """The job failed for good (``outcome.reason``)."""

    def after_ack(self, outcome: Outcome, accepted: bool) -> None:
        """The outcome was stored (``accepted``) or refused as a duplicate."""


_HOOKS = (
    "before_submit", "after_submit", "worker_start", "worker_stop", "after_dequeue",
    "before_execute", "after_execute", "after_retry", "after_dead_letter", "after_ack",
)  # fmt: skip


class MiddlewareChain:
    """Calls one hook on every middleware that overrides it, in order; never raises."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)
        for hook in _HOOKS:
            overriding = [
                getattr(m, hook) for m in self.middleware if getattr(type(m), hook) is not getattr(Middleware, hook)
            ]
            setattr(self, f"_{hook}", tuple(overriding))

    @classmethod
    def of(cls, middleware: Iterable[Middleware] | None) -> MiddlewareChain | None:
        """A chain, or None when there is nothing to call (the cheap case)."""
        items = list(middleware or ())
        return cls(items) if items else None

    def overrides(self, *hooks: str) -> bool:
        """Whether some middleware overrides one of ``hooks``."""
        return any(getattr(self, f"_{hook}") for hook in hooks)

    @staticmethod
    def for_hooks(chain: MiddlewareChain | None, *hooks: str) -> MiddlewareChain | None:
        """``chain`` when some middleware overrides one of ``hooks``, else None: a hot path
        keeps only the chain it must call (a process's ``FreezeAtStart`` costs no job anything)."""
        return chain if chain is not None and chain.overrides(*hooks) else None

    def _call(self, hook: str, *args: object) -> None:
        for fn in getattr(self, f"_{hook}"):
            try:
                fn(*args)
            except Exception:
                logger.exception("middleware hook %s failed", hook, extra={"component": "worker"})

    def before_submit(self, job: Job) -> None:
        self._call("before_submit", job)

    def after_submit(self, job: Job) -> None:
        self._call("after_submit", job)

    def worker_start(self, worker: WorkerView) -> None:
        self._call("worker_start", worker)

    def worker_stop(self, worker: WorkerView) -> None:
        self._call("worker_stop", worker)

    def after_dequeue(self, delivery: Delivery, worker: WorkerView) -> None:
        self._call("after_dequeue", delivery, worker)

    def before_execute(self, ctx: Context) -> None:
        self._call("before_execute", ctx)

    def after_execute(self, ctx: Context | None, delivery: Delivery, outcome: Outcome, duration_s: float) -> None:
        self._call("after_execute", ctx, delivery, outcome, duration_s)
        if outcome.kind == "retry":
            self._call("after_retry", ctx, outcome)
        elif outcome.kind == "failed":
            self._call("after_dead_letter", ctx, outcome)

    def after_ack(self, outcome: Outcome, accepted: bool) -> None:
        self._call("after_ack", outcome, accepted)


__all__ = ["Middleware", "MiddlewareChain", "SchedulerView", "WorkerView"]
