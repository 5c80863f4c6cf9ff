"""``Deadlines``: job timeouts for one worker, with one timer for all its long jobs.

A timer per job (``asyncio.timeout``, ``wait_for`` or one ``call_at`` handle) costs an
object, a heap push and a cancel on every job, and most jobs finish long before their
timeout (300 s by default). Here a job whose timeout is over ``EXACT_UNDER_S`` only
records its deadline in a dict; one sweep per ``SWEEP_S`` while jobs run cancels those
past it, so such a job is stopped at most ``SWEEP_S`` late. Shorter timeouts, where a
second would matter, get a timer of their own and are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

#: Timeouts of at least this many seconds share the sweep (at most ``SWEEP_S`` late).
EXACT_UNDER_S = 10.0
#: How often the sweep runs while long jobs run.
SWEEP_S = 1.0


class JobCancelled(Exception):
    """Raised by ``Deadlines.run`` when ``Deadlines.cancel`` stopped the coroutine (the job
    was cancelled while running)."""


class Deadlines:
    """Runs coroutines under a timeout, raising ``TimeoutError`` when it passes.

    Args:
        exact_under_s: timeouts shorter than this get a timer of their own.
        sweep_s: the sweep's period (how late a longer timeout may be enforced).
    """

    def __init__(self, exact_under_s: float = EXACT_UNDER_S, sweep_s: float = SWEEP_S) -> None:
        self._exact_under_s = exact_under_s
        self._sweep_s = sweep_s
        self._running: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._cancelled: set[asyncio.Task[Any]] = set()
        self._timed: set[asyncio.Task[Any]] = set()  # running under a timer of their own
        self._sweep: asyncio.TimerHandle | None = None

    async def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
        """Await ``coro`` in the current task; cancel it and raise ``TimeoutError`` once
        ``timeout_s`` has passed."""
        me = asyncio.current_task()
        assert me is not None
        loop = asyncio.get_running_loop()
        if timeout_s < self._exact_under_s:
            handle = loop.call_at(loop.time() + timeout_s, self._expire, me)
            self._timed.add(me)
        else:
            self._running[me] = loop.time() + timeout_s
            if self._sweep is None:
                self._sweep = loop.call_at(loop.time() + self._sweep_s, self._sweep_now, loop)
        try:
            return await coro
        except asyncio.CancelledError:
            ours = self._ours(me, timeout_s)
            if ours is not None:
                raise ours from None
            raise
        finally:
            if self._expired and me in self._expired:  # the handler swallowed our cancel:
                self._expired.discard(me)  # take it back, so that it cannot hit the next job
                me.uncancel()
            if self._cancelled and me in self._cancelled:
                self._cancelled.discard(me)
                me.uncancel()
            if timeout_s < self._exact_under_s:
                handle.cancel()
                self._timed.discard(me)
            else:
                del self._running[me]

    def _ours(self, me: asyncio.Task[Any], timeout_s: float) -> Exception | None:
        """What a cancel of ``me`` means when it was ours alone (not also a shutdown): its
        deadline passed (``TimeoutError``) or its job was cancelled (``JobCancelled``)."""
        if me in self._expired:
            self._expired.discard(me)
            if me.uncancel() == 0:
                return TimeoutError(f"timed out after {timeout_s:g} s")
        if me in self._cancelled:
            self._cancelled.discard(me)
            if me.uncancel() == 0:
                return JobCancelled("cancelled while running")
        return None

    def cancel(self, task: asyncio.Task[Any]) -> bool:
        """Stop the coroutine ``task`` awaits in ``run``: ``run`` raises ``JobCancelled``.
        False when ``task`` is not running one."""
        if task not in self._running and task not in self._timed:
            return False
        self._cancelled.add(task)
        task.cancel()
        return True

    def _expire(self, task: asyncio.Task[Any]) -> None:
        self._expired.add(task)
        task.cancel()

    def _sweep_now(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = None
        now = loop.time()
        for task, deadline in list(self._running.items()):
            if deadline <= now and task not in self._expired:
                self._expire(task)
        if self._running:
            self._sweep = loop.call_at(now + self._sweep_s, self._sweep_now, loop)
