"""``Acker``: stores outcomes (and progress) in batches, one broker call per batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bananas.brokers.base import Broker, Outcome
from bananas.errors import BananasError
from bananas.worker.held import Backoff

logger = logging.getLogger(__name__)

#: Called on the event loop with each stored batch and, per outcome, whether it was accepted.
OnStored = Callable[[Sequence[Outcome], Sequence[bool]], None]


class Acker:
    """Outcomes handed to ``add`` go to the broker in batches: whatever accumulated while
    the last batch was in flight goes in the next. A batch the broker refuses is retried
    (the leases keep being renewed meanwhile), so an outcome is never dropped.

    Args:
        broker: where outcomes go.
        ttl: retention of (completed, failed) jobs, seconds.
        on_stored: told of each stored batch.
    """

    def __init__(self, broker: Broker, ttl: tuple[float, float], on_stored: OnStored) -> None:
        self._broker = broker
        self._ttl = ttl
        self._on_stored = on_stored
        self._pending: list[Outcome] = []
        self._progress: dict[str, tuple[str, str, float]] = {}
        self._wanted = asyncio.Event()
        self._stored = asyncio.Event()
        self._sending = False
        self._inflight: list[Outcome] = []

    @property
    def pending_ids(self) -> set[str]:
        """Jobs whose outcome is waiting for the next batch."""
        return {o.id for o in self._pending}

    def unstored(self) -> list[Outcome]:
        """Outcomes handed over and not known to be stored: pending, and the batch in
        flight (storing one twice is harmless: the broker refuses the second)."""
        return [*self._inflight, *self._pending]

    def add(self, outcome: Outcome) -> None:
        """Queue an outcome for the next batch (event-loop thread)."""
        self._pending.append(outcome)
        self._wanted.set()

    def progress(self, job_id: str, routing_key: str, value: float) -> None:
        """Queue a progress update; only the latest per job is sent (event-loop thread)."""
        self._progress[job_id] = (job_id, routing_key, value)
        self._wanted.set()

    async def run(self) -> None:
        """Send batches until cancelled."""
        backoff = Backoff()
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            if self._progress:
                items, self._progress = list(self._progress.values()), {}
                try:
                    await self._broker.set_progress(items)
                except BananasError as exc:
                    logger.debug("progress update lost: %s", exc)
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            self._sending, self._inflight = True, batch
            while True:
                try:
                    accepted = await self._broker.ack(batch, self._ttl)
                    break
                except BananasError as exc:  # keep the outcomes; the leases keep being renewed
                    delay = backoff.next()
                    logger.warning("could not store %d outcomes, retrying in %.2f s: %s", len(batch), delay, exc)
                    await asyncio.sleep(delay)
            backoff.reset()
            self._sending, self._inflight = False, []
            self._on_stored(batch, accepted)
            self._stored.set()

    async def flush(self, timeout_s: float) -> None:
        """Wait until every outcome handed over is stored, at most ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._pending or self._sending:
                    self._stored.clear()
                    self._wanted.set()
                    await self._stored.wait()
        except TimeoutError:
            logger.warning("%d outcomes not stored at exit; their jobs will run again", len(self._pending))
