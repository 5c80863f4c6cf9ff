"""``Bananas``: the application object users declare tasks and schedules on.

What it declares lands in its ``Registry`` (``app.registry``), which is all the
services (worker, scheduler, job building) read of it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from bananas.client import AsyncClient, Client
from bananas.context import Context
from bananas.durations import Duration
from bananas.errors import ConfigurationError
from bananas.job import RetryPolicy
from bananas.middleware import Middleware
from bananas.observability import default_middleware
from bananas.observability.snapshot import MetricsSnapshot
from bananas.registry import OutcomeHook, Registry
from bananas.schedule import MissedPolicy, Schedule, ScheduleRegistry
from bananas.settings import Settings
from bananas.task import Task

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` with options returns."""

    @overload
    def __call__(self, fn: Callable[Concatenate[Context, P], Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[Concatenate[Context, P], R], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class Bananas:
    """A Bananas application.

    Args:
        url: broker URL. Without it: ``BANANAS_URL``, else ``REDIS_URL``, else the
            embedded ``sqlite:///bananas.db``.
        settings: full settings; by default read from the environment once, here.
        middleware: hooks for clients and workers of this app (``bananas.middleware``);
            by default what the settings enable (tracing when OTEL_* is configured).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        base = settings or Settings.from_env(os.environ)
        if url is not None:
            base = dataclasses.replace(base, url=url)
        #: what the services (worker, scheduler, job building) read of this app.
        self.registry = Registry(base, default_middleware(base) if middleware is None else middleware)
        #: the tasks declared with ``@app.task``, by name.
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        """The settings (``configure`` replaces them)."""
        return self.registry.settings

    @property
    def schedules(self) -> ScheduleRegistry:
        """Cron schedules fired by the scheduler leader (``@app.cron``, ``schedules.register``)."""
        return self.registry.schedules

    @property
    def middleware(self) -> list[Middleware]:
        """Hooks for this app's clients and workers."""
        return self.registry.middleware

    def configure(self, settings: Settings) -> None:
        """Replace the settings (a worker started with ``--url`` points its app, and so
        the submits its handlers make, at the worker's broker)."""
        if self._client is not None and settings.url != self.settings.url:
            self._client.close()
            self._client = None
        self.registry.settings = settings

    @property
    def url(self) -> str:
        """The broker URL."""
        return self.settings.url

    @overload
    def task(self, fn: Callable[Concatenate[Context, P], Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: Callable[Concatenate[Context, P], R], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
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
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
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
    ) -> Task[Any, Any] | TaskDecorator:
        """Register a handler (async or sync) as a task. Usable bare or with options
        (described on ``TaskDefinition``).

        Raises:
            ConfigurationError: bad name, priority or routing key, or a name used twice.
        """

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task: Task[Any, Any] = Task(
                self, func, name=name, priority=priority, routing_key=routing_key,
                max_retries=max_retries, timeout=timeout, retry=retry, on_success=on_success, on_failure=on_failure,
                unique_key=unique_key, unique_ttl=unique_ttl, unique_mode=unique_mode, priority_fn=priority_fn,
            )  # fmt: skip
            self.registry.add(task)
            self.tasks[task.name] = task
            return task

        return register(fn) if fn is not None else register

    def cron(
        self,
        expr: str,
        *,
        id: str | None = None,
        tz: str = "UTC",
        priority: str | int | None = None,
        routing_key: str | None = None,
        payload: dict[str, Any] | None = None,
        enabled: bool = True,
        description: str = "",
        missed: MissedPolicy = "skip",
        catch_up_limit: int = 100,
    ) -> Callable[[T], T]:
        """Run a task on a cron schedule (put it above ``@app.task``); see ``Schedule``.

        ``id`` defaults to the task name. The schedule's jobs get ``payload`` as arguments.

        Raises:
            ConfigurationError: a bad expression, zone, option or a duplicate id.
        """

        def register(task: T) -> T:
            if not isinstance(task, Task):
                raise ConfigurationError("@app.cron goes above @app.task (it schedules a registered task)")
            self.schedules.register(
                Schedule(
                    id=id or task.name, task=task.name, cron=expr, tz=tz, payload=payload or {}, priority=priority,
                    routing_key=routing_key, enabled=enabled, description=description, missed=missed,
                    catch_up_limit=catch_up_limit,
                )
            )  # fmt: skip
            return task

        return register

    def close(self) -> None:
        """Close the connections of ``app.client`` (a later use opens new ones)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Client:
        """A synchronous client on this app's broker that knows its tasks."""
        if self._client is None:
            self._client = Client(self.url, app=self)
        return self._client

    def metrics(self) -> MetricsSnapshot:
        """A typed snapshot of queues, recent jobs and this process's workers (``Client.metrics``)."""
        return self.client.metrics()

    def async_client(self) -> AsyncClient:
        """A new asynchronous client on this app's broker that knows its tasks."""
        return AsyncClient(self.url, app=self)
