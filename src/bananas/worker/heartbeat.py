"""``Heartbeat``: a worker publishes the tasks it serves to the broker's task catalogue
at start and every ``HEARTBEAT_S``, and withdraws itself when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from bananas import catalogue
from bananas.brokers.base import Broker
from bananas.errors import BananasError
from bananas.registry import TaskDefinition

logger = logging.getLogger(__name__)


class Heartbeat:
    """Publishes ``tasks`` as served by ``worker_id``.

    Args:
        broker: where the catalogue lives.
        worker_id: this worker.
        tasks: the tasks it runs (all its app's, or those of its job types).
        every_s: seconds between publishes.
    """

    def __init__(
        self,
        broker: Broker,
        worker_id: str,
        tasks: Mapping[str, TaskDefinition],
        every_s: float = catalogue.HEARTBEAT_S,
    ) -> None:
        self._broker = broker
        self._worker_id = worker_id
        self._every_s = every_s
        # Definitions do not change while a worker runs: encode them once.
        self.definitions = {name: catalogue.encode(catalogue.describe(task)) for name, task in tasks.items()}
        #: publishes that reached the broker.
        self.beats = 0
        #: set once the first publish reached the broker.
        self.published = asyncio.Event()

    async def run(self) -> None:
        """Publish now and then every ``every_s`` until cancelled; broker trouble is
        logged and the next beat tries again."""
        if not self.definitions:
            return
        while True:
            try:
                await self._broker.publish_tasks(self._worker_id, self.definitions, catalogue.WORKER_TTL_S)
                self.beats += 1
                self.published.set()
            except BananasError as exc:
                logger.warning("could not publish the task catalogue: %s", exc, extra={"component": "worker"})
            await asyncio.sleep(self._every_s)

    async def withdraw(self) -> None:
        """This worker no longer serves its tasks (their definitions stay)."""
        if self.definitions:
            with contextlib.suppress(BananasError):
                await self._broker.unpublish_tasks(self._worker_id, list(self.definitions))
