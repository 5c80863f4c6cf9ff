"""``Task``: a registered handler plus its defaults; ``submit`` and ``submit_and_wait``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from bananas.job import check_job_name, check_routing_key, parse_priority
from bananas.signature import PayloadSpec

if TYPE_CHECKING:
    from bananas.app import Bananas

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``min(max_s, base_s * 2**attempt)``, jittered by ±``jitter``."""

    base_s: float = 1.0
    max_s: float = 3600.0
    jitter: float = 0.2

    def delay_s(self, attempt: int, rand: float) -> float:
        """Delay before retry number ``attempt`` (1-based); ``rand`` is uniform in [0, 1)."""
        raw = min(self.max_s, self.base_s * float(2**attempt))
        return float(max(0.0, min(self.max_s, raw * (1 + self.jitter * (2 * rand - 1)))))


class Task(Generic[P, R]):
    """A handler registered with ``@app.task``. Call it to run the function in-process.

    ``P`` is the handler's parameters and ``R`` its result: for an ``async def`` handler
    the awaited value, which is what ``submit_and_wait`` returns.
    """

    def __init__(
        self,
        app: Bananas,
        fn: Callable[P, Any],
        *,
        name: str | None = None,
        priority: str | int | None = None,
        routing_key: str = "default",
        max_retries: int | None = None,
        timeout: float | timedelta | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = check_job_name(name or fn.__name__)
        self.priority = parse_priority(priority)
        self.routing_key = check_routing_key(routing_key)
        self.max_retries = max_retries
        self.timeout_s = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        self.retry = retry or RetryPolicy()
        self.spec = PayloadSpec(fn, self.name)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} routing_key={self.routing_key!r} priority={self.priority}>"

    def submit(
        self,
        *,
        _priority: str | int | None = None,
        _routing_key: str | None = None,
        _delay: float | timedelta | None = None,
        _at: datetime | None = None,
        **payload: Any,
    ) -> str:
        """Submit a job for this task; payload as keyword arguments. Returns the job id.

        Options that would clash with payload names carry a leading underscore; for
        everything else use ``app.client.submit(task.name, payload, ...)``.

        Raises:
            PayloadError: the payload does not fit the handler.
            BrokerUnavailable: the broker could not be reached.
        """
        return self.app.client.submit(
            self.name, payload, priority=_priority, routing_key=_routing_key, delay=_delay, at=_at
        )

    def submit_and_wait(self, *, timeout: float | timedelta = 30.0, **payload: Any) -> R:
        """Submit, then block until the job finishes and return its result.

        Raises:
            ResultTimeout: the job did not finish within ``timeout``.
            JobFailed: the job failed or was cancelled.
        """
        result: R = self.app.client.submit_and_wait(self.name, payload, timeout=timeout)
        return result
