"""Small pieces of the worker loop: reconnect backoff, and a delivery held until its
outcome is stored."""

from __future__ import annotations

import asyncio
import logging

from bananas.brokers.base import Delivery, Lease
from bananas.context import Context

logger = logging.getLogger("bananas.worker.worker")


class Backoff:
    """Exponential reconnect delays: 0.05 s doubling up to ``cap_s``."""

    def __init__(self, cap_s: float = 1.0) -> None:
        self.cap_s = cap_s
        self.delay_s = 0.0

    def next(self) -> float:
        self.delay_s = min(self.cap_s, max(0.05, self.delay_s * 2))
        return self.delay_s

    def reset(self) -> None:
        self.delay_s = 0.0

    def recovered(self, worker_id: str) -> None:
        """The broker answered: log it if it had been in trouble, and reset the delays."""
        if self.delay_s:
            logger.info("broker reachable again", extra={"component": "broker", "worker_id": worker_id})
            self.reset()

    async def pause(self, trouble: Exception, worker_id: str) -> None:
        """Log broker trouble and wait the next delay before trying again."""
        delay = self.next()
        logger.warning("broker trouble, retrying in %.2f s: %s", delay, trouble,
                       extra={"component": "broker", "worker_id": worker_id})  # fmt: skip
        await asyncio.sleep(delay)


class Held:
    """A delivery this worker holds until its outcome is stored."""

    __slots__ = ("cancel_requested", "ctx", "delivery", "started")

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.ctx: list[Context] = []
        self.started: float | None = None  # monotonic, once a slot runs it
        self.cancel_requested = False  # client.cancel while it runs: it ends cancelled

    @property
    def lease(self) -> Lease:
        """The lease, as renewals quote it (made when asked: renewals are rare, jobs are not)."""
        d = self.delivery
        return Lease(d.id, d.routing_key, d.token)


def log_refused(job_id: str) -> None:
    """An outcome the broker refused: the job's lease had been reclaimed (a duplicate run)."""
    logger.warning("outcome of job %s refused: its lease was reclaimed (duplicate run)", job_id,
                   extra={"job_id": job_id, "component": "worker"})  # fmt: skip
