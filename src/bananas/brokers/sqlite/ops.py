"""The SQLite broker's operations: plain functions run on the broker's connection thread.

Each state change is one ``BEGIN IMMEDIATE`` transaction per call, whatever the batch
size, with the same rules as the Redis scripts (``brokers/redis/scripts``): a delivery's
``token`` is the job's delivery counter, outcomes and renewals quoting another token or
arriving when the job is no longer processing are refused, ``unacked`` counts deliveries
without an outcome and decides when an expired lease is dead-lettered as ``worker_lost``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from bananas.brokers.base import (
    CANCELLED_TTL_S,
    Batch,
    Delivery,
    JobFilter,
    LeaderLock,
    Lease,
    LeaseState,
    Outcome,
    Reclaim,
    TickReport,
)
from bananas.brokers.sqlite import suspects, unique, workflows
from bananas.brokers.sqlite.engine import Session
from bananas.brokers.sqlite.hub import SCHEDULE_TOPIC, job_topic, work_topic
from bananas.brokers.sqlite.schema import INSERT_JOB, ids_json, job_row
from bananas.brokers.workflow import error_object
from bananas.job import Job

#: Most jobs one tick moves per kind (due, recovered, lost, expired records).
TICK_LIMIT = 5000
#: The scheduler lock's row in ``leader``.
LEADER = "scheduler"


# --- producing -----------------------------------------------------------------------


def enqueue(s: Session, jobs: Sequence[tuple[Job, bytes]]) -> None:
    """Store jobs as pending, or scheduled when due later; an id already stored is left
    alone unless its record has expired."""
    with s.write() as c:
        now = time.time()
        rows = []
        for job, body in jobs:
            row = job_row(job, body, now)
            rows.append(row)
            s.touch(work_topic(job.routing_key) if row[7] is None else SCHEDULE_TOPIC)
        c.executemany(INSERT_JOB, rows)
        c.executemany("INSERT OR IGNORE INTO routing_keys (name) VALUES (?)", [(k,) for k in {r[1] for r in rows}])


# --- consuming -----------------------------------------------------------------------

_DEQUEUE = """
UPDATE jobs SET status = 'processing', deliveries = deliveries + 1, unacked = unacked + 1,
    started_at = ?, worker = ?, lease_deadline = ?
WHERE rowid IN (
    SELECT rowid FROM jobs INDEXED BY jobs_ready WHERE routing_key = ? AND status = 'pending'
    ORDER BY priority DESC, ready_at, id LIMIT ?)
RETURNING id, body, attempts, deliveries, priority, ready_at
"""


_HAS_WORK = "SELECT 1 FROM jobs INDEXED BY jobs_ready WHERE routing_key = ? AND status = 'pending' LIMIT 1"


def _filtered(only: JobFilter) -> tuple[str, list[object]]:
    """The dequeue statement for a specialized worker, and its extra arguments."""
    index = "jobs_ready_name" if only.names else "jobs_ready"
    where, args = "", list[object]()
    if only.priorities:
        where += " AND (" + " OR ".join("priority BETWEEN ? AND ?" for _ in only.priorities) + ")"
        args += [bound for band in only.priorities for bound in band]
    if only.names:
        where += " AND name IN (" + ", ".join("?" for _ in only.names) + ")"
        args += list(only.names)
    sql = _DEQUEUE.replace("INDEXED BY jobs_ready", f"INDEXED BY {index}").replace(
        "status = 'pending'\n", f"status = 'pending'{where}\n"
    )
    return sql, args


def dequeue(
    s: Session,
    routing_keys: Sequence[str],
    count: int,
    lease_s: float,
    worker: str,
    only: JobFilter | None = None,
    reclaim: Reclaim | None = None,
) -> tuple[Batch, float | None]:
    """Lease up to ``count`` ready jobs: routing keys in order, highest priority first,
    FIFO within a priority; with ``only``, just the matching ones. With ``reclaim``, the
    scheduler's duties run first in the same transaction (for every routing key: one
    database), the time the next delayed job or lease falls due is returned, and the
    worker may be given the isolation duty instead of jobs (``Batch``)."""
    out = Batch()
    sql, extra = _filtered(only) if only is not None and (only.priorities or only.names) else (_DEQUEUE, [])
    due: float | None = None
    with s.write() as c:
        now = time.time()
        if reclaim is not None:
            due = _next_due(c)
            if due is not None and due <= now:
                _duties(s, c, now, reclaim.max_deliveries, reclaim.failed_ttl_s)
                due = _next_due(c)
        routing_keys = unpaused(c, routing_keys)
        names = only.names if only is not None else ()
        if reclaim is not None and suspects.claim(c, routing_keys, worker, lease_s, now, names):
            out.isolate = True
            return out, due
        for rk in routing_keys:
            want = count - len(out)
            if want <= 0:
                break
            rows = c.execute(sql, (now, worker, now + lease_s, rk, *extra, want)).fetchall()
            rows.sort(key=lambda r: (-r[4], r[5], r[0]))  # RETURNING has no defined order
            out.extend(Delivery(r[0], rk, r[1], r[2], r[3]) for r in rows)
    return out, due


def unpaused(c: sqlite3.Connection, routing_keys: Sequence[str]) -> list[str]:
    """The routing keys not paused (``Broker.pause``), in their order."""
    paused = {r[0] for r in c.execute("SELECT name FROM paused_keys")}
    return [rk for rk in routing_keys if rk not in paused] if paused else list(routing_keys)


def pause(s: Session, routing_key: str, paused: bool) -> bool:
    """``Broker.pause``: whether the state changed (resuming wakes the key's workers)."""
    with s.write() as c:
        c.execute("INSERT OR IGNORE INTO routing_keys (name) VALUES (?)", (routing_key,))
        if paused:
            return c.execute("INSERT OR IGNORE INTO paused_keys (name) VALUES (?)", (routing_key,)).rowcount > 0
        changed = c.execute("DELETE FROM paused_keys WHERE name = ?", (routing_key,)).rowcount > 0
        if changed:
            s.touch(work_topic(routing_key))
        return changed


def has_work(s: Session, routing_keys: Sequence[str]) -> bool:
    """Whether a job is ready in one of the routing keys (not paused)."""
    c = s.conn
    with s.hub.read_lock():
        for rk in unpaused(c, routing_keys):
            if c.execute(_HAS_WORK, (rk,)).fetchone():
                return True
    return False


def _held(c: sqlite3.Connection, items: Sequence[Outcome] | Sequence[Lease]) -> dict[str, tuple[int, int, str, int]]:
    """Current (rowid, deliveries, status, cancel) of the jobs named by ``items``."""
    sql = "SELECT id, rowid, deliveries, status, cancel FROM jobs WHERE id IN (SELECT value FROM json_each(?))"
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in c.execute(sql, (ids_json(items),))}


#: How ``ack`` stores completed, retry, failed and cancelled outcomes (in that order).
_OUTCOME_UPDATES = (
    "UPDATE jobs SET status = 'completed', result = ?, attempts = ?, finished_at = ?, expires_at = ?,"
    " unacked = 0, lease_deadline = NULL WHERE rowid = ?",
    "UPDATE jobs SET status = 'scheduled', error = ?, traceback = ?, attempts = ?, scheduled_for = ?,"
    " unacked = 0, lease_deadline = NULL WHERE rowid = ?",
    "UPDATE jobs SET status = 'failed', error = ?, traceback = ?, reason = ?, attempts = ?, finished_at = ?,"
    " expires_at = ?, unacked = 0, lease_deadline = NULL WHERE rowid = ?",
    "UPDATE jobs SET status = 'cancelled', error = ?, reason = ?, attempts = ?, finished_at = ?,"
    " expires_at = ?, unacked = 0, lease_deadline = NULL WHERE rowid = ?",
)


def ack(s: Session, outcomes: Sequence[Outcome], ttl: tuple[float, float]) -> list[bool]:
    """Store outcomes and release leases; False where the token is stale or the job is
    no longer processing (a second outcome for one delivery is refused too)."""
    accepted: list[bool] = []
    completed: list[tuple[object, ...]] = []
    retry: list[tuple[object, ...]] = []
    failed: list[tuple[object, ...]] = []
    cancelled: list[tuple[object, ...]] = []
    with s.write() as c:
        now = time.time()
        held = _held(c, outcomes)
        done: set[str] = set()
        ended: list[tuple[str, str, bytes]] = []  # for workflow nodes
        for o in outcomes:
            cur = held.get(o.id)
            ok = cur is not None and cur[1] == o.token and cur[2] == "processing" and o.id not in done
            accepted.append(ok)
            if not ok or cur is None:
                continue
            done.add(o.id)
            if o.kind == "completed":
                completed.append((o.result, o.attempts, now, now + ttl[0], cur[0]))
                ended.append((o.id, "completed", o.result))
            elif o.kind == "retry":
                retry.append((o.error, o.traceback, o.attempts, o.retry_at, cur[0]))
                s.touch(SCHEDULE_TOPIC)
            elif o.kind == "cancelled":
                cancelled.append((o.error, o.reason, o.attempts, now, now + CANCELLED_TTL_S, cur[0]))
                ended.append((o.id, "cancelled", error_object(o.id, o.error, o.reason)))
            else:
                failed.append((o.error, o.traceback, o.reason, o.attempts, now, now + ttl[1], cur[0]))
                ended.append((o.id, "failed", error_object(o.id, o.error, o.reason)))
            if o.kind != "retry":
                s.touch(job_topic(o.id))
        for sql, rows in zip(_OUTCOME_UPDATES, (completed, retry, failed, cancelled), strict=True):
            if rows:
                c.executemany(sql, rows)
        workflows.finished(s, c, ended, now)
    return accepted


def renew(s: Session, leases: Sequence[Lease], lease_s: float) -> list[LeaseState]:
    """Extend leases still held; ``cancel`` where a cancel was asked, ``lost`` where the
    lease was reclaimed."""
    states: list[LeaseState] = []
    with s.write() as c:
        deadline = time.time() + lease_s
        held = _held(c, leases)
        extend = []
        for lease in leases:
            cur = held.get(lease.id)
            if cur is not None and cur[1] == lease.token and cur[2] == "processing":
                extend.append((deadline, cur[0]))
                states.append("cancel" if cur[3] else "ok")
            else:
                states.append("lost")
        c.executemany("UPDATE jobs SET lease_deadline = ? WHERE rowid = ?", extend)
    return states


def requeue(s: Session, leases: Sequence[Lease]) -> int:
    """Give leased jobs back to their queue at once; the delivery is not counted.
    Returns how many were still held."""
    with s.write() as c:
        now = time.time()
        cur = c.executemany(
            "UPDATE jobs SET status = 'pending', unacked = unacked - 1, ready_at = ?, lease_deadline = NULL"
            " WHERE id = ? AND deliveries = ? AND status = 'processing'",
            [(now, lease.id, lease.token) for lease in leases],
        )
        s.touch(*(work_topic(lease.routing_key) for lease in leases))
        return max(0, cur.rowcount)


def set_progress(s: Session, items: Sequence[tuple[str, str, float]]) -> None:
    """Record the progress of running jobs."""
    with s.write() as c:
        c.executemany("UPDATE jobs SET progress = ? WHERE id = ?", [(float(v), job_id) for job_id, _, v in items])


# --- scheduler duties ------------------------------------------------------------------

_MOVE_DUE = """
UPDATE jobs SET status = 'pending', ready_at = ?
WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY jobs_scheduled WHERE status = 'scheduled' AND scheduled_for <= ?
                ORDER BY scheduled_for LIMIT ?)
RETURNING routing_key
"""
# A recovered job that ran alone (``alone`` = this delivery) after ``max_deliveries``
# deliveries without an outcome is dead-lettered worker_lost; any other becomes a suspect.
_LOSE = """
UPDATE jobs SET status = 'failed', reason = 'worker_lost', finished_at = ?, expires_at = ?, unacked = 0,
    lease_deadline = NULL,
    error = 'worker_lost: delivered ' || deliveries || ' times without an outcome (lease expired)'
WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY jobs_leases
                WHERE status = 'processing' AND lease_deadline <= ? AND unacked >= ? AND alone = deliveries
                LIMIT ?)
RETURNING id, error
"""
_RECOVER = """
UPDATE jobs SET status = 'suspect', ready_at = ?, lease_deadline = NULL
WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY jobs_leases
                WHERE status = 'processing' AND lease_deadline <= ? LIMIT ?)
RETURNING routing_key
"""
_LOSE_DEAD = """
UPDATE jobs SET status = 'failed', reason = 'worker_lost', finished_at = ?, expires_at = ?, unacked = 0,
    lease_deadline = NULL,
    error = 'worker_lost: delivered ' || deliveries || ' times without an outcome (its worker died: ' || ? || ')'
WHERE status = 'processing' AND substr(worker, 1, ?) = ? AND unacked >= ? AND alone = deliveries
    AND routing_key IN (SELECT value FROM json_each(?))
RETURNING id, error
"""
_RECOVER_DEAD = """
UPDATE jobs SET status = 'suspect', ready_at = ?, lease_deadline = NULL
WHERE status = 'processing' AND substr(worker, 1, ?) = ? AND routing_key IN (SELECT value FROM json_each(?))
RETURNING routing_key
"""
_EARLIEST_DUE = "SELECT min(scheduled_for) FROM jobs INDEXED BY jobs_scheduled WHERE status = 'scheduled'"
_EARLIEST_LEASE = "SELECT min(lease_deadline) FROM jobs INDEXED BY jobs_leases WHERE status = 'processing'"
_EXPIRE = "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE expires_at <= ? LIMIT ?)"


def _duties(s: Session, c: sqlite3.Connection, now: float, max_deliveries: int, failed_ttl_s: float) -> TickReport:
    """Due jobs -> ready; expired leases -> suspects, or dead as ``worker_lost`` when the
    job ran alone and ``unacked`` reached ``max_deliveries`` (at most ``TICK_LIMIT`` of each)."""
    moved = [r[0] for r in c.execute(_MOVE_DUE, (now, now, TICK_LIMIT)).fetchall()]
    lost = c.execute(_LOSE, (now, now + failed_ttl_s, now, max_deliveries, TICK_LIMIT)).fetchall()
    recovered = [r[0] for r in c.execute(_RECOVER, (now, now, TICK_LIMIT)).fetchall()]
    s.touch(*(work_topic(rk) for rk in {*moved, *recovered}), *(job_topic(r[0]) for r in lost))
    _lost(s, c, lost, now)
    return TickReport(len(moved), len(recovered), len(lost))


def _lost(s: Session, c: sqlite3.Connection, rows: Sequence[tuple[str, str]], now: float) -> None:
    """Jobs dead-lettered ``worker_lost`` (id, error): their workflows move on."""
    workflows.finished(s, c, [(i, "failed", error_object(i, error, "worker_lost")) for i, error in rows], now)


def release_dead(
    s: Session, worker_prefix: str, routing_keys: list[str], how: str, reclaim: Reclaim
) -> tuple[int, int]:
    """``Broker.release_dead``: a dead worker process's jobs back as suspects, or dead;
    its isolation claims dropped."""
    rks = json.dumps(routing_keys)
    with s.write() as c:
        now, n = time.time(), len(worker_prefix)
        lost = c.execute(_LOSE_DEAD, (now, now + reclaim.failed_ttl_s, how, n, worker_prefix, reclaim.max_deliveries,
                                      rks)).fetchall()  # fmt: skip
        recovered = c.execute(_RECOVER_DEAD, (now, n, worker_prefix, rks)).fetchall()
        c.execute("DELETE FROM leader WHERE name LIKE 'isolate:%' AND substr(holder, 1, ?) = ?", (n, worker_prefix))
        _lost(s, c, lost, now)
        s.touch(*(work_topic(r[0]) for r in recovered), *(job_topic(r[0]) for r in lost))
    return len(recovered), len(lost)


def _next_due(c: sqlite3.Connection) -> float | None:
    """When the earliest delayed job or lease falls due."""
    due, lease = c.execute(_EARLIEST_DUE).fetchone()[0], c.execute(_EARLIEST_LEASE).fetchone()[0]
    return min((float(t) for t in (due, lease) if t is not None), default=None)


def tick(s: Session, max_deliveries: int, failed_ttl_s: float) -> TickReport:
    """The scheduler's duties (``_duties``) and expired records deleted."""
    with s.write() as c:
        now = time.time()
        report = _duties(s, c, now, max_deliveries, failed_ttl_s)
        expired = c.execute(_EXPIRE, (now, TICK_LIMIT)).rowcount + workflows.expire(c, now)
        unique.expire(c, now)
        due = c.execute(_EARLIEST_DUE).fetchone()[0]
        lease = c.execute(_EARLIEST_LEASE).fetchone()[0]
    # More to do at once when a limit was hit (due jobs left over show in ``due`` anyway).
    more = now if TICK_LIMIT in (report.lost, report.recovered, expired) else None
    report.next_due = min((t for t in (due, lease, more) if t is not None), default=None)
    return report


def earliest_scheduled(s: Session) -> float | None:
    """When the earliest delayed or retry job is due."""
    with s.hub.read_lock():
        value = s.conn.execute(_EARLIEST_DUE).fetchone()[0]
    return None if value is None else float(value)


def acquire_leader(s: Session, holder: str, ttl_s: float) -> LeaderLock:
    """Take or keep the scheduler lock; a new holder gets the next fencing token."""
    with s.write() as c:
        now = time.time()
        row = c.execute("SELECT holder, token, expires_at FROM leader WHERE name = ?", (LEADER,)).fetchone()
        if row is not None and row[2] > now:
            if row[0] != holder:
                return LeaderLock(None, row[2] - now)
            c.execute("UPDATE leader SET expires_at = ? WHERE name = ?", (now + ttl_s, LEADER))
            return LeaderLock(int(row[1]), ttl_s)
        token = c.execute(
            "INSERT INTO counters (name, value) VALUES ('leader_epoch', 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
        ).fetchone()[0]
        c.execute("INSERT OR REPLACE INTO leader VALUES (?, ?, ?, ?)", (LEADER, holder, token, now + ttl_s))
        return LeaderLock(int(token), ttl_s)


def release_leader(s: Session, holder: str) -> None:
    """Drop the scheduler lock if ``holder`` has it."""
    with s.write() as c:
        c.execute("DELETE FROM leader WHERE name = ? AND holder = ?", (LEADER, holder))
