"""Running a coroutine to completion from synchronous code, wherever that code is."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` on a new event loop and return its result: on this thread when it
    runs no event loop, else on a helper thread, so that the loop this call blocks is
    never one the coroutine needs. The coroutine's exception is raised here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            return runner.run(make())
    results: list[T] = []
    failure: list[BaseException] = []
    context = contextvars.copy_context()  # the caller's trace context and the like

    def main() -> None:
        try:
            with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
                results.append(runner.run(make(), context=context))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=main, name="bananas-testing", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return results[0]
