"""``wait_until``: wait for a condition that no event announces, with a clear failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from bananas.errors import WaitTimeout

T = TypeVar("T")

#: The first pause between two checks; it doubles up to ``MAX_PAUSE_S``.
FIRST_PAUSE_S = 0.002
#: The longest pause between two checks.
MAX_PAUSE_S = 0.05


class Deadline:
    """The pauses between two checks of a condition: ``FIRST_PAUSE_S`` doubling up to
    ``max_pause_s``, never past ``timeout`` seconds from now."""

    def __init__(self, timeout: float, max_pause_s: float = MAX_PAUSE_S) -> None:
        self._at = time.monotonic() + timeout
        self._pause = FIRST_PAUSE_S
        self._max_pause_s = max_pause_s

    def next_pause(self) -> float | None:
        """The next pause, or None once the timeout has passed."""
        left = self._at - time.monotonic()
        if left <= 0:
            return None
        pause = min(self._pause, left)
        self._pause = min(self._pause * 2, self._max_pause_s)
        return pause


def wait_until(check: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """Call ``check`` until it returns something truthy, and return that.

    For conditions that no event announces: another process's state, a file, a log
    line. To wait for a queue to drain use ``join``; for one job, ``client.wait``.

    Args:
        check: called from this thread; must be quick.
        timeout: seconds before giving up.
        what: what is awaited, for the error message ("the worker to start").

    Raises:
        WaitTimeout: ``check`` never returned a truthy value within ``timeout``.
    """
    deadline = Deadline(timeout)
    while not (value := check()):
        if (pause := deadline.next_pause()) is None:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)
    return value


async def wait_until_async(check: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """``wait_until`` for asyncio code: the event loop runs between two checks.

    Raises:
        WaitTimeout: ``check`` never returned a truthy value within ``timeout``.
    """
    deadline = Deadline(timeout)
    while not (value := check()):
        if (pause := deadline.next_pause()) is None:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(pause)
    return value
