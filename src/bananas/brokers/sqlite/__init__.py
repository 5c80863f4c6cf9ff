"""The embedded SQLite broker (``sqlite:///path.db``, ``memory://``); see ``broker.py``."""

from __future__ import annotations

from bananas.brokers.sqlite.broker import SQLiteBroker

__all__ = ["SQLiteBroker"]
