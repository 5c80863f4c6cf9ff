"""``Worker``: fetch only as many jobs as there are free slots, run them, ack in batches."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence

from bananas import brokers
from bananas.brokers.base import Batch, Broker, Delivery, JobFilter, Lease, LeaseState, Offer, Outcome, Reclaim
from bananas.chaos import ChaosConfig, arm, chaos_broker, chaos_tasks
from bananas.context import flag_cancelled
from bananas.errors import BananasError, BrokerAuthenticationError
from bananas.job import new_id
from bananas.middleware import Middleware, MiddlewareChain
from bananas.registry import HasRegistry
from bananas.scheduler.scheduler import Scheduler
from bananas.settings import Settings
from bananas.worker.acker import Acker
from bananas.worker.drain import finish_running, give_back_handed, give_back_unfinished
from bananas.worker.executor import Executor
from bananas.worker.fetching import FetchTask
from bananas.worker.heartbeat import Heartbeat
from bananas.worker.held import Backoff, Held, log_refused
from bananas.worker.hooks import TaskHooks
from bananas.worker.isolation import run_suspects
from bananas.worker.leases import LeaseKeeper
from bananas.worker.loopwatch import LoopWatch
from bananas.worker.threads import DaemonPool

logger = logging.getLogger(__name__)

#: Longest time an idle worker blocks on the broker before asking again.
IDLE_BLOCK_S = 5.0
#: A fetch loop with free slots that has not come back from the broker for this long is
#: presumed stuck (e.g. a consumer that silently stopped after a reconnect) and rebuilt.
STALL_S = 3 * IDLE_BLOCK_S


class Worker:
    """One worker process's engine.

    Args:
        app: the application (``Bananas``, or its ``Registry``) whose tasks this worker runs.
        settings: worker, scheduler and job settings (default: the app's).
        broker: an existing broker (default: one from the settings' URL).
        chaos: faults to inject (default: those of the file ``BANANAS_CHAOS`` names, if any).
    """

    def __init__(
        self,
        app: HasRegistry,
        settings: Settings | None = None,
        *,
        broker: Broker | None = None,
        middleware: Sequence[Middleware] = (),
        chaos: ChaosConfig | None = None,
    ) -> None:
        self.registry = registry = app.registry
        self.settings = settings or registry.settings
        self.chaos = arm(chaos)  #: the fault injector, when chaos is configured and allowed here
        self.broker = chaos_broker(self.chaos, broker or brokers.from_url(self.settings.url))
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self.middleware = MiddlewareChain.of([*registry.middleware, *middleware])
        # The per-job hooks, only when some middleware has them (kept off the hot path).
        self._on_dequeue = MiddlewareChain.for_hooks(self.middleware, "after_dequeue")
        self._on_ack = MiddlewareChain.for_hooks(self.middleware, "after_ack")
        self.started_at = time.time()
        #: monotonic time the fetch loop last came back from the broker (liveness).
        self.last_fetch = time.monotonic()
        self.fetch_restarts = 0
        self.scheduler: Scheduler | None = None
        self._rebuild = False
        self.processed = 0
        self.duplicates = 0
        self._held: dict[str, Held] = {}
        #: outcomes handed to the ack loop whose jobs are still held (not stored yet).
        self._outcomes = 0
        w = self.settings.worker
        # An unfiltered worker offers to have jobs handed to it at submit (specialized ones never do).
        self._offer = None if w.priorities or w.job_types else Offer(self.id, w.lease_s)
        self._stopping = False
        # Jobs run in long-lived slot tasks: a delivery goes to an idle slot or waits in `_ready`.
        self._ready: collections.deque[Held] = collections.deque()
        self._idle: list[asyncio.Future[Held]] = []
        self._running: dict[asyncio.Task[None], Held] = {}
        self._fetch = FetchTask()
        self._fatal: BrokerAuthenticationError | None = None
        served = registry.tasks
        if w.job_types:
            served = {name: t for name, t in served.items() if name in w.job_types}
        #: publishes the tasks this worker serves to the task catalogue.
        self.heartbeat = Heartbeat(self.broker, self.id, served)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: called on the worker's loop with each stored batch of outcomes (``bananas.testing.join``).
        self.on_stored: list[Callable[[Sequence[Outcome]], None]] = []

    @property
    def stopping(self) -> bool:
        """True once a stop began (``stop()`` or a signal): nothing more is fetched."""
        return self._stopping

    def stop(self) -> None:
        """Begin a graceful stop: fetch nothing more, finish what runs (thread-safe)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stopping = True
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        if not self._stopping:
            logger.info("worker %s stopping", self.id, extra={"component": "worker", "worker_id": self.id})
        self._stopping = True
        w = self.settings.worker
        self._fetch.interrupt(self.broker, self.id, w.routing_keys, hands_off=self._offer is not None)

    async def run(self) -> None:
        """Run until ``stop()``; then finish running jobs within the grace period,
        give the rest back to their queues and return."""
        w = self.settings.worker
        self._loop = asyncio.get_running_loop()
        self._slot_free = asyncio.Event()
        self._all_idle = asyncio.Event()
        jobs = self.settings.jobs
        self._acker = Acker(self.broker, (jobs.completed_ttl_s, jobs.failed_ttl_s), self._stored)
        self._hooks = TaskHooks(self.registry.tasks, self._loop)
        self._pool = DaemonPool(w.concurrency, self._loop)
        self._executor = Executor(
            chaos_tasks(self.chaos, self.registry.tasks), self._pool, self.id, self._report_progress,
            self.middleware, jobs, self.settings.signing.signer(), self.broker.workflow_results,
        )  # fmt: skip
        keeper = LeaseKeeper(self.broker.clone, self._snapshot, self._on_lease_state, w.lease_s)
        keeper.start()
        watch = self._watch() if w.watch_loop else None
        scheduler = self.scheduler = (
            Scheduler(self.broker, self.settings, holder=self.id, app=self.registry) if w.enable_scheduler else None
        )
        scheduler_task = asyncio.create_task(scheduler.run()) if scheduler else None
        if scheduler_task is not None:
            scheduler_task.add_done_callback(self._scheduler_ended)
        helpers = self._start_helpers()
        logger.info(
            "worker %s started: routing keys %s, concurrency %d", self.id, ",".join(w.routing_keys),
            w.concurrency, extra={"component": "worker", "worker_id": self.id},
        )  # fmt: skip
        self.registry.workers.add(self)
        if self.middleware is not None:
            self.middleware.worker_start(self)
        helpers.append(asyncio.create_task(self._watchdog()))
        try:
            await self._fetch_until_stopped()
            await self._drain(w.grace_s)
        finally:
            if scheduler is not None and scheduler_task is not None:
                await scheduler.stop(scheduler_task)
            self._fetch.close()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            keeper.stop()
            if watch is not None:
                watch.stop()
            await self.heartbeat.withdraw()
            await self._close()
        if self._fatal is not None:
            raise self._fatal

    def _scheduler_ended(self, task: asyncio.Task[None]) -> None:
        """A scheduler refused by the broker stops the worker too (it would run on without
        retries, delayed jobs or lease recovery)."""
        error = None if task.cancelled() else task.exception()
        if isinstance(error, BrokerAuthenticationError):
            self._fatal = error
            self._begin_stop()

    def _start_helpers(self) -> list[asyncio.Task[None]]:
        """The ack loop, the catalogue heartbeat and the job slots."""
        w = self.settings.worker
        helpers = [asyncio.create_task(self._acker.run()), asyncio.create_task(self.heartbeat.run())]
        return helpers + [asyncio.create_task(self._slot()) for _ in range(w.concurrency)]

    async def _fetch_until_stopped(self) -> None:
        while not self._stopping:
            fetcher = self._fetch.start(self._fetch_loop())
            try:
                await fetcher
            except asyncio.CancelledError:
                if not self._stopping and not self._rebuild:
                    raise  # run() itself was cancelled
                self._rebuild = False

    async def _close(self) -> None:
        self._pool.shutdown()
        await self.broker.close()
        self.registry.workers.discard(self)
        if self.middleware is not None:
            self.middleware.worker_stop(self)
        logger.info("worker %s stopped after %d jobs", self.id, self.processed,
                    extra={"component": "worker", "worker_id": self.id})  # fmt: skip

    async def _fetch_loop(self) -> None:
        w = self.settings.worker
        backoff = Backoff()
        # Specialized modes take only matching jobs, so the signal may hold tokens for
        # others: pause a little (up to 0.5 s) between empty fetches.
        only = JobFilter(w.priorities, w.job_types) if w.priorities or w.job_types else None
        offer = self._offer
        # Every fetch also returns due and expired-lease jobs: recovery needs no leader.
        reclaim = Reclaim(w.max_deliveries, self.settings.jobs.failed_ttl_s)
        idle = Backoff(cap_s=0.5)
        while not self._stopping:
            self._fetch.phase = "idle"
            self.last_fetch = time.monotonic()
            # A slot is free once its job has an outcome: the next jobs run while the ack
            # of the last ones is in flight. Held jobs (running + awaiting their ack) stay
            # within twice the concurrency, however slow the acks.
            free = min(w.concurrency - self.busy, 2 * w.concurrency - len(self._held))
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                self._fetch.phase = "call"
                batch = await self.broker.dequeue(w.routing_keys, free, w.lease_s, self.id, only, offer, reclaim)
                if batch.isolate:
                    me = (self.id, w.routing_keys, w.lease_s, w.job_types)  # run suspects alone (isolation)
                    await run_suspects(self.broker, me, self._held, self._slot_free, self._hold, self._fetch,
                                       lambda: self._stopping)  # fmt: skip
                    continue
                if not batch and not self._stopping:
                    self._fetch.phase = "block"
                    batch = Batch(await self.broker.wait_for_work(w.routing_keys, IDLE_BLOCK_S, offer))
                    self._fetch.phase = "idle"
                    backoff.recovered(self.id)
                    if not batch:
                        if only is not None and not self._stopping:
                            await asyncio.sleep(idle.next())
                        continue
                idle.reset()
            except BrokerAuthenticationError:
                raise  # not transient: the worker stops and its process exits non-zero
            except BananasError as exc:
                self._fetch.phase = "idle"
                await backoff.pause(exc, self.id)
                continue
            backoff.recovered(self.id)
            self._hold(batch)
            await asyncio.sleep(0)  # the slots start these jobs before the next fetch is sent

    def _hold(self, batch: list[Delivery]) -> None:
        """Hold fetched deliveries until their outcomes are stored, and start them."""
        if self._on_dequeue is not None:
            for d in batch:
                self._on_dequeue.after_dequeue(d, self)
        for d in batch:
            held = Held(d)
            self._held[d.id] = held
            self._dispatch(held)

    def _dispatch(self, held: Held) -> None:
        while self._idle:
            slot = self._idle.pop()
            if not slot.done():  # a slot cancelled while idle leaves a cancelled future
                slot.set_result(held)
                return
        self._ready.append(held)

    async def _slot(self) -> None:
        """One of `concurrency` job runners; lives as long as the worker."""
        me = asyncio.current_task()
        assert me is not None
        loop = asyncio.get_running_loop()
        while True:
            if self._ready:
                held = self._ready.popleft()
            else:
                waiting: asyncio.Future[Held] = loop.create_future()
                self._idle.append(waiting)
                held = await waiting
            self._running[me] = held
            try:
                await self._execute(held)
            finally:
                del self._running[me]
                if not self._running:
                    self._all_idle.set()

    @property
    def fetch_stalled_s(self) -> float:
        """Seconds the fetch loop has been stuck with free slots (0 when it is healthy)."""
        if self._stopping or self.busy >= self.settings.worker.concurrency:
            return 0.0
        return max(0.0, time.monotonic() - self.last_fetch - IDLE_BLOCK_S)

    async def _watchdog(self) -> None:
        """Rebuild a fetch loop that stopped coming back from the broker."""
        suspect = False
        while True:
            await asyncio.sleep(IDLE_BLOCK_S / 2)
            stalled = self.fetch_stalled_s > STALL_S - IDLE_BLOCK_S
            suspect, confirmed = stalled, stalled and suspect  # two checks in a row
            if confirmed and self._fetch.task is not None:
                self.fetch_restarts += 1
                self._rebuild = True
                stuck = time.monotonic() - self.last_fetch
                logger.error("fetch loop made no progress for %.0f s; rebuilding it", stuck,
                             extra={"component": "worker", "worker_id": self.id})  # fmt: skip
                self.last_fetch = time.monotonic()
                self._fetch.task.cancel()

    def _watch(self) -> LoopWatch:
        """Replace this process when a handler blocks the loop past its timeout (``loopwatch``)."""
        j, loop = self.settings.jobs, asyncio.get_running_loop()
        watch = LoopWatch(loop, self._running, self._executor.blocked, self._acker.unstored, self._snapshot,
                          self.broker.clone, (j.completed_ttl_s, j.failed_ttl_s))  # fmt: skip
        watch.start()
        return watch

    async def _execute(self, held: Held) -> None:
        held.started = time.monotonic()
        try:
            outcome = await self._executor.run(held.delivery, held.ctx)
        except asyncio.CancelledError:
            return  # shutdown after the grace period: the lease is given back by _drain
        except BaseException as exc:  # judged like any failed attempt: retried, then dead-lettered
            logger.exception("internal error running job %s", held.delivery.id)
            outcome = self._executor.internal_error(held.delivery, exc)
        if held.cancel_requested and outcome.kind != "cancelled":
            outcome = self._executor.cancelled(held.delivery, "cancelled", "cancelled while running", outcome.attempts)
        self._acker.add(outcome)
        self._outcomes += 1
        self._slot_free.set()

    @property
    def busy(self) -> int:
        """Jobs this worker is running (held, with no outcome yet)."""
        return len(self._held) - self._outcomes

    def _stored(self, batch: Sequence[Outcome], accepted: Sequence[bool]) -> None:
        self._outcomes -= len(batch)
        hooks = self._hooks if self._hooks else None
        for outcome, ok in zip(batch, accepted, strict=True):
            held = self._held.pop(outcome.id, None)
            if hooks is not None and ok and held is not None:
                hooks.stored(outcome, held.delivery.body)
            if self._on_ack is not None:
                self._on_ack.after_ack(outcome, ok)
            if not ok:
                self.duplicates += 1
                log_refused(outcome.id)
        self.processed += len(batch)
        self._slot_free.set()
        for listener in list(self.on_stored):
            listener(batch)

    def _report_progress(self, job_id: str, rk: str, value: float) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._acker.progress, job_id, rk, value)

    def _snapshot(self) -> Sequence[Lease]:
        return [h.lease for h in list(self._held.values())]

    def _on_lease_state(self, lease: Lease, state: LeaseState) -> None:
        if lease.id not in self._held:
            return
        if state != "cancel":
            logger.warning("lease of job %s was lost; its outcome will be refused", lease.id)
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the worker is gone
                self._loop.call_soon_threadsafe(self._cancel_running, lease.id)

    def _cancel_running(self, job_id: str) -> None:
        """A cancel of a running job (event-loop thread, once): ``ctx.cancelled`` is set, an
        async handler's task is cancelled; whatever the handler does, it ends ``cancelled``."""
        held = self._held.get(job_id)
        if held is None or held.cancel_requested:
            return
        held.cancel_requested = True
        for ctx in held.ctx:
            flag_cancelled(ctx)
        for slot in [slot for slot, h in self._running.items() if h is held]:
            self._executor.cancel(slot)

    async def _drain(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s  # running jobs, then outcome hooks, share the grace period
        if self._offer is not None:
            await give_back_handed(self.broker, self.settings.worker.routing_keys, self._offer)
        await finish_running(self._running, self._all_idle, grace_s)
        await give_back_unfinished(self.broker, self._acker, self._held, max(5.0, self.settings.worker.lease_s))
        await self._hooks.drain(max(1.0, deadline - time.monotonic()))
