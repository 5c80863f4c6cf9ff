"""``join``: return once routing keys are drained and every outcome is stored.

The deterministic wait that Dramatiq's ``StubBroker.join`` gives its users. Drained
means: no ready job, no leased job (a leased job's outcome is stored in the same atomic
step that releases its lease, so none leased means every outcome is stored), and no
delayed or retry job due before the join's deadline (a retry a second away is work
that is still coming; a job delayed past the deadline is not).

The check reads ``queue_stats``. It runs again whenever an in-process worker stores
outcomes (``Worker.on_stored``), and otherwise after a pause that grows to 0.1 s: what
other processes do, and the scheduler making due jobs ready, announce nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bananas import brokers
from bananas.brokers.base import Broker, Outcome, QueueStats
from bananas.client import AsyncClient, Client
from bananas.errors import JoinTimeout
from bananas.registry import HasRegistry, Registry
from bananas.testing.loops import run_blocking
from bananas.testing.waiting import Deadline
from bananas.worker import Worker

#: The longest pause between two checks when no event says something changed.
MAX_PAUSE_S = 0.1


@runtime_checkable
class HasWorker(Protocol):
    """Something that runs a ``Worker`` (``WorkerThread``)."""

    @property
    def worker(self) -> Worker: ...


#: What ``join`` accepts: a worker (its routing keys), or an app or client (with routing keys).
JoinTarget = Worker | HasWorker | AsyncClient | Client | HasRegistry


async def join(target: JoinTarget, routing_keys: str | Sequence[str] | None = None, *, timeout: float = 10.0) -> None:
    """Return once ``routing_keys`` have no ready, running or soon-due job left and every
    outcome is stored.

    Args:
        target: a running in-process ``Worker`` (or ``WorkerThread``): its routing keys on
            its broker; or an application, ``Client`` or ``AsyncClient``: their broker,
            with some worker (any process) serving the routing keys.
        routing_keys: one or several; default the worker's, else the routing keys of the
            app's tasks (with ``"default"``).
        timeout: seconds before giving up.

    Raises:
        JoinTimeout: still pending at the deadline; the message lists what, per routing key.
    """
    broker, rks, workers = _resolve(target, routing_keys)
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def on_stored(batch: Sequence[Outcome]) -> None:
        with contextlib.suppress(RuntimeError):  # this join's loop has closed
            loop.call_soon_threadsafe(changed.set)

    for w in workers:
        w.on_stored.append(on_stored)
    deadline, until = Deadline(timeout, MAX_PAUSE_S), time.time() + timeout
    try:
        while True:
            changed.clear()
            pending = pending_work(await broker.queue_stats(), rks, until)
            if not pending:
                return
            if (pause := deadline.next_pause()) is None:
                raise JoinTimeout(f"join timed out after {timeout:g} s; still pending: {'; '.join(pending)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), pause)
    finally:
        for w in workers:
            with contextlib.suppress(ValueError):
                w.on_stored.remove(on_stored)
        await broker.close()


def join_blocking(
    target: JoinTarget, routing_keys: str | Sequence[str] | None = None, *, timeout: float = 10.0
) -> None:
    """``join`` for synchronous code (a test with a ``WorkerThread``).

    Raises:
        JoinTimeout: still pending at the deadline.
    """
    run_blocking(lambda: join(target, routing_keys, timeout=timeout))


def pending_work(stats: Sequence[QueueStats], routing_keys: Sequence[str], until: float) -> list[str]:
    """What keeps ``routing_keys`` from being drained, one line per routing key; scheduled
    jobs count when the first is due by ``until`` (unix s)."""
    by_key = {st.routing_key: st for st in stats}
    lines = []
    now = time.time()
    for rk in routing_keys:
        st = by_key.get(rk)
        if st is None:
            continue
        parts = []
        if st.ready:
            parts.append(f"{st.ready} ready")
        if st.processing:
            parts.append(f"{st.processing} running or awaiting their outcome")
        due = st.next_scheduled_at
        if st.scheduled and due is not None and due <= until:
            when = f"due {now - due:.1f} s ago (is a scheduler running?)" if due < now else f"due in {due - now:.1f} s"
            parts.append(f"{st.scheduled} scheduled, the first {when}")
        if parts:
            lines.append(f"{rk!r}: {', '.join(parts)}")
    return lines


def _resolve(target: JoinTarget, routing_keys: str | Sequence[str] | None) -> tuple[Broker, list[str], list[Worker]]:
    """The broker to read (a clone: ``join`` may run on another loop than its owner),
    the routing keys and the in-process workers whose stored outcomes wake the join."""
    given = [routing_keys] if isinstance(routing_keys, str) else list(routing_keys or ())
    if isinstance(target, Worker | HasWorker):
        worker = target if isinstance(target, Worker) else target.worker
        return worker.broker.clone(), given or list(worker.settings.worker.routing_keys), [worker]
    registry: Registry | None
    if isinstance(target, AsyncClient):
        broker, registry = target.broker.clone(), target.registry
    elif isinstance(target, Client):
        broker = brokers.from_url(target.url)
        registry = target.app.registry if target.app is not None else None
    else:
        registry = target.registry
        broker = brokers.from_url(registry.settings.url)
    if not given:
        given = sorted({"default", *(t.routing_key for t in registry.tasks.values())} if registry else {"default"})
    workers = [w for w in registry.workers if isinstance(w, Worker)] if registry is not None else []
    return broker, given, workers
