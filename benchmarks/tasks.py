"""No-op tasks the benchmarks run (kept for old command lines; see ``bananas.bench.tasks``)."""

from __future__ import annotations

from bananas.bench.tasks import app, noop, sink, stamp

__all__ = ["app", "noop", "sink", "stamp"]
