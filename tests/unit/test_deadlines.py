"""Job timeouts: exact timers for short ones, one shared sweep for long ones."""

from __future__ import annotations

import asyncio
import time

import pytest

from bananas.worker.deadlines import Deadlines


async def _forever() -> None:
    await asyncio.Event().wait()


async def _value() -> str:
    await asyncio.sleep(0)
    return "done"


@pytest.mark.parametrize("exact_under_s", [10.0, 0.0], ids=["own timer", "shared sweep"])
async def test_a_job_past_its_timeout_raises_timeout_error(exact_under_s: float) -> None:
    deadlines = Deadlines(exact_under_s=exact_under_s, sweep_s=0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timed out after 0\.1 s"):
        await deadlines.run(_forever(), 0.1)
    took = time.monotonic() - started
    assert 0.1 <= took < 0.1 + 0.05 + 0.5  # at most one sweep late (plus a loaded machine's slack)


@pytest.mark.parametrize("exact_under_s", [10.0, 0.0], ids=["own timer", "shared sweep"])
async def test_a_job_within_its_timeout_returns_and_leaves_nothing_behind(exact_under_s: float) -> None:
    deadlines = Deadlines(exact_under_s=exact_under_s, sweep_s=0.05)
    assert await deadlines.run(_value(), 0.1) == "done"
    await asyncio.sleep(0.2)  # past the timeout: time itself is what is under test
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0  # nothing cancelled this task later
    assert await deadlines.run(_value(), 5) == "done"


async def test_a_shutdown_cancel_is_not_reported_as_a_timeout() -> None:
    deadlines = Deadlines(exact_under_s=0.0, sweep_s=0.05)
    task = asyncio.create_task(deadlines.run(_forever(), 60))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_handler_that_swallows_its_cancellation_does_not_poison_the_next_job() -> None:
    deadlines = Deadlines(exact_under_s=0.0, sweep_s=0.02)

    async def stubborn() -> str:
        try:
            await _forever()
        except asyncio.CancelledError:
            return "swallowed"
        return "unreachable"

    async def slot() -> list[str]:
        me = asyncio.current_task()
        assert me is not None
        first = await deadlines.run(stubborn(), 0.05)
        assert me.cancelling() == 0  # the deadline's cancel was taken back
        second = await deadlines.run(_value(), 60)
        return [first, second]

    assert await slot() == ["swallowed", "done"]


async def test_many_long_jobs_share_one_sweep_timer() -> None:
    deadlines = Deadlines(exact_under_s=0.0, sweep_s=0.05)
    loop = asyncio.get_running_loop()
    before = len(loop._scheduled)  # type: ignore[attr-defined]  # the loop's timer heap
    jobs = [asyncio.create_task(deadlines.run(_forever(), 60)) for _ in range(100)]
    await asyncio.sleep(0)
    assert len(loop._scheduled) - before == 1  # type: ignore[attr-defined]
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
