"""The plumbing under ``SQLiteBroker``: URLs, the per-database hub, the connection thread.

sqlite3 blocks, so each broker owns one thread that owns its one connection; coroutines
hand it work and await the result, and the event loop never waits on the disk.

Brokers of one process that share a database also share a ``Hub``: a lock that
serialises this process's writers (SQLite admits one writer at a time anyway, and a
Python lock hands over at once where SQLite's busy handler sleeps), and the in-process
wake-ups that let ``wait_for_work``/``wait_job`` return as soon as another broker of
this process commits. Commits by other processes are noticed by one watcher thread per
database that polls ``PRAGMA data_version`` while anyone waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

from bananas.brokers.sqlite import schema
from bananas.errors import BrokerError, BrokerUnavailable, ConfigurationError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How often the watcher thread asks ``PRAGMA data_version`` whether another process
#: committed (only while some coroutine of this process waits on the database).
POLL_S = 0.025
#: Waiters re-check their condition this often whatever they hear: a safety net only,
#: since every commit of this process and every change the watcher sees wakes them.
RECHECK_S = 1.0

#: SQLite result codes that mean "the database cannot be used right now".
_UNAVAILABLE = (
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL",
    "SQLITE_READONLY", "SQLITE_PROTOCOL", "SQLITE_PERM", "SQLITE_NOLFS",
)  # fmt: skip


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
        """While anyone waits, poll ``PRAGMA data_version`` every ``POLL_S`` and wake
        every waiter when another connection (of any process) has committed."""
        try:
            conn = sqlite3.connect(self.target.database, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            logger.warning("cannot watch %s for changes by other processes: %s", self.target.database, exc)
            return
        seen = -1  # the first poll wakes everyone: harmless, and nothing is missed
        try:
            while True:
                with self._cond:
                    while not self._waiters and not self.closed:
                        self._cond.wait()
                    if self.closed:
                        return
                version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                if version != seen:
                    seen = version
                    self.notify(None)
                time.sleep(POLL_S)
        except sqlite3.Error as exc:  # waiters still re-check every RECHECK_S
            logger.warning("stopped watching %s for changes by other processes: %s", self.target.database, exc)
        finally:
            conn.close()


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


# --- the connection and its thread ---------------------------------------------------


class Session:
    """The connection, as the operations in ``ops`` use it (on the broker's thread)."""

    def __init__(self, conn: sqlite3.Connection, hub: Hub) -> None:
        self.conn = conn
        self.hub = hub
        self._topics: set[str] = set()

    def touch(self, *topics: str) -> None:
        """Wake the waiters of ``topics`` once the current transaction commits."""
        self._topics.update(topics)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        with self.hub.write_lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self._topics.clear()
                if self.conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                raise
        if self._topics:
            topics, self._topics = self._topics, set()
            self.hub.notify(topics)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several statements."""
        with self.hub.read_lock():
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def ping(self) -> None:
        """Check that the database answers."""
        with self.hub.read_lock():
            self.conn.execute("SELECT 1").fetchone()


def translate(exc: sqlite3.Error, op: str, where: str) -> BrokerError:
    """``BrokerUnavailable`` for a locked, missing or failing database, else ``BrokerError``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and (
        name.startswith(_UNAVAILABLE) or (not name and ("locked" in text or "unable to open" in text))
    ):
        return BrokerUnavailable(f"sqlite broker {where} unavailable during {op}: {text}")
    return BrokerError(f"sqlite broker {where} error during {op}: {text}")


class Engine:
    """One connection, used only from one dedicated thread.

    Args:
        target: the database.
        timeout_s: how long a writer waits for another process's lock (busy timeout).
    """

    def __init__(self, target: Target, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.hub = acquire_hub(target, timeout_s)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bananas-sqlite")
        self._session: Session | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def where(self) -> str:
        return self.target.key.split(":", 1)[1] if not self.target.memory else f"memory://{self.target.key[7:]}"

    def submit(self, op: str, fn: Callable[[Session], T]) -> concurrent.futures.Future[T]:
        """Queue ``fn`` for the connection thread.

        Raises:
            BrokerError: the engine was shut down.
        """
        try:
            return self._pool.submit(self._invoke, op, fn)
        except RuntimeError:
            raise BrokerError(f"sqlite broker {self.where} is closed ({op})") from None

    async def run(self, op: str, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` on the connection thread and await its result."""
        return await asyncio.wrap_future(self.submit(op, fn))

    def _invoke(self, op: str, fn: Callable[[Session], T]) -> T:
        try:
            session = self._session or self._connect()
            if self.target.memory:
                with self.hub.write_lock:
                    return fn(session)
            return fn(session)
        except sqlite3.Error as exc:
            raise translate(exc, op, self.where) from None

    def _connect(self) -> Session:
        conn = sqlite3.connect(
            self.target.database,
            uri=self.target.memory,
            timeout=self.timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            with self.hub.write_lock:
                if not self.target.memory:
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        logger.warning("sqlite database %s is in %s mode, not WAL", self.where, mode)
                    conn.execute("PRAGMA synchronous=NORMAL")
                if not self.hub.schema_ready:
                    schema.create(conn)
                    self.hub.schema_ready = True
        except BaseException:
            conn.close()
            raise
        self._session = Session(conn, self.hub)
        return self._session

    def _close_conn(self) -> None:
        if self._session is not None:
            with self.hub.write_lock:
                self._session.conn.close()
            self._session = None

    def shutdown(self) -> concurrent.futures.Future[None] | None:
        """Close the connection after the queued work and stop the thread (any thread,
        idempotent). Returns the future of the close, None if already shut down."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
        try:
            fut: concurrent.futures.Future[None] | None = self._pool.submit(self._close_conn)
        except RuntimeError:  # interpreter shutdown
            fut = None
        self._pool.shutdown(wait=False)
        release_hub(self.hub)
        return fut
