"""``LoopWatch``: a thread that replaces a worker process whose event loop a handler blocks.

An ``async def`` handler that calls blocking code (``time.sleep``, a synchronous client)
holds the worker's event loop: its own timeout cannot fire, and every other job of the
process waits. The watch thread keeps a heartbeat on the loop; when the beat stops and
the task holding the loop is a job past its timeout (plus ``GRACE_S``), it ends that
attempt as a timeout (retried by the job's policy), stores the outcomes already decided,
gives every other held job back to its queue uncharged, and exits the process with
``RECYCLE_EXIT``, so that its supervisor replaces it at once. Only that job is blamed.

Worker processes started by ``bananas worker`` run one (``WorkerSettings.watch_loop``);
a worker embedded in another program does not, as exiting is not its decision to make.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from bananas.brokers.base import Broker, Delivery, Lease, Outcome
from bananas.errors import BananasError
from bananas.worker.held import Held
from bananas.worker.supervisor import RECYCLE_EXIT

logger = logging.getLogger(__name__)

#: How often the loop beats and the thread looks.
BEAT_S = 0.25
#: A loop that missed its beat for this long is blocked.
STUCK_S = 1.0
#: How far past its timeout a job that blocks the loop may run before the process goes.
GRACE_S = 1.0

#: ``judge(delivery, ran_s, grace_s)``: the outcome of a job that held the loop for
#: ``ran_s``, or ``None`` while it is within its timeout + ``grace_s`` (``Executor.blocked``).
Judge = Callable[[Delivery, float, float], Outcome | None]


class LoopWatch(threading.Thread):
    """Watches ``loop`` from its own thread (see the module docstring).

    Args:
        loop: the worker's event loop.
        running: the worker's slot tasks and the job each runs.
        judge: decides whether the job holding the loop has run out of time.
        unstored: outcomes decided but not stored yet (``Acker.unstored``).
        leases: the leases of every job the worker holds.
        make_broker: builds this thread's own broker connection.
        ttl: retention of (completed, failed) jobs, for the outcomes it stores.
        exit: how the process ends (default: write out the logs, then ``os._exit``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        running: Mapping[asyncio.Task[None], Held],
        judge: Judge,
        unstored: Callable[[], list[Outcome]],
        leases: Callable[[], Sequence[Lease]],
        make_broker: Callable[[], Broker],
        ttl: tuple[float, float],
        exit: Callable[[int], object] | None = None,
    ) -> None:
        super().__init__(name="bananas-loopwatch", daemon=True)
        self._loop, self._running, self._judge = loop, running, judge
        self._unstored, self._leases, self._make_broker, self._ttl = unstored, leases, make_broker, ttl
        self._exit = exit or _exit_process
        self._stop_event = threading.Event()
        self.beat = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start beating (call on the loop's thread) and watching."""
        self._beat()
        super().start()

    def stop(self) -> None:
        """Stop watching (call on the loop's thread)."""
        self._stop_event.set()
        if self._handle is not None:
            self._handle.cancel()

    def _beat(self) -> None:
        self.beat = time.monotonic()
        self._handle = self._loop.call_later(BEAT_S, self._beat)

    def run(self) -> None:
        try:
            while not self._stop_event.wait(BEAT_S):
                beat = self.beat
                if time.monotonic() - beat < STUCK_S:
                    continue
                found = self._blocker()
                if found is not None and self.beat == beat and not self._stop_event.is_set():  # still stuck
                    self._replace(*found)
                    return
        except Exception:  # a watch that failed must not leave a blocked process running unwatched
            logger.exception("the event-loop watch failed; replacing this worker process")
            self._exit(RECYCLE_EXIT)

    def _blocker(self) -> tuple[Delivery, Outcome] | None:
        """The job holding the loop past its timeout, and its outcome; ``None`` if none.

        The task on the loop is a job's slot, unless the handler runs its blocking code in
        a task of its own (``gather``, ``wait_for``): then the longest-running job past its
        timeout is taken for the one holding the loop.
        """
        now = time.monotonic()
        held = self._running.get(asyncio.current_task(self._loop))  # type: ignore[arg-type]
        candidates = [held] if held is not None else sorted(self._running.values(), key=lambda h: h.started or now)
        for h in candidates:
            if h.started is not None and (outcome := self._judge(h.delivery, now - h.started, GRACE_S)) is not None:
                return h.delivery, outcome
        return None

    def _replace(self, blocker: Delivery, outcome: Outcome) -> None:
        logger.error(
            "job %s has blocked the event loop past its timeout: ending its attempt (%s) and replacing this "
            "worker process; the other jobs it held go back to their queues", blocker.id, outcome.error,
            extra={"job_id": blocker.id, "component": "worker"},
        )  # fmt: skip
        outcomes = [*self._unstored(), outcome]
        decided = {o.id for o in outcomes}
        give_back = [lease for lease in self._leases() if lease.id not in decided]
        try:
            asyncio.run(self._store(outcomes, give_back))
        except BananasError as exc:  # their leases expire instead; the blocker is charged for it
            logger.error("could not store outcomes before exiting: %s", exc)
        self._exit(RECYCLE_EXIT)

    async def _store(self, outcomes: list[Outcome], give_back: list[Lease]) -> None:
        broker = self._make_broker()
        try:
            await broker.ack(outcomes, self._ttl)
            if give_back:
                await broker.requeue(give_back)
        finally:
            await broker.close()


#: Run before the process exits (the CLI adds the stop of its log listener thread).
_before_exit: list[Callable[[], object]] = []


def before_exit(hook: Callable[[], object]) -> None:
    """Have ``hook`` run before a watch ends this process (``os._exit`` skips ``atexit``)."""
    _before_exit.append(hook)


def _exit_process(code: int) -> None:
    """Flush the logs and end the process at once (the blocked loop cannot stop it)."""
    for hook in _before_exit:
        hook()
    logging.shutdown()
    os._exit(code)
