"""The SQLite broker's cron-schedule operations (state per schedule, fired ticks).

The same rules as ``brokers/redis/scripts/fire.lua``: a tick fires only if its
``(schedule_id, tick)`` row does not exist, and only while no newer scheduler leader was
elected (fencing), in the one transaction that also enqueues the job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bananas.brokers.base import SCHEDULE_FIELDS, TICK_KEY_TTL_S, Fire, ScheduleState
from bananas.brokers.sqlite.engine import Session
from bananas.brokers.sqlite.hub import work_topic
from bananas.brokers.sqlite.schema import INSERT_JOB

_STATE_COLUMNS = "id, enabled, last_run, next_run, run_count, last_success, last_error, last_job_id, definition"

_RECORD = """
INSERT INTO schedules (id, last_run, next_run, run_count, last_job_id) VALUES (?1, ?2, ?3, 1, ?4)
ON CONFLICT (id) DO UPDATE SET
    last_run = max(coalesce(last_run, 0), ?2), next_run = max(coalesce(next_run, 0), coalesce(?3, 0)),
    run_count = run_count + 1, last_job_id = ?4
"""


def fire(s: Session, fires: Sequence[Fire], token: int | None) -> list[bool]:
    """Enqueue the jobs of ticks that never fired; record them. See ``Broker.fire_schedule``."""
    with s.write() as c:
        now = time.time()
        if token is not None:
            row = c.execute("SELECT value FROM counters WHERE name = 'leader_epoch'").fetchone()
            if row is None or int(row[0]) != token:
                return [False] * len(fires)
        c.execute("DELETE FROM schedule_ticks WHERE expires_at <= ?", (now,))
        out = []
        for f in fires:
            tick_ms = int(f.tick * 1000)
            new = c.execute(
                "INSERT OR IGNORE INTO schedule_ticks VALUES (?, ?, ?)", (f.schedule_id, tick_ms, now + TICK_KEY_TTL_S)
            ).rowcount
            out.append(new == 1)
            if new != 1:
                continue
            job = f.job
            c.execute(INSERT_JOB, (job.id, job.routing_key, job.name, f.body, "pending", job.priority, now, None,
                                   job.created_at, now))  # fmt: skip
            c.execute("INSERT OR IGNORE INTO routing_keys (name) VALUES (?)", (job.routing_key,))
            c.execute(_RECORD, (f.schedule_id, f.tick, f.next_run, job.id))
            s.touch(work_topic(job.routing_key))
    return out


def states(s: Session) -> list[ScheduleState]:
    """Every stored schedule state."""
    with s.read() as c:
        rows = c.execute(f"SELECT {_STATE_COLUMNS} FROM schedules ORDER BY id").fetchall()
    return [
        ScheduleState(
            id=r[0],
            enabled=None if r[1] is None else bool(r[1]),
            last_run=r[2],
            next_run=r[3],
            run_count=r[4],
            last_success=r[5],
            last_error=r[6],
            last_job_id=r[7],
            definition=None if r[8] is None else bytes(r[8]),
        )
        for r in rows
    ]


def update(s: Session, schedule_id: str, fields: dict[str, str | bytes | float | int | None]) -> None:
    """Set state fields of one schedule (creating its row)."""
    for name in fields:
        if name not in SCHEDULE_FIELDS:
            raise ValueError(f"unknown schedule field {name!r}")
    values = [
        (int(bool(v)) if v is not None else None) if k == "enabled" else (v.encode() if k == "definition" and
                                                                          isinstance(v, str) else v)
        for k, v in fields.items()
    ]  # fmt: skip
    with s.write() as c:
        c.execute("INSERT OR IGNORE INTO schedules (id) VALUES (?)", (schedule_id,))
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)
            c.execute(f"UPDATE schedules SET {assignments} WHERE id = ?", (*values, schedule_id))


def delete(s: Session, schedule_id: str) -> None:
    """Forget a schedule's state and its fired ticks."""
    with s.write() as c:
        c.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
        c.execute("DELETE FROM schedule_ticks WHERE schedule_id = ?", (schedule_id,))
