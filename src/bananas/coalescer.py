"""Merge the submits that many coroutines make at once into one broker call.

``AsyncClient.submit`` awaited by 100 coroutines would otherwise cost 100 round trips.
Submits made in the same event-loop iteration go out together as one ``enqueue``
(one script call per routing key); each caller still gets its own id, and every
caller of a batch that fails gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bananas.brokers.base import Broker
from bananas.job import Job


class SubmitCoalescer:
    """Batches ``enqueue`` calls per event-loop iteration.

    Args:
        broker: where the batches go.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._pending: list[tuple[Job, bytes]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def enqueue(self, item: tuple[Job, bytes]) -> None:
        """Queue one encoded job for the next batch and wait until the batch is stored.

        Raises:
            BrokerUnavailable, BrokerError: the batch could not be stored.
        """
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(item)
        # A future per caller: a caller that is cancelled cancels only its own wait,
        # never the batch the others wait for.
        mine: asyncio.Future[None] = loop.create_future()
        self._waiters.append(mine)
        await mine

    def _flush(self) -> None:
        batch, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        task = asyncio.ensure_future(self._send(batch, waiters))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: Sequence[tuple[Job, bytes]], waiters: list[asyncio.Future[None]]) -> None:
        try:
            await self._broker.enqueue(batch)
        except BaseException as exc:  # handed to every waiter of the batch
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
