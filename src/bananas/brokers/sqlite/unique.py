"""Unique jobs on SQLite (docs/FLOW_CONTROL.md): ``unique_locks`` names, per routing key
and key, the job that took the key, until ``expires_at``. Whether that job still holds it
is read from its row, the rule of ``submit_unique.lua``: ``until_done`` while it is
pending, scheduled, a suspect or processing; ``until_started`` while pending, scheduled
or a suspect and never started. So nothing has to release a key."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from bananas.brokers.sqlite.engine import Session
from bananas.brokers.sqlite.hub import SCHEDULE_TOPIC, work_topic
from bananas.brokers.sqlite.schema import INSERT_JOB, LIVE, job_row
from bananas.job import Job, UniqueLock

#: Most expired keys one tick deletes.
EXPIRE_LIMIT = 5000

_HOLDER = f"""
SELECT l.job_id, l.mode, j.status, j.started_at FROM unique_locks l
LEFT JOIN jobs j ON j.id = l.job_id AND {LIVE.replace("expires_at", "j.expires_at")}
WHERE l.routing_key = ? AND l.key = ? AND l.expires_at > ?
"""
_WAITING = ("pending", "scheduled", "suspect")


def enqueue_unique(s: Session, jobs: Sequence[tuple[Job, bytes, UniqueLock]]) -> list[str]:
    """``Broker.enqueue_unique``: one transaction; jobs are stored one by one, so a later
    duplicate in the same call finds the first one holding the key."""
    out: list[str] = []
    with s.write() as c:
        now = time.time()
        for job, body, lock in jobs:
            holder = _holder(c, job.routing_key, lock.key, now)
            if holder is not None and holder != job.id:
                out.append(holder)
                continue
            c.execute(
                "INSERT OR REPLACE INTO unique_locks (routing_key, key, job_id, mode, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (job.routing_key, lock.key, job.id, lock.mode, now + lock.ttl_s),
            )
            row = job_row(job, body, now)
            c.execute(INSERT_JOB, row)
            c.execute("INSERT OR IGNORE INTO routing_keys (name) VALUES (?)", (job.routing_key,))
            s.touch(work_topic(job.routing_key) if row[7] is None else SCHEDULE_TOPIC)
            out.append(job.id)
    return out


def _holder(c: sqlite3.Connection, routing_key: str, key: str, now: float) -> str | None:
    """The job that holds ``key`` now, if one does."""
    row = c.execute(_HOLDER, (now, routing_key, key, now)).fetchone()
    if row is None:
        return None
    job_id, mode, status, started_at = row
    if mode == "until_done":
        return job_id if status in (*_WAITING, "processing") else None
    return job_id if status in _WAITING and started_at is None else None


def expire(c: sqlite3.Connection, now: float) -> int:
    """Delete keys past their TTL (at most ``EXPIRE_LIMIT``); how many."""
    return c.execute(
        "DELETE FROM unique_locks WHERE rowid IN (SELECT rowid FROM unique_locks WHERE expires_at <= ? LIMIT ?)",
        (now, EXPIRE_LIMIT),
    ).rowcount
