"""Brokers, chosen by URL scheme."""

from __future__ import annotations

from bananas.brokers.base import Broker, Delivery, Lease, Outcome, QueueStats, TickReport
from bananas.errors import ConfigurationError


def from_url(url: str, *, timeout_s: float = 5.0) -> Broker:
    """Return the broker for ``url``.

    ``redis://`` and ``rediss://`` give ``RedisBroker``; ``sqlite:///path.db`` gives the
    embedded ``SQLiteBroker``; ``memory://`` an in-process ``SQLiteBroker`` in memory.

    Raises:
        ConfigurationError: the scheme is unknown.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        from bananas.brokers.redis.broker import RedisBroker

        return RedisBroker(url, timeout_s=timeout_s)
    if scheme in ("sqlite", "memory"):
        from bananas.brokers.sqlite import SQLiteBroker

        return SQLiteBroker(url, timeout_s=timeout_s)
    raise ConfigurationError(f"unknown broker URL {url!r}: use redis://, rediss://, sqlite:///path.db or memory://")


__all__ = ["Broker", "Delivery", "Lease", "Outcome", "QueueStats", "TickReport", "from_url"]
