"""``Task``: a registered handler whose ``submit`` is checked against its parameters.

``Task[P, R]`` carries the handler's parameters ``P`` (without a leading ``Context``)
and its result ``R``, so that mypy checks ``send_email.submit(to=..., subject=...)``
against ``send_email``'s signature. Submit options go through a typed view:
``send_email.options(priority="high", delay=10).submit(to=..., subject=...)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, Unpack, cast

from bananas.client import Client, SubmitOptions, WaitedJobOptions
from bananas.client.aio import result_of
from bananas.client.options import split_callbacks
from bananas.durations import Duration
from bananas.errors import ConfigurationError, PayloadError
from bananas.job import RetryPolicy
from bananas.registry import TaskDefinition, TaskOptions
from bananas.workflows.canvas import Signature

P = ParamSpec("P")
R = TypeVar("R")


class ClientSource(Protocol):
    """Where a task's submits go: an application with a ``client`` (``Bananas``)."""

    @property
    def client(self) -> Client: ...


class Task(TaskDefinition, Generic[P, R]):
    """A handler registered with ``@app.task``. Call it to run the function in-process.

    ``P`` is the handler's parameters (a first ``Context`` parameter left out) and ``R``
    its result: for an ``async def`` handler the awaited value, which is what
    ``submit_and_wait`` returns.
    """

    def __init__(self, app: ClientSource, fn: Callable[..., Any], **options: Unpack[TaskOptions]) -> None:
        super().__init__(fn, **options)
        self.app = app
        self._positional = tuple(
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.name != self.spec.context_param and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} routing_key={self.routing_key!r} priority={self.priority}>"

    def payload(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The payload for a call's arguments (positional ones named after the parameters).

        Raises:
            PayloadError: more positional arguments than parameters, or one given twice.
        """
        if not args:
            return kwargs
        if len(args) > len(self._positional):
            raise PayloadError(f"task {self.name!r} takes {len(self._positional)} arguments, got {len(args)}")
        named = dict(zip(self._positional, args, strict=False))
        twice = sorted(set(named) & set(kwargs))
        if twice:
            raise PayloadError(f"task {self.name!r}: argument(s) {', '.join(twice)} given twice")
        return {**named, **kwargs}

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task for a workflow: the payload so far (the parameters
        left unset are filled from other nodes' results, docs/WORKFLOWS.md).

        Raises:
            PayloadError: more positional arguments than parameters, or one given twice.
        """
        return Signature(self.name, self.payload(args, kwargs))

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Submit a job for this task; the arguments are the handler's. Returns the job id.

        Raises:
            PayloadError: the payload does not fit the handler.
            BrokerUnavailable: the broker could not be reached.
        """
        return self.app.client.submit(self.name, self.payload(args, kwargs))

    def submit_and_wait(self, *, timeout: Duration = 30.0, **payload: Any) -> R:
        """Submit, then block until the job finishes and return its result.

        ``timeout`` is how long to wait. For arguments checked by mypy use
        ``task.options(wait_timeout=...).submit_and_wait(...)``.

        Raises:
            ResultTimeout: the job did not finish within ``timeout``.
            JobFailed: the job failed or was cancelled.
        """
        result: R = self.app.client.submit_and_wait(self.name, payload, timeout=timeout)
        return result

    def options(self, *, wait_timeout: Duration = 30.0, **options: Unpack[SubmitOptions]) -> TaskCall[P, R]:
        """A view of this task whose submits carry ``options`` (those of ``Client.submit``).

        ``wait_timeout`` is how long its ``submit_and_wait`` waits.
        """
        return TaskCall(self, options, wait_timeout)


class TaskCall(Generic[P, R]):
    """``task.options(...)``: the task's typed ``submit`` and ``submit_and_wait`` with options."""

    def __init__(self, task: Task[P, R], options: SubmitOptions, wait_timeout: Duration) -> None:
        self.task = task
        self.submit_options = options
        self.wait_timeout = wait_timeout

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """See ``Task.submit``; the options given to ``options()`` apply."""
        task = self.task
        return task.app.client.submit(task.name, task.payload(args, kwargs), **self.submit_options)

    def submit_and_wait(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Submit with the options, wait up to ``wait_timeout`` and return the result.

        Raises:
            ResultTimeout: no outcome in time.
            JobFailed: the job failed or was cancelled.
            ConfigurationError: ``timeout`` (the job's) was among the options: the wait's
                limit is ``wait_timeout``; set the job's on the task.
        """
        task, options = self.task, dict(self.submit_options)
        if options.pop("timeout", None) is not None:
            raise ConfigurationError("submit_and_wait takes no job timeout option; set it on the task")
        if split_callbacks(self.submit_options)[1]:  # a job with callbacks: submitted as their workflow
            client = task.app.client
            job_id = client.submit(task.name, task.payload(args, kwargs), **self.submit_options)
            done: R = result_of(client.wait(job_id, timeout=self.wait_timeout))
            return done
        waited = cast(WaitedJobOptions, options)
        result: R = task.app.client.submit_and_wait(
            task.name, task.payload(args, kwargs), timeout=self.wait_timeout, **waited
        )
        return result


__all__ = ["ClientSource", "RetryPolicy", "Task", "TaskCall"]
