"""``Schedule`` (a periodic job of a task) and ``ScheduleRegistry`` (``app.schedules``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from bananas.cron import CronExpr
from bananas.errors import ConfigurationError
from bananas.job import check_job_name, check_routing_key, parse_priority

#: What to do with ticks that passed while no scheduler ran (see docs/PERIODIC_TASKS.md).
MissedPolicy = Literal["skip", "run_once", "catch_up"]
MISSED_POLICIES = ("skip", "run_once", "catch_up")

_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,200}$")


@dataclass(frozen=True)
class Schedule:
    """A job submitted on a cron schedule.

    Args:
        id: unique name of the schedule (its state in the broker is kept under it).
        task: the task name.
        cron: the cron expression (5 fields, 6 with seconds first, or ``@hourly``-style).
        tz: IANA time zone the expression is read in.
        payload: keyword arguments of every job.
        priority: job priority (default: the task's).
        routing_key: job routing key (default: the task's).
        enabled: the initial state; ``bananas schedules enable|disable`` overrides it.
        description: free text, also the jobs' description.
        missed: ``skip`` (default), ``run_once`` or ``catch_up``: ticks missed while every
            scheduler was down.
        catch_up_limit: most missed ticks ``catch_up`` submits (the latest ones).

    Raises:
        ConfigurationError: a bad id, task name, expression, zone, priority or policy.
    """

    id: str
    task: str
    cron: str
    tz: str = "UTC"
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: str | int | None = None
    routing_key: str | None = None
    enabled: bool = True
    description: str = ""
    missed: MissedPolicy = "skip"
    catch_up_limit: int = 100

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ConfigurationError(f"schedule id {self.id!r} must match [A-Za-z0-9_-.:]{{1,200}}")
        check_job_name(self.task)
        if self.priority is not None:
            parse_priority(self.priority)
        if self.routing_key is not None:
            check_routing_key(self.routing_key)
        if self.missed not in MISSED_POLICIES:
            raise ConfigurationError(f"missed must be one of {', '.join(MISSED_POLICIES)}, got {self.missed!r}")
        if self.catch_up_limit < 1:
            raise ConfigurationError("catch_up_limit must be >= 1")
        if not isinstance(self.payload, Mapping):
            raise ConfigurationError("a schedule's payload must be a mapping")
        object.__setattr__(self, "_expr", CronExpr(self.cron, self.tz))

    @property
    def expr(self) -> CronExpr:
        """The parsed expression."""
        value: CronExpr = object.__getattribute__(self, "_expr")
        return value

    def to_json(self) -> bytes:
        """The definition as stored beside the state (so the CLI can show it without --app)."""
        return msgspec.json.encode(
            {"task": self.task, "cron": self.cron, "tz": self.tz, "payload": dict(self.payload),
             "priority": self.priority, "routing_key": self.routing_key, "description": self.description,
             "missed": self.missed, "catch_up_limit": self.catch_up_limit, "enabled": self.enabled}
        )  # fmt: skip

    @classmethod
    def from_json(cls, schedule_id: str, raw: bytes | str) -> Schedule:
        """Rebuild a stored definition.

        Raises:
            ConfigurationError: it does not decode into a valid schedule.
        """
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ConfigurationError(f"stored schedule {schedule_id!r} is not valid JSON: {exc}") from None
        return cls(id=schedule_id, **data)


class ScheduleRegistry:
    """The schedules of an app: ``app.schedules.register(Schedule(...))``."""

    def __init__(self) -> None:
        self._by_id: dict[str, Schedule] = {}

    def register(self, schedule: Schedule) -> Schedule:
        """Add a schedule.

        Raises:
            ConfigurationError: the id is already registered.
        """
        if schedule.id in self._by_id:
            raise ConfigurationError(f"a schedule with id {schedule.id!r} is already registered")
        self._by_id[schedule.id] = schedule
        return schedule

    def get(self, schedule_id: str) -> Schedule | None:
        """The schedule with this id, if registered."""
        return self._by_id.get(schedule_id)

    def __iter__(self) -> Iterator[Schedule]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, schedule_id: object) -> bool:
        return schedule_id in self._by_id
