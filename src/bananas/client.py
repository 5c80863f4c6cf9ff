"""``Client`` and ``AsyncClient``: submit jobs, read them back, wait for results."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from bananas import brokers, wire
from bananas.brokers.base import Broker, QueueStats
from bananas.coalescer import SubmitCoalescer
from bananas.errors import ConfigurationError, JobFailed, JobNotFound, PayloadError, ResultTimeout
from bananas.job import Job, JobStatus, Priority, check_job_name, check_routing_key, new_id, parse_priority, to_seconds
from bananas.middleware import Middleware, MiddlewareChain
from bananas.settings import Settings

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from bananas.app import Bananas
    from bananas.observability.metrics import MetricsSnapshot


@dataclass
class JobSpec:
    """One job for ``submit_many``; the fields mirror ``submit``'s arguments."""

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: str | int | Priority | None = None
    routing_key: str | None = None
    delay: float | timedelta | None = None
    at: datetime | None = None
    description: str = ""
    max_retries: int | None = None
    timeout: float | timedelta | None = None
    headers: Mapping[str, str] | None = None


class WaitedJobOptions(TypedDict, total=False):
    """Options of ``submit_and_wait``: those of ``submit`` but the job timeout."""

    priority: str | int | Priority | None
    routing_key: str | None
    delay: float | timedelta | None
    at: datetime | None
    description: str
    max_retries: int | None
    headers: Mapping[str, str] | None


class SubmitOptions(WaitedJobOptions, total=False):
    """Keyword options of ``submit``; each is described there."""

    timeout: float | timedelta | None
    unique_key: str | None
    unique_ttl: float | timedelta | None


def _spec(name: str, payload: Mapping[str, Any] | None, options: SubmitOptions | WaitedJobOptions) -> JobSpec:
    rest = dict(options)
    if rest.pop("unique_key", None) is not None or rest.pop("unique_ttl", None) is not None:
        raise ConfigurationError("unique jobs (unique_key/unique_ttl) are not available yet")
    return JobSpec(name, payload if payload is not None else {}, **rest)  # type: ignore[arg-type]


class AsyncClient:
    """Submit and inspect jobs from asyncio code.

    Args:
        url: broker URL (default: the settings' URL).
        broker: an existing broker to use instead of ``url``.
        settings: defaults for jobs; read from nothing but this object.
        app: when given, submits are checked against the app's handlers.
        timeout_s: broker connect/command timeout.
        middleware: hooks around submits (default: the app's).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        broker: Broker | None = None,
        settings: Settings | None = None,
        app: Bananas | None = None,
        timeout_s: float = 5.0,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        self.settings = settings or (app.settings if app else Settings())
        self.url = url or (broker.url if broker else self.settings.url)
        self.broker = broker or brokers.from_url(self.url, timeout_s=timeout_s)
        self._coalescer = SubmitCoalescer(self.broker)
        self.app = app
        self.middleware = MiddlewareChain.of(middleware if middleware is not None else app.middleware if app else ())
        self.started_at = time.time()
        # Names and routing keys already found legal (the regex costs more than the lookup).
        self._valid_names = _BoundedSet()
        self._valid_routing_keys = _BoundedSet()

    async def close(self) -> None:
        """Close broker connections."""
        await self.broker.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- submitting --------------------------------------------------------------
    def build(self, spec: JobSpec) -> tuple[Job, bytes]:
        """Validate one job and encode it (no I/O).

        Raises:
            PayloadError, PayloadTooLarge: the payload does not fit or is too large.
            ConfigurationError: bad name, priority, routing key, delay or time.
        """
        name = spec.name
        if type(name) is not str or name not in self._valid_names:
            self._valid_names.add(check_job_name(name))
        payload = spec.payload
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise PayloadError(f"payload must be a JSON object (a dict), got {type(payload).__name__}")
        payload = dict(payload)
        task = self.app.tasks.get(name) if self.app else None
        if task is not None:
            task.spec.check(payload)
        jobs = self.settings.jobs
        now = time.time()
        scheduled_for = None if spec.delay is None and spec.at is None else _run_at(now, spec.delay, spec.at)
        timeout_s = spec.timeout
        if timeout_s is not None:
            timeout_s = to_seconds(timeout_s, "timeout")
            if timeout_s is None or timeout_s <= 0:
                raise ConfigurationError(f"timeout must be > 0, got {timeout_s}")
        elif task is not None:
            timeout_s = task.timeout_s
        max_retries = spec.max_retries
        if max_retries is None:
            max_retries = task.max_retries if task is not None else None
        elif max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {spec.max_retries}")
        priority = spec.priority if spec.priority is not None else task.priority if task else None
        routing_key = spec.routing_key or (task.routing_key if task else "default")
        if type(routing_key) is not str or routing_key not in self._valid_routing_keys:
            self._valid_routing_keys.add(check_routing_key(routing_key))
        job = Job(
            id=new_id(),
            name=name,
            payload=payload,
            priority=_NORMAL if priority is None else parse_priority(priority),
            routing_key=routing_key,
            status=JobStatus.SCHEDULED if scheduled_for else JobStatus.PENDING,
            max_retries=jobs.max_retries if max_retries is None else max_retries,
            timeout=jobs.timeout_s if timeout_s is None else timeout_s,
            created_at=now,
            scheduled_for=scheduled_for,
            description=spec.description,
            headers=dict(spec.headers) if spec.headers else {},
        )
        if self.middleware is not None:
            self.middleware.before_submit(job)
        return job, wire.encode_job(job, jobs.max_job_bytes)

    def _submitted(self, built: Sequence[tuple[Job, bytes]]) -> None:
        """After the broker stored ``built``: middleware, and a DEBUG line per job."""
        if self.middleware is not None:
            for job, _ in built:
                self.middleware.after_submit(job)
        if logger.isEnabledFor(logging.DEBUG):
            for job, _ in built:
                logger.debug(
                    "job %s submitted (%s)", job.id, job.status.value,
                    extra={"component": "client", "job_id": job.id, "job_name": job.name, "priority": job.priority,
                           "routing_key": job.routing_key},
                )  # fmt: skip

    async def submit(
        self, name: str, payload: Mapping[str, Any] | None = None, **options: Unpack[SubmitOptions]
    ) -> str:
        """Submit one job and return its id.

        Args:
            name: the task name.
            payload: a JSON object, passed to the handler as keyword arguments.
            priority: ``"high" | "normal" | "low"``, a ``Priority`` or an int 0..100.
            routing_key: queue name (default: the task's, else ``"default"``).
            delay: run no earlier than this many seconds from now.
            at: run no earlier than this aware datetime.
            unique_key: reserved for unique jobs (not available yet).
            unique_ttl: reserved for unique jobs.
            description: free text shown by ``bananas job``.
            max_retries: retries after the first attempt (default: task, then settings).
            timeout: seconds one attempt may run.
            headers: string headers carried with the job (trace context and the like).

        Raises:
            PayloadError: the payload does not fit the handler (when this client knows it).
            PayloadTooLarge: the encoded job is over the size limit.
            ConfigurationError: unknown priority, illegal routing key, negative delay.
            BrokerUnavailable: the broker could not be reached within the timeout.
        """
        job, body = self.build(_spec(name, payload, options))
        await self._coalescer.enqueue((job, body))
        self._submitted([(job, body)])
        return job.id

    async def submit_many(self, specs: Iterable[JobSpec | tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Submit many jobs in one round trip per routing key; return their ids in order.

        Raises:
            PayloadError, ConfigurationError: any job is invalid (nothing is submitted).
        """
        built = [self.build(s if isinstance(s, JobSpec) else JobSpec(s[0], s[1])) for s in specs]
        if built:
            await self.broker.enqueue(built)
            self._submitted(built)
        return [job.id for job, _ in built]

    # --- reading -------------------------------------------------------------------
    async def get_job(self, job_id: str) -> Job | None:
        """The job with its current status and result, or None if unknown/expired."""
        return await self.broker.get_job(job_id)

    async def wait(self, job_id: str, timeout: float | timedelta = 30.0) -> Job:
        """Block until the job is completed, failed or cancelled (no polling).

        Raises:
            JobNotFound: no such job.
            ResultTimeout: still not finished after ``timeout``.
        """
        timeout_s = to_seconds(timeout, "timeout") or 0.0
        job = await self.broker.wait_job(job_id, timeout_s)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} (unknown, or its record expired)")
        if not job.is_terminal:
            raise ResultTimeout(f"job {job_id} still {job.status.value} after {timeout_s:g} s")
        return job

    async def submit_and_wait(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float | timedelta = 30.0,
        **options: Unpack[WaitedJobOptions],
    ) -> Any:
        """Submit, wait for the outcome and return the handler's return value.

        ``timeout`` is how long to wait; the job runs with its task's timeout. The other
        options are those of ``submit``.

        Raises:
            ResultTimeout: no outcome within ``timeout``.
            JobFailed: the job failed (dead-lettered) or was cancelled.
        """
        job, body = self.build(_spec(name, payload, options))
        await self.broker.enqueue([(job, body)], watch=True)
        self._submitted([(job, body)])
        done = await self.wait(job.id, timeout)
        if done.status is not JobStatus.COMPLETED:
            raise JobFailed(f"job {job.id} ({name}) {done.status.value}: {done.error or ''}".rstrip(": "), done)
        return done.result

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job. A pending or scheduled job never runs; a running one sees
        ``ctx.cancelled``. Returns False when the job is unknown or already finished."""
        status = await self.broker.cancel(job_id)
        return status in ("pending", "scheduled", "processing")

    async def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs with a status (any when None), newest first."""
        if status is not None and status not in {s.value for s in JobStatus}:
            raise ConfigurationError(f"unknown status {status!r}: use one of {', '.join(s.value for s in JobStatus)}")
        return await self.broker.list_jobs(status, name, limit)

    async def dead_jobs(self, limit: int = 100) -> list[Job]:
        """Dead-lettered jobs, newest first."""
        return await self.broker.list_jobs("failed", None, limit)

    async def retry_dead(self, job_ids: Sequence[str] | None = None) -> int:
        """Send dead-lettered jobs (all when None) back to their queue."""
        return await self.broker.retry_dead(job_ids)

    async def purge_dead(self) -> int:
        """Delete every dead-lettered job."""
        return await self.broker.purge_dead()

    async def queue_stats(self) -> list[QueueStats]:
        """Depth of every routing key."""
        return await self.broker.queue_stats()

    async def metrics(self) -> MetricsSnapshot:
        """A typed snapshot: queue depths, recent counts, durations and error rate, uptime.

        See ``MetricsSnapshot`` for what is exact and what is sampled.
        """
        from bananas.observability.metrics import collect_snapshot

        workers = self.app.workers if self.app is not None else ()
        return await collect_snapshot(self.broker, started_at=self.started_at, workers=workers)


class Client:
    """The synchronous client: the same methods as ``AsyncClient``, blocking.

    Each thread gets its own event loop and connections; called from inside a running
    event loop, the call runs on a helper thread so that it never deadlocks.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        app: Bananas | None = None,
        timeout_s: float = 5.0,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        self.settings = settings or (app.settings if app else Settings())
        self.url = url or self.settings.url
        self.app = app
        self._middleware = middleware
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._helper: _LoopThread | None = None
        self._lock = threading.Lock()
        self._all: list[tuple[asyncio.AbstractEventLoop, AsyncClient]] = []
        self._blocking: AsyncClient | None = None

    def _new_async(self) -> AsyncClient:
        return AsyncClient(
            self.url, settings=self.settings, app=self.app, timeout_s=self._timeout_s, middleware=self._middleware
        )

    def _run(self, coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            with self._lock:
                if self._helper is None:
                    self._helper = _LoopThread(self._new_async())
            return self._helper.run(coro_fn, *args, **kwargs)
        state = self._local.__dict__
        if "loop" not in state:
            state["loop"] = asyncio.new_event_loop()
            state["client"] = self._new_async()
            with self._lock:
                self._all.append((state["loop"], state["client"]))
        loop: asyncio.AbstractEventLoop = state["loop"]
        return loop.run_until_complete(coro_fn(state["client"], *args, **kwargs))

    @property
    def broker(self) -> Broker:
        """This thread's broker (for advanced use and tests)."""
        return self._run(_get_broker)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close every connection this client opened."""
        with self._lock:
            pairs, self._all = self._all, []
            helper, self._helper = self._helper, None
        for loop, client in pairs:
            if not loop.is_closed() and not loop.is_running():
                # A thread of its own: this thread may be running another event loop.
                closer = threading.Thread(target=_close_on, args=(loop, client))
                closer.start()
                closer.join()
        if helper is not None:
            helper.stop()
        blocking, self._blocking = self._blocking, None
        if blocking is not None:
            closer = threading.Thread(target=_close_on, args=(asyncio.new_event_loop(), blocking))
            closer.start()
            closer.join()
        self._local = threading.local()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self, spec: JobSpec) -> tuple[Job, bytes]:
        """See ``AsyncClient.build``."""
        return self._core().build(spec)

    def submit(self, name: str, payload: Mapping[str, Any] | None = None, **options: Unpack[SubmitOptions]) -> str:
        """See ``AsyncClient.submit``. Runs without an event loop: one round trip."""
        spec = _spec(name, payload, options)
        core = self._core()
        built = core.build(spec)
        core.broker.enqueue_blocking([built])
        core._submitted([built])
        return built[0].id

    def submit_many(self, specs: Iterable[JobSpec | tuple[str, Mapping[str, Any]]]) -> list[str]:
        """See ``AsyncClient.submit_many``. Runs without an event loop: one round trip."""
        core = self._core()
        built = [core.build(s if isinstance(s, JobSpec) else JobSpec(s[0], s[1])) for s in specs]
        if built:
            core.broker.enqueue_blocking(built)
            core._submitted(built)
        return [job.id for job, _ in built]

    def _core(self) -> AsyncClient:
        """The client whose broker serves blocking submits (shared by all threads)."""
        if self._blocking is None:
            with self._lock:
                if self._blocking is None:
                    self._blocking = self._new_async()
        return self._blocking

    def get_job(self, job_id: str) -> Job | None:
        """See ``AsyncClient.get_job``."""
        return self._run(AsyncClient.get_job, job_id)  # type: ignore[no-any-return]

    def wait(self, job_id: str, timeout: float | timedelta = 30.0) -> Job:
        """See ``AsyncClient.wait``."""
        return self._run(AsyncClient.wait, job_id, timeout)  # type: ignore[no-any-return]

    def submit_and_wait(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float | timedelta = 30.0,
        **options: Unpack[WaitedJobOptions],
    ) -> Any:
        """See ``AsyncClient.submit_and_wait``."""
        return self._run(AsyncClient.submit_and_wait, name, payload, timeout=timeout, **options)

    def cancel(self, job_id: str) -> bool:
        """See ``AsyncClient.cancel``."""
        return self._run(AsyncClient.cancel, job_id)  # type: ignore[no-any-return]

    def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        """See ``AsyncClient.list_jobs``."""
        return self._run(AsyncClient.list_jobs, status, name, limit)  # type: ignore[no-any-return]

    def dead_jobs(self, limit: int = 100) -> list[Job]:
        """See ``AsyncClient.dead_jobs``."""
        return self._run(AsyncClient.dead_jobs, limit)  # type: ignore[no-any-return]

    def retry_dead(self, job_ids: Sequence[str] | None = None) -> int:
        """See ``AsyncClient.retry_dead``."""
        return self._run(AsyncClient.retry_dead, job_ids)  # type: ignore[no-any-return]

    def purge_dead(self) -> int:
        """See ``AsyncClient.purge_dead``."""
        return self._run(AsyncClient.purge_dead)  # type: ignore[no-any-return]

    def queue_stats(self) -> list[QueueStats]:
        """See ``AsyncClient.queue_stats``."""
        return self._run(AsyncClient.queue_stats)  # type: ignore[no-any-return]

    def metrics(self) -> MetricsSnapshot:
        """See ``AsyncClient.metrics``."""
        return self._run(AsyncClient.metrics)  # type: ignore[no-any-return]


def _close_on(loop: asyncio.AbstractEventLoop, client: AsyncClient) -> None:
    loop.run_until_complete(client.close())
    loop.close()


async def _get_broker(client: AsyncClient) -> Broker:
    return client.broker


class _LoopThread:
    """An event loop on a daemon thread, for sync calls made from inside a running loop."""

    def __init__(self, client: AsyncClient) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = client
        self._thread = threading.Thread(target=self._loop.run_forever, name="bananas-client", daemon=True)
        self._thread.start()

    def run(self, coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
        coro: Coroutine[Any, Any, Any] = coro_fn(self._client, *args, **kwargs)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


_NORMAL = int(Priority.NORMAL)


class _BoundedSet(set[str]):
    """A set that forgets everything when it would pass ``limit`` entries."""

    limit = 10_000

    def add(self, value: str) -> None:
        if len(self) >= self.limit:
            self.clear()
        super().add(value)


def _run_at(now: float, delay: float | timedelta | None, at: datetime | None) -> float | None:
    if delay is not None and at is not None:
        raise ConfigurationError("give delay or at, not both")
    if at is not None:
        if at.tzinfo is None:
            raise ConfigurationError("at must be a timezone-aware datetime")
        ts = at.timestamp()
        return ts if ts > now else None
    seconds = to_seconds(delay, "delay")
    if seconds is None or seconds == 0:
        return None
    if seconds < 0:
        raise ConfigurationError(f"delay must be >= 0 seconds, got {seconds:g}")
    return now + seconds
