"""``Registry``: what an application knows (tasks, schedules, middleware, settings).

The services (worker, scheduler, job building) read an application through this
object, never through the ``Bananas`` façade, so that no service imports the layer
users write against. ``Bananas`` owns one (``app.registry``) and fills it as tasks and
schedules are declared.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypedDict

from bananas.brokers.base import Broker
from bananas.durations import Duration
from bananas.errors import ConfigurationError
from bananas.job import UNIQUE_MODES, Job, RetryPolicy, check_job_name, check_routing_key, parse_priority, to_seconds
from bananas.middleware import Middleware, WorkerView
from bananas.schedule import ScheduleRegistry
from bananas.settings import Settings
from bananas.signature import PayloadSpec

#: ``@app.task(on_success=fn, on_failure=fn)``: called (plain or ``async def``) by the
#: worker after a job's outcome is stored, with the job and its result, or with the job
#: and ``{"error", "reason", "job_id"}`` when it failed for good.
OutcomeHook = Callable[[Job, Any], Any]


class TaskOptions(TypedDict, total=False):
    """The options of ``@app.task``; each is described on ``TaskDefinition``."""

    name: str | None
    priority: str | int | None
    routing_key: str
    max_retries: int | None
    timeout: Duration | None
    retry: RetryPolicy | None
    on_success: OutcomeHook | None
    on_failure: OutcomeHook | None
    unique_key: Callable[[dict[str, Any]], str] | None
    unique_ttl: Duration | None
    unique_mode: str | None
    priority_fn: Callable[[dict[str, Any]], str | int] | None


class TaskDefinition:
    """A handler and the defaults its jobs get: what a worker needs to run it.

    Args:
        fn: the handler, ``async def`` or plain.
        name: the task name (default: the function's name).
        priority: default priority (``"high"``, ``Priority``, 0..100); None: the built-in default.
        routing_key: default routing key.
        max_retries: default retries; None: the worker's ``MAX_RETRIES``.
        timeout: default seconds per attempt; None: the worker's ``JOB_TIMEOUT``.
        retry: backoff between attempts.
        on_success: called by the worker after a completed job's outcome is stored, as
            ``on_success(job, result)``; plain functions run on a thread, ``async def``
            ones on the worker's loop. An exception is logged with the job id and never
            changes the job's outcome.
        on_failure: the same when a job failed for good (dead-lettered, not a retry):
            ``on_failure(job, {"error", "reason", "job_id"})``.
        unique_key: ``fn(payload) -> str``, the unique key of each job submitted from
            this process (unless the submit gives one); see docs/FLOW_CONTROL.md.
        unique_ttl: how long a key is held at most (default 24 h).
        unique_mode: ``until_done`` (default) or ``until_started``.
        priority_fn: ``fn(payload) -> priority`` computed at each submit from this
            process that gives no ``priority`` of its own (it wins over ``priority``).

    Raises:
        ConfigurationError: a bad name, priority, routing key or hints.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        priority: str | int | None = None,
        routing_key: str = "default",
        max_retries: int | None = None,
        timeout: Duration | None = None,
        retry: RetryPolicy | None = None,
        on_success: OutcomeHook | None = None,
        on_failure: OutcomeHook | None = None,
        unique_key: Callable[[dict[str, Any]], str] | None = None,
        unique_ttl: Duration | None = None,
        unique_mode: str | None = None,
        priority_fn: Callable[[dict[str, Any]], str | int] | None = None,
    ) -> None:
        self.fn = fn
        if priority_fn is not None and not callable(priority_fn):
            raise ConfigurationError(f"task {name or fn.__name__!r}: priority_fn must be a function of the payload")
        self.priority_fn = priority_fn
        if unique_key is not None and not callable(unique_key):
            raise ConfigurationError(f"task {name or fn.__name__!r}: unique_key must be a function of the payload")
        if unique_mode is not None and unique_mode not in UNIQUE_MODES:
            raise ConfigurationError(
                f"task {name or fn.__name__!r}: unique_mode must be one of {', '.join(UNIQUE_MODES)}"
            )
        self.unique_key, self.unique_ttl, self.unique_mode = unique_key, unique_ttl, unique_mode
        for hook in (on_success, on_failure):
            if hook is not None:
                _check_hook(hook, name or fn.__name__)
        self.on_success = on_success
        self.on_failure = on_failure
        self.name = check_job_name(name or fn.__name__)
        self.priority = parse_priority(priority) if priority is not None else None
        self.routing_key = check_routing_key(routing_key)
        if max_retries is not None and (type(max_retries) is not int or max_retries < 0):
            raise ConfigurationError(f"task {self.name!r}: max_retries must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        self.timeout_s = to_seconds(timeout)
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigurationError(f"task {self.name!r}: timeout must be > 0, got {self.timeout_s:g}")
        self.retry = retry or RetryPolicy()
        self.spec = PayloadSpec(fn, self.name)

    @property
    def summary(self) -> str:
        """The first line of the handler's docstring ('' without one)."""
        doc = (self.fn.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""


class InlineRunner(Protocol):
    """Runs submitted jobs in this process instead of leaving them to workers: eager mode
    (``bananas.testing.eager``). The clients of a registry that has one call it in place
    of the broker's enqueue."""

    def check(self, names: Iterable[str]) -> None:
        """Raise ``ConfigurationError`` for a task name this registry has no handler for."""

    async def run(self, broker: Broker, jobs: Sequence[tuple[Job, bytes]]) -> None:
        """Store the jobs, run each and store its outcome, on the running event loop."""

    def run_blocking(self, broker: Broker, jobs: Sequence[tuple[Job, bytes]]) -> None:
        """``run`` for synchronous callers: never on an event loop the caller is running."""


class Registry:
    """Tasks, schedules, middleware and settings of one application.

    Args:
        settings: the application's settings.
        middleware: hooks for its clients and workers.
    """

    def __init__(self, settings: Settings, middleware: Sequence[Middleware] = ()) -> None:
        self.settings = settings
        self.tasks: dict[str, TaskDefinition] = {}
        #: cron schedules fired by the scheduler leader (``@app.cron``, ``schedules.register``).
        self.schedules = ScheduleRegistry()
        self.middleware: list[Middleware] = list(middleware)
        #: workers running this registry's tasks in this process (for metrics snapshots).
        self.workers: weakref.WeakSet[WorkerView] = weakref.WeakSet()
        #: set while eager mode is on: submits run their jobs in-process (``bananas.testing.eager``).
        self.eager: InlineRunner | None = None

    @property
    def registry(self) -> Registry:
        """Itself, so that a ``Registry`` is accepted wherever an application is."""
        return self

    def add(self, task: TaskDefinition) -> None:
        """Register a task.

        Raises:
            ConfigurationError: the name is already registered.
        """
        if task.name in self.tasks:
            raise ConfigurationError(f"a task named {task.name!r} is already registered")
        self.tasks[task.name] = task


class HasRegistry(Protocol):
    """An application: anything with a ``registry`` (``Bananas``, or a ``Registry`` itself)."""

    @property
    def registry(self) -> Registry: ...


def _check_hook(hook: Any, task: str) -> None:
    """Refuse a hook that cannot be called as ``hook(job, value)``.

    Raises:
        ConfigurationError: not callable, or another signature.
    """
    if not callable(hook):
        raise ConfigurationError(f"task {task!r}: a hook must be callable, got {hook!r}")
    try:
        inspect.signature(hook).bind(None, None)
    except TypeError:
        raise ConfigurationError(f"task {task!r}: hook {hook!r} must take (job, value)") from None
    except ValueError:  # no signature to read (some builtins): let the call decide
        pass
