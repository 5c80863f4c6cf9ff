"""``Client``: the blocking client. Each thread gets its own event loop and connections."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from bananas.brokers.base import Broker, QueueStats
from bananas.brokers.workflow import WorkflowRecord, WorkflowSummary
from bananas.catalogue import TaskInfo
from bananas.chaos import ChaosConfig
from bananas.client.aio import AsyncClient, default_settings, merge_unique, result_of, split_unique
from bananas.client.options import SubmitOptions, WaitedJobOptions, job_spec, split_callbacks
from bananas.client.workflows import WorkflowHandle
from bananas.durations import Duration
from bananas.errors import BananasError
from bananas.job import Job, UniqueLock
from bananas.middleware import Middleware
from bananas.observability.snapshot import MetricsSnapshot
from bananas.registry import HasRegistry, InlineRunner
from bananas.settings import Settings
from bananas.submission import JobSpec
from bananas.workflows.canvas import Canvas

P = ParamSpec("P")
T = TypeVar("T")

#: An ``AsyncClient`` method (or any coroutine function taking the client first).
AsyncCall = Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]


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
        app: HasRegistry | None = None,
        timeout_s: float = 5.0,
        middleware: Sequence[Middleware] | None = None,
        chaos: ChaosConfig | None = None,
    ) -> None:
        self.settings = settings or default_settings(app)
        self.url = url or self.settings.url
        self.app = app
        self._middleware = middleware
        self._chaos = chaos
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._helper: _LoopThread | None = None
        self._lock = threading.Lock()
        self._all: list[tuple[asyncio.AbstractEventLoop, AsyncClient]] = []
        self._blocking: AsyncClient | None = None
        self._refreshing = False

    def _new_async(self) -> AsyncClient:
        return AsyncClient(
            self.url,
            settings=self.settings,
            app=self.app,
            timeout_s=self._timeout_s,
            middleware=self._middleware,
            chaos=self._chaos,
        )

    def _run(self, coro_fn: AsyncCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
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
        client: AsyncClient = state["client"]
        return loop.run_until_complete(coro_fn(client, *args, **kwargs))

    @property
    def broker(self) -> Broker:
        """This thread's broker (for advanced use and tests)."""
        return self._run(_get_broker)

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
        if split_callbacks(options)[1]:
            return self._run(AsyncClient.submit, name, payload, **options)
        spec = job_spec(name, payload, options)
        core = self._core()
        eager = self._eager((name,))
        if eager is None:
            self._catalogue_for(core, (name,))
        built = core.build(spec)
        lock = core.builder.unique_lock(spec, built[0])
        if eager is None and lock is not None:
            return self._store_unique(core, [built], [lock])[0]
        if eager is not None:
            eager.run_blocking(core.broker, [built])
        else:
            core.broker.enqueue_blocking([built])
        core.builder.submitted([built])
        return built[0].id

    def _eager(self, names: Iterable[str]) -> InlineRunner | None:
        """The app's eager runner when eager mode is on, after checking it knows ``names``."""
        eager = self.app.registry.eager if self.app is not None else None
        if eager is not None:
            eager.check(names)
        return eager

    def submit_many(self, specs: Iterable[JobSpec | tuple[str, Mapping[str, Any]]]) -> list[str]:
        """See ``AsyncClient.submit_many``. Runs without an event loop: one round trip."""
        core = self._core()
        given = [s if isinstance(s, JobSpec) else JobSpec(s[0], s[1]) for s in specs]
        eager = self._eager(s.name for s in given)
        if eager is None:
            self._catalogue_for(core, [s.name for s in given])
        built = [core.build(s) for s in given]
        locks = [core.builder.unique_lock(s, job) for s, (job, _) in zip(given, built, strict=True)]
        if eager is None and any(locks):
            return self._store_unique(core, built, locks)
        if built:
            if eager is not None:
                eager.run_blocking(core.broker, built)
            else:
                core.broker.enqueue_blocking(built)
            core.builder.submitted(built)
        return [job.id for job, _ in built]

    @staticmethod
    def _store_unique(
        core: AsyncClient, built: Sequence[tuple[Job, bytes]], locks: Sequence[UniqueLock | None]
    ) -> list[str]:
        """``aio.store_unique`` without an event loop."""
        plain, unique = split_unique(built, locks)
        if plain:
            core.broker.enqueue_blocking(plain)
        return merge_unique(core.builder, built, locks, core.broker.enqueue_unique_blocking(unique))

    def _catalogue_for(self, core: AsyncClient, names: Sequence[str]) -> None:
        """Make sure ``core`` has a copy of the task catalogue when it needs one: read
        before the first submit that does, later refreshed on a helper thread."""
        copy = core.catalogue
        if not copy.stale(time.time()) or not core.builder.needs_catalogue(names):
            return
        if copy.read_at is None:
            entries = self._run(_read_entries)
            copy.replace(entries or [], time.time())
            return
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
            if self._helper is None:
                self._helper = _LoopThread(self._new_async())
            helper = self._helper

        def refreshed(done: concurrent.futures.Future[list[TaskInfo] | None]) -> None:
            entries = None if done.cancelled() or done.exception() else done.result()
            if entries is None:
                copy.mark_read(time.time())
            else:
                copy.replace(entries, time.time())
            self._refreshing = False

        helper.start(_read_entries).add_done_callback(refreshed)

    def tasks(self) -> list[TaskInfo]:
        """See ``AsyncClient.tasks``."""
        entries = self._run(AsyncClient.tasks)
        if self._blocking is not None:
            self._blocking.catalogue.replace(entries, time.time())
        return entries

    def _core(self) -> AsyncClient:
        """The client whose broker serves blocking submits (shared by all threads)."""
        if self._blocking is None:
            with self._lock:
                if self._blocking is None:
                    self._blocking = self._new_async()
        return self._blocking

    def submit_workflow(
        self, canvas: Canvas, *, on_failure: str = "fail_fast", name: str | None = None
    ) -> WorkflowHandle:
        """See ``AsyncClient.submit_workflow``."""
        handle = self._run(AsyncClient.submit_workflow, canvas, on_failure=on_failure, name=name)
        return self.workflow(handle.id)

    def workflow(self, workflow_id: str) -> WorkflowHandle:
        """A handle on a workflow submitted earlier (no I/O)."""
        return WorkflowHandle(workflow_id, self._on_workflow)

    def _on_workflow(self, workflow_id: str, method: str, args: tuple[Any, ...]) -> Any:
        return self._run(_workflow_call, workflow_id, method, args)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """See ``AsyncClient.get_workflow``."""
        return self._run(AsyncClient.get_workflow, workflow_id)

    def list_workflows(self, limit: int = 100) -> list[WorkflowSummary]:
        """See ``AsyncClient.list_workflows``."""
        return self._run(AsyncClient.list_workflows, limit)

    def get_job(self, job_id: str) -> Job | None:
        """See ``AsyncClient.get_job``."""
        return self._run(AsyncClient.get_job, job_id)

    def wait(self, job_id: str, timeout: Duration = 30.0) -> Job:
        """See ``AsyncClient.wait``."""
        return self._run(AsyncClient.wait, job_id, timeout)

    def submit_and_wait(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: Duration = 30.0,
        **options: Unpack[WaitedJobOptions],
    ) -> Any:
        """See ``AsyncClient.submit_and_wait``."""
        if self._eager((name,)) is not None:
            # Run the job the way ``submit`` does (never on a loop this thread waits for),
            # so a handler that submits and waits itself cannot deadlock the helper loop.
            return result_of(self.wait(self.submit(name, payload, **options), timeout))
        return self._run(AsyncClient.submit_and_wait, name, payload, timeout=timeout, **options)

    def cancel(self, job_id: str) -> bool:
        """See ``AsyncClient.cancel``."""
        return self._run(AsyncClient.cancel, job_id)

    def list_jobs(self, status: str | None = None, name: str | None = None, limit: int = 100) -> list[Job]:
        """See ``AsyncClient.list_jobs``."""
        return self._run(AsyncClient.list_jobs, status, name, limit)

    def dead_jobs(self, limit: int = 100) -> list[Job]:
        """See ``AsyncClient.dead_jobs``."""
        return self._run(AsyncClient.dead_jobs, limit)

    def retry_dead(self, job_ids: Sequence[str] | None = None) -> int:
        """See ``AsyncClient.retry_dead``."""
        return self._run(AsyncClient.retry_dead, job_ids)

    def purge_dead(self) -> int:
        """See ``AsyncClient.purge_dead``."""
        return self._run(AsyncClient.purge_dead)

    def queue_stats(self) -> list[QueueStats]:
        """See ``AsyncClient.queue_stats``."""
        return self._run(AsyncClient.queue_stats)

    def pause(self, routing_key: str) -> bool:
        """See ``AsyncClient.pause``."""
        return self._run(AsyncClient.pause, routing_key)

    def resume(self, routing_key: str) -> bool:
        """See ``AsyncClient.resume``."""
        return self._run(AsyncClient.resume, routing_key)

    def metrics(self) -> MetricsSnapshot:
        """See ``AsyncClient.metrics``."""
        return self._run(AsyncClient.metrics)


def _close_on(loop: asyncio.AbstractEventLoop, client: AsyncClient) -> None:
    loop.run_until_complete(client.close())
    loop.close()


async def _workflow_call(client: AsyncClient, workflow_id: str, method: str, args: tuple[Any, ...]) -> Any:
    return await getattr(client.workflow(workflow_id), method)(*args)


async def _get_broker(client: AsyncClient) -> Broker:
    return client.broker


async def _read_entries(client: AsyncClient) -> list[TaskInfo] | None:
    """The catalogue, or None when it could not be read (the submit reports a down broker)."""
    try:
        return await client.tasks()
    except BananasError:
        return None


class _LoopThread:
    """An event loop on a daemon thread, for sync calls made from inside a running loop."""

    def __init__(self, client: AsyncClient) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = client
        self._thread = threading.Thread(target=self._loop.run_forever, name="bananas-client", daemon=True)
        self._thread.start()

    def run(self, coro_fn: AsyncCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        coro = coro_fn(self._client, *args, **kwargs)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def start(self, coro_fn: AsyncCall[P, T], *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        """Run without waiting; the future tells when it is done."""
        return asyncio.run_coroutine_threadsafe(coro_fn(self._client, *args, **kwargs), self._loop)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
