"""The worker: fetcher, executor, lease keeper, supervisor."""

from __future__ import annotations

from bananas.worker.worker import Worker

__all__ = ["Worker"]
