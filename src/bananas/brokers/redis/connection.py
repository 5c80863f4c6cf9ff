"""redis-py's asyncio connections with the C (hiredis) command packer.

redis-py packs commands in Python on its asyncio connections (its sync ones use
hiredis when installed). Our scripts take hundreds of arguments per batch, so the
packing was a tenth of a worker's time; these subclasses pack in C.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.connection as aioconn
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

_PACKER = HiredisRespSerializer() if HIREDIS_AVAILABLE else None


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        assert _PACKER is not None
        return _PACKER.pack(*args)  # type: ignore[no-any-return]


class HiredisConnection(_HiredisPacking, aioconn.Connection):
    """TCP connection (``redis://``)."""


class HiredisSSLConnection(_HiredisPacking, aioconn.SSLConnection):
    """TLS connection (``rediss://``)."""


class HiredisUnixConnection(_HiredisPacking, aioconn.UnixDomainSocketConnection):
    """Unix socket connection (``unix://``)."""


def connection_class(url: str) -> type[aioconn.AbstractConnection] | None:
    """The connection class for ``url``, or None to keep redis-py's choice."""
    if _PACKER is None:
        return None
    scheme = url.split("://", 1)[0].lower()
    return {"redis": HiredisConnection, "rediss": HiredisSSLConnection, "unix": HiredisUnixConnection}.get(scheme)
