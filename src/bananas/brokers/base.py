"""The broker protocol every backend implements, and the records it exchanges.

A broker stores jobs, hands them out under leases, records outcomes and runs the
scheduler duties (due delayed/retry jobs -> ready, expired leases -> ready or dead).
The behavioural contract is pinned by ``tests/integration/test_broker_contract.py``,
which every backend must pass unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bananas.brokers.workflow import WorkflowStore
from bananas.job import Job, UniqueLock

#: Jobs to submit with their unique keys (``Broker.enqueue_unique``).
UniqueJobs = Sequence[tuple[Job, bytes, UniqueLock]]


@dataclass(slots=True)
class Delivery:
    """A job handed to a worker under a lease.

    ``token`` is the delivery number; outcomes and renewals must quote it, and the
    broker refuses them once the lease was reclaimed (fencing).
    """

    id: str
    routing_key: str
    body: bytes
    attempts: int
    token: int


class Batch(list[Delivery]):
    """What ``dequeue`` returns: the deliveries, and ``isolate``, True when this worker was
    given the duty to run its routing keys' *suspects* alone. A suspect is a job recovered
    from a lost worker: any job of a process that died may have killed it, so each runs
    again only in a process that holds no other job, where a death is its own. An
    isolating worker fetches nothing more until it holds no job, then calls
    ``dequeue_alone`` until that returns ``None``."""

    isolate: bool = False


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What a specialized worker takes: priorities within ``priorities`` (inclusive
    ``(low, high)`` bands, highest first) and/or names in ``names``. Empty = any."""

    priorities: tuple[tuple[int, int], ...] = ()
    names: tuple[str, ...] = ()


OutcomeKind = Literal["completed", "retry", "failed", "cancelled"]


@dataclass(slots=True)
class Outcome:
    """The result of one delivery, reported by ``Broker.ack``."""

    id: str
    routing_key: str
    token: int
    kind: OutcomeKind
    attempts: int
    result: bytes = b"null"  # encoded JSON of the return value (completed)
    error: str = ""
    traceback: str = ""
    reason: str = ""  # DeadReason value (failed)
    retry_at: float = 0.0  # unix seconds (retry)


@dataclass(slots=True)
class Lease:
    """A running job's lease, as the renewer quotes it."""

    id: str
    routing_key: str
    token: int


LeaseState = Literal["ok", "lost", "cancel"]


@dataclass(frozen=True, slots=True)
class Offer:
    """A worker's offer, made when it has free slots and nothing is ready, to take jobs
    handed to it straight from ``enqueue``, already leased for ``lease_s``, instead of
    waking up and dequeuing them (one round trip less between submit and start).
    Brokers without hand-off ignore it."""

    worker_id: str
    lease_s: float


@dataclass(frozen=True, slots=True)
class Reclaim:
    """Asks ``dequeue`` to do the scheduler's duties for the routing keys it serves first
    (due delayed/retry jobs made ready, expired leases returned as suspects, or
    dead-lettered as ``worker_lost`` when the job ran alone and was delivered
    ``max_deliveries`` times without an outcome, kept ``failed_ttl_s``), so a dead worker's
    jobs and due jobs never wait for a scheduler leader. The broker then remembers when
    the next of them falls due, and ``wait_for_work`` returns by that time."""

    max_deliveries: int
    failed_ttl_s: float


@dataclass(frozen=True, slots=True)
class LeaderLock:
    """What ``acquire_leader`` found: this holder's fencing token (``None`` when another
    holder has the lock) and how many seconds the lock lasts from now."""

    token: int | None
    expires_in_s: float


@dataclass(slots=True)
class TickReport:
    """What one scheduler tick did."""

    moved: int = 0  # scheduled/retry jobs made ready
    recovered: int = 0  # expired leases returned to ready
    lost: int = 0  # expired leases dead-lettered as worker_lost
    next_due: float | None = None  # unix seconds of the next thing to do, if known


@dataclass(slots=True)
class QueueStats:
    """Depth of one routing key."""

    routing_key: str
    ready_by_priority: dict[int, int] = field(default_factory=dict)
    scheduled: int = 0
    processing: int = 0
    dead: int = 0
    oldest_ready_at: float | None = None  # unix time the longest-waiting ready job became ready
    next_scheduled_at: float | None = None  # unix time the earliest delayed or retry job is due
    suspects: int = 0  # recovered from a lost worker, waiting to run alone (``Broker.dequeue_alone``)
    paused: bool = False  # ``Broker.pause``: workers take none of its jobs

    @property
    def ready(self) -> int:
        """Jobs waiting to run, all priorities."""
        return sum(self.ready_by_priority.values())


#: How long the de-duplication key of a fired cron tick (``schedule_id:tick``) is kept.
TICK_KEY_TTL_S = 86400.0
#: How long a cancelled job's record is kept.
CANCELLED_TTL_S = 3600.0


@dataclass(slots=True)
class ScheduleState:
    """What the broker keeps about one cron schedule (survives restarts)."""

    id: str
    enabled: bool | None = None  # None: as the code registers it
    last_run: float | None = None  # tick (unix s) of the last fire
    next_run: float | None = None  # the next tick to fire (unix s)
    run_count: int = 0
    last_success: float | None = None  # when the last fired job completed
    last_error: str | None = None  # error of the last fired job that failed
    last_job_id: str | None = None
    definition: bytes | None = None  # the Schedule as JSON (for the CLI without --app)


@dataclass(slots=True)
class Fire:
    """One cron tick to fire: its job is enqueued only if the tick never fired before."""

    schedule_id: str
    tick: float  # unix s; with schedule_id, the de-duplication key
    job: Job
    body: bytes
    next_run: float | None  # stored as the schedule's next_run when the fire happens


@dataclass(slots=True)
class CatalogueRecord:
    """One task of the catalogue as stored: its definition (JSON, see ``bananas.catalogue``)
    and the workers that published it, with when each did last (unix s)."""

    name: str
    definition: bytes
    workers: dict[str, float] = field(default_factory=dict)


#: A published definition nobody re-published for this long is forgotten.
CATALOGUE_TTL_S = 7 * 86400.0


#: Fields ``Broker.update_schedule`` may set.
SCHEDULE_FIELDS = ("enabled", "next_run", "last_success", "last_error", "definition")


class Broker(WorkflowStore, Protocol):
    """What a backend provides. All methods are coroutines; see each backend for URLs."""

    url: str

    async def ping(self) -> None:
        """Check the broker answers; raise ``BrokerUnavailable`` if not."""

    async def close(self) -> None:
        """Release connections."""

    def clone(self) -> Broker:
        """A new broker on the same URL with its own connections (for another thread)."""

    # --- producing -------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        """Store jobs and make them ready (or scheduled when ``scheduled_for`` is later).

        ``jobs`` pairs each job with its encoded body; one round trip per call. With
        ``watch`` the broker prepares the completion notification ``wait_job`` uses.
        """

    def enqueue_blocking(self, jobs: Sequence[tuple[Job, bytes]], *, watch: bool = False) -> None:
        """``enqueue`` for synchronous callers, without an event loop (the hot path of
        ``Client.submit``). Thread-safe."""

    async def enqueue_unique(self, jobs: UniqueJobs, *, watch: bool = False) -> list[str]:
        """``enqueue`` for jobs with a unique key (``UniqueLock``), in one atomic step per
        routing key: a job whose key is held is not stored. Returns, per job, the id of
        the job that holds its key (its own id when it was stored; duplicates within one
        call get the first one's)."""

    def enqueue_unique_blocking(self, jobs: UniqueJobs, *, watch: bool = False) -> list[str]:
        """``enqueue_unique`` for synchronous callers, without an event loop. Thread-safe."""

    # --- consuming -------------------------------------------------------------
    async def dequeue(
        self,
        routing_keys: Sequence[str],
        count: int,
        lease_s: float,
        worker_id: str,
        only: JobFilter | None = None,
        offer: Offer | None = None,
        reclaim: Reclaim | None = None,
    ) -> Batch:
        """Take up to ``count`` ready jobs, highest priority first, routing keys in order.

        With ``reclaim``, first make due jobs of these routing keys ready and recover
        expired leases (see ``Reclaim``), in the same atomic step; then the worker may be
        given the isolation duty instead of jobs (``Batch.isolate``; a worker filtered by
        names, for suspects of those names).

        With ``only``, take just the matching jobs; the others are never touched (not
        taken and put back). With ``offer`` (never together with ``only``), a broker that
        hands jobs off first returns those handed to this worker, and when it finds
        fewer than ``count`` it registers the offer: the next submits hand their jobs to
        this worker, leased, to be returned by ``wait_for_work`` or the next dequeue."""

    async def dequeue_alone(
        self, routing_keys: Sequence[str], lease_s: float, worker_id: str, names: Sequence[str] = ()
    ) -> Delivery | None:
        """Lease one suspect (see ``Batch``) of ``names`` (none: any) to a worker that holds
        no other job and runs it alone: a lost worker during this delivery is charged to
        this job, which is dead-lettered ``worker_lost`` once it was delivered
        ``max_deliveries`` times without an outcome. ``None`` when no suspect it may run
        is left (the duty ends)."""

    async def wait_for_work(
        self, routing_keys: Sequence[str], timeout_s: float, offer: Offer | None = None
    ) -> list[Delivery]:
        """Block until a job may be ready in one of the routing keys, or the timeout, or
        (after a ``dequeue`` with ``reclaim``) the time the next delayed job or lease of
        these routing keys falls due.

        With the ``offer`` the last ``dequeue`` registered, a broker that hands jobs off
        returns a job handed to the worker while it waited, leased like a dequeued one;
        otherwise (and always without hand-off) ``[]``."""

    async def wake(self, worker_id: str, routing_keys: Sequence[str]) -> bool:
        """Make this worker's pending ``wait_for_work`` (with an offer) return now, with no
        job (a stopping worker: cancelling that wait could lose a job handed to it in the
        same instant). False when the broker cannot, and cancelling the wait is safe."""

    async def withdraw(self, routing_keys: Sequence[str], offer: Offer) -> list[Delivery]:
        """Withdraw an offer (a stopping worker): the jobs handed to it that it has not
        taken yet, still leased to it, for the caller to ``requeue``."""

    async def ack(self, outcomes: Sequence[Outcome], ttl: tuple[float, float]) -> list[bool]:
        """Store outcomes and release leases; ``False`` where the lease was no longer held.

        ``ttl`` is (completed_ttl_s, failed_ttl_s) for the job records.
        """

    async def renew(self, leases: Sequence[Lease], lease_s: float) -> list[LeaseState]:
        """Extend leases; report ``lost`` leases and ``cancel`` requests."""

    async def requeue(self, leases: Sequence[Lease]) -> int:
        """Give leased jobs back at once (graceful shutdown); not counted as a delivery.
        Returns how many were still held (outcomes already stored are left alone)."""

    async def release_dead(
        self, worker_prefix: str, routing_keys: Sequence[str], how: str, reclaim: Reclaim
    ) -> tuple[int, int]:
        """Take back at once the leases of a dead worker process (ids starting with
        ``worker_prefix``, ``host:pid:``) in ``routing_keys``, as at a lease expiry: each job
        becomes a suspect (or ready, if the worker never took it), or is dead-lettered
        ``worker_lost`` with ``how`` it died in its error when it ran alone and
        ``reclaim.max_deliveries`` is reached. Returns (recovered, lost)."""

    async def set_progress(self, items: Sequence[tuple[str, str, float]]) -> None:
        """Record progress (id, routing_key, 0..1) of running jobs."""

    # --- scheduler duties ------------------------------------------------------
    async def tick(self, max_deliveries: int, failed_ttl_s: float, completed_ttl_s: float = 3600.0) -> TickReport:
        """Move due delayed/retry jobs to ready and recover expired leases.

        A recovered job becomes a suspect (see ``Batch``); one whose lease expired while it
        ran alone, after ``max_deliveries`` deliveries without an outcome, is dead-lettered
        as ``worker_lost`` and kept ``failed_ttl_s``; indexes of finished jobs drop entries
        older than their records' TTLs (``failed_ttl_s``, ``completed_ttl_s``).
        """

    async def acquire_leader(self, holder: str, ttl_s: float) -> LeaderLock:
        """Take or keep the scheduler lock for ``ttl_s``; say who has it for how long."""

    async def release_leader(self, holder: str) -> None:
        """Drop the scheduler lock if ``holder`` has it."""

    # --- cron schedules ---------------------------------------------------------
    async def fire_schedule(self, fires: Sequence[Fire], token: int | None) -> list[bool]:
        """Enqueue each fire's job unless its ``schedule_id:tick`` key exists, atomically
        with setting that key and the schedule's state (last_run, next_run, run_count,
        last_job_id). With a fencing ``token``, refuse all fires once a newer scheduler
        leader was elected; ``None`` (a manual run) skips that check. Returns, per fire,
        whether it fired."""

    async def schedule_states(self) -> list[ScheduleState]:
        """The stored state of every schedule."""

    async def update_schedule(self, schedule_id: str, fields: dict[str, str | bytes | float | int | None]) -> None:
        """Set state fields (names in ``SCHEDULE_FIELDS``; ``None`` clears one)."""

    async def delete_schedule(self, schedule_id: str) -> None:
        """Forget a schedule's state."""

    # --- task catalogue ---------------------------------------------------------
    async def publish_tasks(self, worker_id: str, definitions: Mapping[str, bytes], stale_after_s: float) -> None:
        """Store the definitions (task name -> JSON) a worker serves and that it was seen
        now; drop the worker entries of those tasks not seen for ``stale_after_s``. A
        definition not published again within ``CATALOGUE_TTL_S`` is forgotten."""

    async def unpublish_tasks(self, worker_id: str, names: Sequence[str]) -> None:
        """A worker stopped: it no longer serves these tasks (the definitions stay)."""

    async def task_catalogue(self, stale_after_s: float) -> list[CatalogueRecord]:
        """Every published task, by name, with the workers seen within ``stale_after_s``."""

    # --- inspecting ------------------------------------------------------------
    async def get_job(self, job_id: str) -> Job | None:
        """The job with its current status, or None."""

    async def wait_job(self, job_id: str, timeout_s: float) -> Job | None:
        """Block (without polling) until the job is terminal; None on timeout."""

    async def cancel(self, job_id: str) -> str | None:
        """Cancel a pending/scheduled job; ask a processing one to stop.

        Returns the status the job had, or None if there is no such job.
        """

    async def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs by status (newest first), optionally filtered by name."""

    async def retry_dead(self, job_ids: Sequence[str] | None) -> int:
        """Move dead-lettered jobs (all when ``None``) back to ready; return how many."""

    async def purge_dead(self) -> int:
        """Delete all dead-lettered jobs; return how many."""

    async def pause(self, routing_key: str, paused: bool = True) -> bool:
        """Pause a routing key (``paused=False``: resume it): while paused, workers lease
        none of its jobs (running ones finish; delays, retries and lease recovery go on),
        and it stays paused across restarts. Returns whether its state changed.

        Raises:
            ConfigurationError: an illegal routing key.
        """

    async def queue_stats(self) -> list[QueueStats]:
        """Depth of every known routing key."""
