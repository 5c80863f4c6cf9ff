"""The SQLite broker's task catalogue: the same records as the Redis broker's
(``brokers/redis/catalogue.py``), in the ``task_catalogue`` and ``task_workers`` tables."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from bananas.brokers.base import CATALOGUE_TTL_S, CatalogueRecord
from bananas.brokers.sqlite.engine import Session


def publish(s: Session, worker_id: str, definitions: Mapping[str, bytes], stale_after_s: float) -> None:
    """See ``Broker.publish_tasks``."""
    now = time.time()
    with s.write() as c:
        c.executemany(
            "INSERT INTO task_catalogue (name, definition, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, expires_at = excluded.expires_at",
            [(name, definition, now + CATALOGUE_TTL_S) for name, definition in definitions.items()],
        )
        c.executemany(
            "INSERT INTO task_workers (name, worker, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (name, worker) DO UPDATE SET last_seen = excluded.last_seen",
            [(name, worker_id, now) for name in definitions],
        )
        c.execute("DELETE FROM task_workers WHERE last_seen < ?", (now - stale_after_s,))
        c.execute("DELETE FROM task_catalogue WHERE expires_at <= ?", (now,))


def unpublish(s: Session, worker_id: str, names: Sequence[str]) -> None:
    """See ``Broker.unpublish_tasks``."""
    with s.write() as c:
        c.executemany("DELETE FROM task_workers WHERE name = ? AND worker = ?", [(n, worker_id) for n in names])


def records(s: Session, stale_after_s: float) -> list[CatalogueRecord]:
    """See ``Broker.task_catalogue``."""
    now = time.time()
    with s.read() as c:
        rows = c.execute(
            "SELECT name, definition FROM task_catalogue WHERE expires_at > ? ORDER BY name", (now,)
        ).fetchall()
        seen = c.execute(
            "SELECT name, worker, last_seen FROM task_workers WHERE last_seen >= ?", (now - stale_after_s,)
        ).fetchall()
    found = {name: CatalogueRecord(name, bytes(definition)) for name, definition in rows}
    for name, worker, last_seen in seen:
        if name in found:
            found[name].workers[worker] = last_seen
    return list(found.values())
