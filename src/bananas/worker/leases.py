"""The lease keeper: renews running jobs' leases from its own thread and connection.

A handler that blocks the worker's event loop cannot stall it, so a slow but alive
worker never loses its jobs to another one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

from bananas.brokers.base import Broker, Lease, LeaseState
from bananas.errors import BananasError

logger = logging.getLogger(__name__)


class LeaseKeeper(threading.Thread):
    """Every ``lease_s / 3`` renew the leases ``snapshot()`` returns.

    Args:
        make_broker: builds this thread's own broker connection.
        snapshot: returns the leases currently held (called from this thread).
        on_state: told about ``lost`` leases and ``cancel`` requests.
        lease_s: lease length.
    """

    def __init__(
        self,
        make_broker: Callable[[], Broker],
        snapshot: Callable[[], Sequence[Lease]],
        on_state: Callable[[Lease, LeaseState], None],
        lease_s: float,
    ) -> None:
        super().__init__(name="bananas-leases", daemon=True)
        self._make_broker = make_broker
        self._snapshot = snapshot
        self._on_state = on_state
        self.lease_s = lease_s
        self._stop_event = threading.Event()
        self.renewals = 0

    def stop(self) -> None:
        """Stop renewing (call after the last outcome was stored)."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=self.lease_s)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        broker = self._make_broker()
        interval = self.lease_s / 3
        try:
            while not self._stop_event.wait(interval):
                leases = list(self._snapshot())
                if not leases:
                    continue
                try:
                    states = await broker.renew(leases, self.lease_s)
                except BananasError as exc:
                    logger.warning("lease renewal failed: %s", exc, extra={"component": "worker"})
                    continue
                self.renewals += 1
                for lease, state in zip(leases, states, strict=True):
                    if state != "ok":
                        self._on_state(lease, state)
        finally:
            await broker.close()
