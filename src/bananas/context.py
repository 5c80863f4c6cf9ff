"""``Context``: what a handler may ask about the job it runs."""

from __future__ import annotations

import logging
import threading
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
        logger: a logger whose records carry the job id.
    """

    __slots__ = ("_cancelled", "_report", "attempt", "job_id", "logger", "name", "routing_key")

    def __init__(
        self,
        job_id: str,
        name: str,
        attempt: int,
        routing_key: str,
        report: Callable[[float], None],
    ) -> None:
        self.job_id = job_id
        self.name = name
        self.attempt = attempt
        self.routing_key = routing_key
        self._report = report
        self._cancelled = threading.Event()
        self.logger = logging.LoggerAdapter(
            job_logger,
            {"job_id": job_id, "job_name": name, "attempt": attempt, "log_source": "bananas_job"},
        )

    def progress(self, fraction: float) -> None:
        """Report progress between 0 and 1; visible as ``Job.progress``."""
        self._report(min(1.0, max(0.0, float(fraction))))

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this running job (``client.cancel``)."""
        return self._cancelled.is_set()

    def _cancel(self) -> None:
        self._cancelled.set()
