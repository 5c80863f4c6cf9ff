"""A pool of daemon threads for sync handlers.

Daemon threads, unlike ``ThreadPoolExecutor``'s, never keep the process alive at exit,
so a handler stuck past its timeout cannot stop a worker from shutting down; and the
pool grows by one thread for each abandoned call so its capacity stays the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class DaemonPool:
    """Runs callables on daemon threads, resolving asyncio futures on ``loop``."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop, name: str = "bananas-sync") -> None:
        self._size = size
        self._loop = loop
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._started = 0

    def submit(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """Schedule ``fn(**kwargs)``; the future resolves on the loop's thread."""
        if not self._threads:
            for _ in range(self._size):
                self._spawn()
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put((fn, kwargs, future, contextvars.copy_context()))
        return future

    def abandon(self) -> None:
        """A call was given up on (timeout); add a thread so capacity stays the same."""
        if self._threads:
            self._spawn()

    def shutdown(self) -> None:
        """Ask idle threads to exit; busy ones finish their call and exit (never joined)."""
        for _ in self._threads:
            self._queue.put(_STOP)
        self._threads.clear()

    def _spawn(self) -> None:
        self._started += 1
        thread = threading.Thread(target=self._work, name=f"{self._name}-{self._started}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, kwargs, future, ctx = item
            try:
                result = ctx.run(fn, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                self._resolve(future, None, exc)
            else:
                self._resolve(future, result, None)

    def _resolve(self, future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        def settle() -> None:
            if future.done():  # timed out or cancelled meanwhile: the late result is discarded
                return
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)

        with contextlib.suppress(RuntimeError):  # loop closed: the worker has exited
            self._loop.call_soon_threadsafe(settle)
