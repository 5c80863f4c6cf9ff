"""redis-py's errors as ``BrokerUnavailable`` (the server is out of reach) or
``BrokerError`` (anything else), naming the operation that failed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis import exceptions as rexc

from bananas.errors import BrokerAuthenticationError, BrokerError, BrokerUnavailable

P = ParamSpec("P")
T = TypeVar("T")


def translate(op: str, url: str, exc: Exception) -> Exception:
    """The Bananas error for redis-py's ``exc`` raised during ``op`` on the server ``url``
    (``url`` without its password: the message goes to logs and terminals)."""
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError) or _refused(exc):
        return BrokerAuthenticationError(
            f"redis broker {url} refused the credentials during {op}: {exc} (check the password or ACL user in the URL)"
        )
    if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError):
        hint = ""
        if url.startswith("redis://") and ("reset by peer" in str(exc) or "closed by server" in str(exc)):
            hint = " (a server that wants TLS drops plain connections like this: use rediss://)"
        return BrokerUnavailable(f"redis broker {url} unreachable during {op}: {exc}{hint}")
    return BrokerError(f"redis broker error during {op}: {exc}")


def _refused(exc: Exception) -> bool:
    """An error reply that says the connection is not authenticated or not allowed."""
    text = str(exc)
    return isinstance(exc, rexc.ResponseError) and (
        text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")) or "has no permissions to" in text
    )


def guard(op: str) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Turn redis-py connection errors into ``BrokerUnavailable`` naming the operation."""

    def wrap(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await fn(*args, **kwargs)
            except (rexc.RedisError, OSError) as exc:
                raise translate(op, getattr(args[0], "safe_url", "redis"), exc) from None

        return inner

    return wrap
