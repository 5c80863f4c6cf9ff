"""The connection thread under ``SQLiteBroker``.

sqlite3 blocks, so each broker owns one thread that owns its one connection; coroutines
hand it work and await the result, and the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from bananas.brokers.sqlite import schema
from bananas.brokers.sqlite.hub import Hub, Target, acquire_hub, release_hub
from bananas.errors import BrokerError, BrokerUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Size the WAL file is truncated to after a checkpoint (it otherwise keeps its peak size).
WAL_LIMIT_BYTES = 64 * 1024 * 1024

#: SQLite result codes that mean "the database cannot be used right now".
_UNAVAILABLE = (
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL",
    "SQLITE_READONLY", "SQLITE_PROTOCOL", "SQLITE_PERM", "SQLITE_NOLFS",
)  # fmt: skip


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
                    self._use_wal(conn)
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
                if not self.hub.schema_ready:
                    schema.create(conn)
                    self.hub.schema_ready = True
        except BaseException:
            conn.close()
            raise
        self._session = Session(conn, self.hub)
        return self._session

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (once per file: the mode is persistent).

        Switching answers SQLITE_BUSY at once, without the busy handler, while another
        process opens the same new file; so retry within the timeout.
        """
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                if mode != "wal":
                    mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
                break
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        if mode != "wal":
            logger.warning("sqlite database %s is in %s mode, not WAL", self.where, mode)

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
