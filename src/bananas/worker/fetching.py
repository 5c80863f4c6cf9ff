"""``FetchTask``: the worker's fetch loop as a task that a stop interrupts without losing
what a broker call in flight returns."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, Literal

from bananas.brokers.base import Broker

#: What the fetch loop awaits: nothing of the broker's, a dequeue, or ``wait_for_work``.
Phase = Literal["idle", "call", "block"]


class FetchTask:
    """The running fetch loop and what it awaits (the loop sets ``phase``)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.phase: Phase = "idle"
        self._waker: asyncio.Task[None] | None = None

    def start(self, loop: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``loop`` as the fetch task."""
        self.phase = "idle"
        self.task = asyncio.create_task(loop)
        return self.task

    def interrupt(self, broker: Broker, worker_id: str, routing_keys: Sequence[str], hands_off: bool) -> None:
        """Make a stopping worker's loop return soon (it checks the stop flag).

        Cancelling a broker call in flight could lose what it returns (jobs leased or
        handed to this worker), so only a loop that awaits nothing of the broker's is
        cancelled; a dequeue is let return (its jobs run or are given back), and a wait
        that may receive a handed job (``hands_off``) is woken by the broker instead.
        """
        task = self.task
        if task is None or task.done():
            return
        if self.phase == "idle" or (self.phase == "block" and not hands_off):
            task.cancel()
        elif self.phase == "block":
            self._waker = asyncio.create_task(self._wake(task, broker, worker_id, routing_keys))

    async def _wake(self, task: asyncio.Task[None], broker: Broker, worker_id: str, keys: Sequence[str]) -> None:
        try:
            woken = bool(await broker.wake(worker_id, keys))
        except Exception:  # noqa: BLE001 - any failure: cancelling the wait is the fallback
            woken = False
        if not woken and not task.done():
            task.cancel()

    def close(self) -> None:
        """Cancel a wake-up still in flight (the worker is done)."""
        if self._waker is not None:
            self._waker.cancel()
