"""Workers for tests: ``running_worker`` on the test's event loop, ``WorkerThread`` beside
a synchronous test."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import Any

from bananas.errors import WaitTimeout
from bananas.registry import HasRegistry
from bananas.settings import Settings
from bananas.testing.join import join_blocking
from bananas.worker import Worker


def worker_settings(app: HasRegistry, settings: Settings | None, overrides: dict[str, Any]) -> Settings:
    """The settings (default: the app's) with ``overrides`` of the worker section
    (``concurrency=4``, ``routing_keys=("email",)``, ``lease_s=2.0``, ...)."""
    base = settings or app.registry.settings
    return dataclasses.replace(base, worker=dataclasses.replace(base.worker, **overrides)) if overrides else base


@contextlib.asynccontextmanager
async def running_worker(
    app: HasRegistry, settings: Settings | None = None, *, stop_timeout_s: float = 30.0, **worker: Any
) -> AsyncIterator[Worker]:
    """Run an in-process ``Worker`` on the running event loop for the block, then stop it
    gracefully (running jobs finish within the grace period).

    Args:
        app: the application whose tasks it runs.
        settings: default the app's.
        stop_timeout_s: how long the stop may take.
        worker: fields of ``WorkerSettings`` to override (``concurrency=4``).

    Yields:
        the running worker (``join(worker)`` waits for its queues to drain).
    """
    w = Worker(app, worker_settings(app, settings, worker))
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        w.stop()
        await asyncio.wait_for(task, stop_timeout_s)


class WorkerThread:
    """A ``Worker`` on its own event loop in a background thread, for synchronous tests.

    ``with WorkerThread(app) as worker:`` starts it and stops it gracefully at the end;
    ``worker.join()`` waits for its queues to drain.

    Args:
        app: the application whose tasks it runs.
        settings: default the app's.
        worker: fields of ``WorkerSettings`` to override (``concurrency=4``).
    """

    def __init__(self, app: HasRegistry, settings: Settings | None = None, **worker: Any) -> None:
        #: the worker (its ``id``, ``processed``, ``settings``, ...).
        self.worker = Worker(app, worker_settings(app, settings, worker))
        self._thread = threading.Thread(target=self._main, name="bananas-worker-thread", daemon=True)
        self._failure: BaseException | None = None

    def _main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
                runner.run(self.worker.run())
        except BaseException as exc:  # noqa: BLE001 - raised again by stop()
            self._failure = exc

    def start(self) -> WorkerThread:
        """Start the worker's thread."""
        self._thread.start()
        return self

    def join(self, timeout: float = 10.0) -> None:
        """Return once the worker's routing keys are drained (``bananas.testing.join``).

        Raises:
            JoinTimeout: still pending after ``timeout``.
        """
        join_blocking(self.worker, timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully and wait for the thread to end.

        Raises:
            WaitTimeout: the worker did not stop within ``timeout``.
            BaseException: what the worker's ``run`` raised, if it crashed.
        """
        self.worker.stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise WaitTimeout(f"worker {self.worker.id} did not stop within {timeout:g} s")
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> WorkerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
