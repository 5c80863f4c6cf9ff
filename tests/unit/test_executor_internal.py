"""An attempt that fails inside Bananas (not in the handler) is retried up to the
worker's MAX_RETRIES and then dead-lettered: never retried forever."""

from __future__ import annotations

import asyncio

from bananas.brokers.base import Delivery
from bananas.settings import JobDefaults
from bananas.worker.executor import Executor
from bananas.worker.threads import DaemonPool


def _executor(max_retries: int) -> Executor:
    loop = asyncio.new_event_loop()
    loop.close()  # the pool only keeps it: internal_error runs no handler
    pool = DaemonPool(1, loop)
    return Executor({}, pool, "w1", lambda *_: None, defaults=JobDefaults(max_retries=max_retries))


def test_an_internal_error_is_retried_within_max_retries() -> None:
    outcome = _executor(2).internal_error(Delivery("j1", "default", b"{}", 1, 2), RuntimeError("boom"))
    assert outcome.kind == "retry" and outcome.attempts == 2
    assert outcome.error == "internal error: RuntimeError: boom" and outcome.retry_at > 0


def test_an_internal_error_past_max_retries_is_dead_lettered() -> None:
    outcome = _executor(2).internal_error(Delivery("j1", "default", b"{}", 2, 3), RuntimeError("boom"))
    assert outcome.kind == "failed" and outcome.reason == "max_retries" and outcome.attempts == 3
    assert "gave up after 3 attempts" in outcome.error
