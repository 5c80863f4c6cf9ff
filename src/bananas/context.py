"""``Context``: what a handler may ask about the job it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: Logger that handler output goes through; records carry ``log_source=bananas_job``.
job_logger = logging.getLogger("bananas.job")


class Context:
    """Injected into a handler that has a parameter annotated with ``Context``.

    Attributes:
        job_id: the job's ULID.
        name: the job (task) name.
        attempt: 1 for the first run, 2 for the first retry, ...
        routing_key: the queue the job came from.
        priority: the job's priority (0..100).
        headers: the job's string headers (trace context and the like).
        worker_id: the worker running the job.
        ready_at: unix time the job became due (created, or its scheduled time).
        delivery: how many times the broker has handed this job out, this time included
            (more than ``attempt`` after a worker died holding it).
        logger: a logger whose records carry the job id.
    """

    __slots__ = (
        "_cancelled", "_logger", "_report", "attempt", "delivery", "headers", "job_id", "name", "priority",
        "ready_at", "routing_key", "worker_id",
    )  # fmt: skip

    def __init__(
        self,
        job_id: str,
        name: str,
        attempt: int,
        routing_key: str,
        report: Callable[[float], None],
        *,
        priority: int = 50,
        headers: dict[str, str] | None = None,
        worker_id: str = "",
        ready_at: float = 0.0,
        delivery: int = 1,
    ) -> None:
        self.job_id = job_id
        self.name = name
        self.attempt = attempt
        self.routing_key = routing_key
        self.priority = priority
        self.headers = headers if headers is not None else {}
        self.worker_id = worker_id
        self.ready_at = ready_at
        self.delivery = delivery
        self._report = report
        # A plain flag: set from the lease keeper's thread, read by the handler. Assigning
        # a bool is atomic, and a threading.Event per job cost more than the job itself.
        self._cancelled = False
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the job's fields and ``log_source=bananas_job``."""
        if self._logger is None:
            self._logger = logging.LoggerAdapter(
                job_logger,
                {
                    "job_id": self.job_id, "job_name": self.name, "attempt": self.attempt,
                    "routing_key": self.routing_key, "priority": self.priority, "worker_id": self.worker_id,
                    "component": "worker", "log_source": "bananas_job",
                },
            )  # fmt: skip
        return self._logger

    def progress(self, fraction: float) -> None:
        """Report progress between 0 and 1; visible as ``Job.progress``."""
        self._report(min(1.0, max(0.0, float(fraction))))

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this running job (``client.cancel``)."""
        return self._cancelled


def flag_cancelled(ctx: Context) -> None:
    """Set ``ctx.cancelled`` (the worker does, when someone cancels the running job)."""
    ctx._cancelled = True
