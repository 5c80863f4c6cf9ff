"""Metrics: Prometheus exposition (``bananas_*``); the typed snapshot is ``snapshot``.

``PrometheusMiddleware`` counts what this process does (submits, executions, retries,
acks) through the middleware hooks, so the worker loop stays unchanged.
``BrokerCollector`` asks the broker at scrape time for what no single process knows
(queue depths, dead letters, the oldest waiting job). With ``--processes`` every child
writes its counters to ``PROMETHEUS_MULTIPROC_DIR`` and the supervisor exposes the sum
(prometheus-client's multi-process mode).

Label values are bounded: job names and routing keys beyond ``MAX_LABEL_VALUES``
distinct values are reported as ``other``, priorities as their 0..100 number.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bananas.brokers.base import Broker, Delivery, Outcome, QueueStats
from bananas.chaos import add_listener
from bananas.context import Context
from bananas.errors import BananasError, MissingDependencyError
from bananas.job import DeadReason, Job
from bananas.middleware import Middleware, WorkerView

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

#: Most distinct values one label takes before the rest are reported as ``other``.
MAX_LABEL_VALUES = 200
#: Buckets of ``bananas_job_duration_seconds`` and ``bananas_job_queue_wait_seconds``.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, float("inf"))

#: Dead-lettered before the handler ran (no ``before_execute``, so not counted as active).
_DEAD_ON_ARRIVAL = frozenset({DeadReason.MALFORMED.value, DeadReason.NO_HANDLER.value, DeadReason.PAYLOAD.value})


# --- Prometheus ------------------------------------------------------------------------
def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - a core dependency, but keep the message useful
        raise MissingDependencyError('Prometheus metrics need prometheus-client: pip install "bananas"') from None
    return prometheus_client


class _Bounded:
    """Maps label values to themselves until ``limit`` distinct ones were seen, then ``other``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value


class PrometheusMiddleware(Middleware):
    """Counts submits, executions, retries, dead letters and acks as ``bananas_*`` metrics.

    Args:
        registry: where the metrics live (default: a new registry of its own). In
            multi-process mode (``PROMETHEUS_MULTIPROC_DIR`` set before the import of
            prometheus-client) the values go to that directory whatever the registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        pc = _prometheus()
        self.registry = registry if registry is not None else pc.CollectorRegistry()
        self._job_metrics(pc, self.registry)
        #: stops counting this process's injected faults (``bananas.chaos``).
        self.stop_counting_chaos = add_listener(lambda kind: self.chaos.labels(kind=kind).inc())
        self._worker_gauges(pc, self.registry)
        self._names = _Bounded()
        self._keys = _Bounded()
        self._refresher: asyncio.Task[None] | None = None

    def _job_metrics(self, pc: Any, r: CollectorRegistry) -> None:
        C, H = pc.Counter, pc.Histogram
        self.enqueued = C(
            "bananas_jobs_enqueued", "Jobs submitted by this process.", ["name", "priority", "routing_key"], registry=r
        )
        self.dequeued = C("bananas_jobs_dequeued", "Jobs leased to workers.", ["routing_key"], registry=r)
        self.started = C("bananas_jobs_started", "Handler invocations.", ["name"], registry=r)
        self.completed = C(
            "bananas_jobs_completed", "Attempts by outcome (completed, retry, failed).", ["name", "status"], registry=r
        )
        self.duration = H(
            "bananas_job_duration_seconds", "Time one attempt took.", ["name"], buckets=BUCKETS, registry=r
        )
        self.wait = H(
            "bananas_job_queue_wait_seconds",
            "Time from ready to started.",
            ["routing_key"],
            buckets=BUCKETS,
            registry=r,
        )
        self.retries = C("bananas_retry", "Attempts that failed and will be retried.", ["name"], registry=r)
        self.dead = C("bananas_dead_lettered", "Jobs dead-lettered, by reason.", ["name", "reason"], registry=r)
        self.redelivered = C("bananas_redelivered", "Runs started after a delivery left no outcome.", registry=r)
        self.duplicates = C(
            "bananas_duplicate_outcomes", "Outcomes refused because the lease was reclaimed.", registry=r
        )
        self.acks = C("bananas_outcomes_stored", "Outcomes stored by the broker.", registry=r)
        self.chaos = C("bananas_chaos_injected", "Faults injected by bananas.chaos, by kind.", ["kind"], registry=r)
        self.recycled = C(
            "bananas_worker_recycled",
            "Worker processes replaced at --max-jobs-per-child or --max-memory-per-child, by reason.",
            ["reason"],
            registry=r,
        )

    def _worker_gauges(self, pc: Any, r: CollectorRegistry) -> None:
        G = pc.Gauge
        self.active = G(
            "bananas_worker_active", "Jobs running now.", ["routing_key"], registry=r, multiprocess_mode="livesum"
        )
        self.concurrency = G(
            "bananas_worker_concurrency", "Job slots of running workers.", registry=r, multiprocess_mode="livesum"
        )
        self.workers = G("bananas_workers", "Worker processes running.", registry=r, multiprocess_mode="livesum")
        self.utilisation = G(
            "bananas_worker_utilization",
            "Busy slots / slots, per worker process.",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.fetch_lag = G(
            "bananas_fetch_loop_lag_seconds",
            "Seconds since a fetch loop last came back from the broker.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.fetch_restarts = G(
            "bananas_fetch_loop_restarts",
            "Fetch loops rebuilt by the watchdog.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.leader = G(
            "bananas_scheduler_leader",
            "1 where this process holds the scheduler lock.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ticks = G(
            "bananas_scheduler_ticks", "Scheduler ticks run by the leader.", registry=r, multiprocess_mode="livesum"
        )
        self.start_time = G(
            "bananas_worker_start_time_seconds",
            "Unix time the worker started.",
            registry=r,
            multiprocess_mode="livemin",
        )

    # client side
    def after_submit(self, job: Job) -> None:
        self.enqueued.labels(self._names(job.name), str(job.priority), self._keys(job.routing_key)).inc()

    # worker side
    def worker_start(self, worker: WorkerView) -> None:
        self.workers.inc()
        self.concurrency.inc(worker.settings.worker.concurrency)
        self.start_time.set(worker.started_at)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever(worker))

    def worker_stop(self, worker: WorkerView) -> None:
        self.workers.dec()
        self.concurrency.dec(worker.settings.worker.concurrency)
        if self._refresher is not None:
            self._refresher.cancel()
        self.refresh(worker)

    def after_dequeue(self, delivery: Delivery, worker: WorkerView) -> None:
        self.dequeued.labels(self._keys(delivery.routing_key)).inc()

    def before_execute(self, ctx: Context) -> None:
        rk = self._keys(ctx.routing_key)
        self.started.labels(self._names(ctx.name)).inc()
        if ctx.delivery > ctx.attempt:  # counted at the start, so it equals the duplicate starts
            self.redelivered.inc()
        self.active.labels(rk).inc()
        self.wait.labels(rk).observe(max(0.0, time.time() - ctx.ready_at))

    def after_execute(self, ctx: Context | None, delivery: Delivery, outcome: Outcome, duration_s: float) -> None:
        name = self._names(ctx.name) if ctx is not None else "unknown"
        self.completed.labels(name, outcome.kind).inc()
        self.duration.labels(name).observe(duration_s)
        if ctx is not None and outcome.reason not in _DEAD_ON_ARRIVAL:  # before_execute ran: it counted this one
            self.active.labels(self._keys(ctx.routing_key)).dec()

    def after_retry(self, ctx: Context | None, outcome: Outcome) -> None:
        self.retries.labels(self._names(ctx.name) if ctx else "unknown").inc()

    def after_dead_letter(self, ctx: Context | None, outcome: Outcome) -> None:
        self.dead.labels(self._names(ctx.name) if ctx else "unknown", outcome.reason or "unknown").inc()

    def after_ack(self, outcome: Outcome, accepted: bool) -> None:
        (self.acks if accepted else self.duplicates).inc()

    def refresh(self, worker: WorkerView) -> None:
        """Update the gauges sampled from the worker's state."""
        concurrency = worker.settings.worker.concurrency
        self.utilisation.set(worker.busy / concurrency)
        self.fetch_lag.set(max(0.0, time.monotonic() - worker.last_fetch))
        self.fetch_restarts.set(worker.fetch_restarts)
        scheduler = worker.scheduler
        self.leader.set(1 if scheduler is not None and scheduler.is_leader else 0)
        self.ticks.set(scheduler.ticks if scheduler is not None else 0)

    async def _refresh_forever(self, worker: WorkerView, every_s: float = 1.0) -> None:
        while True:
            self.refresh(worker)
            await asyncio.sleep(every_s)


class BrokerCollector:
    """Queue figures asked from the broker at scrape time (one ``queue_stats`` call).

    Args:
        stats: returns the broker's ``QueueStats`` (called on the scraping thread).
        slots_per_worker: the concurrency one worker offers, for ``bananas_workers_needed``.
        drain_target_s: how fast the backlog should drain, for ``bananas_workers_needed``.
    """

    def __init__(
        self, stats: Callable[[], Sequence[QueueStats]], *, slots_per_worker: int = 10, drain_target_s: float = 60.0
    ) -> None:
        self._stats = stats
        self.slots_per_worker = max(1, slots_per_worker)
        self.drain_target_s = drain_target_s

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("bananas_broker_up", "1 when the broker answered the last scrape.")
        try:
            queues = list(self._stats())
        except (BananasError, OSError):
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        now = time.time()
        depth = GaugeMetricFamily("bananas_queue_depth", "Ready jobs.", labels=["priority", "routing_key"])
        scheduled = GaugeMetricFamily(
            "bananas_scheduled_jobs", "Delayed or retry-waiting jobs.", labels=["routing_key"]
        )
        processing = GaugeMetricFamily("bananas_processing_jobs", "Leased (running) jobs.", labels=["routing_key"])
        dead = GaugeMetricFamily("bananas_dead_jobs", "Dead-lettered jobs.", labels=["routing_key"])
        dlq = GaugeMetricFamily("bananas_dlq_size", "Dead-lettered jobs, all routing keys.")
        oldest = GaugeMetricFamily(
            "bananas_oldest_job_age_seconds", "Age of the longest-waiting ready job.", labels=["routing_key"]
        )
        needed = GaugeMetricFamily(
            "bananas_workers_needed",
            "Workers needed to run what is processing plus drain the backlog within the target (autoscaling).",
            labels=["routing_key"],
        )
        keys = _Bounded()
        for q in queues:
            rk = keys(q.routing_key)
            for prio, n in q.ready_by_priority.items():
                depth.add_metric([str(prio), rk], n)
            scheduled.add_metric([rk], q.scheduled)
            processing.add_metric([rk], q.processing)
            dead.add_metric([rk], q.dead)
            age = max(0.0, now - q.oldest_ready_at) if q.oldest_ready_at is not None else 0.0
            oldest.add_metric([rk], age)
            needed.add_metric([rk], workers_needed(q, self.slots_per_worker, age, self.drain_target_s))
        dlq.add_metric([], sum(q.dead for q in queues))
        return [up, depth, scheduled, processing, dead, dlq, oldest, needed]


def workers_needed(q: QueueStats, slots_per_worker: int, oldest_age_s: float, drain_target_s: float) -> int:
    """Workers to keep what runs running and to drain the backlog: a busy queue whose
    oldest job waited longer than the target asks for one slot per waiting job."""
    backlog = q.ready if oldest_age_s > drain_target_s else math.ceil(q.ready / 2)
    return math.ceil((q.processing + backlog) / slots_per_worker)


def sync_stats(make_broker: Callable[[], Broker]) -> Callable[[], list[QueueStats]]:
    """A blocking ``queue_stats`` for the scrape thread: its own broker and event loop."""

    def stats() -> list[QueueStats]:
        async def once() -> list[QueueStats]:
            broker = make_broker()
            try:
                return await broker.queue_stats()
            finally:
                with contextlib.suppress(BananasError):
                    await broker.close()

        return asyncio.run(once())

    return stats


def exposition(*registries: CollectorRegistry) -> bytes:
    """The Prometheus text format of the registries given, one after another."""
    pc = _prometheus()
    return b"".join(pc.generate_latest(r) for r in registries)


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry that sums the metric files every process wrote into ``path``."""
    pc = _prometheus()
    from prometheus_client import multiprocess

    registry: CollectorRegistry = pc.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry
