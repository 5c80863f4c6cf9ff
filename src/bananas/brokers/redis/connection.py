"""Lean connections to Redis.

redis-py packs commands in Python on its asyncio connections (its sync ones use
hiredis when installed). Our scripts take hundreds of arguments per batch, so the
packing was a tenth of a worker's time; the connection subclasses here pack in C.
``BlockingScript`` calls a script from plain threads with as little client work as a
round trip allows.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections.abc import Sequence
from typing import Any, cast

import hiredis  # a dependency: redis[hiredis]
import redis
import redis.asyncio.connection as aioconn
from redis import exceptions as rexc
from redis.connection import HiredisRespSerializer

_PACKER = cast("Any", HiredisRespSerializer)()  # untyped in some redis-py releases


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP, packed by hiredis (str, bytes, int and float arguments)."""
    try:
        return hiredis.pack_command(args)  # type: ignore[no-any-return]
    except TypeError:  # a bytearray/memoryview argument: redis-py's wrapper converts it
        return b"".join(_PACKER.pack(*args))


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT LOAD" and the like
            args = (*args[0].split(), *args[1:])
        return [pack(args)]


class HiredisConnection(_HiredisPacking, aioconn.Connection):
    """TCP connection (``redis://``)."""


class HiredisSSLConnection(_HiredisPacking, aioconn.SSLConnection):
    """TLS connection (``rediss://``)."""


class HiredisUnixConnection(_HiredisPacking, aioconn.UnixDomainSocketConnection):
    """Unix socket connection (``unix://``)."""


def connection_class(url: str) -> type[aioconn.AbstractConnection] | None:
    """The connection class for ``url``, or None to keep redis-py's choice."""
    scheme = url.split("://", 1)[0].lower()
    return {"redis": HiredisConnection, "rediss": HiredisSSLConnection, "unix": HiredisUnixConnection}.get(scheme)


class BlockingScript:
    """One Lua script called from threads without an event loop (``Client.submit``).

    Each thread keeps one connection of its own; a batch of calls is packed in C and
    written with one send, and the replies are read straight off the connection. This
    skips redis-py's per-command machinery (pool checkout, retry wrapper, observability
    hooks, argument type checks), which cost about as much client time as the round trip
    itself on a one-job submit.

    A broken connection is retried once on a fresh one, as redis-py's ``Retry`` would;
    the scripts called here must therefore be idempotent (submit skips ids it already
    stored). A timeout is not retried, so a frozen server fails within the timeout.

    Args:
        url: the server.
        source: the script text.
        timeout_s: connect and read timeout.
    """

    def __init__(self, url: str, source: str, timeout_s: float) -> None:
        self._pool = redis.ConnectionPool.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._local = threading.local()
        # redis-py's Connection methods are untyped: connections are Any here.
        self._all: weakref.WeakSet[Any] = weakref.WeakSet()  # a dead thread's goes with it

    def __call__(self, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run the script once per ``(keys, args)``; the replies in order.

        Raises:
            redis.ConnectionError, redis.TimeoutError: the server could not be reached.
            redis.ResponseError: the script failed.
        """
        commands = [("EVALSHA", self._sha, len(keys), *keys, *args) for keys, args in calls]
        conn = self._connection()
        for attempt in (1, 2):
            try:
                return self._run(conn, commands)
            except rexc.ConnectionError:
                conn.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                conn.disconnect()  # replies may be left unread: start clean next time
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, conn: Any, commands: list[tuple[Any, ...]], load: bool = True) -> list[Any]:
        conn.send_packed_command([b"".join(map(pack, commands))], check_health=False)
        replies: list[Any] = []
        missing = False
        for _ in commands:
            try:
                replies.append(conn.read_response(disable_decoding=True))
            except rexc.NoScriptError:
                missing = True
        if not missing:
            return replies
        if not load:
            raise rexc.NoScriptError("the script is still missing after SCRIPT LOAD")
        # A server that restarted or flushed its scripts: load it and send again (the
        # calls that did run skip their jobs the second time).
        conn.send_command("SCRIPT", "LOAD", self._source, check_health=False)
        conn.read_response()
        return self._run(conn, commands, load=False)

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._pool.make_connection()
            self._all.add(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection."""
        for conn in list(self._all):
            conn.disconnect()


class LeanScripts:
    """Lua scripts called on the worker's hot path (dequeue, ack) with as little client
    work as a round trip allows, on connections of their own.

    redis-py's ``Script.__call__`` goes through the command machinery (retry wrapper,
    pool checkout and release, observability hooks) and, with a socket timeout, writes
    each command from a task of its own (``asyncio.wait_for``). Here a call takes a free
    connection, writes one packed ``EVALSHA``, reads the reply under one timeout and
    gives the connection back; a connection that failed is closed (the next call opens
    a fresh one) and the error is raised for the caller's retry policy. A server that
    lost the script (restart, ``SCRIPT FLUSH``) gets ``SCRIPT LOAD`` and the call once more.

    Like redis-py's asyncio clients (and the broker that holds them), the connections
    belong to the event loop that opened them.

    Args:
        url: the server.
        timeout_s: connect and reply timeout.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        kwargs: dict[str, Any] = {"socket_connect_timeout": timeout_s, "socket_timeout": None,
                                  "health_check_interval": 0}  # fmt: skip
        packer = connection_class(url)
        if packer is not None:
            kwargs["connection_class"] = packer
        self._pool = aioconn.ConnectionPool.from_url(url, **kwargs)
        self._timeout_s = timeout_s
        self._free: list[Any] = []

    async def call(self, sha: str, source: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """``EVALSHA sha`` with ``keys`` and ``args``; the reply, undecoded.

        Raises:
            redis.ConnectionError, redis.TimeoutError, OSError: the server could not be reached.
            redis.ResponseError: the script failed.
        """
        conn = self._free.pop() if self._free else self._pool.make_connection()  # type: ignore[no-untyped-call]
        packed = pack(("EVALSHA", sha, len(keys), *keys, *args))
        try:
            try:
                reused = conn.is_connected
                reply = await self._call_on(conn, packed, source)
            except rexc.ConnectionError:
                if not reused:
                    raise
                # A kept connection to a server that restarted: once more on a fresh one,
                # as redis-py's own retry does (the scripts fence repeated calls).
                await conn.disconnect(nowait=True)
                reply = await self._call_on(conn, packed, source)
        except BaseException:
            await conn.disconnect(nowait=True)  # replies may be left unread: start clean next time
            self._free.append(conn)
            raise
        self._free.append(conn)
        return reply

    async def _call_on(self, conn: Any, packed: bytes, source: str) -> Any:
        """Connect if needed, then the call, all within one timeout (a server that
        accepts but never answers fails it; the caller drops the connection)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                if not conn.is_connected:
                    await conn.connect()
                try:
                    return await self._round_trip(conn, packed)
                except rexc.NoScriptError:
                    await self._round_trip(conn, pack(("SCRIPT", "LOAD", source)))
                    return await self._round_trip(conn, packed)
        except TimeoutError:
            raise rexc.TimeoutError(f"no reply from Redis within {self._timeout_s:g} s") from None

    @staticmethod
    async def _round_trip(conn: Any, packed: bytes) -> Any:
        await conn.send_packed_command([packed], check_health=False)
        # No timeout of its own (the connection has none either): _call_on's bounds it.
        # redis-py returns None instead of raising when its own read timeout passes.
        return await conn.read_response(disable_decoding=True)

    async def close(self) -> None:
        """Close every connection."""
        for conn in self._free:
            await conn.disconnect()
        self._free.clear()
        await self._pool.aclose()
