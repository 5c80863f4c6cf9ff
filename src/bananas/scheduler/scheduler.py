"""``Scheduler``: the leader-elected loop that keeps broker-wide duties and cron going.

Every worker's fetch already moves due jobs and reclaims expired leases of the routing
keys it serves, so the leader's tick only sweeps up the rest (keys no worker serves, the
finished and dead indexes) every SCHEDULER_INTERVAL. The leader renews its lock every half
of its lifetime (BANANAS_SCHEDULER_LEADER_TTL) and runs the cron pass when a tick is due
or at least every CRON_SCHEDULER_INTERVAL; a follower sleeps until the lock it saw runs
out, so a dead leader is replaced within one lifetime and idle followers cost one command
per lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time

from bananas.brokers.base import Broker
from bananas.errors import BananasError, BrokerAuthenticationError
from bananas.middleware import MiddlewareChain
from bananas.registry import HasRegistry
from bananas.scheduler.periodic import CronRunner
from bananas.settings import Settings
from bananas.submission import JobBuilder

logger = logging.getLogger(__name__)

#: A follower wakes this long (plus up to as much again, spreading followers) after the
#: lock it saw runs out.
FOLLOWER_SLACK_S = 0.05


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
        self._tick_at = 0.0  # unix time of the next tick, and of the next cron pass
        self._cron_at = math.inf
        self.cron: CronRunner | None = None
        registry = app.registry if app is not None else None
        if registry is not None and len(registry.schedules) and settings.scheduler.cron_enabled:
            builder = JobBuilder(settings, registry.tasks, MiddlewareChain.of(registry.middleware))
            self.cron = CronRunner(broker, registry.schedules, settings, builder)
            self._cron_at = 0.0

    @property
    def is_leader(self) -> bool:
        """Whether this instance held the lock at its last attempt."""
        return self.token is not None

    async def run(self) -> None:
        """Loop until cancelled or ``stop``."""
        while not self._stopping:
            try:
                await self._step()
            except BrokerAuthenticationError:
                raise  # not transient: the process exits
            except BananasError as exc:
                self.token = None
                logger.warning("scheduler: broker trouble: %s", exc, extra={"component": "scheduler"})
                await asyncio.sleep(min(1.0, self.settings.scheduler.interval_s))

    async def _step(self) -> None:
        """Take or renew the lock; as leader do what falls due until the next renewal,
        as follower sleep until the lock it saw runs out."""
        s = self.settings.scheduler
        lock = await self.broker.acquire_leader(self.holder, s.leader_ttl_s)
        if lock.token != self.token:
            state = f"leader (token {lock.token})" if lock.token else "follower"
            logger.info("scheduler %s is now %s", self.holder, state, extra={"component": "scheduler"})
        self.token = lock.token
        if lock.token is None:
            await asyncio.sleep(min(lock.expires_in_s, s.leader_ttl_s) + FOLLOWER_SLACK_S * (1 + random.random()))
            return
        renew_at = time.time() + s.leader_ttl_s / 2
        while not self._stopping:
            now = time.time()
            if now >= self._tick_at:
                await self._tick()
                self._tick_at = now + s.interval_s
            if self.cron is not None and now >= self._cron_at:
                cron_due = await self.cron.run_due(lock.token)
                self._cron_at = min(now + s.cron_interval_s, math.inf if cron_due is None else cron_due)
            wake_at = min(renew_at, self._tick_at, self._cron_at)
            await asyncio.sleep(max(0.0, wake_at - time.time()))
            if wake_at >= renew_at:
                return

    async def _tick(self) -> None:
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

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Stop the loop running as ``task`` and hand the lock over."""
        self._stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self.token is not None:
            with contextlib.suppress(BananasError):
                await self.broker.release_leader(self.holder)
            self.token = None
