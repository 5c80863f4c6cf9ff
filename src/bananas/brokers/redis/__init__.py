"""The Redis broker (reference backend)."""

from __future__ import annotations

from bananas.brokers.redis.broker import RedisBroker

__all__ = ["RedisBroker"]
