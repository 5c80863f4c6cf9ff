"""Tables and indexes of the SQLite broker, and rows back into ``Job`` records.

One row per job holds the encoded body (never rewritten) and the mutable fields the
Redis broker keeps in its job hash. Partial indexes play the part of Redis' sorted
sets: ``jobs_ready`` is the ready queue (priority, then enqueue time, then id),
``jobs_scheduled`` the delayed/retry set, ``jobs_leases`` the lease deadlines,
``jobs_suspects`` the jobs recovered from a lost worker (status ``suspect``, shown as
``pending``), which run alone (``Broker.dequeue_alone``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from bananas import wire
from bananas.brokers.base import Lease, Outcome
from bananas.errors import BrokerError, PayloadError
from bananas.job import Job, JobStatus

#: Bumped when the tables change; stored in ``PRAGMA user_version``.
SCHEMA_VERSION = 7  # 2: cron schedules, the ready-by-name index; 3: the task catalogue; 4: suspects; 5: workflows;
# 6: paused routing keys; 7: unique keys

_DDL = """
CREATE TABLE IF NOT EXISTS jobs (
    id             TEXT PRIMARY KEY,
    routing_key    TEXT NOT NULL,
    name           TEXT NOT NULL,
    body           BLOB NOT NULL,
    status         TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    ready_at       REAL NOT NULL,      -- unix s it (re)joined the ready queue: FIFO order
    scheduled_for  REAL,               -- unix s a delayed or retry job is due
    lease_deadline REAL,               -- unix s the current lease lapses
    deliveries     INTEGER NOT NULL DEFAULT 0,  -- delivery counter = fencing token
    unacked        INTEGER NOT NULL DEFAULT 0,  -- deliveries without an outcome
    attempts       INTEGER NOT NULL DEFAULT 0,
    cancel         INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    traceback      TEXT,
    reason         TEXT,
    result         BLOB,
    created_at     REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    progress       REAL,
    worker         TEXT,
    expires_at     REAL,               -- unix s the record is gone (terminal jobs)
    alone          INTEGER NOT NULL DEFAULT 0  -- the delivery that ran alone (a suspect's)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (routing_key, priority DESC, ready_at, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS jobs_scheduled ON jobs (scheduled_for, routing_key) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (lease_deadline, routing_key) WHERE status = 'processing';
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (status, coalesce(finished_at, created_at));
CREATE INDEX IF NOT EXISTS jobs_suspects ON jobs (routing_key, ready_at, id) WHERE status = 'suspect';
CREATE TABLE IF NOT EXISTS routing_keys (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS paused_keys (name TEXT PRIMARY KEY) WITHOUT ROWID;  -- Broker.pause
CREATE TABLE IF NOT EXISTS unique_locks (  -- Broker.enqueue_unique (brokers/sqlite/unique.py)
    routing_key TEXT NOT NULL,
    key         TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (routing_key, key)
);
CREATE INDEX IF NOT EXISTS unique_locks_expiry ON unique_locks (expires_at);
CREATE TABLE IF NOT EXISTS leader (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_ready_name ON jobs (routing_key, name, priority DESC, ready_at, id)
    WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS schedules (
    id           TEXT PRIMARY KEY,
    enabled      INTEGER,              -- NULL: as the code registers it
    last_run     REAL,
    next_run     REAL,
    run_count    INTEGER NOT NULL DEFAULT 0,
    last_success REAL,
    last_error   TEXT,
    last_job_id  TEXT,
    definition   BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_ticks (
    schedule_id TEXT NOT NULL,
    tick        INTEGER NOT NULL,     -- unix ms: with schedule_id, the de-duplication key
    expires_at  REAL NOT NULL,
    PRIMARY KEY (schedule_id, tick)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_catalogue (
    name       TEXT PRIMARY KEY,
    definition BLOB NOT NULL,     -- JSON, see bananas.catalogue
    expires_at REAL NOT NULL      -- unix s it is forgotten unless published again
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_workers (
    name      TEXT NOT NULL,
    worker    TEXT NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (name, worker)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workflows (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    output      BLOB NOT NULL,     -- JSON: the source of the workflow's result
    state       TEXT NOT NULL,     -- running, completed, failed, cancelled
    open        INTEGER NOT NULL,  -- nodes not ended
    bad         INTEGER NOT NULL,  -- nodes ended failed, skipped or cancelled without allow_failure
    created_at  REAL NOT NULL,
    finished_at REAL,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflows_listing ON workflows (created_at);
CREATE TABLE IF NOT EXISTS workflow_nodes (
    workflow_id   TEXT NOT NULL,
    node          TEXT NOT NULL,
    seq           INTEGER NOT NULL,  -- topological order
    job_id        TEXT NOT NULL,
    name          TEXT NOT NULL,
    routing_key   TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    parents       TEXT NOT NULL,     -- JSON array of node ids
    children      TEXT NOT NULL,     -- JSON array of node ids (a callback's with its WHEN_MARKS mark)
    body          BLOB NOT NULL,     -- the node's encoded job
    allow_failure INTEGER NOT NULL,
    delay_s       REAL NOT NULL,
    status        TEXT NOT NULL,     -- waiting, enqueued, completed, failed, skipped, cancelled
    waiting       INTEGER NOT NULL,  -- parents not finished yet
    result        BLOB,              -- the result, or the error object of a failed node
    PRIMARY KEY (workflow_id, node)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflow_jobs ON workflow_nodes (job_id);
"""

#: The columns ``job_from_row`` reads, in its order.
JOB_COLUMNS = (
    "id, routing_key, name, body, status, attempts, deliveries, error, traceback, reason, result, "
    "started_at, finished_at, scheduled_for, progress, worker"
)

#: SQL condition: the record has not expired.
LIVE = "(expires_at IS NULL OR expires_at > ?)"

#: Store a job (an id already stored is left alone unless its record has expired).
INSERT_JOB = f"""
INSERT INTO jobs (id, routing_key, name, body, status, priority, ready_at, scheduled_for, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    routing_key = excluded.routing_key, name = excluded.name, body = excluded.body,
    status = excluded.status, priority = excluded.priority, ready_at = excluded.ready_at,
    scheduled_for = excluded.scheduled_for, created_at = excluded.created_at,
    lease_deadline = NULL, deliveries = 0, unacked = 0, attempts = 0, cancel = 0, error = NULL,
    traceback = NULL, reason = NULL, result = NULL, started_at = NULL, finished_at = NULL,
    progress = NULL, worker = NULL, expires_at = NULL, alone = 0
WHERE NOT {LIVE.replace("expires_at", "jobs.expires_at")}
"""


def job_row(job: Job, body: bytes, now: float) -> tuple[object, ...]:
    """``INSERT_JOB``'s parameters for a job stored now: pending, or scheduled when due later."""
    due = job.scheduled_for if job.scheduled_for and job.scheduled_for > now else None
    status = "pending" if due is None else "scheduled"
    return (job.id, job.routing_key, job.name, body, status, job.priority, now, due, job.created_at, now)


def ids_json(items: Sequence[Outcome] | Sequence[Lease] | Sequence[str]) -> str:
    """The ids of ``items`` as the JSON array that ``json_each(?)`` reads."""
    return json.dumps([i if isinstance(i, str) else i.id for i in items])


def create(conn: sqlite3.Connection) -> None:
    """Create the tables if missing (safe when several processes race to do it).

    Raises:
        BrokerError: the database was written by a newer Bananas.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise BrokerError(f"the database has schema version {version}; this Bananas knows up to {SCHEMA_VERSION}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if "alone" not in columns:  # a version 3 database
            conn.execute("ALTER TABLE jobs ADD COLUMN alone INTEGER NOT NULL DEFAULT 0")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def job_from_row(row: tuple[Any, ...]) -> Job:
    """Rebuild the wire-format job from its row (body + mutable fields)."""
    (job_id, rk, name, body, status, attempts, deliveries, error, traceback, reason, result,
     started_at, finished_at, scheduled_for, progress, worker) = row  # fmt: skip
    try:
        job = wire.decode_job(body)
    except PayloadError as exc:
        job = Job(id=job_id, name=name, payload={}, routing_key=rk, error=str(exc), raw=wire.raw_excerpt(body))
    job.status = JobStatus("pending" if status == "suspect" else status)
    job.attempts = attempts
    job.deliveries = deliveries
    if error:
        job.error = error
    if traceback:
        job.traceback = traceback
    if reason:
        job.reason = reason
    if result is not None:
        try:
            job.result = wire.decode(result)
        except PayloadError:
            job.result = None
    job.started_at = started_at or None
    job.finished_at = finished_at or None
    if scheduled_for:
        job.scheduled_for = scheduled_for
    job.progress = progress
    if worker:
        job.worker = worker
    return job
