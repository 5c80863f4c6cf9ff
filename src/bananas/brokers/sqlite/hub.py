"""What the ``SQLiteBroker``s of one process share about one database.

A ``Hub`` per database (per ``Target``) carries a lock that serialises this process's
writers (SQLite admits one writer at a time anyway, and a Python lock hands over at once
where SQLite's busy handler sleeps) and the wake-ups that let ``wait_for_work``,
``wait_for_schedule`` and ``wait_job`` return as soon as another broker of this process
commits. Commits by other processes are noticed by one watcher thread per database that
polls ``PRAGMA data_version``, and only while a coroutine of this process waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from bananas.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: How often the watcher thread asks ``PRAGMA data_version`` whether another process
#: committed (only while some coroutine of this process waits on the database).
POLL_S = 0.025
#: Waiters re-check their condition this often whatever they hear: a safety net only,
#: since every commit of this process and every change the watcher sees wakes them.
RECHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where a broker URL points."""

    key: str  # names the database within this process
    database: str  # what sqlite3.connect is given
    memory: bool


def parse_url(url: str) -> Target:
    """Resolve ``sqlite:///path.db`` (relative to the working directory),
    ``sqlite:////abs/path.db`` or ``memory://[name]``.

    Raises:
        ConfigurationError: not a SQLite or memory URL.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    rest = rest.split("?", 1)[0]
    if sep and (scheme == "memory" or (scheme == "sqlite" and rest in ("", "/:memory:"))):
        name = (rest.strip("/") if scheme == "memory" else "") or "default"
        return Target(f"memory:{name}", f"file:bananas-{quote(name, safe='')}?mode=memory&cache=shared", True)
    if not sep or scheme != "sqlite" or not rest.startswith("/") or len(rest) < 2:
        raise ConfigurationError(f"bad SQLite URL {url!r}: use sqlite:///relative.db, sqlite:////abs.db or memory://")
    path = os.path.realpath(os.path.abspath(rest[1:]))
    return Target(f"file:{path}", path, False)


# --- in-process hub ------------------------------------------------------------------


class Waiter:
    """One coroutine blocked in a ``wait_*`` call; woken from any thread."""

    __slots__ = ("_fut", "loop", "woken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.woken = False
        self._fut: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """Thread-safe: mark the waiter woken and resume it."""
        with contextlib.suppress(RuntimeError):  # its loop has closed
            self.loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self.woken = True
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(None)

    async def wait(self, timeout_s: float) -> bool:
        """Sleep until woken or ``timeout_s``; return whether it was woken."""
        if not self.woken:
            fut = self._fut = self.loop.create_future()
            timer = self.loop.call_later(timeout_s, _resolve, fut)
            try:
                await fut
            finally:
                timer.cancel()
                self._fut = None
        woken, self.woken = self.woken, False
        return woken


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Hub:
    """What the brokers of one process share about one database."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        #: Held around every write transaction, and for in-memory databases around every
        #: access: shared-cache connections fail with SQLITE_LOCKED instead of waiting.
        self.write_lock = threading.RLock()
        self.refs = 0
        self.schema_ready = False
        self.keeper: sqlite3.Connection | None = None
        self.closed = False
        self._cond = threading.Condition()
        self._waiters: dict[str, set[Waiter]] = {}
        self._watcher: threading.Thread | None = None

    def read_lock(self) -> contextlib.AbstractContextManager[object]:
        """The lock readers need: the write lock in memory, none on disk (WAL)."""
        return self.write_lock if self.target.memory else contextlib.nullcontext()

    def subscribe(self, topics: Iterable[str], waiter: Waiter) -> None:
        with self._cond:
            for topic in topics:
                self._waiters.setdefault(topic, set()).add(waiter)
            if not self.target.memory and self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="bananas-sqlite-watch", daemon=True)
                self._watcher.start()
            self._cond.notify_all()

    def unsubscribe(self, topics: Iterable[str], waiter: Waiter) -> None:
        with self._cond:
            for topic in topics:
                group = self._waiters.get(topic)
                if group is not None:
                    group.discard(waiter)
                    if not group:
                        del self._waiters[topic]

    def notify(self, topics: Iterable[str] | None) -> None:
        """Wake the waiters of ``topics`` (all when None); called after commits, from any thread."""
        with self._cond:
            if not self._waiters:
                return
            if topics is None:
                woken = {w for group in self._waiters.values() for w in group}
            else:
                woken = {w for t in topics for w in self._waiters.get(t, ())}
        for waiter in woken:
            waiter.wake()

    def stop(self) -> None:
        """Stop the watcher thread (the last broker of this database in the process closed)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _watch(self) -> None:
        """While anyone waits, poll ``PRAGMA data_version`` every ``POLL_S``; when another
        connection (of any process) has committed, wake the waiters that may care."""
        conn: sqlite3.Connection | None = None
        seen = -1  # the first poll wakes everyone: harmless, and nothing is missed
        try:
            while True:
                with self._cond:
                    while not self._waiters and not self.closed:
                        self._cond.wait()
                    if self.closed:
                        return
                    topics = list(self._waiters)
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.target.database, timeout=self.timeout_s, isolation_level=None)
                    version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                    if version != seen:
                        seen = version
                        self.notify(_worth_waking(conn, topics))
                except sqlite3.Error as exc:  # waiters still re-check every RECHECK_S
                    logger.debug("watching %s: %s", self.target.database, exc)
                    if seen != -2:
                        seen = -2
                        self.notify(None)
                time.sleep(POLL_S)
        finally:
            if conn is not None:
                conn.close()


def work_topic(rk: str) -> str:
    """Topic woken when jobs become ready in routing key ``rk``."""
    return "w:" + rk


def job_topic(job_id: str) -> str:
    """Topic woken when job ``job_id`` reaches a terminal status (or is gone)."""
    return JOB_PREFIX + job_id


JOB_PREFIX = "j:"
#: Topic woken when a delayed or retry job is scheduled.
SCHEDULE_TOPIC = "s"

_UNSETTLED = (
    "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?))"
    " AND status NOT IN ('completed', 'failed', 'cancelled') AND (expires_at IS NULL OR expires_at > ?)"
)


def _worth_waking(conn: sqlite3.Connection, topics: list[str]) -> list[str]:
    """The topics to wake after another process committed: all but the jobs that are
    still unfinished, found with one query however many ``wait_job`` calls are waiting."""
    jobs = [t[len(JOB_PREFIX) :] for t in topics if t.startswith(JOB_PREFIX)]
    if not jobs:
        return topics
    unsettled = {row[0] for row in conn.execute(_UNSETTLED, (json.dumps(jobs), time.time()))}
    return [t for t in topics if not t.startswith(JOB_PREFIX) or t[len(JOB_PREFIX) :] not in unsettled]


#: Hubs by ``Target.key``. Process-wide on purpose: it is what makes ``memory://`` one
#: database for every broker of the process, and what carries wake-ups between them.
_HUBS: dict[str, Hub] = {}
_HUBS_LOCK = threading.Lock()


def acquire_hub(target: Target, timeout_s: float) -> Hub:
    """The hub of ``target``, counting one more user; an in-memory database is created."""
    with _HUBS_LOCK:
        hub = _HUBS.get(target.key)
        if hub is None:
            hub = Hub(target, timeout_s)
            if target.memory:  # keeps the database alive while any broker uses it
                hub.keeper = sqlite3.connect(
                    target.database, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False
                )
            _HUBS[target.key] = hub
        hub.refs += 1
        return hub


def release_hub(hub: Hub) -> None:
    """Count one user less; the last one drops the hub (and an in-memory database)."""
    with _HUBS_LOCK:
        hub.refs -= 1
        if hub.refs > 0:
            return
        if _HUBS.get(hub.target.key) is hub:
            del _HUBS[hub.target.key]
    hub.stop()
    if hub.keeper is not None:
        with hub.write_lock:
            hub.keeper.close()
