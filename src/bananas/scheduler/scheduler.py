"""``Scheduler``: leader-elected loop that runs the broker's tick exactly when needed.

It sleeps until the earliest due time the last tick reported (a scheduled job or a lease
deadline), or until a client pushes an earlier delayed job (the broker's wake signal),
capped at a third of the leader lock's lifetime so the lock is kept fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bananas.brokers.base import Broker
from bananas.errors import BananasError, BrokerAuthenticationError
from bananas.middleware import MiddlewareChain
from bananas.registry import HasRegistry
from bananas.scheduler.periodic import CronRunner
from bananas.settings import Settings
from bananas.submission import JobBuilder

logger = logging.getLogger(__name__)


class Scheduler:
    """Runs inside workers (default) or alone (``bananas scheduler``).

    Args:
        broker: the broker to tick.
        settings: scheduler and worker settings (``max_deliveries``, TTLs).
        holder: this instance's name in the leader lock.
        app: the application (or its ``Registry``) whose cron schedules the leader fires, unless
            CRON_SCHEDULER_ENABLED is false.
    """

    def __init__(self, broker: Broker, settings: Settings, *, holder: str, app: HasRegistry | None = None) -> None:
        self.broker = broker
        self.settings = settings
        self.holder = holder
        self.token: int | None = None
        self.ticks = 0
        self._stopping = False
        self.cron: CronRunner | None = None
        registry = app.registry if app is not None else None
        if registry is not None and len(registry.schedules) and settings.scheduler.cron_enabled:
            builder = JobBuilder(settings, registry.tasks, MiddlewareChain.of(registry.middleware))
            self.cron = CronRunner(broker, registry.schedules, settings, builder)

    @property
    def is_leader(self) -> bool:
        """Whether this instance held the lock at its last attempt."""
        return self.token is not None

    async def run(self) -> None:
        """Loop until cancelled or ``stop``."""
        s = self.settings.scheduler
        cycle = min(s.leader_ttl_s / 3, s.interval_s)
        if self.cron is not None:
            cycle = min(cycle, s.cron_interval_s)
        while not self._stopping:
            try:
                await self._step(cycle)
            except BrokerAuthenticationError:
                raise  # not transient: the process exits
            except BananasError as exc:
                self.token = None
                logger.warning("scheduler: broker trouble: %s", exc, extra={"component": "scheduler"})
                await asyncio.sleep(min(1.0, cycle))

    async def _step(self, cycle: float) -> None:
        s = self.settings.scheduler
        token = await self.broker.acquire_leader(self.holder, s.leader_ttl_s)
        if token != self.token:
            state = f"leader (token {token})" if token else "follower"
            logger.info("scheduler %s is now %s", self.holder, state, extra={"component": "scheduler"})
        self.token = token
        if token is None:
            await asyncio.sleep(cycle)
            return
        renew_by = time.time() + cycle
        while not self._stopping and time.time() < renew_by:
            j = self.settings.jobs
            report = await self.broker.tick(self.settings.worker.max_deliveries, j.failed_ttl_s, j.completed_ttl_s)
            self.ticks += 1
            level = logging.INFO if report.moved or report.recovered or report.lost else logging.DEBUG
            if logger.isEnabledFor(level):  # every tick at DEBUG, those that changed something at INFO
                logger.log(
                    level, "scheduler tick %d: moved %d due jobs, recovered %d expired leases, dead-lettered %d as "
                    "worker_lost", self.ticks, report.moved, report.recovered, report.lost,
                    extra={"component": "scheduler", "moved": report.moved, "recovered": report.recovered,
                           "lost": report.lost},
                )  # fmt: skip
            wake_at = renew_by if report.next_due is None else min(renew_by, report.next_due)
            if self.cron is not None:
                cron_due = await self.cron.run_due(token)
                if cron_due is not None:
                    wake_at = min(wake_at, cron_due)
            timeout = wake_at - time.time()
            if timeout > 0.002:
                await self.broker.wait_for_schedule(timeout)

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Stop the loop running as ``task`` and hand the lock over."""
        self._stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self.token is not None:
            with contextlib.suppress(BananasError):
                await self.broker.release_leader(self.holder)
            self.token = None
