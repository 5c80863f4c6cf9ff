"""Cron math: fields, aliases, seconds, and the DST rules, against a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

import pytest

from bananas import Bananas, Schedule
from bananas.brokers import Broker
from bananas.cron import CronExpr
from bananas.errors import ConfigurationError
from bananas.schedule import ScheduleRegistry
from bananas.scheduler.periodic import CronRunner
from bananas.settings import SchedulerSettings, Settings
from bananas.submission import JobBuilder

NY = ZoneInfo("America/New_York")


def at(*args: int, tz: ZoneInfo | None = None) -> float:
    return datetime(*args, tzinfo=tz or UTC).timestamp()  # type: ignore[misc,arg-type]


def walk(expr: CronExpr, start: float, n: int, tz: ZoneInfo = NY) -> list[str]:
    out, t = [], start
    for _ in range(n):
        t = expr.next_after(t)
        out.append(datetime.fromtimestamp(t, tz).isoformat())
    return out


@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("*/15 * * * *", at(2024, 1, 1, 10, 7), at(2024, 1, 1, 10, 15)),
        ("0 9 * * MON", at(2024, 1, 3), at(2024, 1, 8, 9)),  # names
        ("0 0 1 JAN *", at(2024, 6, 1), at(2025, 1, 1)),
        ("0 8-10/2 * * 1-5", at(2024, 1, 6), at(2024, 1, 8, 8)),  # ranges with steps, weekdays
        ("5,35 * * * *", at(2024, 1, 1, 0, 6), at(2024, 1, 1, 0, 35)),  # lists
        ("@hourly", at(2024, 1, 1, 0, 0, 1), at(2024, 1, 1, 1)),
        ("@daily", at(2024, 1, 1, 0, 0, 1), at(2024, 1, 2)),
        ("*/10 * * * * *", at(2024, 1, 1, 0, 0, 1), at(2024, 1, 1, 0, 0, 10)),  # seconds first
        ("*/1 * * * * *", at(2024, 1, 1, 0, 0, 1), at(2024, 1, 1, 0, 0, 2)),
    ],
)
def test_next_after_utc(expr: str, start: float, expected: float) -> None:
    assert CronExpr(expr).next_after(start) == expected


def test_next_after_is_strictly_later() -> None:
    c = CronExpr("0 * * * *")
    assert c.next_after(at(2024, 1, 1, 5)) == at(2024, 1, 1, 6)


@pytest.mark.parametrize("bad", ["", "* * *", "61 * * * *", "* * * * * * * *", "0 9 * * FUNDAY", "@sometimes"])
def test_bad_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        CronExpr(bad)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="time zone"):
        CronExpr("* * * * *", "Mars/Olympus")


def test_time_zone_wall_clock() -> None:
    c = CronExpr("0 9 * * *", "America/New_York")
    assert c.next_after(at(2024, 1, 1)) == at(2024, 1, 1, 14)  # 09:00 EST = 14:00 UTC
    assert c.next_after(at(2024, 7, 1)) == at(2024, 7, 1, 13)  # 09:00 EDT = 13:00 UTC


def test_spring_forward_skipped_time_fires_once_at_next_valid_instant() -> None:
    # 2024-03-10: 02:00 EST -> 03:00 EDT; 02:30 does not exist that day.
    c = CronExpr("30 2 * * *", "America/New_York")
    assert walk(c, at(2024, 3, 9, 12, tz=NY), 3) == [
        "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00", "2024-03-12T02:30:00-04:00",
    ]  # fmt: skip


def test_spring_forward_several_skipped_times_fire_once() -> None:
    c = CronExpr("*/20 * * * *", "America/New_York")
    assert walk(c, at(2024, 3, 10, 1, 30, tz=NY), 3) == [
        "2024-03-10T01:40:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:20:00-04:00",
    ]  # fmt: skip


def test_fall_back_repeated_time_fires_once() -> None:
    # 2024-11-03: 02:00 EDT -> 01:00 EST; 01:30 happens twice and fires at the first.
    c = CronExpr("30 1 * * *", "America/New_York")
    assert walk(c, at(2024, 11, 2, 12, tz=NY), 3) == [
        "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00", "2024-11-05T01:30:00-05:00",
    ]  # fmt: skip
    # Asked from inside the second pass of the repeated hour: the next day.
    second_pass = datetime(2024, 11, 3, 1, 10, tzinfo=NY, fold=1).timestamp()
    assert walk(c, second_pass, 1) == ["2024-11-04T01:30:00-05:00"]


def test_fall_back_interval_schedule_does_not_repeat_wall_times() -> None:
    c = CronExpr("0 * * * *", "America/New_York")
    assert walk(c, at(2024, 11, 3, 0, 30, tz=NY), 3) == [
        "2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00", "2024-11-03T03:00:00-05:00",
    ]  # fmt: skip


def test_between_and_prev_before() -> None:
    c = CronExpr("0 * * * *")
    assert c.between(at(2024, 1, 1, 1), at(2024, 1, 1, 4), 10) == [at(2024, 1, 1, h) for h in (1, 2, 3, 4)]
    assert c.between(at(2024, 1, 1, 1), at(2024, 1, 1, 4), 2) == [at(2024, 1, 1, 1), at(2024, 1, 1, 2)]
    assert c.prev_before(at(2024, 1, 1, 4)) == at(2024, 1, 1, 3)
    assert c.prev_before(at(2024, 1, 1, 4, 0, 1)) == at(2024, 1, 1, 4)


# --- which ticks are due (missed-tick policies), with a fixed clock ------------------


def runner(clock: float) -> CronRunner:
    """A runner for ``due_ticks`` only: no broker or client is touched."""
    settings = Settings(url="memory://", scheduler=SchedulerSettings(leader_ttl_s=10.0, cron_interval_s=1.0))
    return CronRunner(cast(Broker, None), ScheduleRegistry(), settings, cast(JobBuilder, None), clock=lambda: clock)


def hourly(missed: str = "skip", limit: int = 100) -> Schedule:
    return Schedule(id="h", task="t", cron="0 * * * *", missed=missed, catch_up_limit=limit)  # type: ignore[arg-type]


def test_late_ticks_within_failover_window_always_fire() -> None:
    now = at(2024, 1, 1, 5, 0, 12)  # 12 s late: within lease TTL 10 + 2 + interval 1
    assert runner(now).due_ticks(hourly(), at(2024, 1, 1, 5), now) == [at(2024, 1, 1, 5)]


def test_missed_ticks_skip_by_default() -> None:
    now = at(2024, 1, 1, 5, 30)
    assert runner(now).due_ticks(hourly(), at(2024, 1, 1, 1), now) == []


def test_missed_ticks_run_once() -> None:
    now = at(2024, 1, 1, 5, 30)
    assert runner(now).due_ticks(hourly("run_once"), at(2024, 1, 1, 1), now) == [at(2024, 1, 1, 5)]


def test_missed_ticks_catch_up_bounded() -> None:
    now = at(2024, 1, 1, 5, 30)
    r = runner(now)
    assert r.due_ticks(hourly("catch_up"), at(2024, 1, 1, 1), now) == [at(2024, 1, 1, h) for h in (1, 2, 3, 4, 5)]
    assert r.due_ticks(hourly("catch_up", 2), at(2024, 1, 1, 1), now) == [at(2024, 1, 1, 4), at(2024, 1, 1, 5)]


def test_catch_up_keeps_late_ticks_besides_missed_ones() -> None:
    now = at(2024, 1, 1, 5, 0, 5)
    r = runner(now)
    got = r.due_ticks(hourly("catch_up", 2), at(2024, 1, 1, 2), now)
    assert got == [at(2024, 1, 1, 3), at(2024, 1, 1, 4), at(2024, 1, 1, 5)]


def test_schedule_validation() -> None:
    with pytest.raises(ConfigurationError):
        Schedule(id="bad id!", task="t", cron="* * * * *")
    with pytest.raises(ConfigurationError):
        Schedule(id="x", task="t", cron="* * * * *", missed="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Schedule(id="x", task="t", cron="* * * * *", tz="Nowhere/City")
    s = Schedule(id="x", task="t", cron="0 9 * * 1", tz="Europe/Paris", payload={"a": 1})
    assert Schedule.from_json("x", s.to_json()) == s


def test_app_cron_decorator_registers_schedule() -> None:
    app = Bananas(settings=Settings(url="memory://"))

    @app.cron("0 9 * * 1", tz="America/New_York", id="weekly-report", payload={"kind": "weekly"}, priority="high")
    @app.task
    def report(kind: str) -> str:
        return kind

    sched = app.schedules.get("weekly-report")
    assert sched is not None and sched.task == "report" and sched.payload == {"kind": "weekly"}
    with pytest.raises(ConfigurationError, match="already registered"):
        app.cron("* * * * *", id="weekly-report")(report)
    with pytest.raises(ConfigurationError, match=r"above @app\.task"):
        app.cron("* * * * *")(lambda: None)
