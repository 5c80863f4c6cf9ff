"""Running suspects alone (``Batch.isolate``): a worker given the isolation duty fetches
nothing more, waits until it holds no job (each one run and its outcome stored), then runs
one suspect at a time, each outcome stored before the next, until none is left. A death
during such a run is that job's alone, so only a job that kills its process is
dead-lettered for it; the jobs that shared a process with it complete."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from bananas.brokers.base import Broker, Delivery
from bananas.worker.fetching import FetchTask
from bananas.worker.held import Held

logger = logging.getLogger(__name__)


async def run_suspects(
    broker: Broker,
    worker: tuple[str, Sequence[str], float, Sequence[str]],
    held: Mapping[str, Held],
    changed: asyncio.Event,
    hold: Callable[[list[Delivery]], None],
    fetch: FetchTask,
    stopping: Callable[[], bool],
) -> int:
    """Run suspects alone until none is left or the worker stops; return how many ran.

    Args:
        worker: the worker's id, routing keys, lease (s) and the job types it serves (none: any).
        held: the worker's jobs without a stored outcome (empty: it holds none).
        changed: set whenever a job of ``held`` got its outcome or had it stored.
        hold: starts a delivery as the fetch loop does.
        fetch: the fetch loop, whose ``phase`` tells a stop whether it may cancel it.
    """
    worker_id, routing_keys, lease_s, names = worker
    extra = {"component": "worker", "worker_id": worker_id}
    logger.info("running suspects alone (jobs recovered from a lost worker)", extra=extra)
    ran = 0
    while not stopping():
        while held:
            changed.clear()
            await changed.wait()
            if stopping():
                return ran
        fetch.phase = "call"
        delivery = await broker.dequeue_alone(routing_keys, lease_s, worker_id, names)
        fetch.phase = "idle"
        if delivery is None:
            break
        logger.info("job %s runs alone (delivery %d)", delivery.id, delivery.token, extra=extra)
        ran += 1
        hold([delivery])
    logger.info("ran %d suspects alone; fetching again", ran, extra=extra)
    return ran
