"""Cron schedules on every broker: the state store, fencing, de-duplication, the runner."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bananas import Bananas, Schedule, wire
from bananas.brokers import Broker, from_url
from bananas.brokers.base import Fire
from bananas.job import Job, new_id
from bananas.scheduler.periodic import CronRunner
from bananas.settings import SchedulerSettings, Settings
from bananas.submission import JobBuilder


@pytest.fixture
async def broker(broker_url: str) -> AsyncIterator[Broker]:
    b = from_url(broker_url)
    yield b
    await b.close()


def fire(sid: str, tick: float, next_run: float | None = None) -> Fire:
    job = Job(id=new_id(), name="t", payload={}, created_at=time.time())
    return Fire(sid, tick, job, wire.encode_job(job), next_run)


async def test_fire_once_per_tick_and_state(broker: Broker) -> None:
    token = (await broker.acquire_leader("a", 10)).token
    assert token is not None
    first = fire("s", 100.0, 160.0)
    assert await broker.fire_schedule([first, fire("s", 100.0), fire("s", 160.0, 220.0)], token) == [True, False, True]
    assert await broker.fire_schedule([fire("s", 100.0)], token) == [False]
    [st] = await broker.schedule_states()
    assert (st.id, st.last_run, st.next_run, st.run_count) == ("s", 160.0, 220.0, 2)
    got = await broker.dequeue(["default"], 10, 30, "w")
    assert len(got) == 2 and got[0].id == first.job.id


async def test_fire_is_fenced_by_newer_leader(broker: Broker) -> None:
    old = (await broker.acquire_leader("a", 0.5)).token
    assert old is not None
    await broker.release_leader("a")
    new = (await broker.acquire_leader("b", 10)).token
    assert new is not None and new > old
    assert await broker.fire_schedule([fire("s", 1.0)], old) == [False]
    assert await broker.dequeue(["default"], 10, 30, "w") == []
    assert await broker.fire_schedule([fire("s", 1.0)], new) == [True]
    assert await broker.fire_schedule([fire("s", 2.0)], None) == [True]  # manual run: no fence


async def test_update_and_delete_schedule_state(broker: Broker) -> None:
    await broker.update_schedule("s", {"enabled": False, "next_run": 50.0, "definition": b'{"x":1}'})
    [st] = await broker.schedule_states()
    assert st.enabled is False and st.next_run == 50.0 and st.definition == b'{"x":1}' and st.run_count == 0
    await broker.update_schedule("s", {"enabled": True, "last_error": "boom", "last_success": 12.5})
    [st] = await broker.schedule_states()
    assert st.enabled is True and st.last_error == "boom" and st.last_success == 12.5
    await broker.update_schedule("s", {"enabled": None})
    [st] = await broker.schedule_states()
    assert st.enabled is None
    await broker.delete_schedule("s")
    assert await broker.schedule_states() == []


async def test_runner_fires_due_ticks_once_across_two_runners(broker_url: str) -> None:
    clock = [1_700_000_000.0]
    settings = Settings(url=broker_url, scheduler=SchedulerSettings(leader_ttl_s=3.0, cron_interval_s=1.0))
    app = Bananas(settings=settings)

    @app.cron("*/10 * * * * *", id="ten")
    @app.task
    def beat() -> None:
        return None

    brokers = [from_url(broker_url), from_url(broker_url)]
    runners = [CronRunner(b, app.schedules, settings, JobBuilder(settings, app.registry.tasks),
                          clock=lambda: clock[0]) for b in brokers]  # fmt: skip
    try:
        token = (await brokers[0].acquire_leader("a", 30)).token
        first = await runners[0].run_due(token)  # registers: next_run = next tick, nothing fired
        assert first == 1_700_000_010.0
        clock[0] = 1_700_000_031.0  # 10 and 20 are older than the late window (6 s): missed, skipped
        await runners[0].run_due(token)
        await runners[1].run_due(token)  # a second (stale) runner with the same token fires nothing new
        [st] = await brokers[0].schedule_states()
        assert st.run_count == 1 and st.last_run == 1_700_000_030.0 and st.next_run == 1_700_000_040.0
        clock[0] = 1_700_000_052.0  # 50 is 2 s late (fires); 40 is 12 s late (missed)
        await runners[1].run_due(token)
        [st] = await brokers[0].schedule_states()
        assert st.run_count == 2 and st.last_run == 1_700_000_050.0
        jobs = await brokers[0].dequeue(["default"], 10, 30, "w")
        assert len(jobs) == 2
        assert {wire.decode_job(d.body).headers["bananas-schedule"] for d in jobs} == {"ten"}
    finally:
        for b in brokers:
            await b.close()


async def test_runner_respects_disabled_state_and_records_outcomes(broker_url: str) -> None:
    clock = [1_700_000_000.0]
    settings = Settings(url=broker_url, scheduler=SchedulerSettings(leader_ttl_s=3.0, cron_interval_s=1.0))
    app = Bananas(settings=settings)
    app.schedules.register(Schedule(id="s", task="t", cron="*/1 * * * * *"))
    b = from_url(broker_url)
    runner = CronRunner(b, app.schedules, settings, JobBuilder(settings), clock=lambda: clock[0])
    try:
        await runner.run_due(None)
        await b.update_schedule("s", {"enabled": False})
        clock[0] += 2
        assert await runner.run_due(None) is None
        assert (await b.schedule_states())[0].run_count == 0
        await b.update_schedule("s", {"enabled": True})
        clock[0] += 1
        await runner.run_due(None)
        [st] = await b.schedule_states()
        assert st.run_count == 1 and st.last_job_id is not None
        [d] = await b.dequeue(["default"], 10, 30, "w")
        from bananas.brokers import Outcome

        await b.ack([Outcome(d.id, d.routing_key, d.token, "completed", 1)], (60, 60))
        await runner.run_due(None)
        [st] = await b.schedule_states()
        assert st.last_success is not None and st.last_error is None
    finally:
        await b.close()
