"""Workflows on SQLite: two tables, and the node steps that run inside the transaction of
the outcome that causes them (``ops.ack``, a lease lost as ``worker_lost``, a cancel).

A node is ``waiting`` (``waiting`` counts its unfinished parents), ``enqueued`` (its job
row exists: pending, scheduled or processing), then ``completed``, ``failed``,
``skipped`` or ``cancelled``; the same rules as the Redis scripts (``wf_*`` in _lib.lua).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from bananas.brokers.base import CANCELLED_TTL_S
from bananas.brokers.sqlite.engine import Session
from bananas.brokers.sqlite.hub import SCHEDULE_TOPIC, job_topic, work_topic
from bananas.brokers.sqlite.schema import INSERT_JOB, JOB_COLUMNS, job_from_row
from bananas.brokers.workflow import (
    WORKFLOW_TTL_S,
    NodeRecord,
    WorkflowRecord,
    WorkflowSummary,
    edge,
    edge_runs,
    error_object,
    marked_children,
    unmark,
)

#: Most expired workflows one tick deletes.
EXPIRE_LIMIT = 1000

_NODE = "SELECT node, job_id, name, routing_key, priority, body, delay_s FROM workflow_nodes"


def topic(workflow_id: str) -> str:
    """Topic woken when a workflow stops running."""
    return "f:" + workflow_id


def submit(s: Session, record: WorkflowRecord) -> None:
    """Store the workflow and enqueue its roots (one transaction)."""
    children = marked_children(record)
    with s.write() as c:
        now = time.time()
        c.execute(
            "INSERT INTO workflows (id, name, kind, policy, output, state, open, bad, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?, 0, ?, ?)",
            (record.id, record.name, record.kind, record.policy, record.output, len(record.nodes), record.created_at,
             now + WORKFLOW_TTL_S),
        )  # fmt: skip
        c.executemany(
            "INSERT INTO workflow_nodes (workflow_id, node, seq, job_id, name, routing_key, priority, parents,"
            " children, body, allow_failure, delay_s, status, waiting) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'waiting',?)",
            [(record.id, n.id, i, n.job_id, n.name, n.routing_key, n.priority, json.dumps(n.parents),
              json.dumps(children[n.id]), n.body, int(n.allow_failure), n.delay_s, len(n.parents))
             for i, n in enumerate(record.nodes)],
        )  # fmt: skip
        c.executemany("INSERT OR IGNORE INTO routing_keys (name) VALUES (?)", [(n.routing_key,) for n in record.nodes])
        roots = c.execute(f"{_NODE} WHERE workflow_id = ? AND waiting = 0", (record.id,)).fetchall()
        for row in roots:
            _release(s, c, record.id, row, now)


def _release(s: Session, c: sqlite3.Connection, workflow_id: str, row: tuple[Any, ...], now: float) -> None:
    """Enqueue a node's job (its parents are done)."""
    node, job_id, name, rk, priority, body, delay_s = row
    due = now + delay_s if delay_s > 0 else None
    status = "pending" if due is None else "scheduled"
    c.execute("DELETE FROM jobs WHERE id = ?", (job_id,))  # a node run again (retry)
    c.execute(INSERT_JOB, (job_id, rk, name, body, status, priority, now, due, now, now))
    c.execute("UPDATE workflow_nodes SET status = 'enqueued' WHERE workflow_id = ? AND node = ?", (workflow_id, node))
    s.touch(work_topic(rk) if due is None else SCHEDULE_TOPIC)


def finished(s: Session, c: sqlite3.Connection, items: Sequence[tuple[str, str, bytes]], now: float) -> None:
    """Jobs that ended (id, ``completed``/``failed``/``cancelled``, result or error
    object): when they are workflow nodes, record the outcome and move the workflow on."""
    if not items:
        return
    outcome = {job_id: (status, value) for job_id, status, value in items}
    rows = c.execute(
        "SELECT workflow_id, node, job_id, allow_failure, children FROM workflow_nodes"
        " WHERE job_id IN (SELECT value FROM json_each(?)) AND status = 'enqueued'",
        (json.dumps(list(outcome)),),
    ).fetchall()
    for workflow_id, node, job_id, allow, children in rows:
        status, value = outcome[job_id]
        completed = status == "completed"
        _end_node(c, workflow_id, node, status, value, not (completed or allow))
        _node_done(s, c, workflow_id, (completed, bool(allow)), json.loads(children), now)


def _end_node(c: sqlite3.Connection, workflow_id: str, node: str, status: str, value: bytes | None,
              bad: bool) -> None:  # fmt: skip
    c.execute("UPDATE workflow_nodes SET status = ?, result = coalesce(?, result) WHERE workflow_id = ? AND node = ?",
              (status, value, workflow_id, node))  # fmt: skip
    c.execute("UPDATE workflows SET open = open - 1, bad = bad + ? WHERE id = ?", (int(bad), workflow_id))


def _node_done(s: Session, c: sqlite3.Connection, workflow_id: str, ended: tuple[bool, bool], children: list[str],
               now: float) -> None:  # fmt: skip
    """A node ended (``ended``: it completed, it may fail): release the children it was
    the last parent of, skip those it cannot run, apply the failure policy."""
    row = c.execute("SELECT state, policy FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    if row is None or row[0] != "running":
        return
    passes = ended[0] or ended[1]
    if not passes and row[1] == "fail_fast":
        _stop(s, c, workflow_id, "failed", now)
        return
    unmet = []
    for entry in children:
        child, mark = edge(entry)
        if not edge_runs(mark, *ended):
            if mark:
                unmet.append(child)
            continue
        left = c.execute(
            "UPDATE workflow_nodes SET waiting = waiting - 1 WHERE workflow_id = ? AND node = ?"
            " RETURNING waiting, status", (workflow_id, child),
        ).fetchone()  # fmt: skip
        if left is not None and left[0] <= 0 and left[1] == "waiting":
            ready = c.execute(f"{_NODE} WHERE workflow_id = ? AND node = ?", (workflow_id, child)).fetchone()
            _release(s, c, workflow_id, ready, now)
    _skip_below(c, workflow_id, unmet, False)
    if not passes:
        _skip_below(c, workflow_id, [edge(e)[0] for e in children], True)
    left, bad = c.execute("SELECT open, bad FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    if left <= 0:
        _set_state(s, c, workflow_id, "failed" if bad else "completed", now)


def _skip_below(c: sqlite3.Connection, workflow_id: str, todo: list[str], bad: bool) -> None:
    """Skip the waiting nodes in ``todo`` and their waiting descendants: below a failed
    node (policy ``continue``, ``bad``), or callbacks whose condition did not hold."""
    while todo:
        node = todo.pop()
        got = c.execute("SELECT children FROM workflow_nodes WHERE workflow_id = ? AND node = ? AND status = 'waiting'",
                        (workflow_id, node)).fetchone()  # fmt: skip
        if got is not None:
            _end_node(c, workflow_id, node, "skipped", None, bad)
            todo += [edge(e)[0] for e in json.loads(got[0])]


def _set_state(s: Session, c: sqlite3.Connection, workflow_id: str, state: str, now: float) -> None:
    c.execute("UPDATE workflows SET state = ?, finished_at = ?, expires_at = ? WHERE id = ?",
              (state, now, now + WORKFLOW_TTL_S, workflow_id))  # fmt: skip
    s.touch(topic(workflow_id))


def _stop(s: Session, c: sqlite3.Connection, workflow_id: str, state: str, now: float) -> None:
    """End the workflow as ``state``: waiting nodes and jobs not started are cancelled,
    running jobs are asked to stop (their outcomes are still recorded)."""
    waiting = c.execute("UPDATE workflow_nodes SET status = 'cancelled' WHERE workflow_id = ? AND status = 'waiting'",
                        (workflow_id,)).rowcount  # fmt: skip
    c.execute("UPDATE workflows SET open = open - ?, bad = bad + ? WHERE id = ?", (waiting, waiting, workflow_id))
    enqueued = c.execute(
        "SELECT n.node, j.rowid, j.id, j.status FROM workflow_nodes n JOIN jobs j ON j.id = n.job_id"
        " WHERE n.workflow_id = ? AND n.status = 'enqueued'", (workflow_id,),
    ).fetchall()  # fmt: skip
    for node, rowid, job_id, status in enqueued:
        if status == "processing":
            c.execute("UPDATE jobs SET cancel = 1 WHERE rowid = ?", (rowid,))
            continue
        c.execute("UPDATE jobs SET status = 'cancelled', finished_at = ?, expires_at = ? WHERE rowid = ?",
                  (now, now + CANCELLED_TTL_S, rowid))  # fmt: skip
        _end_node(c, workflow_id, node, "cancelled", error_object(job_id, "cancelled", "cancelled"), True)
        s.touch(job_topic(job_id))
    _set_state(s, c, workflow_id, state, now)


def cancel(s: Session, workflow_id: str) -> str | None:
    """``cancel_workflow``: the state before, or None."""
    with s.write() as c:
        row = c.execute("SELECT state FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is not None and row[0] == "running":
            _stop(s, c, workflow_id, "cancelled", time.time())
        return None if row is None else str(row[0])


def retry(s: Session, workflow_id: str) -> int:
    """``retry_workflow``: failed, cancelled and skipped nodes wait again for their parents
    that run again; those with none are enqueued. A node with callbacks keeps its outcome,
    and a callback runs again only if its condition holds for that outcome."""
    with s.write() as c:
        row = c.execute("SELECT state FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is None or row[0] == "running":
            return 0
        rows = c.execute("SELECT node, status, parents, children FROM workflow_nodes WHERE workflow_id = ?"
                         " ORDER BY seq", (workflow_id,))  # fmt: skip
        nodes = {n: (st, json.loads(ps), [edge(e) for e in json.loads(cs)]) for n, st, ps, cs in rows}
        redo, kept_bad = _redo(nodes)
        if not redo:
            return 0
        again = set(redo)
        c.executemany(
            "UPDATE workflow_nodes SET status = 'waiting', result = NULL, waiting = ?"
            " WHERE workflow_id = ? AND node = ?",
            [(sum(1 for p in nodes[node][1] if p in again), workflow_id, node) for node in redo],
        )
        now = time.time()
        c.execute("UPDATE workflows SET state = 'running', finished_at = NULL, expires_at = ?, open = open + ?, bad = ?"
                  " WHERE id = ?", (now + WORKFLOW_TTL_S, len(redo), kept_bad, workflow_id))  # fmt: skip
        for ready in c.execute(f"{_NODE} WHERE workflow_id = ? AND status = 'waiting' AND waiting = 0",
                               (workflow_id,)).fetchall():  # fmt: skip
            _release(s, c, workflow_id, ready, now)
        return len(redo)


def _redo(nodes: dict[str, tuple[str, list[str], list[tuple[str, str]]]]) -> tuple[list[str], int]:
    """The nodes ``retry`` runs again (in order), and how many failed nodes keep their
    outcome (those with callbacks: their callbacks answered it)."""
    candidates, kept_bad = set(), 0
    for node, (st, _, children) in nodes.items():
        if st in ("failed", "cancelled", "skipped"):
            if any(mark for _, mark in children):
                kept_bad += 1
            else:
                candidates.add(node)

    def condition_holds(node: str) -> bool:
        for parent in nodes[node][1]:
            for child, mark in nodes[parent][2]:
                unmet = mark and not edge_runs(mark, nodes[parent][0] == "completed", False)
                if child == node and unmet and parent not in candidates:
                    return False
        return True

    return [n for n in nodes if n in candidates and condition_holds(n)], kept_bad


def state(s: Session, workflow_id: str) -> str:
    """The workflow's state, '' when unknown."""
    with s.read() as c:
        row = c.execute("SELECT state FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    return "" if row is None else str(row[0])


def is_settled(s: Session, workflow_id: str) -> bool:
    """Whether the workflow is gone or no longer running."""
    return state(s, workflow_id) != "running"


def get(s: Session, workflow_id: str, jobs: bool) -> WorkflowRecord | None:
    """The workflow, its nodes in topological order, and (with ``jobs``) their jobs."""
    with s.read() as c:
        row = c.execute("SELECT id, name, kind, policy, output, state, created_at, finished_at FROM workflows"
                        " WHERE id = ?", (workflow_id,)).fetchone()  # fmt: skip
        if row is None:
            return None
        nodes = [
            NodeRecord(n[0], n[1], n[2], n[3], n[4], json.loads(n[5]), json.loads(n[6]), b"", bool(n[7]), n[8], n[9])
            for n in c.execute(
                "SELECT node, job_id, name, routing_key, priority, parents, children, allow_failure, delay_s, status"
                " FROM workflow_nodes WHERE workflow_id = ? ORDER BY seq", (workflow_id,),
            )
        ]  # fmt: skip
        unmark(nodes)
        if jobs:
            found = {r[0]: job_from_row(r) for r in c.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT job_id FROM workflow_nodes WHERE workflow_id = ?"
                " AND status != 'waiting')", (workflow_id,),
            )}  # fmt: skip
            for n in nodes:
                n.job = found.get(n.job_id)
    return WorkflowRecord(row[0], row[1], row[2], row[3], row[4], row[6], nodes, row[5], row[7])


def results(s: Session, workflow_id: str, node_ids: Sequence[str]) -> dict[str, bytes]:
    """The stored outcomes of those nodes that have one."""
    with s.read() as c:
        return {
            r[0]: r[1] for r in c.execute(
                "SELECT node, result FROM workflow_nodes WHERE workflow_id = ? AND result IS NOT NULL"
                " AND node IN (SELECT value FROM json_each(?))", (workflow_id, json.dumps(list(node_ids))),
            )
        }  # fmt: skip


def listing(s: Session, limit: int) -> list[WorkflowSummary]:
    """Workflows, newest first, with their node counts."""
    with s.read() as c:
        rows = c.execute("SELECT id, name, kind, state, created_at, finished_at FROM workflows"
                         " ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()  # fmt: skip
        out = []
        for r in rows:
            counts = dict(c.execute("SELECT status, count(*) FROM workflow_nodes WHERE workflow_id = ? GROUP BY status",
                                    (r[0],)).fetchall())  # fmt: skip
            out.append(WorkflowSummary(r[0], r[1], r[2], r[3], r[4], r[5], sum(counts.values()), counts))
    return out


def expire(c: sqlite3.Connection, now: float) -> int:
    """Delete workflows past their TTL (at most ``EXPIRE_LIMIT``); how many."""
    gone = [r[0] for r in c.execute("SELECT id FROM workflows WHERE expires_at <= ? LIMIT ?", (now, EXPIRE_LIMIT))]
    if gone:
        ids = json.dumps(gone)
        c.execute("DELETE FROM workflow_nodes WHERE workflow_id IN (SELECT value FROM json_each(?))", (ids,))
        c.execute("DELETE FROM workflows WHERE id IN (SELECT value FROM json_each(?))", (ids,))
    return len(gone)
