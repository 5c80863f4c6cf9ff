"""The SQLite broker upgrades a database written by the previous Bananas in place."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bananas import wire
from bananas.brokers import from_url
from bananas.brokers.base import Reclaim
from bananas.brokers.sqlite.schema import SCHEMA_VERSION
from bananas.job import Job, JobStatus, new_id


async def test_a_version_3_database_gains_the_suspects_column_and_keeps_its_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    job = Job(id=new_id(), name="t", payload={}, created_at=time.time())
    broker = from_url(url)
    await broker.enqueue([(job, wire.encode_job(job))])
    await broker.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as Bananas with schema 3 left it
        conn.execute("DROP INDEX jobs_suspects")
        conn.execute("ALTER TABLE jobs DROP COLUMN alone")
        conn.execute("PRAGMA user_version = 3")
    broker = from_url(url)
    [d] = await broker.dequeue(["default"], 1, 30, "h:1:w")
    assert d.id == job.id
    assert await broker.release_dead("h:1:", ["default"], "signal SIGKILL", Reclaim(3, 86400)) == (1, 0)
    alone = await broker.dequeue_alone(["default"], 30, "h:2:w")
    assert alone is not None and alone.token == 2
    seen = await broker.get_job(job.id)
    assert seen is not None and seen.status is JobStatus.PROCESSING
    await broker.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        assert "alone" in columns


async def test_a_version_4_database_gains_the_workflow_tables_and_keeps_its_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    job = Job(id=new_id(), name="t", payload={}, created_at=time.time())
    broker = from_url(url)
    await broker.enqueue([(job, wire.encode_job(job))])
    await broker.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as Bananas with schema 4 left it
        conn.execute("DROP TABLE workflow_nodes")
        conn.execute("DROP TABLE workflows")
        conn.execute("PRAGMA user_version = 4")
    broker = from_url(url)
    assert await broker.list_workflows() == []
    assert await broker.get_workflow(new_id()) is None
    seen = await broker.get_job(job.id)
    assert seen is not None and seen.status is JobStatus.PENDING
    await broker.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"workflows", "workflow_nodes"} <= tables


async def test_a_version_5_database_gains_paused_keys_and_keeps_its_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    job = Job(id=new_id(), name="t", payload={}, created_at=time.time())
    broker = from_url(url)
    await broker.enqueue([(job, wire.encode_job(job))])
    await broker.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as Bananas with schema 5 left it
        conn.execute("DROP TABLE paused_keys")
        conn.execute("PRAGMA user_version = 5")
    broker = from_url(url)
    assert [s.paused for s in await broker.queue_stats()] == [False]
    assert await broker.pause("default") is True
    assert [s.paused for s in await broker.queue_stats()] == [True]
    seen = await broker.get_job(job.id)
    assert seen is not None and seen.status is JobStatus.PENDING
    await broker.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
