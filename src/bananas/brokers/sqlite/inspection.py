"""The SQLite broker's inspection and administration: jobs by id or status, cancelling,
dead letters and queue depths; plain functions run on the broker's connection thread,
as those of ``ops``."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bananas.brokers.base import CANCELLED_TTL_S, QueueStats
from bananas.brokers.sqlite import workflows
from bananas.brokers.sqlite.engine import Session
from bananas.brokers.sqlite.hub import job_topic, work_topic
from bananas.brokers.sqlite.schema import JOB_COLUMNS, LIVE, ids_json, job_from_row
from bananas.brokers.workflow import error_object
from bananas.job import TERMINAL_STATUSES, Job, JobStatus


def job_state(s: Session, job_id: str) -> str:
    """The job's status, or '' when there is no such job (or its record expired)."""
    with s.hub.read_lock():
        row = s.conn.execute(f"SELECT status FROM jobs WHERE id = ? AND {LIVE}", (job_id, time.time())).fetchone()
    return "" if row is None else str(row[0])


def is_settled(s: Session, job_id: str) -> bool:
    """Whether ``wait_job`` can stop waiting: the job is terminal or gone."""
    state = job_state(s, job_id)
    return state == "" or state in TERMINAL_STATUSES


def get_job(s: Session, job_id: str) -> Job | None:
    """The job, or None if unknown or expired."""
    with s.read() as c:
        row = c.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND {LIVE}", (job_id, time.time())).fetchone()
    return None if row is None else job_from_row(row)


def cancel(s: Session, job_id: str) -> str | None:
    """Cancel a pending/scheduled job, flag a processing one; return the old status."""
    with s.write() as c:
        now = time.time()
        row = c.execute(f"SELECT rowid, status FROM jobs WHERE id = ? AND {LIVE}", (job_id, now)).fetchone()
        if row is None:
            return None
        rowid, status = row
        if status in ("pending", "scheduled", "suspect"):
            c.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?, expires_at = ? WHERE rowid = ?",
                (now, now + CANCELLED_TTL_S, rowid),
            )
            s.touch(job_topic(job_id))
            workflows.finished(s, c, [(job_id, "cancelled", error_object(job_id, "cancelled", "cancelled"))], now)
        elif status == "processing":
            c.execute("UPDATE jobs SET cancel = 1 WHERE rowid = ?", (rowid,))
        return "pending" if status == "suspect" else str(status)


def list_jobs(s: Session, status: str | None, name: str | None, limit: int) -> list[Job]:
    """Jobs by status and name, newest (finished, else created) first."""
    now, limit = time.time(), max(0, limit)
    by_name = " AND name = ?" if name is not None else ""
    sql = (
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = ? AND {LIVE}{by_name}"
        " ORDER BY coalesce(finished_at, created_at) DESC LIMIT ?"
    )
    rows: list[tuple[object, ...]] = []
    with s.read() as c:
        # One indexed query per status, merged here: sorting the whole table is slow.
        statuses = [status] if status is not None else [st.value for st in JobStatus]
        for st in [*statuses, "suspect"] if "pending" in statuses else statuses:
            args = (st, now, name, limit) if name is not None else (st, now, limit)
            rows += c.execute(sql, args).fetchall()
    jobs = [job_from_row(r) for r in rows]
    if status is None or status == "pending":
        jobs.sort(key=lambda j: j.finished_at or j.created_at, reverse=True)
    return jobs[:limit]


def retry_dead(s: Session, job_ids: Sequence[str] | None) -> int:
    """Dead-lettered jobs (all when None) back to ready with a fresh retry budget."""
    sql = (
        "UPDATE jobs SET status = 'pending', attempts = 0, unacked = 0, cancel = 0, reason = NULL, finished_at = NULL,"
        f" expires_at = NULL, ready_at = ? WHERE status = 'failed' AND {LIVE}"
    )
    with s.write() as c:
        now = time.time()
        if job_ids is None:
            rows = c.execute(sql + " RETURNING routing_key", (now, now)).fetchall()
        else:
            sql += " AND id IN (SELECT value FROM json_each(?)) RETURNING routing_key"
            rows = c.execute(sql, (now, now, ids_json(job_ids))).fetchall()
        s.touch(*(work_topic(r[0]) for r in rows))
    return len(rows)


def purge_dead(s: Session) -> int:
    """Delete every dead-lettered job; return how many had not expired yet."""
    with s.write() as c:
        now = time.time()
        rows = c.execute("DELETE FROM jobs WHERE status = 'failed' RETURNING expires_at").fetchall()
    return sum(1 for (expires,) in rows if expires is None or expires > now)


def queue_stats(s: Session) -> list[QueueStats]:
    """Depth of every routing key ever used."""
    with s.read() as c:
        now = time.time()
        stats = {rk: QueueStats(rk) for (rk,) in c.execute("SELECT name FROM routing_keys ORDER BY name")}
        ready = (
            "SELECT routing_key, priority, count(*), min(ready_at) FROM jobs INDEXED BY jobs_ready"
            " WHERE status = 'pending' GROUP BY 1, 2"
        )
        for rk, prio, n, oldest in c.execute(ready):
            st = stats.setdefault(rk, QueueStats(rk))
            st.ready_by_priority[prio] = n
            if oldest is not None and (st.oldest_ready_at is None or oldest < st.oldest_ready_at):
                st.oldest_ready_at = oldest
        counts = (
            ("scheduled", "SELECT routing_key, count(*) FROM jobs INDEXED BY jobs_scheduled"
                          " WHERE status = 'scheduled' GROUP BY 1", ()),
            ("processing", "SELECT routing_key, count(*) FROM jobs INDEXED BY jobs_leases"
                           " WHERE status = 'processing' GROUP BY 1", ()),
            ("dead", f"SELECT routing_key, count(*) FROM jobs WHERE status = 'failed' AND {LIVE} GROUP BY 1", (now,)),
            ("suspects", "SELECT routing_key, count(*) FROM jobs INDEXED BY jobs_suspects"
                         " WHERE status = 'suspect' GROUP BY 1", ()),
        )  # fmt: skip
        for attr, sql, args in counts:
            for rk, n in c.execute(sql, args):
                setattr(stats.setdefault(rk, QueueStats(rk)), attr, n)
        due = "SELECT routing_key, min(scheduled_for) FROM jobs WHERE status = 'scheduled' GROUP BY 1"
        for rk, at in c.execute(due):
            stats.setdefault(rk, QueueStats(rk)).next_scheduled_at = at
        for (rk,) in c.execute("SELECT name FROM paused_keys"):
            stats.setdefault(rk, QueueStats(rk)).paused = True
    for st in stats.values():
        st.ready_by_priority = dict(sorted(st.ready_by_priority.items(), reverse=True))
    return sorted(stats.values(), key=lambda st: st.routing_key)
