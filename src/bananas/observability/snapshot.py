"""The typed metrics snapshot (``app.metrics()``, ``client.metrics()``): queue depths from
the broker, recent counts and durations from a sample of finished jobs, and the workers
of this process."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bananas.brokers.base import Broker, QueueStats
from bananas.job import Job
from bananas.middleware import WorkerView

#: How many recently finished jobs of each terminal status ``collect_snapshot`` samples.
SAMPLE = 1000


@dataclass(frozen=True)
class DurationStats:
    """Run times of a sample of finished jobs, in seconds."""

    count: int = 0
    avg_s: float = 0.0
    p50_s: float = 0.0
    p95_s: float = 0.0
    p99_s: float = 0.0
    max_s: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> DurationStats:
        if not values:
            return cls()
        ordered = sorted(values)

        def q(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        return cls(len(ordered), sum(ordered) / len(ordered), q(0.5), q(0.95), q(0.99), ordered[-1])


@dataclass(frozen=True)
class MetricsSnapshot:
    """What ``app.metrics()`` and ``client.metrics()`` return.

    Queue figures are exact (from the broker). Counts and durations by name, priority
    and status come from the most recent ``sample_size`` completed and failed jobs still
    retained by the broker (completed jobs are kept 1 h by default), so they describe
    recent activity, not all time; Prometheus counters are the all-time view.
    """

    taken_at: float
    uptime_s: float
    queues: list[QueueStats]
    ready: int
    scheduled: int
    processing: int
    dead: int
    depth_by_priority: dict[str, dict[int, int]]
    by_status: dict[str, int]
    by_name: dict[str, dict[str, int]]
    by_priority: dict[int, dict[str, int]]
    processed: int
    completed: int
    failed: int
    error_rate: float
    durations: DurationStats
    durations_by_name: dict[str, DurationStats]
    oldest_ready_age_s: dict[str, float]
    sample_size: int
    worker_utilisation: float | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)


async def collect_snapshot(
    broker: Broker, *, started_at: float, workers: Iterable[WorkerView] = (), sample: int = SAMPLE
) -> MetricsSnapshot:
    """Build a ``MetricsSnapshot`` from the broker (three queries) and this process's workers."""
    now = time.time()
    queues = await broker.queue_stats()
    finished = [*await broker.list_jobs("completed", None, sample), *await broker.list_jobs("failed", None, sample)]
    by_name, by_priority, durations = _tally(finished)
    completed = sum(1 for j in finished if j.status.value == "completed")
    failed = len(finished) - completed
    running = [w for w in workers if not w.stopping]
    capacity = sum(w.settings.worker.concurrency for w in running)
    busy = sum(w.busy for w in running)
    return MetricsSnapshot(
        taken_at=now,
        uptime_s=now - started_at,
        queues=queues,
        ready=sum(q.ready for q in queues),
        scheduled=sum(q.scheduled for q in queues),
        processing=sum(q.processing for q in queues),
        dead=sum(q.dead for q in queues),
        depth_by_priority={q.routing_key: dict(q.ready_by_priority) for q in queues},
        by_status={
            "pending": sum(q.ready for q in queues),
            "scheduled": sum(q.scheduled for q in queues),
            "processing": sum(q.processing for q in queues),
            "completed": completed,
            "failed": failed,
        },
        by_name=by_name,
        by_priority=dict(sorted(by_priority.items(), reverse=True)),
        processed=len(finished),
        completed=completed,
        failed=failed,
        error_rate=failed / len(finished) if finished else 0.0,
        durations=DurationStats.of([d for ds in durations.values() for d in ds]),
        durations_by_name={name: DurationStats.of(ds) for name, ds in durations.items()},
        oldest_ready_age_s={
            q.routing_key: max(0.0, now - q.oldest_ready_at) for q in queues if q.oldest_ready_at is not None
        },
        sample_size=len(finished),
        worker_utilisation=busy / capacity if capacity else None,
        workers=[_worker_row(w, now) for w in running],
    )


def _tally(
    finished: Sequence[Job],
) -> tuple[dict[str, dict[str, int]], dict[int, dict[str, int]], dict[str, list[float]]]:
    """Counts by name and status, by priority and status, and run times by name."""
    by_name: dict[str, dict[str, int]] = {}
    by_priority: dict[int, dict[str, int]] = {}
    durations: dict[str, list[float]] = {}
    for job in finished:
        status = job.status.value
        by_name.setdefault(job.name, {}).setdefault(status, 0)
        by_name[job.name][status] += 1
        by_priority.setdefault(job.priority, {}).setdefault(status, 0)
        by_priority[job.priority][status] += 1
        if job.started_at is not None and job.finished_at is not None:
            durations.setdefault(job.name, []).append(max(0.0, job.finished_at - job.started_at))
    return by_name, by_priority, durations


def _worker_row(w: WorkerView, now: float) -> dict[str, Any]:
    return {
        "id": w.id,
        "concurrency": w.settings.worker.concurrency,
        "running": w.busy,
        "processed": w.processed,
        "uptime_s": now - w.started_at,
    }
