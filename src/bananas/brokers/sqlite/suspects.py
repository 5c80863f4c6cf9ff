"""The SQLite broker's suspects: jobs recovered from a lost worker (status ``suspect``),
run again one at a time by a worker that holds no other job (``Broker.dequeue_alone``).

Which worker runs a routing key's suspects is claimed in the ``leader`` table (row
``isolate:<routing key>``, no fencing token), for as long as a lease, as in Redis.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from bananas.brokers.base import Delivery
from bananas.brokers.sqlite.engine import Session
from bananas.brokers.sqlite.hub import work_topic

_ANY = "SELECT 1 FROM jobs INDEXED BY jobs_suspects WHERE routing_key = ? AND status = 'suspect'{names} LIMIT 1"
_CLAIM = "INSERT OR REPLACE INTO leader (name, holder, token, expires_at) VALUES (?, ?, 0, ?)"
_HOLDER = "SELECT holder, expires_at FROM leader WHERE name = ?"
_TAKE = """
UPDATE jobs SET status = 'processing', deliveries = deliveries + 1, unacked = unacked + 1, alone = deliveries + 1,
    started_at = ?, worker = ?, lease_deadline = ?
WHERE rowid = (SELECT rowid FROM jobs INDEXED BY jobs_suspects WHERE routing_key = ? AND status = 'suspect'{names}
               ORDER BY ready_at, id LIMIT 1)
RETURNING id, body, attempts, deliveries
"""


def _claim_name(rk: str) -> str:
    return f"isolate:{rk}"


def _only(sql: str, names: Sequence[str]) -> str:
    """``sql`` limited to suspects of ``names`` (none: any name)."""
    return sql.format(names=f" AND name IN ({', '.join('?' for _ in names)})" if names else "")


def claim(
    c: sqlite3.Connection, routing_keys: Sequence[str], worker: str, ttl_s: float, now: float, names: Sequence[str]
) -> bool:
    """Whether ``worker`` (serving ``names``; none: any) has or now takes the duty to run
    suspects of these routing keys alone: only where it serves some, one worker per
    routing key at a time."""
    for rk in routing_keys:
        if c.execute(_only(_ANY, names), (rk, *names)).fetchone() is None:
            continue
        row = c.execute(_HOLDER, (_claim_name(rk),)).fetchone()
        if row is None or row[1] <= now or row[0] == worker:
            c.execute(_CLAIM, (_claim_name(rk), worker, now + ttl_s))
            return True
    return False


def unclaimed(s: Session, routing_keys: Sequence[str]) -> bool:
    """Whether suspects wait in one of the routing keys with no worker claiming them."""
    c, now = s.conn, time.time()
    with s.hub.read_lock():
        for rk in routing_keys:
            if c.execute(_only(_ANY, ()), (rk,)).fetchone() is not None:
                row = c.execute(_HOLDER, (_claim_name(rk),)).fetchone()
                if row is None or row[1] <= now:
                    return True
    return False


def dequeue_alone(
    s: Session, routing_keys: Sequence[str], lease_s: float, worker: str, names: Sequence[str]
) -> Delivery | None:
    """``Broker.dequeue_alone``: lease the oldest suspect of ``names`` (none: any), recording
    that it runs alone, and renew the claim; with none left, drop this worker's claims."""
    take = _only(_TAKE, names)
    with s.write() as c:
        now = time.time()
        paused = {r[0] for r in c.execute("SELECT name FROM paused_keys")}
        for rk in (k for k in routing_keys if k not in paused):
            row = c.execute(take, (now, worker, now + lease_s, rk, *names)).fetchone()
            if row is not None:
                c.execute(_CLAIM, (_claim_name(rk), worker, now + lease_s))
                return Delivery(row[0], rk, row[1], row[2], row[3])
        if c.execute("DELETE FROM leader WHERE name LIKE 'isolate:%' AND holder = ?", (worker,)).rowcount:
            s.touch(*(work_topic(rk) for rk in routing_keys))  # another worker may take the duty
    return None
