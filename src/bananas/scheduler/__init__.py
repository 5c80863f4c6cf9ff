"""Scheduler duties: delayed and retry jobs -> ready, expired leases -> ready or dead."""

from __future__ import annotations

from bananas.scheduler.scheduler import Scheduler

__all__ = ["Scheduler"]
