"""``--max-jobs-per-child`` and ``--max-memory-per-child``: a supervised worker process
that reached either limit stops fetching, finishes what runs, and exits with
``RECYCLE_EXIT``; its supervisor starts a fresh one at once (what Celery's
``worker_max_tasks_per_child`` / ``worker_max_memory_per_child`` do for leaky handlers).

A process-wide decision, so only the CLI's worker processes install it, never the library.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from bananas.brokers.base import Outcome
from bananas.middleware import Middleware, WorkerView
from bananas.worker.memory import rss_mib

logger = logging.getLogger(__name__)

#: The resident set size is read after a job's outcome is stored, once this many seconds
#: or this many jobs have passed since the last reading (a reading costs ~20 µs).
CHECK_EVERY_S, CHECK_EVERY_JOBS = 0.1, 32


class Recycle(Middleware):
    """Stops the worker once it stored ``max_jobs`` outcomes or its RSS passed
    ``max_rss_mib``; ``reason`` then says which (``max_jobs`` or ``max_memory``).

    Args:
        max_jobs: outcomes after which the process is replaced (None: no limit).
        max_rss_mib: resident set size past which it is replaced (None: no limit).
        count: called with the reason when it happens (a metrics counter).
    """

    def __init__(
        self, max_jobs: int | None, max_rss_mib: float | None, count: Callable[[str], None] | None = None
    ) -> None:
        self.max_jobs = max_jobs
        self.max_rss_mib = max_rss_mib
        self.reason: str | None = None
        #: told the reason when the limit is reached (e.g. a metrics counter).
        self.count = count
        self._jobs = 0
        self._next_check = 0.0
        self._next_jobs = 0
        self._worker: WorkerView | None = None

    @property
    def limited(self) -> bool:
        """Whether there is any limit (without one this middleware is left out)."""
        return self.max_jobs is not None or self.max_rss_mib is not None

    def worker_start(self, worker: WorkerView) -> None:
        self._worker = worker

    def after_ack(self, outcome: Outcome, accepted: bool) -> None:
        self._jobs += 1
        if self.reason is not None:
            return
        if self.max_jobs is not None and self._jobs >= self.max_jobs:
            self._recycle("max_jobs", f"it ran {self._jobs} jobs (--max-jobs-per-child {self.max_jobs})")
        elif self.max_rss_mib is not None and (self._jobs >= self._next_jobs or time.monotonic() >= self._next_check):
            self._next_check, self._next_jobs = time.monotonic() + CHECK_EVERY_S, self._jobs + CHECK_EVERY_JOBS
            rss = rss_mib()
            if rss > self.max_rss_mib and self._jobs == 1:
                logger.warning(
                    "--max-memory-per-child %g MiB is below this worker process's size after one job (%.0f MiB): "
                    "every process will be replaced after its first job", self.max_rss_mib, rss,
                    extra={"component": "worker"},
                )  # fmt: skip
            if rss > self.max_rss_mib:
                self._recycle("max_memory", f"its RSS is {rss:.0f} MiB (--max-memory-per-child {self.max_rss_mib:g})")

    def _recycle(self, reason: str, why: str) -> None:
        self.reason = reason
        logger.info(
            "worker process %d is replaced: %s; finishing its running jobs", os.getpid(), why,
            extra={"component": "worker", "reason": reason},
        )  # fmt: skip
        if self.count is not None:
            self.count(reason)
        if self._worker is not None:
            self._worker.stop()
