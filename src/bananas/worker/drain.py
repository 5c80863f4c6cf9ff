"""The end of a graceful stop: let running jobs finish within the grace period, then give
every job without an outcome back to its queue at once (uncharged)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from bananas.brokers.base import Broker, Lease, Offer
from bananas.errors import BananasError
from bananas.worker.acker import Acker
from bananas.worker.held import Held

logger = logging.getLogger(__name__)


async def finish_running(running: Mapping[asyncio.Task[None], Held], all_idle: asyncio.Event, grace_s: float) -> None:
    """Wait up to ``grace_s`` for the slots in ``running`` to finish their jobs (``all_idle``
    is set when none runs); then cancel them and wait until they have returned."""
    if not running:
        return
    logger.info("waiting up to %.1f s for %d running jobs", grace_s, len(running))
    all_idle.clear()
    try:
        await asyncio.wait_for(all_idle.wait(), grace_s)
    except TimeoutError:
        for slot in list(running):
            slot.cancel()  # the slot returns without an outcome; the lease is given back after
        while running:
            all_idle.clear()
            await all_idle.wait()


async def give_back_unfinished(broker: Broker, acker: Acker, held: dict[str, Held], flush_s: float) -> None:
    """Store the outcomes handed to ``acker`` (at most ``flush_s``) and requeue the other
    ``held`` jobs, dropping them from ``held``."""
    finished = acker.pending_ids
    unfinished = [h.lease for h in held.values() if h.lease.id not in finished]
    await acker.flush(flush_s)
    if not unfinished:
        return
    try:
        given_back = await broker.requeue(unfinished)
        logger.info("gave %d unfinished jobs back to their queues", given_back)
    except BananasError as exc:
        logger.warning("could not requeue %d jobs (their leases will expire): %s", len(unfinished), exc)
    for lease in unfinished:
        held.pop(lease.id, None)


async def give_back_handed(broker: Broker, routing_keys: Sequence[str], offer: Offer) -> None:
    """Withdraw a stopping worker's offer as soon as it stops fetching, and give back at
    once what submit handed to it meanwhile (not after the grace period)."""
    try:
        handed = await broker.withdraw(routing_keys, offer)
        if handed:
            await broker.requeue([Lease(d.id, d.routing_key, d.token) for d in handed])
    except BananasError as exc:
        logger.warning("could not withdraw this worker's offer (handed jobs wait for their leases): %s", exc)
