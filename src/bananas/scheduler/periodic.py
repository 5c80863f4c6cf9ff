"""``CronRunner``: the leader's cron pass — fire every due tick of every schedule once.

Each pass reads the schedules' state from the broker (so a new leader carries on where
the last one stopped), decides which ticks are due and hands them to
``Broker.fire_schedule``, which enqueues a tick's job only if its ``schedule_id:tick`` key
was never set and only while this scheduler's fencing token is the newest. A leader that
was paused and resumes therefore cannot fire a tick twice.

Ticks up to ``late_s`` old (lease TTL + 2 s + the cron interval: the longest a failover
takes) are fired late; older ones were *missed* (no scheduler ran) and follow the
schedule's ``missed`` policy: ``skip`` them, ``run_once`` (the latest), or ``catch_up``
(the latest ``catch_up_limit``, oldest first).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from bananas.brokers.base import Broker, Fire, ScheduleState
from bananas.errors import ConfigurationError, PayloadError
from bananas.job import JobStatus
from bananas.schedule import Schedule, ScheduleRegistry
from bananas.settings import Settings
from bananas.submission import JobBuilder, JobSpec

logger = logging.getLogger(__name__)

#: Most on-time ticks of one schedule fired in one pass (a pass follows at once).
MAX_FIRES_PER_PASS = 1000


class CronRunner:
    """Fires the due ticks of ``registry`` on ``broker`` (the leader calls ``run_due``).

    Args:
        broker: where states live and jobs go.
        registry: the app's schedules.
        settings: scheduler settings (lease TTL, cron interval) and job defaults.
        builder: builds and checks the jobs (knows the app's tasks).
        clock: unix time source (tests pass a fake one).
    """

    def __init__(
        self,
        broker: Broker,
        registry: ScheduleRegistry,
        settings: Settings,
        builder: JobBuilder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker
        self.registry = registry
        self.builder = builder
        self.clock = clock
        s = settings.scheduler
        self.late_s = s.leader_ttl_s + 2.0 + s.cron_interval_s
        self.fired = 0
        self._resolved: dict[str, str] = {}  # schedule id -> last job whose outcome is recorded

    async def run_due(self, token: int | None) -> float | None:
        """Fire what is due; return the next tick of any enabled schedule (unix s)."""
        now = self.clock()
        states = {st.id: st for st in await self.broker.schedule_states()}
        upcoming: list[float] = []
        for schedule in self.registry:
            try:
                nxt = await self._run_one(schedule, states.get(schedule.id), token, now)
            except (ConfigurationError, PayloadError) as exc:  # broker trouble propagates
                logger.error("schedule %s cannot fire: %s", schedule.id, exc, extra={"schedule_id": schedule.id})
                continue
            if nxt is not None:
                upcoming.append(nxt)
        await self._record_outcomes(states)
        return min(upcoming, default=None)

    async def _run_one(
        self, schedule: Schedule, st: ScheduleState | None, token: int | None, now: float
    ) -> float | None:
        definition = schedule.to_json()
        if st is None or st.definition != definition or st.next_run is None:
            changed = st is not None and st.definition is not None and _timing(st.definition) != _timing(definition)
            keep = st is not None and st.next_run is not None and not changed
            next_run = st.next_run if keep and st is not None else schedule.expr.next_after(now)
            await self.broker.update_schedule(schedule.id, {"definition": definition, "next_run": next_run})
            st = ScheduleState(schedule.id, enabled=None if st is None else st.enabled, next_run=next_run,
                               run_count=0 if st is None else st.run_count)  # fmt: skip
        assert st.next_run is not None
        enabled = schedule.enabled if st.enabled is None else st.enabled
        if not enabled:
            if st.next_run <= now:  # ticks while disabled are not owed later
                await self.broker.update_schedule(schedule.id, {"next_run": schedule.expr.next_after(now)})
            return None
        if st.next_run > now:
            return st.next_run
        ticks = self.due_ticks(schedule, st.next_run, now)
        if not ticks:
            nxt = schedule.expr.next_after(now)
            await self.broker.update_schedule(schedule.id, {"next_run": nxt})
            return nxt
        fires = [self._fire(schedule, tick, now) for tick in ticks]
        fires[-1].next_run = schedule.expr.next_after(max(ticks[-1], now))
        done = await self.broker.fire_schedule(fires, token)
        for f, ok in zip(fires, done, strict=True):
            if ok:
                self.fired += 1
                logger.info(
                    "schedule %s fired tick %.3f as job %s (%.3f s late)", schedule.id, f.tick, f.job.id, now - f.tick,
                    extra={"schedule_id": schedule.id, "job_id": f.job.id, "component": "scheduler"},
                )  # fmt: skip
        return fires[-1].next_run

    def due_ticks(self, schedule: Schedule, next_run: float, now: float) -> list[float]:
        """The ticks to fire now: every tick in ``[next_run, now]`` not older than
        ``late_s``, plus what the missed policy keeps of the older ones."""
        boundary = now - self.late_s
        on_time = schedule.expr.between(max(next_run, boundary), now, MAX_FIRES_PER_PASS)
        if next_run >= boundary or schedule.missed == "skip":
            if next_run < boundary:
                logger.warning("schedule %s skipped the ticks missed while no scheduler ran", schedule.id)
            return on_time
        missed: list[float] = []
        limit = 1 if schedule.missed == "run_once" else schedule.catch_up_limit
        t = boundary if not on_time else on_time[0]
        while len(missed) < limit:
            t = schedule.expr.prev_before(t)
            if t < next_run:
                break
            missed.append(t)
        logger.warning("schedule %s runs %d missed ticks (%s)", schedule.id, len(missed), schedule.missed)
        return sorted(missed) + on_time

    def _fire(self, schedule: Schedule, tick: float, now: float) -> Fire:
        spec = JobSpec(
            schedule.task, dict(schedule.payload), priority=schedule.priority, routing_key=schedule.routing_key,
            description=schedule.description or f"cron {schedule.id}",
            headers={"bananas-schedule": schedule.id, "bananas-tick": repr(tick)},
        )  # fmt: skip
        job, body = self.builder.build(spec)
        return Fire(schedule.id, tick, job, body, schedule.expr.next_after(tick))

    async def _record_outcomes(self, states: dict[str, ScheduleState]) -> None:
        """Copy the outcome of each schedule's last job into its state (last_success/error)."""
        for st in states.values():
            if st.last_job_id is None or self._resolved.get(st.id) == st.last_job_id:
                continue
            job = await self.broker.get_job(st.last_job_id)
            if job is None:
                self._resolved[st.id] = st.last_job_id
            elif job.status is JobStatus.COMPLETED:
                await self.broker.update_schedule(st.id, {"last_success": job.finished_at or self.clock()})
                self._resolved[st.id] = st.last_job_id
            elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                await self.broker.update_schedule(st.id, {"last_error": job.error or job.status.value})
                self._resolved[st.id] = st.last_job_id


def _timing(definition: bytes) -> tuple[object, object]:
    """The parts of a stored definition that decide when it fires."""
    data = msgspec.json.decode(definition)
    return data.get("cron"), data.get("tz")
